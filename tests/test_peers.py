"""Tests for the competition's peers as baselines: item-neighbour CF (baselines/item_cf.py), implicit's ALS and BM25
item-kNN (baselines/implicit_als.py, baselines/implicit_bm25.py) and their shared item columns (baselines/items.py).

Covers: item_cf's similarities and scores against a hand computation of Zhu et al.'s formulas on a toy matrix,
and the way each of alpha / beta / theta moves them; title keywords (substrings of the normalised title) making a
title-only question answerable; the Ranked invariants of every new ranker (seen items absent, future songs absent,
scores non-increasing, padding at the end) and the same results for any batch size; valid results files including
empty and unknown-id questions; the peers beating most popular on planted themes; the SVM reweighting running
deterministically; our use of implicit matching its own recommend(); the rankers' registry and the leaderboard's
method list; each CLI exiting 2 on a bad flag and 1 on a missing split.
Run: python -m pytest tests/test_peers.py -q
"""
from __future__ import annotations

import json
import subprocess
import sys
from itertools import product

import numpy as np
import pytest

import scipy.sparse as sp

from baselines import implicit_als, implicit_bm25, item_cf, most_popular, playlist_knn
from baselines.common import Ranked, drop_own_rows, fed_corpus, own_rows
from baselines.item_cf import ItemCF
from baselines.items import Items
from baselines.rankers import RANKERS
from common.metric import evaluate_from_data
from reports import leaderboard
from test_baselines import DATE, planted, write_dataset

implicit = pytest.importorskip("implicit")

# --- item_cf against a hand computation -------------------------------------------------------------------------

# six training playlists; the tag "rock" occurs 5 times, so it is a title keyword ("kw:rock") wherever a normalised
# title contains "rock"; "pop" occurs twice and never becomes one
TOY = [
    {"songs": [1, 2, 3], "tags": ["rock"], "plylst_title": "Rock hits"},
    {"songs": [1, 2], "tags": ["rock", "pop"], "plylst_title": "my ROCKS"},
    {"songs": [2, 4, 5, 6], "tags": ["rock"], "plylst_title": "mix"},
    {"songs": [1, 4], "tags": ["rock"], "plylst_title": ""},
    {"songs": [3, 4, 5], "tags": ["rock", "pop"], "plylst_title": "pop"},
    {"songs": [5, 6, 7], "tags": [], "plylst_title": "indie rock!"},
]
TOY = [{"id": i, "updt_date": DATE, **p} for i, p in enumerate(TOY)]
TOY_QUESTIONS = [{"id": 100, "songs": [1, 4], "tags": [], "plylst_title": "", "updt_date": DATE},
                 {"id": 101, "songs": [5], "tags": ["pop"], "plylst_title": "Rock & roll", "updt_date": DATE},
                 {"id": 102, "songs": [], "tags": [], "plylst_title": "ROCK", "updt_date": DATE}]


def toy_items(p: dict) -> set[str]:
    """A playlist's items as strings, written out independently of baselines/items.py."""
    items = {f"s:{s}" for s in p["songs"]} | {f"t:{t}" for t in p["tags"]}
    return items | ({"kw:rock"} if "rock" in p["plylst_title"].lower() else set())


def reference_scores(q: dict, alpha: float, beta: float, theta: float, corpus: list[dict] = TOY) -> dict[str, float]:
    """r_uj = 1/|T(u)| sum_{i in T(u)} sum_v [i, j in T(v)] (|T(u) & T(v)| / |T(v)|^(1-beta))^theta
    / (|P(i)|^alpha |P(j)|^(1-alpha)), popularities and lengths + 0.1, by plain loops over the toy playlists; the
    question's own row (same id) in the corpus counts in the popularities but is never a neighbour v."""
    train = [toy_items(p) for p in corpus]
    tu = toy_items(q)
    pop = {j: sum(j in t for t in train) + 0.1 for t in train for j in t}
    scores: dict[str, float] = {}
    for j in pop:
        total = 0.0
        for i in tu:
            for p, t in zip(corpus, train):
                if i in t and j in t and p["id"] != q["id"]:
                    w = (len(tu & t) / (len(t) + 0.1) ** (1 - beta)) ** theta
                    total += w / (pop[i] ** alpha * pop[j] ** (1 - alpha))
        if total:
            scores[j] = total / len(tu)
    return scores


def column_names(items: Items) -> list[str]:
    return ([f"s:{s}" for s in items.song_ids] + [f"t:{t}" for t in items.tags]
            + [f"kw:{k}" for k in items.keyword_col])


@pytest.mark.parametrize("alpha, beta, theta", [(0.9, 0.7, 0.99), (0.5, 1.0, 1.0), (1.0, 0.0, 2.0), (0.0, 0.3, 0.5)])
def test_item_cf_scores_match_hand_computation(alpha, beta, theta):
    cf = ItemCF(TOY, alpha, beta, theta)
    names = column_names(cf.items)
    assert set(names) == set().union(*map(toy_items, TOY)) and "kw:pop" not in names
    scores = cf.scores(cf.items.matrix(TOY_QUESTIONS)).toarray()
    for q, row in zip(TOY_QUESTIONS, scores):
        ref = reference_scores(q, alpha, beta, theta)
        got = {names[c]: row[c] for c in np.flatnonzero(row)}
        assert got.keys() == {j for j in ref if not j.startswith("kw:")}  # keywords are items, never answers
        for j, v in got.items():
            assert v == pytest.approx(ref[j], rel=1e-5), (q["id"], j)


def test_fed_item_cf_never_counts_a_question_as_its_own_neighbour():
    """Fed, the corpus holds the questions' visible parts; each question's scores are the hand computation with its
    own row left out of the neighbours (it still counts in the item popularities, as the 2nd place's code does)."""
    corpus = fed_corpus(TOY, TOY_QUESTIONS)
    alpha, beta, theta = 0.9, 0.7, 0.99
    cf = ItemCF(corpus, alpha, beta, theta)
    names = column_names(cf.items)
    own = own_rows(corpus, TOY_QUESTIONS)
    assert own.tolist() == [len(TOY), len(TOY) + 1, len(TOY) + 2]
    fed = cf.scores(cf.items.matrix(TOY_QUESTIONS), own).toarray()
    for q, row in zip(TOY_QUESTIONS, fed):
        ref = reference_scores(q, alpha, beta, theta, corpus)
        got = {names[c]: row[c] for c in np.flatnonzero(row)}
        assert got.keys() == {j for j in ref if not j.startswith("kw:")}
        for j, v in got.items():
            assert v == pytest.approx(ref[j], rel=1e-5), (q["id"], j)
    assert not np.allclose(fed, cf.scores(cf.items.matrix(TOY_QUESTIONS)).toarray())  # counting itself differs


def test_fed_corpus_and_own_rows():
    train = [{"id": 1, "songs": [1, 2]}, {"id": 2, "songs": [3]}, {"id": 3, "songs": [4, 5]}]
    questions = [{"id": 3, "songs": [4]}, {"id": 9, "songs": [7]}]  # 3's full playlist holds its hidden answer
    corpus = fed_corpus(train, questions)
    assert corpus == train[:2] + questions and own_rows(corpus, questions).tolist() == [2, 3]
    assert own_rows(train[:2], questions).tolist() == [-1, -1]
    m = sp.csr_matrix(np.arange(1.0, 13.0).reshape(3, 4))
    assert drop_own_rows(m, np.array([1, -1, 3])).toarray().tolist() == [[1, 0, 3, 4], [5, 6, 7, 8], [9, 10, 11, 0]]


def test_fed_knn_never_takes_the_question_as_its_neighbour():
    """With k = 1 a question's own visible row (cosine 1) would be its only neighbour and leave nothing unseen."""
    q = [{"id": 100, "songs": [2, 6], "tags": [], "plylst_title": "", "updt_date": DATE}]
    ranked = playlist_knn.rank(fed_corpus(TOY, q), q, k=1)
    assert ranked.songs[0][ranked.songs[0] >= 0].tolist() == [4, 5]  # the nearest other playlist: {2, 4, 5, 6}


def test_item_cf_similarities_match_hand_computation():
    alpha, beta, theta = 0.8, 0.4, 1.3
    cf = ItemCF(TOY, alpha, beta, theta)
    names = column_names(cf.items)
    q = TOY_QUESTIONS[1]
    known = cf.items.matrix([q])
    s = cf.similarities(known.indices, cf.neighbour_weights(known)[0]).toarray()  # [m, I]
    train, tu = [toy_items(p) for p in TOY], toy_items(q)
    pop = {j: sum(j in t for t in train) + 0.1 for t in train for j in t}
    for row, i in zip(s, (names[c] for c in known.indices)):
        for c, j in enumerate(names):
            ref = sum((len(tu & t) / (len(t) + 0.1) ** (1 - beta)) ** theta for t in train if i in t and j in t)
            assert row[c] == pytest.approx(ref / (pop[i] ** alpha * pop[j] ** (1 - alpha)), rel=1e-5, abs=1e-12)


def playlists(lists: list[list[int]]) -> list[dict]:
    return [{"id": i, "songs": s, "tags": [], "plylst_title": "", "updt_date": DATE} for i, s in enumerate(lists)]


# song 0 (the question) shares a 2-item playlist with rare song 1 and a 5-item playlist with song 2, which also
# fills 4 more playlists: |P(1)| = 1, |P(2)| = 5, |T(v1)| = 2, |T(v2)| = 5
EXPONENT_TOY = playlists([[0, 1], [0, 2, 10, 11, 12]] + [[2, 20 + 3 * k, 21 + 3 * k] for k in range(4)])
# the question {0, 1} overlaps v1 = {0, 1, 30} twice and v2 = {0, 31, 32} once; both have 3 items
THETA_TOY = playlists([[0, 1, 30], [0, 31, 32]])


def score_ratio(train: list[dict], alpha: float, beta: float, theta: float, q_songs: list[int], a: int,
                b: int) -> float:
    """item_cf's score of song a over its score of song b for the question holding q_songs."""
    cf = ItemCF(train, alpha, beta, theta)
    row = cf.scores(cf.items.matrix([{"id": 9, "songs": q_songs, "tags": [], "plylst_title": ""}])).toarray()[0]
    col_a, col_b = cf.items.song_columns([a, b])
    return row[col_a] / row[col_b]


def test_each_exponent_moves_scores_as_the_formula_says():
    # r_1 / r_2 = (w_v1 / w_v2) * (|P(1)| / |P(2)|)^(alpha - 1), w_v = (1 / |T(v)|^(1 - beta))^theta, counts + 0.1
    for alpha, beta, theta in product((0.2, 0.9), (0.0, 0.6), (0.5, 2.0)):
        expected = ((5.1 / 2.1) ** (1 - beta)) ** theta * (1.1 / 5.1) ** (alpha - 1)
        assert score_ratio(EXPONENT_TOY, alpha, beta, theta, [0], 1, 2) == pytest.approx(expected, rel=1e-5)
    # alpha: a larger alpha damps the popular candidate less (alpha = 1: not at all)
    ratio = {a: score_ratio(EXPONENT_TOY, a, 1.0, 1.0, [0], 1, 2) for a in (0.2, 0.9, 1.0)}
    assert ratio[0.2] > ratio[0.9] > 1 and ratio[1.0] == pytest.approx(1.0)
    # beta: a smaller beta penalises the long neighbour more (beta = 1: raw overlaps)
    ratio = {b: score_ratio(EXPONENT_TOY, 1.0, b, 1.0, [0], 1, 2) for b in (0.0, 0.5, 1.0)}
    assert ratio[0.0] > ratio[0.5] > 1 and ratio[1.0] == pytest.approx(1.0)
    # theta: r_30 / r_31 = (1/|P(0)| + 1/|P(1)|) w_v1 / (1/|P(0)| w_v2) = (1 + 2.1 / 1.1) (2 / 1)^theta (alpha = 1;
    # equal lengths cancel beta; popularities + 0.1)
    for theta in (0.5, 1.0, 3.0):
        expected = (1 + 2.1 / 1.1) * 2**theta
        assert score_ratio(THETA_TOY, 1.0, 0.5, theta, [0, 1], 30, 31) == pytest.approx(expected, rel=1e-5)


def test_title_keywords_answer_title_only_questions():
    items = Items(TOY + [{"id": 50, "songs": [], "tags": ["Hip_Hop"], "plylst_title": ""}] * 5)
    assert items.keywords("Classic ROCK-n-roll") == [items.keyword_col["rock"]]
    assert items.keywords("새벽의 hip hop!") == [items.keyword_col["hip hop"]]  # "Hip_Hop" normalised
    assert items.keywords("pop") == [] and items.keywords("") == []
    ranked = item_cf.rank(TOY, TOY_QUESTIONS, n_songs=5, n_tags=2)
    songs, tags = ranked.row(2)  # title-only "ROCK": the rock-titled playlists' songs
    assert songs and set(songs) <= {1, 2, 3, 5, 6, 7} and tags == ["rock", "pop"]
    empty = item_cf.rank(TOY, [{**TOY_QUESTIONS[2], "plylst_title": "jazz"}], n_songs=5, n_tags=2)
    assert empty.row(0) == ([], [])


# --- every new ranker on planted data ----------------------------------------------------------------------------

FUTURE = 20210101  # issue date of every 7th song; training playlists are dated after it, questions before


def dated(data: dict) -> dict:
    """The planted data with training playlists updated in 2022, so that a 2021 song stays dated 2021 after the
    correction of data_loader/issue_dates.py and is banned from the questions of 2020."""
    train = [{**p, "updt_date": "2022-01-01 00:00:00.000"} for p in data["train"]]
    meta = [{**m, "issue_date": FUTURE if m["id"] % 7 == 0 else m["issue_date"]} for m in data["song_meta"]]
    return {**data, "train": train, "song_meta": meta}


RANK_OPTIONS = {"item_cf": {}, "item_cf_svm": {"svm": True, "svm_negatives": 50}, "als": {}, "bm25": {}}
MODULES = {"item_cf": item_cf, "item_cf_svm": item_cf, "als": implicit_als, "bm25": implicit_bm25}


@pytest.fixture(scope="module")
def data() -> dict:
    return dated(planted())


@pytest.fixture(scope="module")
def ranked(data) -> dict[str, Ranked]:
    return {name: MODULES[name].rank(data["train"], data["questions"], data["song_meta"], n_songs=150, n_tags=20,
                                     **RANK_OPTIONS[name]) for name in RANK_OPTIONS}


@pytest.mark.parametrize("name", list(RANK_OPTIONS))
def test_ranked_invariants(data, ranked, name):
    r = ranked[name]
    assert r.ids.tolist() == [q["id"] for q in data["questions"]]
    assert r.songs.shape == r.song_scores.shape == (len(data["questions"]), 150)
    assert r.tags.shape == r.tag_scores.shape == (len(data["questions"]), 20)
    assert r.songs.dtype == np.int64 and r.song_scores.dtype == r.tag_scores.dtype == np.float32
    for i, q in enumerate(data["questions"]):
        songs, tags = r.row(i)
        n_s, n_t = len(songs), len(tags)
        assert (r.songs[i, :n_s] >= 0).all() and (r.songs[i, n_s:] == -1).all()  # padding only at the end
        assert all(t is not None for t in r.tags[i, :n_t]) and all(t is None for t in r.tags[i, n_t:])
        assert (r.song_scores[i, n_s:] == 0).all() and (r.tag_scores[i, n_t:] == 0).all()
        assert (np.diff(r.song_scores[i, :n_s]) <= 0).all() and (np.diff(r.tag_scores[i, :n_t]) <= 0).all()
        assert len(set(songs)) == n_s and len(set(tags)) == n_t
        assert not set(songs) & set(q["songs"]) and not set(tags) & set(q["tags"])
        assert not any(s % 7 == 0 for s in songs)  # issued in 2021, after the question's 2020 updt_date
    # the empty question and the one with only unknown ids: nothing to go on (popularity answers them)
    assert r.row(len(r) - 2) == r.row(len(r) - 1) == ([], [])


def test_date_filter_is_what_removes_future_songs(data):
    """Without the filter the future songs do come up (so the invariant above is not vacuous)."""
    for module in (item_cf, implicit_bm25):
        r = module.rank(data["train"], data["questions"][:20], data["song_meta"], 100, 10, date_filter=False)
        assert any(s % 7 == 0 for i in range(len(r)) for s in r.row(i)[0])


@pytest.mark.parametrize("name", ["item_cf", "bm25"])  # (ALS: BLAS sums a batch's products in its own order)
def test_batch_size_does_not_change_the_answer(data, ranked, name):
    qs = data["questions"][:9]
    small = MODULES[name].rank(data["train"], qs, data["song_meta"], n_songs=150, n_tags=20, batch=4)
    for field in ("songs", "tags"):
        assert (getattr(small, field) == getattr(ranked[name], field)[:9]).all()
    np.testing.assert_allclose(small.song_scores, ranked[name].song_scores[:9], rtol=1e-4)


@pytest.mark.parametrize("name", list(RANK_OPTIONS))
def test_results_are_valid_and_beat_most_popular(data, name):
    results = MODULES[name].recommend(data["train"], data["questions"], data["song_meta"], **RANK_OPTIONS[name])
    r = evaluate_from_data(data["answers"], results, data["questions"])  # raises on any failed official check
    assert [x["id"] for x in results] == [q["id"] for q in data["questions"]]
    for q, x in zip(data["questions"], results):
        assert not set(q["songs"]) & set(x["songs"]) and not set(q["tags"]) & set(x["tags"])
    popular = evaluate_from_data(data["answers"], most_popular.recommend(data["train"], data["questions"]))
    assert r["score"] > popular["score"] + 0.2 and r["score"] > 0.3


def test_svm_reweighting_is_deterministic_and_reweights(data, ranked):
    qs = data["questions"][:12]
    again = item_cf.rank(data["train"], qs, data["song_meta"], n_songs=150, n_tags=20, svm=True, svm_negatives=50,
                         batch=5)
    assert (again.songs == ranked["item_cf_svm"].songs[:12]).all()
    assert (again.song_scores == ranked["item_cf_svm"].song_scores[:12]).all()
    assert not np.allclose(ranked["item_cf_svm"].song_scores, ranked["item_cf"].song_scores)


# --- our use of implicit is implicit's own -----------------------------------------------------------------------

def test_bm25_scores_are_implicits_recommend(data):
    items = Items(data["train"])
    model = implicit_bm25.fit(items.matrix(data["train"]), k=30)
    known = items.matrix(data["questions"][:5])
    ids, scores = model.recommend(np.arange(5), known, N=50, filter_already_liked_items=False)
    mine = (known @ model.similarity).toarray()
    for r in range(5):
        np.testing.assert_allclose(mine[r, ids[r]], scores[r], rtol=1e-5)
        assert mine[r].max() == pytest.approx(scores[r][0], rel=1e-5)


def test_als_scores_are_implicits_recommend(data):
    items = Items(data["train"])
    model = implicit_als.fit(items.matrix(data["train"]), factors=16, iterations=3)
    known = items.matrix(data["questions"][:5])
    ids, scores = model.recommend(np.arange(5), known, N=20, recalculate_user=True, filter_already_liked_items=False)
    mine = model.recalculate_user(np.arange(5), known) @ model.item_factors.T
    for r in range(5):
        np.testing.assert_allclose(mine[r, ids[r]], scores[r], rtol=1e-4)


# --- wiring ------------------------------------------------------------------------------------------------------

def test_rankers_and_leaderboard_list_the_peers(tmp_path, data):
    assert RANKERS["item_cf"] is item_cf.rank and RANKERS["als"] is implicit_als.rank
    assert RANKERS["bm25"] is implicit_bm25.rank
    root = write_dataset(tmp_path / "ds", data)
    names = [name for name, _ in leaderboard.baseline_methods(str(root), root / "questions" / "val.json")]
    assert names == ["most_popular", "genre_most_popular", "playlist_knn", "item_cf", "item_cf_svm", "als", "bm25"]
    assert RANKERS["item_cf_svm"].func is item_cf.rank and RANKERS["item_cf_svm"].keywords == item_cf.SECOND_PLACE


@pytest.mark.parametrize("module, bad", [("item_cf", "--alpha=1.5"), ("implicit_als", "--factors=0"),
                                         ("implicit_bm25", "--k1=x")])
def test_cli_bad_flag_exits_2(tmp_path, module, bad):
    proc = subprocess.run([sys.executable, "-m", f"baselines.{module}", f"--dataset_dir={tmp_path}", bad],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and "Traceback" not in proc.stderr


@pytest.mark.parametrize("module", ["item_cf", "implicit_als", "implicit_bm25"])
def test_cli_missing_split_exits_1(tmp_path, module):
    proc = subprocess.run([sys.executable, "-m", f"baselines.{module}", f"--dataset_dir={tmp_path}"],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "orig/train.json: not found" in proc.stderr


def test_cli_writes_results(tmp_path, data):
    root = write_dataset(tmp_path / "ds", data)
    out = tmp_path / "out" / "cf.json"
    proc = subprocess.run([sys.executable, "-m", "baselines.item_cf", f"--dataset_dir={root}", f"--out_path={out}",
                           "--alpha=0.9", "--beta=0.7", "--theta=0.99"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text(encoding="utf-8"))
    assert evaluate_from_data(data["answers"], results, data["questions"])["score"] > 0.3
