"""Tests for data_loader/make_sample_dataset.py, the synthetic Melon-shaped dataset (step 0).

Covers: the official schema and types of every file; playlist ids; the competition's question mix and how
questions and sample answers fit together; determinism (same seed, same bytes; other seed, other data); atomic
UTF-8 writing and the CLI; the real-data shape of the demo preset (lengths, titles, dates, popularity); and that
the planted structure is learnable (playlist-kNN beats most-popular on the sample answers, for songs and tags,
from songs and from titles). Everything is generated in-process or in tmp_path, in a few seconds.
Run: python -m pytest tests/test_make_sample_dataset.py -q
"""

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from data_loader.make_sample_dataset import PRESETS, QUESTION_MIX, generate, main, playlist_stats, write

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "data_loader" / "make_sample_dataset.py"
FILES = ["train.json", "val.json", "test.json", "song_meta.json", "genre_gn_all.json",
         "sample_answers/val.json", "sample_answers/test.json"]
PLAYLIST_KEYS = ["tags", "id", "plylst_title", "songs", "like_cnt", "updt_date"]
SONG_KEYS = ["song_gn_dtl_gnr_basket", "issue_date", "album_name", "album_id", "artist_id_basket", "song_name",
             "song_gn_gnr_basket", "artist_name_basket", "id"]
UPDT_RE = re.compile(r"^(20(0[5-9]|1\d|20))-(0[1-9]|1[0-2])-([0-2]\d|3[01]) ([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.000$")


@pytest.fixture(scope="module")
def tiny():
    return generate("tiny", seed=0)


@pytest.fixture(scope="module")
def demo():
    return generate("demo", seed=0)


def question_kind(q):
    """The QUESTION_MIX name a question shows (its shown lists are never empty: questions have >= 2 of each)."""
    return {(True, False, False): "songs only", (True, True, False): "songs+tags",
            (False, False, True): "title only", (False, True, True): "title+tags"}[
        (bool(q["songs"]), bool(q["tags"]), bool(q["plylst_title"]))]


# ----------------------------------------------------------------------------------------------------------------
# Schema and ids


def test_files_and_playlist_schema(tiny):
    assert list(tiny) == FILES
    n_songs = len(tiny["song_meta.json"])
    for name in ("train.json", "val.json", "test.json", "sample_answers/val.json", "sample_answers/test.json"):
        for p in tiny[name]:
            assert list(p) == PLAYLIST_KEYS, name
            assert all(type(t) is str and t for t in p["tags"]) and len(set(p["tags"])) == len(p["tags"])
            assert all(type(s) is int and 0 <= s < n_songs for s in p["songs"])
            assert len(set(p["songs"])) == len(p["songs"])
            assert type(p["id"]) is int and type(p["plylst_title"]) is str
            assert type(p["like_cnt"]) is int and p["like_cnt"] >= 0
            assert UPDT_RE.match(p["updt_date"]), p["updt_date"]
    for p in tiny["train.json"]:
        assert 1 <= len(p["songs"]) <= 200 and 1 <= len(p["tags"]) <= 10 and p["plylst_title"].strip()


def test_song_meta_and_genre_schema(tiny):
    genres = tiny["genre_gn_all.json"]
    assert len(genres) == 254 and all(type(v) is str and v for v in genres.values())
    majors = [c for c in genres if c.endswith("00")]
    assert majors == [f"GN{g:02d}00" for g in range(1, 31)]
    for code in genres:  # details of a major are numbered 01, 02, ... right after it
        assert re.fullmatch(r"GN\d{4}", code)
        if not code.endswith("00"):
            assert f"{code[:4]}{int(code[4:]) - 1:02d}" in genres
    meta = tiny["song_meta.json"]
    assert len(meta) == PRESETS["tiny"].n_songs
    for i, r in enumerate(meta):
        assert list(r) == SONG_KEYS and r["id"] == i
        assert type(r["issue_date"]) is str and re.fullmatch(r"\d{8}", r["issue_date"])
        assert type(r["album_id"]) is int and type(r["album_name"]) is str and r["song_name"]
        assert 1 <= len(r["artist_id_basket"]) <= 3 and len(r["artist_id_basket"]) == len(r["artist_name_basket"])
        assert all(type(a) is int for a in r["artist_id_basket"])
        assert all(type(a) is str and a for a in r["artist_name_basket"])
        assert all(type(g) is str for g in r["song_gn_gnr_basket"] + r["song_gn_dtl_gnr_basket"])
        assert r["song_gn_gnr_basket"] and set(r["song_gn_gnr_basket"]) <= set(majors)
        assert all(d in genres and d[:4] + "00" in r["song_gn_gnr_basket"] for d in r["song_gn_dtl_gnr_basket"])


def test_playlist_ids_are_one_permutation(tiny):
    ids = [p["id"] for name in ("train.json", "val.json", "test.json") for p in tiny[name]]
    assert sorted(ids) == list(range(len(ids)))
    cfg = PRESETS["tiny"]
    assert [len(tiny[f]) for f in ("train.json", "val.json", "test.json")] == [cfg.n_train, cfg.n_val, cfg.n_test]
    for split in ("val", "test"):
        assert [q["id"] for q in tiny[f"{split}.json"]] == [a["id"] for a in tiny[f"sample_answers/{split}.json"]]


# ----------------------------------------------------------------------------------------------------------------
# Questions and answers


@pytest.mark.parametrize("split", ["val", "test"])
def test_question_mix(demo, split):
    questions = demo[f"{split}.json"]
    counts = Counter(question_kind(q) for q in questions)
    for name, share, *_ in QUESTION_MIX:
        assert abs(counts[name] / len(questions) - share) < 0.002, name


@pytest.mark.parametrize("split", ["val", "test"])
def test_questions_and_answers_make_a_playlist(tiny, split):
    show = {name: (songs, tags, title) for name, _, songs, tags, title in QUESTION_MIX}
    for q, a in zip(tiny[f"{split}.json"], tiny[f"sample_answers/{split}.json"]):
        songs_shown, tags_shown, title_shown = show[question_kind(q)]
        assert (q["id"], q["like_cnt"], q["updt_date"]) == (a["id"], a["like_cnt"], a["updt_date"])
        assert a["plylst_title"] and q["plylst_title"] == (a["plylst_title"] if title_shown else "")
        for key, shown, cap in (("songs", songs_shown, 100), ("tags", tags_shown, 10)):
            assert a[key], (key, a)  # every question has something to find
            assert not set(q[key]) & set(a[key])
            if shown:  # floor(L/2) shown, the rest hidden
                assert len(a[key]) - len(q[key]) in (0, 1)
            else:
                assert q[key] == [] and len(a[key]) <= cap


# ----------------------------------------------------------------------------------------------------------------
# Files, determinism, CLI


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        write(str(tmp_path / name), generate("tiny", seed))
    for f in FILES:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    for f in ("train.json", "val.json", "song_meta.json", "sample_answers/test.json"):
        assert (tmp_path / "a" / f).read_bytes() != (tmp_path / "c" / f).read_bytes(), f


def test_write_is_utf8_and_atomic(tmp_path, tiny):
    write(str(tmp_path), tiny)
    text = (tmp_path / "train.json").read_text(encoding="utf-8")
    assert "\\u" not in text and re.search("[가-힣]", text)  # ensure_ascii=False
    assert json.loads(text) == tiny["train.json"]
    before = (tmp_path / "val.json").read_bytes()
    with pytest.raises(TypeError):
        write(str(tmp_path), {"val.json": [object()]})
    assert (tmp_path / "val.json").read_bytes() == before  # the old file survives a failed write
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(Path(f).name for f in FILES)
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "train.json").stat().st_mode & 0o777 == 0o666 & ~umask  # not a private temp file's 0600


def test_main_and_cli(tmp_path, capsys):
    main(out_dir=str(tmp_path / "fn"), preset="tiny", seed=3)
    assert "distinct tags" in capsys.readouterr().out
    run = subprocess.run([sys.executable, str(SCRIPT), f"--out_dir={tmp_path / 'cli'}", "--preset=tiny",
                          "--seed=3"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    for f in FILES:
        assert (tmp_path / "cli" / f).read_bytes() == (tmp_path / "fn" / f).read_bytes()
    with pytest.raises(ValueError, match="unknown preset"):
        generate("huge")


# ----------------------------------------------------------------------------------------------------------------
# Real-data shape (demo preset)


def test_demo_sizes_and_lengths(demo):
    cfg = PRESETS["demo"]
    assert len(demo["train.json"]) == cfg.n_train and len(demo["song_meta.json"]) == cfg.n_songs
    s = playlist_stats(demo["train.json"])
    assert 40 <= s["songs_mean"] <= 52 and 27 <= s["songs_median"] <= 33 and 90 <= s["songs_p90"] <= 115
    # bounds, not sample values: another seed moves the extremes and the tag median (3.45 drawn, 3 or 4 rounded)
    assert 150 <= s["songs_max"] <= 200 and s["songs_min"] >= 1
    assert 3.7 <= s["tags_mean"] <= 4.7 and s["tags_median"] in (3, 4) and s["tags_min"] >= 1
    assert 8 <= s["tags_max"] <= 10
    assert 15 <= s["title_len_mean"] <= 21
    assert 2_000 <= s["distinct_tags"] <= 4_500
    assert s["distinct_songs"] < 0.97 * cfg.n_songs  # some songs are never used


def test_demo_titles_dates_likes(demo):
    train = demo["train.json"]
    titles = [p["plylst_title"] for p in train]
    assert sum(bool(re.search("[가-힣]", t)) for t in titles) > 0.8 * len(titles)
    assert sum(bool(re.search("[A-Za-z]", t)) for t in titles) > 0.2 * len(titles)
    symbolic = sum(bool(re.search(r"[^\w\s.]", t)) for t in titles) / len(titles)  # emoji, ♥, !!, ...
    assert 0.03 < symbolic < 0.3
    years = Counter(int(p["updt_date"][:4]) for p in train)
    assert min(years) >= 2005 and max(years) == 2020 and years[2019] > 3 * years[2011] > 0
    likes = np.array([p["like_cnt"] for p in train])
    assert likes.min() == 0 and likes.mean() > 3 * np.median(likes) and likes.max() > 100 * np.median(likes)

    issue = [r["issue_date"] for r in demo["song_meta.json"]]
    assert 0 < issue.count("00000000") < 0.02 * len(issue)
    assert 0 < sum(d.endswith("00") and d != "00000000" for d in issue) < 0.05 * len(issue)
    issue_int = [int(d) for d in issue]
    pairs = [(issue_int[s], int(p["updt_date"][:10].replace("-", ""))) for p in train for s in p["songs"]]
    late = sum(i > u for i, u in pairs) / len(pairs)
    assert 0 < late < 0.01  # songs issued after the playlist's update exist, rarely


def test_demo_popularity_and_artists(demo):
    counts = np.sort(np.bincount([s for p in demo["train.json"] for s in p["songs"]]))[::-1]
    assert counts[: len(counts) // 100].sum() > 0.08 * counts.sum()  # top 1% of songs: > 8% of occurrences
    first_major = {}
    for r in demo["song_meta.json"]:  # an artist's songs share the theme's first major genre
        first_major.setdefault(r["artist_id_basket"][0], set()).add(r["song_gn_gnr_basket"][0])
    assert all(len(g) == 1 for g in first_major.values())


# ----------------------------------------------------------------------------------------------------------------
# Planted structure is learnable


def _binary(rows, index):
    """CSR 0/1 matrix of the given item lists, columns from `index` (unknown items dropped)."""
    r = [i for i, items in enumerate(rows) for x in items if x in index]
    c = [index[x] for items in rows for x in items if x in index]
    return sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(rows), len(index)))


def _recall(scores, seen, answers, index, k):
    """Mean recall@k of the answer items, ranking by score with the question's own items excluded."""
    scores = np.array(scores.toarray() if sp.issparse(scores) else scores, dtype=np.float32)
    for row, items in zip(scores, seen):
        row[[index[x] for x in items if x in index]] = -np.inf
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    return float(np.mean([len(set(t.tolist()) & {index.get(x) for x in a}) / len(a) for t, a in zip(top, answers)]))


def _knn_scores(query, train, targets, k=30):
    """Playlist-kNN: sum the targets of the k train playlists most similar to each query (dot product)."""
    sim = (query @ train.T).toarray()
    sim[sim < np.partition(sim, -k, axis=1)[:, -k:-k + 1]] = 0
    return sp.csr_matrix(sim) @ targets


def test_planted_structure_beats_most_popular(demo):
    train = demo["train.json"]
    song_index = {s: i for i, s in enumerate(sorted({s for p in train for s in p["songs"]}))}
    tag_index = {t: i for i, t in enumerate(sorted({t for p in train for t in p["tags"]}))}
    x_songs = _binary([p["songs"] for p in train], song_index)
    x_tags = _binary([p["tags"] for p in train], tag_index)
    pairs = list(zip(demo["val.json"], demo["sample_answers/val.json"]))[:500]  # enough, and quick

    # From songs (songs-only and songs+tags questions), predict the hidden songs and tags.
    q, a = zip(*[(q, a) for q, a in pairs if q["songs"]])
    q_songs = _binary([x["songs"] for x in q], song_index)
    for target, index, key, k in ((x_songs, song_index, "songs", 100), (x_tags, tag_index, "tags", 10)):
        seen, truth = [x[key] for x in q], [x[key] for x in a]
        knn = _recall(_knn_scores(q_songs, x_songs, target), seen, truth, index, k)
        pop = _recall(np.tile(target.sum(0).A1, (len(q), 1)), seen, truth, index, k)
        assert knn > 2 * pop and knn > 0.25, (key, knn, pop)

    # From titles (title-only and title+tags questions), predict the songs by shared title words.
    words = {w: i for i, w in enumerate(sorted({w for p in train for w in p["plylst_title"].split()}))}
    x_words = _binary([p["plylst_title"].split() for p in train], words)
    q, a = zip(*[(q, a) for q, a in pairs if q["plylst_title"]])
    q_words = _binary([x["plylst_title"].split() for x in q], words)
    seen, truth = [[]] * len(q), [x["songs"] for x in a]
    knn = _recall(_knn_scores(q_words, x_words, x_songs), seen, truth, song_index, 100)
    pop = _recall(np.tile(x_songs.sum(0).A1, (len(q), 1)), seen, truth, song_index, 100)
    assert knn > 2 * pop and knn > 0.2, (knn, pop)
