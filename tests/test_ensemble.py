"""Tests for the ensemble (predictor/ensembling.py, predictor/blend.py) with stand-in models of fixed logits.

Covers: the blend formula against a hand computation (n-weighting, title-only weight 1, tag weights); agreement
with a literal per-question re-implementation of ORIGINAL.md 4 (dict insertion + stable sort) on random logits,
routes, seen items and dates, including search/keep truncation and the popularity fill when candidates run short;
ties (first member first); the cold start; the results order; recommend.py's defaults; and that results built
from awkward questions (all songs out of vocabulary, empty, emoji-only title, unseen ids) pass the official
checks. The slow end-to-end test trains both models for one epoch on the shared small dataset (tests/conftest.py),
runs train.py, Ensemble.py, inference.py, recommend.py and the leaderboard, and checks that a checkpoint of another
vocabulary is refused.
Run: python -m pytest tests/test_ensemble.py -q  (add -m "not slow" to skip the end-to-end test)
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import predictor.ensembling as ens
from baselines import leaderboard
from data_loader.dumps import load_dumps
from data_loader.jsonio import InputError
from data_loader.playlists import CSR, Playlists, updt_to_int
from data_loader.title import load_sentencepiece, train_sentencepiece
from data_loader.vocab import Vocab
from evaluate import evaluate_files, evaluate_from_data
from models.base import PlaylistModel
from predictor.blend import blend, fill_first_allowed
from predictor.recommend import FAR_FUTURE, parse_questions
from trainer.checkpoint import load_checkpoint, save_checkpoint

S, T = 150, 30
CPU = torch.device("cpu")
REPO = Path(__file__).resolve().parents[1]


class FixedItems(PlaylistModel):
    """Stand-in for model 1: answers questions with an in-vocab song or tag, with preset logits per question."""

    name = "fixed_items"

    def __init__(self, song_logits: np.ndarray, tag_logits: np.ndarray):
        super().__init__()
        self.song_logits = torch.as_tensor(song_logits, dtype=torch.float32)  # [N, S]
        self.tag_logits = torch.as_tensor(tag_logits, dtype=torch.float32)  # [N, T]

    @staticmethod
    def accepts(q: Playlists) -> np.ndarray:
        return (q.songs.lengths() + q.tags.lengths()) > 0

    def question_batch(self, q: Playlists, rows: np.ndarray) -> dict[str, torch.Tensor]:
        return {"rows": torch.from_numpy(rows)}

    def scores(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.song_logits[batch["rows"]], self.tag_logits[batch["rows"]]


class FixedTitle(FixedItems):
    """Stand-in for model 2: answers questions with a non-empty title."""

    name = "fixed_title"

    @staticmethod
    def accepts(q: Playlists) -> np.ndarray:
        return q.title.lengths() > 0


def make_vocab(n_songs: int = S, n_tags: int = T) -> Vocab:
    empty = CSR(np.zeros(0, np.int32), np.zeros(n_songs + 1, np.int64))
    return Vocab(list(range(1000, 1000 + n_songs)), [f"tag{i}" for i in range(n_tags)], [], empty)


def make_questions(songs: list[list[int]], tags: list[list[int]], titled: list[bool], updt: list[int]) -> Playlists:
    """Questions from song indices, tag indices (0-based, turned into label ids) and whether a title is present."""
    n = len(songs)
    return Playlists(
        ids=np.arange(100, 100 + n, dtype=np.int64), updt=np.asarray(updt, dtype=np.int32),
        songs=CSR.from_lists(songs), tags=CSR.from_lists([[S + t for t in r] for r in tags]),
        artists=CSR.from_lists([[]] * n), title=CSR.from_lists([[9, 10] if t else [] for t in titled]),
    )


def random_case(seed: int, N: int, max_songs: int, max_tags: int, song_every: int, titled_p: float):
    """N random questions (every song_every-th without songs, every 3rd without tags), song dates, and two models'
    logits: (questions, dates, (song, tag) logits of model 1, of model 2)."""
    rng = np.random.default_rng(seed)
    songs = [rng.choice(S, rng.integers(0, max_songs), replace=False).tolist() if i % song_every else []
             for i in range(N)]
    tags = [rng.choice(T, rng.integers(0, max_tags), replace=False).tolist() if i % 3 else [] for i in range(N)]
    titled = (rng.random(N) < titled_p).tolist()
    updt = rng.choice([20100101, 20150101, 20200101], N).tolist()
    q = make_questions(songs, tags, titled, updt)
    dates = rng.choice([0, 20050101, 20120101, 20180101], S).astype(np.int32)
    l1 = (rng.normal(size=(N, S)) * 3, rng.normal(size=(N, T)) * 3)
    l2 = (rng.normal(size=(N, S)) * 3, rng.normal(size=(N, T)) * 3)
    return q, dates, l1, l2


def members(l1, l2, ti: float = 0.85, tw: float = 0.8) -> list[ens.Member]:
    rules = ens.weight_rules(ti, tw)
    return [ens.Member(FixedItems(*l1), *rules["songs_tags_artists"], "m1"),
            ens.Member(FixedTitle(*l2), *rules["plylst_title"], "m2")]


def sigmoid(x: float) -> float:
    return float(torch.sigmoid(torch.tensor(x, dtype=torch.float32)))


# ----------------------------------------------------------------------------------------------------------------
# Literal re-implementation of ORIGINAL.md 4, one question at a time


def reference(q: Playlists, l1, l2, dates: np.ndarray, ti: float, tw: float, search: tuple[int, int],
              keep: tuple[int, int]) -> tuple[list[list[int]], list[list[int]]]:
    all_songs, all_tags = [], []
    for i in range(len(q)):
        seen_s = set(q.songs.row(i).tolist())
        seen_t = {x - S for x in q.tags.row(i).tolist()}
        n = len(seen_s) + len(seen_t)
        routes = [(n > 0, l1, n / (ti + n), 1.0), (len(q.title.row(i)) > 0, l2, ti / (ti + n), tw)]
        song_score: dict[int, float] = {}
        tag_score: dict[int, float] = {}
        for accepted, (ls, lt), w_song, w_tag in routes:
            if not accepted:
                continue
            for logits, seen, k_search, k_keep, w, out, dated in (
                (ls[i], seen_s, search[0], keep[0], w_song, song_score, True),
                (lt[i], seen_t, search[1], keep[1], w_tag, tag_score, False),
            ):
                kept = 0
                for item in np.argsort(-logits, kind="stable")[:k_search].tolist():
                    if item in seen or (dated and dates[item] > q.updt[i]):
                        continue
                    out[item] = out.get(item, 0.0) + sigmoid(logits[item]) * w
                    kept += 1
                    if kept == k_keep:
                        break
        songs = sorted(song_score, key=lambda s: song_score[s], reverse=True)[:100]
        tags = sorted(tag_score, key=lambda t: tag_score[t], reverse=True)[:10]
        fresh = [s for s in range(S) if s not in seen_s and s not in songs]
        songs += [s for s in fresh if dates[s] <= q.updt[i]][: 100 - len(songs)]
        songs += [s for s in fresh if s not in songs][: 100 - len(songs)]  # the date filter relaxed
        tags += [t for t in range(T) if t not in seen_t and t not in tags][: 10 - len(tags)]
        all_songs.append(songs)
        all_tags.append(tags)
    return all_songs, all_tags


# ----------------------------------------------------------------------------------------------------------------
# Tests


def test_blend_by_hand():
    """n = 3 (2 songs + 1 tag) with a title: songs p1*3/3.85 + p2*0.85/3.85, tags q1 + 0.8*q2."""
    q = make_questions([[0, 1]], [[0]], [True], [20200101])
    l1s, l2s = np.full((1, S), -30.0), np.full((1, S), -30.0)
    l1t, l2t = np.full((1, T), -30.0), np.full((1, T), -30.0)
    A, B, C = 10, 11, 12
    l1s[0, A], l1s[0, B], l2s[0, B], l2s[0, C] = math.log(3), 0.0, math.log(3), 0.0  # sigmoid: .75 .5 .75 .5
    l1t[0, 5], l2t[0, 6], l2t[0, 5] = 0.0, math.log(3), math.log(1 / 3)  # tag5: .5 + .8*.25, tag6: .8*.75
    rec = ens.recommend(members((l1s, l1t), (l2s, l2t)), q, make_vocab(), np.zeros(S, np.int32), CPU)
    w1, w2 = 3 / 3.85, 0.85 / 3.85
    expected = {A: 0.75 * w1, B: 0.5 * w1 + 0.75 * w2, C: 0.5 * w2}
    assert sorted(expected, key=expected.get, reverse=True) == [A, B, C]
    assert rec.songs[0, :3].tolist() == [A, B, C]
    assert 0.5 + 0.8 * 0.25 > 0.8 * 0.75
    assert rec.tags[0, :2].tolist() == [5, 6]
    assert 0 not in rec.songs[0] and 1 not in rec.songs[0] and 0 not in rec.tags[0]  # seen items removed


def test_title_only_weight_one_and_ties_first_member_first():
    """n = 0 gives the title model weight 1; equal blended scores keep member 1's candidate first."""
    vocab, dates = make_vocab(), np.zeros(S, np.int32)
    q = make_questions([[], [0, 1]], [[], []], [True, True], [20200101] * 2)
    l1s, l2s = np.full((2, S), -30.0), np.full((2, S), -30.0)
    l2s[0, 7] = 1.0
    # question 1: ti = 2 and n = 2 give both members weight 1/2, so equal logits tie across members
    l1s[1, 40], l2s[1, 30] = 2.0, 2.0
    zeros = np.full((2, T), -30.0)
    m = members((l1s, zeros), (l2s, zeros), ti=2.0)
    assert float(m[1].song_weight(torch.tensor([0.0], dtype=torch.float64))) == 1.0
    rec = ens.recommend(m, q, vocab, dates, CPU)
    assert rec.songs[0, 0] == 7
    assert rec.songs[1, :2].tolist() == [40, 30]
    m = members((l1s, zeros), (l2s, zeros), ti=2.0)[::-1]  # member order decides the tie
    assert ens.recommend(m, q, vocab, dates, CPU).songs[1, :2].tolist() == [30, 40]


@pytest.mark.parametrize("search,keep", [((20000, 300), (500, 50)), ((60, 12), (40, 4))])
def test_matches_literal_reference(monkeypatch, search, keep):
    """Random logits/routes/seen/dates; the small search/keep sizes force the popularity fill."""
    monkeypatch.setattr(ens, "SONG_SEARCH", search[0])
    monkeypatch.setattr(ens, "TAG_SEARCH", search[1])
    monkeypatch.setattr(ens, "SONG_KEEP", keep[0])
    monkeypatch.setattr(ens, "TAG_KEEP", keep[1])
    q, dates, l1, l2 = random_case(0, 40, 6, 3, 4, 0.6)
    songs, tags, titled = [q.songs.row(i) for i in range(40)], [q.tags.row(i) for i in range(40)], q.title.lengths() > 0
    rec = ens.recommend(members(l1, l2), q, make_vocab(), dates, CPU, bs=7)
    want_songs, want_tags = reference(q, l1, l2, dates, 0.85, 0.8, search, keep)
    assert rec.songs.tolist() == want_songs
    assert rec.tags.tolist() == want_tags
    cold = [not len(s) and not len(t) and not ti for s, t, ti in zip(songs, tags, titled)]
    assert rec.counts["cold start"] == sum(cold) > 0
    if keep[0] * 2 < 100:
        assert rec.counts["songs filled from popularity"] > 0 and rec.counts["tags filled from popularity"] > 0


def test_cold_start_and_order():
    """Cold start: the 10 most frequent tags and the 100 most frequent songs issued by updt_date.
    Output order: member-1 questions, then title-only, then cold start, question order within each."""
    q = make_questions([[], [3], [], [4]], [[], [], [], []], [False, True, True, False], [20100101] * 4)
    dates = np.zeros(S, np.int32)
    dates[[0, 5]] = 20200101  # issued after the playlists' date
    logits = (np.zeros((4, S)), np.zeros((4, T)))
    rec = ens.recommend(members(logits, logits), q, make_vocab(), dates, CPU)
    assert rec.songs[0].tolist() == [s for s in range(S) if s not in (0, 5)][:100]
    assert rec.tags[0].tolist() == list(range(10))
    assert rec.order.tolist() == [1, 3, 2, 0]
    assert rec.counts["cold start"] == 1 and rec.counts["routed to m1"] == 2 and rec.counts["routed to m2"] == 2


def test_fill_relaxes_date_filter_when_needed():
    """An old playlist whose date bans nearly every song still gets 100 distinct songs."""
    q = make_questions([[]], [[]], [False], [19900101])
    dates = np.full(S, 20000101, np.int32)
    dates[:3] = 0
    rec = ens.recommend([], q, make_vocab(), dates, CPU)
    assert rec.songs[0, :3].tolist() == [0, 1, 2] and len(set(rec.songs[0].tolist())) == 100
    assert rec.counts["date filter relaxed"] == 1


def test_blend_and_fill_units():
    idx = torch.tensor([[5, 3, 7, -1, 3, 9, 5, -1]])
    score = torch.tensor([[0.5, 0.4, 0.3, 0.0, 0.25, 0.6, 0.1, 0.0]], dtype=torch.float64)
    assert blend(idx, score, 6).tolist() == [[3, 5, 9, 7, -1, -1]]  # 3: .65, 5: .6, 9: .6 (inserted later), 7: .3
    blocked = torch.zeros(1, 8, dtype=torch.bool)
    blocked[0, 0] = True
    out, short = fill_first_allowed(torch.tensor([[4, -1, -1]]), blocked)
    assert out.tolist() == [[4, 1, 2]] and short.tolist() == [True]


def test_awkward_questions_pass_official_checks(tmp_path):
    """All songs out of vocabulary, an empty question, an emoji-only title, ids never seen -> valid results."""
    vocab = make_vocab()
    sp_path, _, _ = train_sentencepiece([f"title words {i} 노래 모음" for i in range(200)], tmp_path, vocab_size=60)
    dumps = SimpleNamespace(vocab=vocab, sp=load_sentencepiece(sp_path))
    date = "2020-01-01 00:00:00.000"
    records = [
        {"id": 1, "songs": [5, 6, 7], "tags": ["nope"], "plylst_title": "", "updt_date": date},  # all OOV
        {"id": 2, "songs": [], "tags": [], "plylst_title": "", "updt_date": date},  # empty
        {"id": 3, "songs": [], "tags": [], "plylst_title": "🎵🎶✨", "updt_date": date},  # emoji only
        {"id": 987654321, "songs": [707989, 1003], "tags": ["tag1", "미지의태그"], "plylst_title": "새 노래",
         "updt_date": date},  # ids never seen, next to known ones
    ]
    path = tmp_path / "q.json"
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    _, q = ens.read_questions(path, dumps)
    n = len(q)
    rng = np.random.default_rng(1)
    m = members((rng.normal(size=(n, S)), rng.normal(size=(n, T))), (rng.normal(size=(n, S)), rng.normal(size=(n, T))))
    rec = ens.recommend(m, q, vocab, np.zeros(S, np.int32), CPU)
    results = ens.to_records(q, rec, vocab)
    assert [r["id"] for r in results] == [987654321, 1, 2, 3]
    assert rec.counts["cold start"] == 3
    gt = [{"id": r["id"], "songs": [1000], "tags": ["tag0"]} for r in records]
    evaluate_from_data(gt, results, records)  # raises on a wrong count, a duplicate or a missing id
    assert all(isinstance(s, int) for r in results for s in r["songs"])
    assert 1003 not in results[0]["songs"] and "tag1" not in results[0]["tags"]  # seen items stay out


def test_recommend_cli_defaults(tmp_path):
    """predictor/recommend.py: JSON string, dict or file; missing fields get defaults (no date filter)."""
    records, source = parse_questions('{"songs": [1, 2], "tags": [], "plylst_title": "x"}', None)
    assert records == [{"id": 0, "songs": [1, 2], "tags": [], "plylst_title": "x", "updt_date": FAR_FUTURE}]
    assert updt_to_int(FAR_FUTURE) > 2 * 10**7 and source == "--question"
    path = tmp_path / "q.json"
    path.write_text(json.dumps([{"tags": ["a"]}, {"id": 9, "updt_date": "2020-01-01 00:00:00.000"}]), encoding="utf-8")
    records, _ = parse_questions(None, str(path))
    assert [r["id"] for r in records] == [0, 9] and records[1]["updt_date"].startswith("2020")
    for bad in ((None, None), ("{", None), ("[1]", None)):
        with pytest.raises(InputError):
            parse_questions(*bad)


# ----------------------------------------------------------------------------------------------------------------
# End to end with real (briefly trained) models on the shared small dataset (tests/conftest.py)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO)


def test_train_stops_at_first_failing_step(tmp_path):
    proc = _run("train.py", f"--dataset_dir={tmp_path / 'missing'}", f"--output_dir={tmp_path / 'out'}")
    assert proc.returncode == 1 and "dump_datasets.py failed with exit status 1" in proc.stderr
    assert "songs_tags_artists_model_trainer" not in proc.stdout


@pytest.mark.slow
def test_end_to_end_with_trained_models(small_dataset, run_root, tmp_path):
    """train.py (1 epoch each) -> Ensemble.py -> evaluate; inference.py on awkward questions; recommend.py;
    the leaderboard with the BERT rows; a checkpoint of another vocabulary refused."""
    dataset, out = small_dataset / "dataset", run_root / "output"
    proc = _run("train.py", "--gpu=-1", f"--dataset_dir={dataset}", f"--output_dir={out}", "--skip_dump",
                "--epochs=1", "--mlm_epochs=1")
    assert proc.returncode == 0, proc.stderr[-2000:]

    results = tmp_path / "results.json"
    proc = _run("predictor/Ensemble.py", "--gpu=-1", f"--question_path={dataset / 'questions' / 'val.json'}",
                f"--out_path={results}", f"--output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "playlists/s" in proc.stdout and "forward" in proc.stdout
    score = evaluate_files(str(dataset / "answers" / "val.json"), str(results))
    assert 0.0 <= score["score"] <= 1.0

    test_dir = tmp_path / "ds"
    test_dir.mkdir()
    date = "2020-01-01 00:00:00.000"
    known = json.loads((dataset / "orig" / "train.json").read_text(encoding="utf-8"))[0]
    questions = [
        {"id": 1, "songs": [10**9 - 1], "tags": ["없는태그"], "plylst_title": "", "updt_date": date},
        {"id": 2, "songs": [], "tags": [], "plylst_title": "", "updt_date": date},
        {"id": 3, "songs": [], "tags": [], "plylst_title": "🎧🎧", "updt_date": date},
        {"id": 4, "songs": known["songs"][:5], "tags": known["tags"][:1], "plylst_title": known["plylst_title"],
         "updt_date": known["updt_date"]},
    ]
    (test_dir / "test.json").write_text(json.dumps(questions, ensure_ascii=False), encoding="utf-8")
    proc = _run("inference.py", "--gpu=-1", f"--dataset_dir={test_dir}", f"--output_dir={out}",
                f"--out_path={tmp_path / 'test_results.json'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rec = json.loads((tmp_path / "test_results.json").read_text(encoding="utf-8"))
    gt = [{"id": q["id"], "songs": [0], "tags": ["x"]} for q in questions]
    evaluate_from_data(gt, rec, questions)
    assert rec[0]["id"] == 4 and not set(known["songs"][:5]) & set(rec[0]["songs"])

    proc = _run("predictor/recommend.py", "--gpu=-1", f"--output_dir={out}",
                "--question=" + json.dumps({"songs": known["songs"][:3], "plylst_title": "드라이브"}))
    assert proc.returncode == 0, proc.stderr[-2000:]
    one = json.loads(proc.stdout.strip().splitlines()[-1])
    assert one["id"] == 0 and len(set(one["songs"])) == 100 and len(set(one["tags"])) == 10

    leaderboard.main(dataset_dir=str(dataset), output_dir=str(out), gpu=-1)
    table = (out / "leaderboard.md").read_text(encoding="utf-8")
    assert all(f"| {name} |" in table for name in ("bert_ensemble", "bert_songs_tags_artists", "bert_plylst_title"))

    ckpt = load_checkpoint(out / "plylst_title" / "best.pt")
    ckpt["vocab_hash"] = "0" * 16
    save_checkpoint(out / "plylst_title" / "best.pt", ckpt)
    with pytest.raises(InputError, match="vocabulary"):
        ens.load_members(out, load_dumps(out), CPU)
