"""Tests for the hybrid ensemble (predictor/members.py, pool.py, fusion.py, fusion_fit.py, weights_file.py, hybrid.py, search_weights.py) and its
leaderboard row, on small generated data (tests/test_baselines.py's planted themes, questions of all four types).

Covers: the fusion value functions against hand computations; fused answers against a literal per-question
re-implementation (dict of scores, stable sort, popularity top-up) on random overlapping lists and weights, including
ties and zero weights; the exact top-k with ties at the k-th place; the popularity fallback with the date filter
(relaxed only when needed); a blend with one member of weight 1 reproducing that member's own results file; the
weight search never reading the half it is scored on (answers there are sentinels that raise, or garbage that leaves
the fit unchanged); the held-out score reproducible with the same seed and written to the weights file as evaluate.py
scores the held-out answers; strict errors for bad weights files (version, member, question type, negative / NaN /
all-zero weight, missing checkpoint), each naming the file and the key; Ensemble.py --weights answering with the
weights fitted on all questions; the leaderboard's held-out row and chart, and its refusal of a weights file searched
on other answers.
Run: python -m pytest tests/test_hybrid.py -q
"""
from __future__ import annotations

import copy
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from baselines import playlist_knn
from baselines.common import fed_corpus
from baselines.rankers import RANKERS
from common.arena import QUESTION_TYPES, question_type
from common.cli import UsageError
from common.jsonio import InputError
from common.metric import evaluate_from_data
from data_loader.dumps import load_dumps
from evaluate import evaluate_files
from predictor import Ensemble, fusion, fusion_fit, members, search_weights, weights_file
from predictor import pool as pooling
from reports import leaderboard
from test_baselines import planted, write_dataset

MEMBERS = ["playlist_knn", "most_popular"]


@pytest.fixture(scope="module")
def data() -> dict:
    """Planted playlists; the questions cut into the four question types in turn."""
    d = planted(seed=3, n_train=500, n_questions=96)
    for i, q in enumerate(d["questions"][:96]):
        kind = QUESTION_TYPES[i % 4]
        if kind in ("tags only", "title only"):
            q["songs"] = []
        if kind in ("songs only", "title only"):
            q["tags"] = []
    return d


@pytest.fixture(scope="module")
def searched(data, tmp_path_factory) -> dict:
    """The dataset on disk and one weight search on it (members playlist_knn and most_popular)."""
    root = write_dataset(tmp_path_factory.mktemp("hyb") / "ds", data)
    out = root.parent / "out"
    obj = search_weights.search(dataset_dir=str(root), output_dir=str(out), members=MEMBERS)
    return {"root": root, "out": out, "obj": obj}


# ----------------------------------------------------------------------------------------------------------------
# Fusion arithmetic


def test_value_functions_by_hand():
    exp = fusion.value_tables("exp", 2.0, 1, 3)[0, 0]
    assert np.allclose(exp, [1.0, math.exp(-0.5), math.exp(-1.0)])
    rrf = fusion.value_tables("rrf", 60.0, 2, 2)
    assert np.allclose(rrf[3, 1], [1 / 61, 1 / 62]) and rrf.shape == (4, 2, 2)
    cal = np.arange(4 * 1 * 3, dtype=float).reshape(4, 1, 3) + 1  # bins [0,1) [1,3) [3,6)
    table = fusion.value_tables("calibrated", None, 1, 6, cal, (0, 1, 3, 6))
    assert table[2, 0].tolist() == [7, 8, 8, 9, 9, 9]
    pool = pooling.Pool.build([np.array([[4, 7, -1]])], np.array([[1]]), [np.array([[3.0, -2.0, 0.0]])])
    (score,) = fusion.member_values(pool, np.array([0]), "songs", "score", 2.0, scale=np.array([1.5]))
    assert np.allclose(score[0, :2], [(3.0 / 1.5) ** 2, 1e-12])  # a score <= 0 gets the floor 1e-6, squared
    assert fusion_fit.score_scale(pooling.Pool.build([np.array([[1], [2], [3]])], np.zeros((3, 0), np.int64),
                                                [np.array([[0.2], [0.9], [0.5]])])).tolist() == [0.5]


def literal_fuse(lists: list[list[list[int]]], fallback: list[list[int]], types: list[int], w: np.ndarray,
                 f, k: int) -> list[list[int]]:
    """Per question: summed w[type, m] * f(m, question, rank) over the members' lists; positive scores by descending
    score (ties: first inserted), then the fallback's items in order, without repeats; k items at most."""
    out = []
    for i, t in enumerate(types):
        score: dict[int, float] = {}
        for m, rows in enumerate(lists):
            for r, item in enumerate(x for x in rows[i] if x >= 0):
                score[item] = score.get(item, 0.0) + w[t, m] * f(m, i, r)
        ranked = sorted((x for x in score if score[x] > 0), key=lambda x: -score[x])
        ranked += [x for x in fallback[i] if x not in ranked]
        out.append(ranked[:k])
    return out


@pytest.mark.parametrize("kind,param", [("exp", 3.0), ("rrf", 2.0), ("score", 2.0)])
def test_fuse_matches_literal_reference(kind, param):
    rng = np.random.default_rng(7)
    N, K = 40, 12
    lists, scores = [], []
    for m in range(3):
        rows = np.full((N, K), -1, dtype=np.int64)
        for i in range(N):
            n = int(rng.integers(0, K + 1)) if m else K
            rows[i, :n] = rng.choice(30, n, replace=False)
        lists.append(rows)
        scores.append(-np.sort(-rng.choice([0.5, 1.0, 2.0, 3.0], size=(N, K)), axis=1))  # equal scores too
    fallback = np.stack([rng.choice(30, 8, replace=False) for _ in range(N)])
    types = rng.integers(0, 4, N)
    w = rng.choice([0.0, 0.5, 1.0, 2.0], size=(4, 3))  # equal weights and shared items make ties
    w[w.sum(1) == 0, 0] = 1.0
    scale = np.array([1.0, 2.0, 0.5])
    pool = pooling.Pool.build(lists, fallback, scores)
    fits = {t: fusion.TargetFit(kind, param, w, scale=scale) for t in fusion.TARGETS}
    got = fusion.fuse({"songs": pool, "tags": pool}, types, np.arange(N), fits)["tags"]  # K_OUT tags = 10
    f = {"exp": lambda m, i, r: np.float32(math.exp(-r / param)),
         "rrf": lambda m, i, r: np.float32(1 / (param + r + 1)),
         "score": lambda m, i, r: np.float32(scores[m][i, r] / scale[m]) ** np.float32(param)}[kind]
    want = literal_fuse([x.tolist() for x in lists], fallback.tolist(), types.tolist(), w.astype(np.float32), f, 10)
    assert [[x for x in row if x >= 0] for row in got.tolist()] == want


def test_top_columns_ties_in_column_order():
    key = np.array([[0.5, 1.0, 0.5, 0.5, -np.inf], [3.0, 2.0, 1.0, -1.0, -np.inf]], dtype=np.float32)
    assert fusion.top_columns(key, 3).tolist() == [[1, 0, 2], [0, 1, 2]]  # a tie across the k-th place
    assert fusion.top_columns(key, 5).tolist() == [[1, 0, 2, 3, -1], [0, 1, 2, 3, -1]]
    key = np.array([[0.2, 0.5, 1.0, 0.5], [0.5, 0.5, 0.5, 0.1]], dtype=np.float32)  # ties inside the top k only
    assert fusion.top_columns(key, 3).tolist() == [[2, 1, 3], [0, 1, 2]]


def test_first_allowed_skips_seen_and_future_and_relaxes_only_when_needed():
    dates = np.array([0, 2021, 0, 0, 2021, 0])
    pos, relaxed = pooling.first_allowed(6, [np.array([0]), np.array([2, 3, 5])], 3, dates, np.array([2020, 2020]))
    assert pos.tolist() == [[2, 3, 5], [0, 1, 4]] and relaxed.tolist() == [False, True]
    pos, _ = pooling.first_allowed(3, [np.array([1])], 3)
    assert pos.tolist() == [[0, 2, -1]]


# ----------------------------------------------------------------------------------------------------------------
# Members and the search


def test_one_member_weight_one_reproduces_its_results(data):
    train, questions, meta = data["train"], data["questions"], data["song_meta"]
    qs = members.QuestionSet(questions, train, meta, np.array([QUESTION_TYPES.index(question_type(q))
                                                            for q in questions]))
    rankings = {m: RANKERS[m](train, questions, meta, n_songs=500, n_tags=50) for m in MEMBERS}
    enc = pooling.encode([rankings[m] for m in MEMBERS], pooling.fallback_lists(qs))
    alone = {t: fusion.TargetFit("exp", 50.0, np.tile([1.0, 0.0], (4, 1))) for t in fusion.TARGETS}
    got = pooling.fused_records([q["id"] for q in questions], fusion.fuse(enc.pools, qs.types, np.arange(len(questions)),
                                                                      alone), enc)
    assert got == playlist_knn.recommend(train, questions, meta)  # incl. the empty question, topped up


class Guarded(list):
    """Answers of which only the rows `allowed` may be read (by index; iterating would read them all)."""

    def __init__(self, items, allowed):
        super().__init__(items)
        self.allowed = set(allowed)

    def __getitem__(self, i):
        if i not in self.allowed:
            raise AssertionError(f"the search read the answer of row {i}, in the half it is scored on")
        return super().__getitem__(i)

    def __iter__(self):
        raise AssertionError("the search iterated over every answer")


def _pools(data):
    """The search's pools, built here: the rankers fed orig/train plus the questions' visible parts (the default)."""
    corpus = fed_corpus(data["train"], data["questions"])
    qs = members.QuestionSet(data["questions"], corpus, None,
                             np.array([QUESTION_TYPES.index(question_type(q)) for q in data["questions"]]))
    rankings = [RANKERS[m](corpus, data["questions"], None, n_songs=500, n_tags=50) for m in MEMBERS]
    enc = pooling.encode(rankings, pooling.fallback_lists(qs))
    return qs, enc, pooling.answer_codes(data["answers"], enc)


def _weights(fits):
    return {t: (f.kind, f.param, f.weights.tolist()) for t, f in fits.items()}


def test_search_never_reads_the_half_it_is_scored_on(data):
    qs, enc, codes = _pools(data)
    a, b = fusion_fit.halves(qs.types, seed=0)
    assert not set(a) & set(b) and len(a) + len(b) == len(codes)
    fit_a = fusion_fit.fold_fit(enc.pools, qs.types, Guarded(codes, a), a, "score")  # raises on any answer of half B
    # garbage answers on half B leave the fit on half A unchanged, and change the fit on half B
    rng = np.random.default_rng(0)
    garbage = [{"songs": rng.choice(480, 5).tolist(), "tags": []} if i in set(b) else c for i, c in enumerate(codes)]
    folds_true = fusion_fit.cross_fit(enc.pools, qs.types, codes, 0, "score")
    folds_garbage = fusion_fit.cross_fit(enc.pools, qs.types, garbage, 0, "score")
    assert _weights(folds_true[0][2]) == _weights(folds_garbage[0][2]) == _weights(fit_a)
    assert _weights(folds_true[1][2]) != _weights(folds_garbage[1][2])


def test_heldout_score_is_what_evaluate_gives_and_is_reproducible(searched, data, tmp_path):
    obj, out, root = searched["obj"], searched["out"], searched["root"]
    held = evaluate_files(root / "answers" / "val.json", out / weights_file.HELDOUT_FILE, root / "questions" / "val.json")
    assert held["score"] == obj["heldout"]["score"] and held["by_type"].keys() == set(QUESTION_TYPES)
    # each half's answers come from the fit on the other half alone
    qs, enc, codes = _pools(data)
    written = json.loads((out / weights_file.HELDOUT_FILE).read_text(encoding="utf-8"))
    ids = [q["id"] for q in data["questions"]]
    for fit_rows, scored in (fusion_fit.halves(qs.types, 0), fusion_fit.halves(qs.types, 0)[::-1]):
        fits = fusion_fit.fold_fit(enc.pools, qs.types, Guarded(codes, fit_rows), fit_rows, search_weights.DEFAULT_FUSION, tie=True)
        want = pooling.fused_records([ids[i] for i in scored], fusion.fuse(enc.pools, qs.types, scored, fits), enc)
        assert [written[i] for i in scored] == want
    again = search_weights.search(dataset_dir=str(root), output_dir=str(tmp_path), members=MEMBERS)
    for key in ("heldout", "folds", "weights", "fusion"):
        assert again[key] == obj[key]
    other = search_weights.search(dataset_dir=str(root), output_dir=str(tmp_path), members=MEMBERS, seed=1)
    assert other["folds"][0]["heldout"] != obj["folds"][0]["heldout"]  # another split of the questions


# ----------------------------------------------------------------------------------------------------------------
# The weights file


def _break(obj: dict, path: tuple, value) -> dict:
    bad = copy.deepcopy(obj)
    node = bad
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return bad


@pytest.mark.parametrize("path,value,message", [
    (("format_version",), 1, "format_version: expected 2, got 1"),
    (("members", 1), "nope", "members[1]: unknown member 'nope'"),
    (("weights", "tags only"), KeyError, "weights: missing key 'tags only'"),
    (("weights", "songs only", "songs", "playlist_knn"), -0.5, "weights.songs only.songs.playlist_knn"),
    (("weights", "songs+tags", "tags", "most_popular"), float("nan"), "weights.songs+tags.tags.most_popular"),
    (("weights", "title only", "songs"), {"playlist_knn": 0, "most_popular": 0.0}, "every weight is 0"),
    (("weights", "songs only", "songs", "als_typo"), 1.0, "unknown key 'als_typo'"),
    (("fusion", "kind"), "mean", "fusion.kind: unknown fusion 'mean'"),
    (("scale", "songs", "playlist_knn"), 0.0, "scale.songs.playlist_knn: expected a finite number > 0"),
    (("folds", 0, "weights", "tags only", "tags", "playlist_knn"), "1", "folds[0]: weights.tags only.tags"),
])
def test_bad_weights_files_name_file_and_key(searched, tmp_path, path, value, message):
    bad = tmp_path / "w.json"
    bad.write_text(json.dumps(_break(searched["obj"], path, value)), encoding="utf-8")
    with pytest.raises(InputError) as e:
        weights_file.load_weights(bad)
    assert str(bad) in str(e.value) and message in str(e.value)


def test_missing_checkpoint_is_named(searched, tmp_path):
    obj = json.loads(json.dumps(searched["obj"]).replace('"most_popular"', '"plylst_title"'))  # a BERT member
    path = tmp_path / "w.json"
    path.write_text(json.dumps(obj), encoding="utf-8")
    weights_file.load_weights(path)  # fine without an output_dir to check
    with pytest.raises(InputError, match=r"w.json: members: plylst_title needs .*plylst_title/best.pt"):
        weights_file.load_weights(path, tmp_path)


def test_ensemble_with_weights_answers_with_the_full_fit(searched, data, tmp_path):
    root, out = searched["root"], searched["out"]
    results = tmp_path / "r.json"
    Ensemble.main(dataset_dir=str(root), output_dir=str(out), question_path=str(root / "questions" / "val.json"),
                  out_path=str(results), weights=str(out / weights_file.WEIGHTS_FILE))
    got = json.loads(results.read_text(encoding="utf-8"))
    evaluate_from_data(data["answers"], got, data["questions"])  # every list valid: 100 songs, 10 tags, distinct
    qs, enc, _ = _pools(data)
    fits = weights_file.load_weights(out / weights_file.WEIGHTS_FILE).fits
    assert got == pooling.fused_records([q["id"] for q in data["questions"]],
                                    fusion.fuse(enc.pools, qs.types, np.arange(len(qs.types)), fits), enc)
    with pytest.raises(UsageError, match="--title_importance"):
        Ensemble.main(dataset_dir=str(root), output_dir=str(out), out_path=str(results), title_importance=0.5,
                      weights=str(out / weights_file.WEIGHTS_FILE))


def test_fed_members_never_see_a_hidden_answer(searched, data, tmp_path):
    """Fed, the search learns from orig/train.json and the questions' visible parts (train.json, which holds the
    validation playlists whole, is never read), and answering drops the questions' full playlists from train.json:
    a song that only the hidden part of a question's full playlist holds is never recommended to anyone."""
    root, out = searched["root"], searched["out"]
    obj = searched["obj"]
    assert obj["feed"] is True and weights_file.load_weights(out / weights_file.WEIGHTS_FILE).feed
    leaky = write_dataset(tmp_path / "leaky", data)
    full = json.loads((leaky / "train.json").read_text(encoding="utf-8"))
    secret = {p["id"]: 900_000 + i for i, p in enumerate(full[len(data["train"]):])}
    for p in full[len(data["train"]):]:  # the val playlists, whole: their answers plus one song nobody else has
        p["songs"] = p["songs"] + [secret[p["id"]]] * 1
    (leaky / "train.json").write_text(json.dumps(full), encoding="utf-8")
    again = search_weights.search(dataset_dir=str(leaky), output_dir=str(tmp_path / "o"), members=MEMBERS)
    assert again["heldout"] == obj["heldout"]  # the search never read train.json
    results = tmp_path / "r.json"
    Ensemble.main(dataset_dir=str(leaky), output_dir=str(tmp_path / "o"), out_path=str(results),
                  question_path=str(leaky / "questions" / "val.json"), weights=str(tmp_path / "o" / weights_file.WEIGHTS_FILE))
    got = json.loads(results.read_text(encoding="utf-8"))
    assert not {s for r in got for s in r["songs"]} & set(secret.values())


def test_search_without_feeding_and_the_pools_ceiling(searched, data, tmp_path):
    unfed = search_weights.search(dataset_dir=str(searched["root"]), output_dir=str(tmp_path), members=MEMBERS,
                                  feed=False)
    assert unfed["feed"] is False and unfed["heldout"] != searched["obj"]["heldout"]
    rankings = [RANKERS[m](data["train"], data["questions"], None, n_songs=500, n_tags=50) for m in MEMBERS]
    assert np.array_equal(rankings[0].songs, RANKERS[MEMBERS[0]](data["train"], data["questions"], None).songs)
    for target in ("songs", "tags"):  # shares: each member's at most the union's, the union's at most with fallback
        rows = searched["obj"]["ceiling"][target]
        assert set(rows) == {*MEMBERS, "all members", "+ fallback"}
        for m in MEMBERS:
            assert 0 <= rows[m]["overall"] <= rows["all members"]["overall"] <= rows["+ fallback"]["overall"] <= 1
        assert set(rows["all members"]) == {"overall", *QUESTION_TYPES}


def test_leaderboard_hybrid_row_and_chart(searched, tmp_path):
    root, out = searched["root"], searched["out"]
    leaderboard.main(dataset_dir=str(root), output_dir=str(out), gpu=-1)
    table = (out / "leaderboard.md").read_text(encoding="utf-8")
    assert f"| hybrid_heldout | {searched['obj']['heldout']['count']} |" in table
    assert f"{searched['obj']['heldout']['score']:.6f}" in table
    assert (out / "leaderboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # answers the search never saw: no hybrid row
    other = tmp_path / "answers.json"
    answers = json.loads((root / "answers" / "val.json").read_text(encoding="utf-8"))
    other.write_text(json.dumps(answers[::-1]), encoding="utf-8")
    leaderboard.main(dataset_dir=str(root), output_dir=str(out), answer_path=str(other), gpu=-1)
    assert "hybrid_heldout (" in (out / "leaderboard.md").read_text(encoding="utf-8")  # listed under "Not run"


# ----------------------------------------------------------------------------------------------------------------
# BERT members


def test_bert_member_proposes_what_the_blend_takes_from_it():
    """A stand-in model's Ranked: its first survivors (seen and future songs skipped), as raw ids and tag strings,
    with sigmoid probabilities; the questions it does not accept get empty rows."""
    from test_ensemble import CPU, S, T, FixedItems, make_questions, make_vocab

    rng = np.random.default_rng(2)
    q = make_questions([[3, 4], [], [5]], [[1], [], []], [False, True, False], [20150101] * 3)
    logits = (rng.normal(size=(3, S)) * 3, rng.normal(size=(3, T)) * 3)
    dates = np.where(np.arange(S) % 7 == 0, 20200101, 0).astype(np.int32)
    dumps = SimpleNamespace(vocab=make_vocab(), song_issue_dates=dates)
    got = members.bert_ranked(FixedItems(*logits), q, dumps, CPU, bs=2)
    assert got.ids.tolist() == q.ids.tolist()
    for i, (seen_songs, seen_tags) in enumerate((([3, 4], [1]), ([], []), ([5], []))):
        if i == 1:  # no in-vocab song or tag: model 1 does not answer
            assert (got.songs[i] == -1).all() and all(t is None for t in got.tags[i])
            continue
        songs = [s for s in np.argsort(-logits[0][i], kind="stable") if s not in seen_songs and dates[s] <= 20150101]
        tags = [t for t in np.argsort(-logits[1][i], kind="stable") if t not in seen_tags]
        assert got.songs[i][got.songs[i] >= 0].tolist() == [1000 + s for s in songs]  # S = 150 < 500: all of them
        assert [t for t in got.tags[i] if t is not None] == [f"tag{t}" for t in tags]
        p = 1 / (1 + np.exp(-logits[0][i][songs]))
        assert np.allclose(got.song_scores[i][: len(songs)], p, atol=1e-6)


def test_search_and_answer_with_a_bert_member(small_dataset, run_root, tmp_path):
    """The weight search and Ensemble.py --weights with a (randomly initialised) BERT checkpoint as a member."""
    from test_seed_ensemble import save_tiny_run

    dataset, out = small_dataset / "dataset", run_root / "output"
    dumps = load_dumps(out)
    save_tiny_run(out / "songs_tags_artists" / "best.pt", dumps, 0)
    obj = search_weights.search(dataset_dir=str(dataset), output_dir=str(out), gpu=-1)  # default members
    assert obj["members"][:2] == ["songs_tags_artists", "playlist_knn"] and "plylst_title" not in obj["members"]
    assert obj["split"]["vocab_hash"] == dumps.vocab.hash
    results = tmp_path / "r.json"
    Ensemble.main(gpu=-1, dataset_dir=str(dataset), output_dir=str(out), out_path=str(results),
                  question_path=str(dataset / "questions" / "val.json"), weights=str(out / weights_file.WEIGHTS_FILE))
    evaluate_files(dataset / "answers" / "val.json", results)  # valid: every list 100 songs, 10 tags, distinct
