"""Make a synthetic Melon-shaped playlist dataset with planted structure (step 0).

Writes, in the official Kakao Arena 2020 schema, into `out_dir`:
    train.json                 playlists: tags, id, plylst_title, songs, like_cnt, updt_date
    val.json, test.json        question playlists with part of their songs / tags / title hidden
    song_meta.json             one record per song, record i has id i
    genre_gn_all.json          254 genre codes ("GNxx00" majors, each followed by its "GNxx01".. details)
    sample_answers/val.json    the hidden part of every val question (the arena keeps these secret;
    sample_answers/test.json   here they let you score leaderboard-style questions on synthetic data)

The generative story, so that the models have something real to learn:
- Latent themes tie everything together. Each theme has a popularity, an era, a pair of major genres (with a few
  preferred detail genres), a tag distribution (a few signature tags plus common tags from a global Zipf pool)
  and title words.
- Artists belong to one theme and share its genres; albums group consecutive songs of an artist and fix their
  issue date (within 12 years of the artist's debut, a few years before the theme's era); inside a theme, song
  popularity is Zipf over a ranking that favours popular artists.
- A playlist mixes 1-3 themes (ones that were around at its updt_date) with Dirichlet weights. Its songs come
  from its themes (a little from global popularity), restricted to songs issued by its updt_date except for a
  rare late one; its tags come from its themes' tags (some from the global pool); its title from its main
  theme's words, generic words, maybe a tag, sometimes an emoji or symbol.
- Lengths, dates and like counts follow the shape of the real data (songs per playlist median 30, mean ~45,
  at most 200; tags mean ~4, median 3; updt_date 2005-2020 skewed to recent years).
Question files use the competition's mix (QUESTION_MIX); a shown-in-part list keeps floor(L/2) items and the
answer gets the rest, a hidden list goes to the answer whole (cut to 100 songs / 10 tags as the arena split does).

Step 0 never replaces data it did not write: it records what it wrote, with each file's sha256, in
`out_dir/.made_by_make_sample_dataset.json`, and refuses to run (one error line, nothing written) when out_dir holds
a file of one of the names above that this marker does not vouch for (real data, or a sample file edited since),
unless `--force`. Its own, unchanged files are replaced freely.

Everything comes from one numpy Generator seeded with `seed`: the same seed gives byte-identical files.
Only numpy and the standard library do the work. Presets: "demo" (seconds), "full" (the competition's sizes;
under a minute of CPU, ~2 GB peak) and "tiny" (for tests). In-process: `data = generate(preset, seed)` gives
{file name: JSON-ready object} and `write(out_dir, data)` writes it.

With --format=mpd the same sample is written in the Spotify Million Playlist Dataset's shape instead (slice files,
challenge_set.json and its held-out tracks; data_loader/mpd_sample.py), for the importers of docs/own_data.md.

Usage:
    python data_loader/make_sample_dataset.py --out_dir=demo/dataset --preset=demo [--seed=0] [--force] \\
        [--format=melon|mpd]
"""
from __future__ import annotations

import gc
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.cli import UsageError, check_output_dir, run_cli
from common.jsonio import atomic_path, remove_stale_temps
from data_loader.mpd_sample import file_names as mpd_file_names, to_mpd
from data_loader.owned_files import owned_write, unvouched


@dataclass(frozen=True)
class Preset:
    n_train: int  # playlists in train.json
    n_val: int  # questions in val.json
    n_test: int  # questions in test.json
    n_songs: int  # records in song_meta.json
    n_themes: int  # latent themes
    n_tag_pool: int  # size of the global tag vocabulary; only part of it is ever drawn


PRESETS = {
    "tiny": Preset(1_500, 300, 200, 5_000, 12, 800),  # for the tests: about a second
    "demo": Preset(8_000, 1_600, 800, 40_000, 50, 4_200),  # whole pipeline in minutes on a laptop CPU
    "full": Preset(115_071, 23_015, 10_740, 707_989, 600, 38_000),  # the real competition's sizes
}

# Question types of the competition's val/test files: name, share, and whether songs / tags are shown in part
# (else hidden whole) and whether the title is shown (else "").
QUESTION_MIX = (
    ("songs only", 0.42, True, False, False),
    ("songs+tags", 0.39, True, True, False),
    ("title only", 0.08, False, False, True),
    ("title+tags", 0.11, False, True, True),
)
ANSWER_CAP_SONGS, ANSWER_CAP_TAGS = 100, 10  # a wholly hidden list is cut like the arena split does
OUTPUT_FILES = ("train.json", "val.json", "test.json", "song_meta.json", "genre_gn_all.json",
                "sample_answers/val.json", "sample_answers/test.json")  # the keys of generate()'s result

# Playlist shape. Songs per playlist: lognormal, median 30, mean ~45, 90th percentile ~105, in [1, 200].
SONGS_MEDIAN, SONGS_SIGMA, LONGEST_SONGS = 30.0, 0.98, 200
TAGS_MEDIAN, TAGS_SIGMA, LONGEST_TAGS = 3.45, 0.68, 10  # tags: median 3, mean ~4.1, in [1, 10]
THEMES_PER_PLAYLIST_P = (0.45, 0.35, 0.20)  # probability of 1, 2, 3 themes
MIN_ISSUED_SHARE, MAX_THEME_REDRAWS = 0.5, 6  # see _playlists
P_GLOBAL_SONG = 0.04  # a song drawn by global popularity instead of the playlist's themes
P_LATE_SONG = 0.004  # a song drawn ignoring the updt_date cut (the real data has such songs)
P_GLOBAL_TAG = 0.25  # a tag drawn from the global Zipf pool instead of the themes
SONG_ZIPF, TAG_ZIPF, THEME_ZIPF = 0.85, 0.8, 0.4

# Dates. Days are counted from DAY0; playlists are updated in the 15.3 years before END, exponentially more
# recently; songs are issued from 1950 to END.
DAY0 = np.datetime64("1900-01-01", "D")
END = np.datetime64("2020-04-23T23:59:59", "s")
END_YEAR = 2020.31
UPDT_SPAN_YEARS, UPDT_SCALE_YEARS = 15.3, 3.5
P_DATE_ZERO, P_DATE_NO_DAY, P_DATE_NO_MONTH = 0.004, 0.015, 0.005  # "00000000", "YYYYMM00", "YYYY0000"

# A modest built-in vocabulary: common Korean playlist words (the most popular tags) and English words.
KO_WORDS = (
    "기분전환 휴식 감성 드라이브 사랑 잔잔한 힐링 새벽 카페 밤 힙합 추억 설렘 이별 발라드 여행 신나는 회상 "
    "매장음악 팝 알앤비 스트레스 랩 가을 겨울 여름 산책 봄 슬픔 운동 인디 비오는날 재즈 분위기 뉴에이지 피아노 "
    "위로 소울 집중 공부 출근길 퇴근길 잠들기전 노동요 트로트 클래식 댄스 락 어쿠스틱 주말 오후 아침 우울 행복 "
    "그리움 청량 몽환 편안한 감미로운 시원한 따뜻한 혼자 연인 친구 파티 명곡 띵곡 인생곡 오에스티 크리스마스"
).split()
EN_WORDS = (
    "chill love drive night summer mood happy cafe jazz pop rock hiphop dance indie acoustic piano rain workout "
    "study sleep morning weekend party retro groove soul RnB EDM lofi vibe city dream sunset coffee memories focus "
    "healing spring winter road"
).split()
TITLE_PREFIXES = ("나만의", "오늘의", "꼭 들어야 할", "함께 듣고 싶은", "듣기 좋은", "BEST", "감성 충전", "요즘")
TITLE_SUFFIXES = ("노래 모음", "플레이리스트", "명곡", "모음집", "에 듣는 음악", "을 위한 노래", "playlist", "songs",
                  "mix", "Vol.1", "part.2", "with you", "하루의 끝", "베스트", "노래들", "추천곡")
SYMBOLS = ("♥", "🎧", "ㅋㅋ", "!!", "~", "♬", "☆", "✨", "🔥", "...", "♡", "💕", "🌙", "^^", "!", "♪")


# ----------------------------------------------------------------------------------------------------------------
# Synthetic words


# Common jamo only (no tense consonants), so that the synthetic words look like Korean words.
_CHO = np.array([0, 0, 2, 2, 3, 5, 5, 6, 6, 7, 9, 9, 11, 11, 11, 12, 12, 14, 16, 17, 18, 18])  # ㄱㄴㄷㄹㅁㅂㅅㅇㅈㅊㅌㅍㅎ
_JUNG = np.array([0, 0, 1, 4, 4, 5, 6, 8, 8, 12, 13, 13, 17, 18, 20, 20])  # ㅏㅐㅓㅔㅕㅗㅛㅜㅠㅡㅣ
_JONG = np.array([0, 0, 0, 0, 0, 0, 1, 4, 8, 16, 17, 21])  # mostly open syllables, else ㄱㄴㄹㅁㅂㅇ
_LATIN_SYL = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]


def _split_by_counts(text: str, counts: np.ndarray) -> list[str]:
    ends = np.cumsum(counts)
    return [text[a:b] for a, b in zip((ends - counts).tolist(), ends.tolist())]


def _hangul_words(rng: np.random.Generator, n: int, lo: int = 2, hi: int = 3) -> list[str]:
    """n Korean-looking words of lo..hi syllables, composed from Unicode jamo arithmetic."""
    n_syl = rng.integers(lo, hi + 1, n)
    total = int(n_syl.sum())
    code = 0xAC00 + (rng.choice(_CHO, total) * 21 + rng.choice(_JUNG, total)) * 28 + rng.choice(_JONG, total)
    return _split_by_counts("".join(map(chr, code.tolist())), n_syl)


def _latin_words(rng: np.random.Generator, n: int) -> list[str]:
    """n pronounceable Latin-letter words of 2-3 consonant-vowel syllables, capitalised."""
    n_syl = rng.integers(2, 4, n)
    syl = np.array(_LATIN_SYL)[rng.integers(0, len(_LATIN_SYL), int(n_syl.sum()))]
    return [w.capitalize() for w in _split_by_counts("".join(syl.tolist()), 2 * n_syl)]


def _tag_pool(rng: np.random.Generator, n: int) -> list[str]:
    """n distinct tags, the built-in words first (they become the most popular), then synthetic ones."""
    pool = dict.fromkeys(KO_WORDS + EN_WORDS)
    while len(pool) < n:
        m = n - len(pool) + 64
        ko, ko2, lat = _hangul_words(rng, m, 2, 4), _hangul_words(rng, m, 1, 2), _latin_words(rng, m)
        kind = rng.random(m).tolist()
        head = rng.choice(KO_WORDS, m).tolist()
        years = rng.integers(1990, 2021, m).tolist()
        for i in range(m):
            # mostly Korean words; some compounds with a common word, English words, years
            if kind[i] < 0.6:
                tag = ko[i]
            elif kind[i] < 0.75:
                tag = head[i] + ko2[i]
            elif kind[i] < 0.9:
                tag = lat[i]
            elif kind[i] < 0.97:
                tag = lat[i].lower()
            else:
                tag = f"{years[i]}{ko2[i]}"
            pool.setdefault(tag)
    return list(pool)[:n]


# ----------------------------------------------------------------------------------------------------------------
# Weighted sampling from many categorical distributions at once


@dataclass
class _Segments:
    """Weighted categorical distributions stored back to back: distribution k is items[bounds[k]:bounds[k+1]]."""

    items: np.ndarray
    cum: np.ndarray  # cum[i] = total weight of items[:i]
    bounds: np.ndarray

    @classmethod
    def build(cls, items: np.ndarray, weights: np.ndarray, lengths: np.ndarray) -> "_Segments":
        cum = np.concatenate([[0.0], np.cumsum(weights, dtype=np.float64)])
        return cls(items, cum, np.concatenate([[0], np.cumsum(lengths)]))

    def draw(self, rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """One weighted draw from items[lo[j]:hi[j]] for every j (each range nonempty)."""
        x = self.cum[lo] + rng.random(len(lo)) * (self.cum[hi] - self.cum[lo])
        order = np.argsort(x)  # sorted queries make searchsorted ~3x faster on big tables (cache friendly)
        pos = np.empty(len(x), np.int64)
        pos[order] = np.searchsorted(self.cum, x[order], side="right") - 1
        return self.items[np.clip(pos, lo, hi - 1)]


def _zipf(n: int, exponent: float) -> np.ndarray:
    return np.arange(1, n + 1, dtype=np.float64) ** -exponent


def _draw_unique(wanted: np.ndarray, draw, n_items: int, block: int = 16_384,
                 rounds: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Up to wanted[r] distinct items for every row r, as CSR (offsets, flat items in draw order).

    `draw(rows)` returns one candidate per entry of `rows`. Popular items repeat, so each round draws 1.5x the
    missing count + 4 candidates per short row, drops repeats and keeps the first wanted[r] distinct items, all
    vectorised. A row whose distribution has too few items stays short. Rows go in blocks to bound memory.
    """
    counts, items = [], []
    for start in range(0, len(wanted), block):
        want = wanted[start : start + block]
        owner, cand = np.zeros(0, np.int64), np.zeros(0, np.int64)
        for _ in range(rounds):
            rows = np.flatnonzero(want > np.bincount(owner, minlength=len(want)))
            if not len(rows):
                break
            need = want[rows] - np.bincount(owner, minlength=len(want))[rows]
            new_owner = np.repeat(rows, np.ceil(need * 1.5).astype(np.int64) + 4)
            new_cand = draw(new_owner + start)
            if len(owner):  # merge so that rows stay contiguous, each row's candidates in draw order
                order = np.argsort(np.concatenate([owner, new_owner]), kind="stable")
                owner, cand = np.concatenate([owner, new_owner])[order], np.concatenate([cand, new_cand])[order]
            else:
                owner, cand = new_owner, new_cand
            keep = np.zeros(len(cand), bool)
            keep[np.unique(owner * n_items + cand, return_index=True)[1]] = True  # first (row, item) occurrences
            kept_before = np.cumsum(keep) - keep  # distinct candidates at earlier positions
            row_first = np.searchsorted(owner, np.arange(len(want)))
            keep &= kept_before - kept_before[row_first][owner] < want[owner]
            owner, cand = owner[keep], cand[keep]
        counts.append(np.bincount(owner, minlength=len(want)))
        items.append(cand)
    return np.concatenate([[0], np.cumsum(np.concatenate(counts))]), np.concatenate(items)


# ----------------------------------------------------------------------------------------------------------------
# Genres, themes, songs


def _genre_table(rng: np.random.Generator) -> tuple[dict[str, str], list[list[str]]]:
    """254 codes: 30 majors GN0100..GN3000, 224 details spread unevenly over them; names are synthetic."""
    n_detail = rng.multinomial(224, rng.dirichlet(np.full(30, 2.0)))
    names, details = _hangul_words(rng, 30), []
    table = {}
    for g in range(30):
        table[f"GN{g + 1:02d}00"] = names[g]
        codes = [f"GN{g + 1:02d}{d + 1:02d}" for d in range(n_detail[g])]
        table.update(zip(codes, (f"{names[g]} {w}" for w in _latin_words(rng, len(codes)))))
        details.append(codes)
    return table, details


@dataclass
class _Themes:
    pop: np.ndarray  # (K,) how often playlists pick the theme
    era: np.ndarray  # (K,) year; its artists debut up to a few years before
    majors: np.ndarray  # (K, 2) its two major genres (0-based)
    details: list[list[list[str]]]  # [k][slot]: up to 2 preferred detail codes of each major
    tags: _Segments  # segment k < K: the theme's tag distribution; segment K: the global Zipf pool
    words: list[list[str]]  # title words, the most characteristic first


def _themes(rng, preset: Preset, genre_details: list[list[str]], tag_pool: list[str]) -> _Themes:
    K, n_pool = preset.n_themes, len(tag_pool)
    pop = rng.permutation(_zipf(K, THEME_ZIPF))
    pop /= pop.sum()
    era = np.clip(END_YEAR - rng.exponential(10.0, K), 1965, END_YEAR - 1)
    major_p = rng.permutation(_zipf(30, 0.7))
    majors = np.stack([rng.choice(30, 2, replace=False, p=major_p / major_p.sum()) for _ in range(K)])
    details = [[rng.permutation(genre_details[g])[:2].tolist() for g in pair] for pair in majors]

    # Tags: half the theme's mass on 3-6 signature tags from the tail of the pool, half on common tags.
    global_w = _zipf(n_pool, TAG_ZIPF)
    items, weights = [], []
    for _ in range(K):
        sig = rng.choice(np.arange(min(300, n_pool // 4), n_pool), rng.integers(3, 7), replace=False)
        common = dict.fromkeys(rng.choice(n_pool, 40, p=global_w / global_w.sum()).tolist())
        common = [t for t in common if t not in sig]
        w_common = _zipf(len(common), 1.0)
        items += [sig, np.array(common)]
        weights += [np.full(len(sig), 0.5 / len(sig)), 0.5 * w_common / w_common.sum()]
    lengths = [len(a) + len(b) for a, b in zip(items[::2], items[1::2])] + [n_pool]
    tags = _Segments.build(np.concatenate(items + [np.arange(n_pool)]), np.concatenate(weights + [global_w]),
                           np.array(lengths))
    # Title words, the most characteristic first: own Korean words, two signature tags, a common Korean word,
    # an English one.
    own = _hangul_words(rng, 4 * K, 2, 4)
    en = _latin_words(rng, K)
    words = []
    for k in range(K):
        sig = [tag_pool[t] for t in tags.items[tags.bounds[k] : tags.bounds[k] + 2].tolist()]
        eng = EN_WORDS[rng.integers(len(EN_WORDS))] if rng.random() < 0.6 else en[k]
        words.append(own[4 * k : 4 * k + 2] + sig + [str(rng.choice(KO_WORDS)), eng] + own[4 * k + 2 : 4 * k + 4])
    return _Themes(pop, era, majors, details, tags, words)


@dataclass
class _Songs:
    by_theme: _Segments  # segment k < K: theme k's songs sorted by issue day; segment K: all songs by day
    day_key: np.ndarray  # sorted key of by_theme.items: segment * DAY_SPAN + day, for the updt_date cut
    meta: list[dict]  # song_meta.json records


DAY_SPAN = 1 << 17  # > any day count since DAY0


def _years_to_days(year: np.ndarray) -> np.ndarray:
    return ((year - 1900.0) * 365.2425).astype(np.int64)


def _issue_strings(rng, day: np.ndarray) -> list[str]:
    """YYYYMMDD strings; a few are "00000000" or lack the day or month, as in the real song_meta."""
    dt = DAY0 + day.astype("timedelta64[D]")
    month = dt.astype("datetime64[M]")
    year = month.astype("datetime64[Y]").astype(np.int64) + 1970
    value = year * 10_000 + (month.astype(np.int64) % 12 + 1) * 100 + (dt - month).astype(np.int64) + 1
    u = rng.random(len(day))
    value = np.where(u < P_DATE_ZERO + P_DATE_NO_DAY, value // 100 * 100, value)
    value = np.where(u < P_DATE_ZERO + P_DATE_NO_MONTH, value // 10_000 * 10_000, value)
    value = np.where(u < P_DATE_ZERO, 0, value)
    return [f"{v:08d}" for v in value.tolist()]


def _names(rng, n: int, words: list[str], max_words: int) -> list[str]:
    """n names of 1..max_words words from `words`, the first words more often."""
    n_words = rng.integers(1, max_words + 1, n)
    idx = (rng.random(int(n_words.sum())) ** 1.5 * len(words)).astype(np.int64)
    picked = np.array(words, dtype=object)[idx].tolist()
    ends = np.cumsum(n_words).tolist()
    return [" ".join(picked[a:b]) for a, b in zip([0] + ends[:-1], ends)]


def _songs(rng, preset: Preset, themes: _Themes) -> _Songs:
    n, K = preset.n_songs, preset.n_themes

    # Artists: heavy-tailed catalogue sizes, one theme each (bigger catalogues for popular themes).
    sizes = np.minimum(1 + rng.lognormal(0.9, 1.2, n).astype(np.int64), 1500)
    n_artists = int(np.searchsorted(np.cumsum(sizes), n)) + 1
    sizes = sizes[:n_artists]
    sizes[-1] -= sizes.sum() - n
    artist = np.repeat(np.arange(n_artists), sizes)  # catalogue order: an artist's songs are contiguous
    p = themes.pop**0.5
    artist_theme = rng.choice(K, n_artists, p=p / p.sum())
    artist_id = np.sort(rng.choice(10 * n_artists + 1000, n_artists, replace=False))[rng.permutation(n_artists)]
    name_words = _hangul_words(rng, max(200, n_artists // 3)) + _latin_words(rng, max(100, n_artists // 6))
    artist_name = np.array(_names(rng, n_artists, name_words, 2), dtype=object)

    # Albums: runs of an artist's songs; the album fixes the issue date, in the 12 years from the artist's
    # debut (a few years before the theme's era) or up to END.
    new_album = rng.random(n) < 0.3
    new_album[np.concatenate([[0], np.cumsum(sizes)[:-1]])] = True
    album = np.cumsum(new_album) - 1
    n_albums = int(album[-1]) + 1
    career = np.maximum(themes.era[artist_theme] - rng.exponential(4.0, n_artists), 1950)
    album_artist = artist[new_album]
    start = career[album_artist]
    album_day = _years_to_days(start + rng.random(n_albums) * np.minimum(12.0, END_YEAR - start))
    album_issue = np.array(_issue_strings(rng, album_day), dtype=object)
    # album ids grow with the release date, as Melon's do
    album_id = np.empty(n_albums, np.int64)
    album_id[np.argsort(album_day, kind="stable")] = np.sort(rng.choice(15 * n_albums, n_albums, replace=False))
    vocab = _hangul_words(rng, 2000) + _latin_words(rng, 1000) + KO_WORDS + EN_WORDS
    album_name = np.array(_names(rng, n_albums, vocab, 3), dtype=object)
    song_name = _names(rng, n, vocab, 4)

    # Genres per artist: the theme's first major, sometimes its second, with 1-2 preferred details of each.
    gnr, dtl = [], []
    majors = themes.majors.tolist()
    second = (rng.random(n_artists) < 0.35).tolist()
    n_dtl = rng.integers(1, 3, (n_artists, 2)).tolist()
    for a, k in enumerate(artist_theme.tolist()):
        slots = (0, 1) if second[a] else (0,)
        gnr.append([f"GN{majors[k][s] + 1:02d}00" for s in slots])
        dtl.append([d for s in slots for d in themes.details[k][s][: n_dtl[a][s]]])

    # Popularity: Zipf within the theme over a ranking that favours popular artists.
    theme = artist_theme[artist]
    key = rng.normal(0, 1, n_artists)[artist] + rng.normal(0, 1, n)
    order = np.lexsort((-key, theme))
    theme_start = np.searchsorted(theme[order], np.arange(K))
    weight = np.empty(n)
    weight[order] = (np.arange(n) - theme_start[theme[order]] + 1.0) ** -SONG_ZIPF

    # Featured artists: a few songs get one or two more artists of the same theme.
    artist_id, artist_name = artist_id.tolist(), artist_name.tolist()
    id_basket = [[artist_id[a]] for a in artist.tolist()]
    name_basket = [[artist_name[a]] for a in artist.tolist()]
    for extra in (rng.random(n) < 0.07, rng.random(n) < 0.01):
        pos = theme_start[theme[extra]] + (rng.random(int(extra.sum())) * np.bincount(theme, minlength=K)[
            theme[extra]]).astype(np.int64)
        for i, other in zip(np.flatnonzero(extra).tolist(), artist[order[pos]].tolist()):
            if artist_id[other] not in id_basket[i]:
                id_basket[i].append(artist_id[other])
                name_basket[i].append(artist_name[other])

    # Song ids: a random permutation of the catalogue order, so ids carry no artist or theme information.
    perm = rng.permutation(n)  # song id i is catalogue entry perm[i]
    album_id, album_issue, album_name = album_id.tolist(), album_issue.tolist(), album_name.tolist()
    meta = []
    for i, (c, a, b) in enumerate(zip(perm.tolist(), artist[perm].tolist(), album[perm].tolist())):
        meta.append({
            "song_gn_dtl_gnr_basket": dtl[a].copy(),
            "issue_date": album_issue[b],
            "album_name": album_name[b],
            "album_id": album_id[b],
            "artist_id_basket": id_basket[c],
            "song_name": song_name[c],
            "song_gn_gnr_basket": gnr[a].copy(),
            "artist_name_basket": name_basket[c],
            "id": i,
        })
    theme, day, weight = theme[perm], album_day[album][perm], weight[perm]

    # Sampling table: each theme's songs sorted by day, then all songs by day with weights scaled to the
    # theme's popularity (the global popularity noise); a date cut is then a prefix of a segment.
    by_theme = np.lexsort((day, theme))
    by_day = np.argsort(day, kind="stable")
    theme_mass = np.bincount(theme, weights=weight, minlength=K)
    global_w = weight * themes.pop[theme] / theme_mass[theme]
    seg = _Segments.build(np.concatenate([by_theme, by_day]), np.concatenate([weight[by_theme], global_w[by_day]]),
                          np.append(np.bincount(theme, minlength=K), n))
    day_key = np.concatenate([theme[by_theme] * DAY_SPAN + day[by_theme], K * DAY_SPAN + day[by_day]])
    return _Songs(seg, day_key, meta)


# ----------------------------------------------------------------------------------------------------------------
# Playlists and questions


def _updt_dates(rng, n: int) -> np.ndarray:
    """Update times (datetime64[s]): truncated exponential back from END, so recent years dominate."""
    scale = UPDT_SCALE_YEARS * 365.2425 * 86400
    tail = 1 - np.exp(-UPDT_SPAN_YEARS / UPDT_SCALE_YEARS)
    back = -scale * np.log1p(-rng.random(n) * tail)
    return END - back.astype(np.int64).astype("timedelta64[s]")


def _lengths(rng, n: int, median: float, sigma: float, cap: int, low: np.ndarray) -> np.ndarray:
    """Rounded lognormal lengths, clipped to [low, cap]."""
    return np.clip(np.ceil(rng.lognormal(np.log(median), sigma, n) - 0.5), low, cap).astype(np.int64)


def _title(u: np.ndarray, words: list[str], tags: list[str]) -> str:
    """A title from 14 pre-drawn uniforms: 2-5 main-theme words (front ones more often; repeats dropped), maybe
    the first tag, maybe a generic prefix or suffix, sometimes a symbol or emoji, glued or after a space."""
    n_words = 2 + int(u[0] * 4)
    picked = [words[int(x**1.3 * len(words))] for x in u[1 : 1 + n_words]]
    if u[6] < 0.25:
        picked.insert(0, tags[0])
    if u[7] < 0.3:
        picked.insert(0, TITLE_PREFIXES[int(u[8] * len(TITLE_PREFIXES))])
    if u[9] < 0.6:
        picked.append(TITLE_SUFFIXES[int(u[10] * len(TITLE_SUFFIXES))])
    title = " ".join(dict.fromkeys(picked))
    if u[11] < 0.12:
        title += ("" if u[12] < 0.5 else " ") + SYMBOLS[int(u[13] * len(SYMBOLS))]
    return title


def _playlists(rng, preset: Preset, themes: _Themes, songs: _Songs, tag_pool: list[str]) -> list[dict]:
    n = preset.n_train + preset.n_val + preset.n_test
    K = preset.n_themes
    updt = _updt_dates(rng, n)
    updt_day = (updt.astype("datetime64[D]") - DAY0).astype(np.int64)
    bounds, cum = songs.by_theme.bounds, songs.by_theme.cum

    def issued_end(seg, day):  # end of the part of song segment `seg` issued by `day`
        return np.searchsorted(songs.day_key, seg * DAY_SPAN + day, side="right")

    # Columns 0-2: up to 3 themes; column 3: the global pool K. A playlist picks themes that were around at its
    # updt_date: a theme is redrawn while less than half of its popularity mass was issued by then, so old
    # playlists get old themes and enough songs to choose from.
    segs = np.concatenate([rng.choice(K, (n, 3), p=themes.pop), np.full((n, 1), K)], axis=1)
    hi = issued_end(segs, updt_day[:, None])
    for _ in range(MAX_THEME_REDRAWS):
        young = cum[hi] - cum[bounds[segs]] < MIN_ISSUED_SHARE * (cum[bounds[segs + 1]] - cum[bounds[segs]])
        young[:, 3] = False
        r, c = np.nonzero(young)
        segs[r, c] = rng.choice(K, len(r), p=themes.pop)
        hi[r, c] = issued_end(segs[r, c], updt_day[r])
    # Song ranges per column: issued by updt_date, or whole (for a rare late song). A theme with nothing issued
    # yet falls back to the global pool (and that, were it empty, to every song).
    lo, full = bounds[segs], bounds[segs + 1]
    empty = hi == lo
    lo, hi, full = (np.where(empty, x[:, 3:], x) for x in (lo, hi, full))
    hi = np.where(hi == lo, full, hi)
    # 1-3 of the theme columns are used, with weights from a flat Dirichlet, heaviest first (the main theme).
    n_comp = rng.choice(3, n, p=THEMES_PER_PLAYLIST_P) + 1
    w = rng.gamma(1.0, size=(n, 3)) * (np.arange(3) < n_comp[:, None])
    cum_w = np.cumsum(-np.sort(-w / w.sum(1, keepdims=True), axis=1), axis=1)
    order = np.argsort(-w, axis=1, kind="stable")
    segs[:, :3], lo[:, :3], hi[:, :3], full[:, :3] = (np.take_along_axis(x[:, :3], order, 1)
                                                      for x in (segs, lo, hi, full))
    # Question playlists need >= 2 songs and tags, so that both halves of a shown-in-part list are nonempty.
    low = np.where(np.arange(n) < preset.n_train, 1, 2)
    n_songs = _lengths(rng, n, SONGS_MEDIAN, SONGS_SIGMA, LONGEST_SONGS, low)
    n_tags = _lengths(rng, n, TAGS_MEDIAN, TAGS_SIGMA, LONGEST_TAGS, low)

    def pick_column(rows, p_global):  # a theme column by the playlist's weights, or the global column 3
        c = np.minimum((rng.random(len(rows))[:, None] > cum_w[rows]).sum(1), 2)
        return np.where(rng.random(len(rows)) < p_global, 3, c)

    def draw_song(rows):
        c = pick_column(rows, P_GLOBAL_SONG)
        late = rng.random(len(rows)) < P_LATE_SONG
        return songs.by_theme.draw(rng, lo[rows, c], np.where(late, full[rows, c], hi[rows, c]))

    def draw_tag(rows):
        seg = segs[rows, pick_column(rows, P_GLOBAL_TAG)]
        return themes.tags.draw(rng, themes.tags.bounds[seg], themes.tags.bounds[seg + 1])

    song_off, song_flat = _draw_unique(n_songs, draw_song, preset.n_songs)
    tag_off, tag_flat = _draw_unique(n_tags, draw_tag, len(tag_pool))
    song_flat = song_flat.tolist()
    tag_names = np.array(tag_pool, dtype=object)[tag_flat].tolist()

    ids = rng.permutation(n).tolist()
    like = np.clip(np.exp(rng.normal(2.0, 2.2, n)) - 1, 0, 50_000).astype(np.int64).tolist()
    updt_str = [s.replace("T", " ") + ".000" for s in np.datetime_as_string(updt, unit="s").tolist()]
    title_u = rng.random((n, 14))
    main = segs[:, 0].tolist()
    song_off, tag_off = song_off.tolist(), tag_off.tolist()
    playlists = []
    for i in range(n):
        tags = tag_names[tag_off[i] : tag_off[i + 1]]
        playlists.append({
            "tags": tags,
            "id": ids[i],
            "plylst_title": _title(title_u[i], themes.words[main[i]], tags),
            "songs": song_flat[song_off[i] : song_off[i + 1]],
            "like_cnt": like[i],
            "updt_date": updt_str[i],
        })
    return playlists


def _split_half(rng, items: list) -> tuple[list, list]:
    """Show floor(L/2) items chosen at random and hide the rest, both in the original order."""
    shown = np.zeros(len(items), bool)
    shown[rng.permutation(len(items))[: len(items) // 2]] = True
    return [x for x, s in zip(items, shown) if s], [x for x, s in zip(items, shown) if not s]


def _questions(rng, playlists: list[dict]) -> tuple[list[dict], list[dict]]:
    """Question and answer files with the exact QUESTION_MIX (shares rounded, in random order)."""
    n = len(playlists)
    counts = [round(share * n) for _, share, *_ in QUESTION_MIX[:-1]]
    kinds = rng.permutation(np.repeat(np.arange(len(QUESTION_MIX)), counts + [n - sum(counts)]))
    questions, answers = [], []
    for p, kind in zip(playlists, kinds.tolist()):
        _, _, songs_shown, tags_shown, title_shown = QUESTION_MIX[kind]
        q_songs, a_songs = _split_half(rng, p["songs"]) if songs_shown else ([], p["songs"][:ANSWER_CAP_SONGS])
        q_tags, a_tags = _split_half(rng, p["tags"]) if tags_shown else ([], p["tags"][:ANSWER_CAP_TAGS])
        common = {"like_cnt": p["like_cnt"], "updt_date": p["updt_date"]}
        questions.append({"tags": q_tags, "id": p["id"], "plylst_title": p["plylst_title"] if title_shown else "",
                          "songs": q_songs, **common})
        answers.append({"tags": a_tags, "id": p["id"], "plylst_title": p["plylst_title"], "songs": a_songs, **common})
    return questions, answers


# ----------------------------------------------------------------------------------------------------------------
# Entry points


def generate(preset: str = "demo", seed: int = 0) -> dict[str, object]:
    """Build the whole dataset in memory: {relative file name: JSON-ready Python object}."""
    return _generate(preset, seed)[0]


def generate_mpd(preset: str = "demo", seed: int = 0) -> Iterator[tuple[str, object]]:
    """The same sample in the Million Playlist Dataset's shape (data_loader/mpd_sample.py): the train playlists
    as slice files, the whole val playlists as the challenge set; (file name, JSON-ready object), one at a time."""
    data, val_playlists = _generate(preset, seed)
    yield from to_mpd(data["train.json"], val_playlists, data["song_meta.json"], seed)


def _generate(preset: str, seed: int) -> tuple[dict[str, object], list[dict]]:
    """(generate's files, the whole val playlists before they were made questions)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    cfg = PRESETS[preset]
    rng = np.random.default_rng(seed)
    # Millions of small acyclic lists and dicts would trigger many full garbage collections that free
    # nothing (a large share of the run time at the full preset).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        genre_table, genre_details = _genre_table(rng)
        tag_pool = _tag_pool(rng, cfg.n_tag_pool)
        themes = _themes(rng, cfg, genre_details, tag_pool)
        songs = _songs(rng, cfg, themes)
        playlists = _playlists(rng, cfg, themes, songs, tag_pool)
        n_tv = cfg.n_train + cfg.n_val
        val_q, val_a = _questions(rng, playlists[cfg.n_train : n_tv])
        test_q, test_a = _questions(rng, playlists[n_tv:])
    finally:
        if gc_was_enabled:
            gc.enable()
    return {
        "train.json": playlists[: cfg.n_train],
        "val.json": val_q,
        "test.json": test_q,
        "song_meta.json": songs.meta,
        "genre_gn_all.json": genre_table,
        "sample_answers/val.json": val_a,
        "sample_answers/test.json": test_a,
    }, playlists[cfg.n_train : n_tv]


MARKER = ".made_by_make_sample_dataset.json"  # in out_dir: what step 0 wrote there, with each file's sha256


def not_ours(out_dir: str, names: list[str]) -> list[str]:
    """Those of `names` that exist in out_dir but that step 0 did not write, or that changed since (their sha256
    is not one the marker lists): a user's data, which step 0 must not replace without --force."""
    return unvouched(Path(out_dir), names, MARKER)


def write(out_dir: str, data: Mapping[str, object] | Iterable[tuple[str, object]], marker: dict | None = None) -> None:
    """Write every file of `data` ({name: object}, or (name, object) pairs made one at a time) under out_dir
    atomically (temp file in the same folder, then os.replace).

    With `marker` ({"preset", "seed", ...}), also keep out_dir/MARKER listing the sha256 of each file written, so
    that a later run knows these files are its own (data_loader/owned_files.py: while a file is being replaced the
    marker lists both its old and new hash, so a run killed at any point leaves files it still vouches for).
    """
    for name, obj in data.items() if isinstance(data, Mapping) else data:
        path = os.path.join(out_dir, name)
        # dumps uses the C encoder (json.dump would use the slow Python one); generated data has no cycles
        text = json.dumps(obj, ensure_ascii=False, check_circular=False).encode("utf-8")
        if marker is not None:
            with owned_write(path, root=out_dir, marker=MARKER, header=marker) as f:
                f.write(text)
            continue
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())


def playlist_stats(playlists: list[dict]) -> dict[str, float]:
    """Length and vocabulary statistics of a playlist file (printed by main, checked by the tests)."""
    n_songs = np.array([len(p["songs"]) for p in playlists])
    n_tags = np.array([len(p["tags"]) for p in playlists])
    stats = {}
    for name, x in (("songs", n_songs), ("tags", n_tags)):
        stats.update({f"{name}_mean": x.mean(), f"{name}_median": np.median(x), f"{name}_p90": np.percentile(x, 90),
                      f"{name}_max": x.max(), f"{name}_min": x.min()})
    stats["title_len_mean"] = np.mean([len(p["plylst_title"]) for p in playlists])
    stats["distinct_tags"] = len({t for p in playlists for t in p["tags"]})
    stats["distinct_songs"] = len({s for p in playlists for s in p["songs"]})
    return {k: float(v) for k, v in stats.items()}


FORMATS = ("melon", "mpd")


def main(out_dir: str = "dataset", preset: str = "demo", seed: int = 0, force: bool = False,
         format: str = "melon") -> None:
    """Generate the sample dataset and write it into out_dir.

    Args:
        out_dir: folder for train/val/test/song_meta/genre_gn_all.json and sample_answers/.
        preset: "demo" (small, for trying the pipeline), "full" (the real competition's sizes) or "tiny" (tests).
        seed: random seed; the same seed gives byte-identical files.
        force: replace files of those names that this script did not write (or that were edited since); without
            it such files (real data?) make the run stop before any work. Its own files are always replaced.
        format: "melon" (the Kakao Arena files above) or "mpd" (the same sample as Million Playlist Dataset slice
            files, challenge_set.json and sample_answers/challenge_set.json: data_loader/mpd_sample.py).
    """
    if preset not in PRESETS:
        raise UsageError(f"--preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    if format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    check_output_dir("out_dir", out_dir)
    names = list(OUTPUT_FILES) if format == "melon" else mpd_file_names(PRESETS[preset].n_train)
    foreign = [] if force else not_ours(out_dir, names)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise UsageError(f"--out_dir={out_dir} already holds {shown}, not written by this script or "
                         f"changed since (real data?); nothing was written: choose another --out_dir, or add "
                         f"--force to replace them")
    for folder in {os.path.join(out_dir, os.path.dirname(name)) for name in names}:
        for path in remove_stale_temps(folder):
            print(f"removed {path}, left by a killed run")
    marker = {"written_by": "data_loader/make_sample_dataset.py", "preset": preset, "seed": seed}
    if format == "mpd":
        t0 = time.time()
        write(out_dir, generate_mpd(preset, seed), marker=marker | {"format": "mpd"})
        size = sum(os.path.getsize(os.path.join(out_dir, name)) for name in names) / 2**20
        print(f"preset {preset}, seed {seed}: {len(names) - 2} slice file(s), challenge_set.json and "
              f"sample_answers/challenge_set.json ({size:.1f} MiB) in {time.time() - t0:.1f}s to {out_dir}/")
        return
    t0 = time.time()
    data = generate(preset, seed)
    t1 = time.time()
    write(out_dir, data, marker=marker)
    t2 = time.time()
    print(f"preset {preset}, seed {seed}: generated in {t1 - t0:.1f}s, written in {t2 - t1:.1f}s to {out_dir}/")
    for name, obj in data.items():
        size = os.path.getsize(os.path.join(out_dir, name)) / 2**20
        print(f"  {name:<26} {len(obj):>9,} records {size:>8.1f} MiB")
    s = playlist_stats(data["train.json"])
    for name in ("songs", "tags"):
        print(f"  train {name}/playlist: mean {s[name + '_mean']:.1f} median {s[name + '_median']:.0f} "
              f"p90 {s[name + '_p90']:.0f} max {s[name + '_max']:.0f} min {s[name + '_min']:.0f}")
    print(f"  train title length mean {s['title_len_mean']:.1f}; {s['distinct_tags']:,.0f} distinct tags, "
          f"{s['distinct_songs']:,.0f} distinct songs")


if __name__ == "__main__":
    run_cli(main)
