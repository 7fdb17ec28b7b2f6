"""Titles and encoding (data_loader/title.py, data_loader/encode.py) against references written from docs/original.md 1.3-1.5.

Covers: normalise_title against a character-by-character reference (tests/_references.py) and hand-written cases
(lowercase; '&', digits, Hangul syllables and ASCII letters kept; jamo, emoji, symbols and other scripts removed,
each run as one space; inner runs of spaces kept; stripped); the SentencePiece model's settings seen from outside:
a BPE model (piece scores are the merge order 0, -1, -2, ...), character coverage 0.9995 (which rare characters
become <unk>, predicted from SentencePiece's coverage rule), the user-defined symbols at ids 3..7, no BOS/EOS; the
small-corpus fallback (the largest size SentencePiece accepts, and the warning saying so); encode_playlists and
artists_csr record by record against plain dictionaries built from the raw records and song_meta.
Run: python -m pytest tests/test_titles_encoding.py -q
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from _fixtures import make_playlists, make_song_meta
from _references import normalise_title as reference_normalise

from data_loader.build_vocab import build_vocab
from data_loader.encode import artists_csr, encode_playlists
from data_loader.playlists import CSR
from data_loader.title import load_sentencepiece, normalise_title, train_sentencepiece

WORDS = ["신나는", "드라이브", "감성", "힙합", "발라드", "새벽", "카페", "coffee", "chill", "summer", "night", "운동",
         "노래", "모음"]
RARE = ["뷁", "똠", "쀍", "욝", "퀋", "뚫", "휅"]  # in the corpus 1, 2, 4, ..., 64 times


# ----------------------------------------------------------------------------------------------------------------
# normalise_title


@pytest.mark.parametrize("title, expected", [
    ("비 오는 날 ♥ Best&Hits 2020!!", "비 오는 날   best&hits 2020"),
    ("ㅋㅋㅋ 신나는🎧노래", "신나는 노래"),
    ("R&B / Soul", "r&b   soul"),
    ("  Hello   World  ", "hello   world"),
    ("Café ÀÉ", "caf"),
    ("🎵🎶✨", ""),
    ("ＦＵＬＬ　ｗｉｄｔｈ１２", ""),
    ("가힣\t각~~~힝", "가힣 각 힝"),
    ("ABC-xyz_09", "abc xyz 09"),
])
def test_normalise_title_by_hand(title, expected):
    assert normalise_title(title) == expected == reference_normalise(title)


def test_normalise_title_matches_the_reference_on_random_titles():
    alphabet = list("가나다힣각 abcXYZ019&") + ["ㅋ", "ㅏ", "♥", "🎧", "!", "-", "_", "é", "Ａ", "\t", "  ", "ㄱ", "ᄀ", "一"]
    rng = np.random.default_rng(0)
    for _ in range(500):
        title = "".join(rng.choice(alphabet, int(rng.integers(0, 25))).tolist())
        assert normalise_title(title) == reference_normalise(title), repr(title)


# ----------------------------------------------------------------------------------------------------------------
# SentencePiece


def corpus() -> list[str]:
    rng = np.random.default_rng(0)
    titles = [" ".join(rng.choice(WORDS, 3).tolist()) for _ in range(3000)]
    return titles + [ch for k, ch in enumerate(RARE) for _ in range(2**k)]


def covered_characters(lines: list[str], coverage: float) -> set[str]:
    """SentencePiece's rule: characters by descending count (spaces and the dummy prefix as '▁'), each added while
    the share covered so far is below `coverage`."""
    counts = Counter("▁".join(["", *lines]).replace(" ", "▁"))
    total, covered, kept = sum(counts.values()), 0, set()
    for ch, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        if covered / total >= coverage:
            break
        covered += n
        kept.add(ch)
    return kept


@pytest.fixture(scope="module")
def bpe(tmp_path_factory) -> tuple[Path, int, str | None]:
    return train_sentencepiece(corpus(), tmp_path_factory.mktemp("sp"))


def test_sentencepiece_is_bpe_with_the_original_settings(bpe):
    path, size, warning = bpe
    sp = load_sentencepiece(path)
    assert len(sp) == size and warning is not None  # 3000 short titles cannot hold 6000 pieces
    assert [sp.id_to_piece(i) for i in range(8)] == ["<unk>", "<s>", "</s>", "@songs_cls", "@tags_cls", "@sep",
                                                     "@mask", "@pad"]
    # BPE scores its pieces by merge order 0, -1, -2, ... (a unigram model scores them by log probability)
    scores = [sp.get_score(i) for i in range(8, len(sp))]
    assert scores == [-float(k) for k in range(len(scores))]
    ids = sp.encode(normalise_title("신나는 드라이브"))
    assert ids and sp.bos_id() not in ids and sp.eos_id() not in ids and sp.decode(ids) == "신나는 드라이브"


def test_sentencepiece_model_file_is_the_same_on_every_run(bpe, tmp_path):
    """Checkpoints pin the model file's hash: step 1 re-run on the same titles (into another folder, another temp
    folder) must write the same bytes, or every title-model checkpoint is refused after it."""
    again, _, _ = train_sentencepiece(corpus(), tmp_path / "again")
    assert again.read_bytes() == bpe[0].read_bytes()


def test_sentencepiece_character_coverage_is_0_9995(bpe):
    """The rare syllables below 0.05 % of the characters (after the most frequent ones) become <unk>."""
    sp = load_sentencepiece(bpe[0])
    known = [sp.unk_id() not in sp.encode(ch) for ch in RARE]
    kept = covered_characters(corpus(), 0.9995)
    assert known == [ch in kept for ch in RARE] == [False] * 4 + [True] * 3
    for other in (0.999, 0.9998, 1.0):  # the corpus tells these coverages apart
        assert [ch in covered_characters(corpus(), other) for ch in RARE] != known


def test_small_corpus_falls_back_to_the_largest_size_sentencepiece_accepts(bpe, tmp_path):
    _, size, warning = bpe
    assert size < 6000
    assert warning == f"SentencePiece: the title corpus supports at most {size} pieces, not 6000; trained with {size}"
    # one more piece is refused (the fallback again), exactly that many is accepted
    path, again, warning = train_sentencepiece(corpus(), tmp_path / "plus1", vocab_size=size + 1)
    assert again == size and warning is not None and f"not {size + 1}" in warning
    path, again, warning = train_sentencepiece(corpus(), tmp_path / "exact", vocab_size=size)
    assert (again, warning, len(load_sentencepiece(path))) == (size, None, size)
    assert {p.name for p in (tmp_path / "exact").iterdir()} == {"plylst_titles.txt", "plylst_title_bpe.model",
                                                               "plylst_title_bpe.vocab"}


# ----------------------------------------------------------------------------------------------------------------
# encoding


@pytest.fixture(scope="module")
def encoded(bpe) -> tuple:
    train = make_playlists(300, seed=7, n_songs=300)
    meta = make_song_meta(300, seed=7)
    song_artists = {r["id"]: r["artist_id_basket"] for r in meta}
    vocab, _ = build_vocab(train, song_artists)
    sp = load_sentencepiece(bpe[0])
    questions = make_playlists(60, seed=8, n_songs=400, first_id=9000)  # songs 300..399 are out of vocabulary
    questions[0]["songs"] += questions[0]["songs"][:3]  # repeated songs
    questions[1]["tags"] += ["없는 태그"]
    return vocab, sp, song_artists, questions, encode_playlists(questions, vocab, sp)


def test_encode_playlists_record_by_record(encoded):
    vocab, sp, song_artists, questions, got = encoded
    S, T = vocab.n_songs, vocab.n_tags
    song_label = {raw: i for i, raw in enumerate(vocab.songs)}
    tag_label = {t: S + i for i, t in enumerate(vocab.tags)}
    artist_label = {a: S + T + i for i, a in enumerate(vocab.artists)}
    assert 0 < S < 300 and vocab.n_artists > 0
    assert got.ids.tolist() == [r["id"] for r in questions]
    for i, r in enumerate(questions):
        songs = [song_label[s] for s in r["songs"] if s in song_label]  # in the record's order, repeats kept
        assert got.songs.row(i).tolist() == songs, i
        assert got.tags.row(i).tolist() == [tag_label[t] for t in r["tags"] if t in tag_label], i
        artists = {artist_label[a] for s in r["songs"] if s in song_label for a in song_artists[s] if a in artist_label}
        assert got.artists.row(i).tolist() == sorted(artists), i
        assert got.title.row(i).tolist() == sp.encode(reference_normalise(r["plylst_title"])), i
        assert got.updt[i] == int(r["updt_date"][:10].replace("-", "")), i
    assert got.title.lengths()[3] == 0  # the fixture's empty title
    assert 0 in got.songs.values  # the most popular song (label 0) is kept


def test_artists_csr_against_song_meta(encoded):
    vocab, _, song_artists, _, _ = encoded
    S, T = vocab.n_songs, vocab.n_tags
    artist_label = {a: S + T + i for i, a in enumerate(vocab.artists)}
    rng = np.random.default_rng(1)
    rows = [rng.choice(S, int(rng.integers(0, 12))).tolist() for _ in range(50)] + [[0, 0, 1], []]
    got = artists_csr(CSR.from_lists(rows), vocab)
    for i, row in enumerate(rows):
        want = sorted({artist_label[a] for s in row for a in song_artists[vocab.songs[s]] if a in artist_label})
        assert got.row(i).tolist() == want, i
    assert any(len(song_artists[vocab.songs[s]]) > 1 for row in rows for s in row)  # multi-artist songs occur
