"""Tests for common/metric.py and evaluate.py, the arena metric (song nDCG@100, tag nDCG@10, score = 0.85 * song + 0.15 * tag).

Covers: agreement with an independent implementation of the formula in docs/original.md section 5 on random valid
results; hand-computed examples written as expressions; the CLI's exact output; every invalid input failing
with a non-zero exit and a message naming the playlist id or the file; and the per-question-type breakdown.
All data is built in tmp_path. Run: python -m pytest tests/test_evaluate.py -q
"""

import copy
import gzip
import json
import math
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.arena import QUESTION_TYPES, question_type
from common.metric import IDCG, ResultsError, evaluate_from_data, idcg, ndcg
from evaluate import evaluate_files

SCRIPT = Path(__file__).resolve().parents[1] / "evaluate.py"
SONG_POOL = range(5000)
TAG_POOL = [f"tag{i}" for i in range(60)]


# ----------------------------------------------------------------------------------------------------------------
# Fixtures


def make_case(seed: int, n: int = 300) -> tuple[list[dict], list[dict], list[dict]]:
    """Random answers (1..100 songs, 1..15 tags), valid results sharing some items with them, in another order,
    and questions cycling through the four types."""
    rng = random.Random(seed)
    ids = rng.sample(range(100_000, 200_000), n)
    gt, rec, question = [], [], []
    for k, pid in enumerate(ids):
        songs = rng.sample(SONG_POOL, rng.randint(1, 100))
        tags = rng.sample(TAG_POOL, rng.randint(1, 15))
        gt.append({"id": pid, "songs": songs, "tags": tags})
        rec.append({"id": pid, "songs": _ranked(rng, songs, SONG_POOL, 100), "tags": _ranked(rng, tags, TAG_POOL, 10)})
        kind = QUESTION_TYPES[k % 4]
        question.append({
            "id": pid,
            "songs": [rng.choice(SONG_POOL)] if "songs" in kind else [],
            "tags": [rng.choice(TAG_POOL)] if "tags" in kind else [],
            "plylst_title": "t",
        })
    rng.shuffle(rec)
    return gt, rec, question


def _ranked(rng: random.Random, answer: list, pool, size: int) -> list:
    """``size`` distinct items of which a random number are hits from ``answer``, in random order."""
    hits = rng.sample(answer, rng.randint(0, min(len(answer), size)))
    answer_set = set(answer)
    misses = rng.sample([x for x in pool if x not in answer_set], size - len(hits))
    items = hits + misses
    rng.shuffle(items)
    return items


def reference_ndcg(gt: list, rec: list) -> float:
    """docs/original.md 5 written independently: gains over positions 1.., discount 1/ln(position + 1)."""
    gains = [1.0 if item in gt else 0.0 for item in rec]
    dcg = sum(g / math.log(pos + 1) for pos, g in enumerate(gains, start=1))
    ideal = sum(1.0 / math.log(pos + 1) for pos in range(1, len(gt) + 1))
    return dcg / ideal


def reference_scores(gt: list[dict], rec: list[dict]) -> tuple[float, float, float]:
    recs = {r["id"]: r for r in rec}
    music = sum(reference_ndcg(g["songs"], recs[g["id"]]["songs"][:100]) for g in gt) / len(gt)
    tag = sum(reference_ndcg(g["tags"], recs[g["id"]]["tags"][:10]) for g in gt) / len(gt)
    return music, tag, 0.85 * music + 0.15 * tag


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "evaluate", *args], capture_output=True, text=True)


# ----------------------------------------------------------------------------------------------------------------
# (a) agreement with an independent implementation


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_matches_independent_implementation(seed):
    gt, rec, _ = make_case(seed)
    result = evaluate_from_data(gt, rec)
    music, tag, score = reference_scores(gt, rec)
    assert result["count"] == len(gt)
    assert result["music_ndcg"] == pytest.approx(music, abs=1e-9)
    assert result["tag_ndcg"] == pytest.approx(tag, abs=1e-9)
    assert result["score"] == pytest.approx(score, abs=1e-9)
    assert 0.0 < result["music_ndcg"] < 1.0 and 0.0 < result["tag_ndcg"] < 1.0


# ----------------------------------------------------------------------------------------------------------------
# (b) hand-computed examples


def test_idcg_table():
    assert len(IDCG) == 101
    assert IDCG[0] == 0.0
    assert IDCG[1] == pytest.approx(1 / math.log(2))
    assert IDCG[3] == pytest.approx(1 / math.log(2) + 1 / math.log(3) + 1 / math.log(4))
    # Beyond the official table of 0..100 the value is computed, not an IndexError.
    assert idcg(150) == pytest.approx(sum(1 / math.log(i + 2) for i in range(150)))
    assert idcg(100) == IDCG[100]


def test_ndcg_hand_examples():
    # Hits at 0-based positions 0 and 2 of an answer of two.
    expected = (1 / math.log(2) + 1 / math.log(4)) / (1 / math.log(2) + 1 / math.log(3))
    assert ndcg([1, 2], [1, 9, 2]) == pytest.approx(expected)
    assert ndcg([1, 2], [2, 1, 9]) == pytest.approx(1.0)
    assert ndcg([5], [7, 8, 9]) == 0.0
    # One hit at the last of 100 positions.
    assert ndcg([42], list(range(1000, 1099)) + [42]) == pytest.approx((1 / math.log(101)) / (1 / math.log(2)))
    # A 12-tag answer, all top 10 correct: IDCG counts all 12, so the best possible is below 1.
    tags = [f"t{i}" for i in range(12)]
    best = sum(1 / math.log(i + 2) for i in range(10)) / sum(1 / math.log(i + 2) for i in range(12))
    assert ndcg(tags, tags[:10]) == pytest.approx(best)
    assert best < 1.0
    assert ndcg([], [1, 2, 3]) == 0.0


def test_evaluate_from_data_hand_example():
    gt = [{"id": 1, "songs": [1, 2], "tags": ["a"]}, {"id": 2, "songs": [3], "tags": ["b", "c"]}]
    rec = [
        {"id": 2, "songs": list(range(100, 200)), "tags": ["c"] + [f"x{i}" for i in range(9)]},
        {"id": 1, "songs": [1, 9, 2] + list(range(100, 197)), "tags": ["a"] + [f"x{i}" for i in range(9)]},
    ]
    music = ((1 / math.log(2) + 1 / math.log(4)) / (1 / math.log(2) + 1 / math.log(3)) + 0.0) / 2
    tag = (1.0 + (1 / math.log(2)) / (1 / math.log(2) + 1 / math.log(3))) / 2
    result = evaluate_from_data(gt, rec)
    assert result["count"] == 2
    assert result["music_ndcg"] == pytest.approx(music)
    assert result["tag_ndcg"] == pytest.approx(tag)
    assert result["score"] == pytest.approx(0.85 * music + 0.15 * tag)


def test_question_type():
    assert question_type({"songs": [1], "tags": []}) == "songs only"
    assert question_type({"songs": [1], "tags": ["a"]}) == "songs+tags"
    assert question_type({"songs": [], "tags": ["a"]}) == "tags only"
    assert question_type({"songs": [], "tags": [], "plylst_title": "x"}) == "title only"
    assert QUESTION_TYPES == ("songs only", "songs+tags", "tags only", "title only")


# ----------------------------------------------------------------------------------------------------------------
# (c) CLI output


LINES = re.compile(r"music nDCG: (\d\.\d{6})\nTag nDCG: (\d\.\d{6})\nScore: (\d\.\d{6})\n")


def test_cli_prints_three_lines(tmp_path):
    gt, rec, _ = make_case(7, n=50)
    gt_path, rec_path = write_json(tmp_path / "gt.json", gt), write_json(tmp_path / "rec.json", rec)
    out = run_cli(f"--gt_fname={gt_path}", f"--rec_fname={rec_path}")
    assert out.returncode == 0, out.stderr
    match = LINES.fullmatch(out.stdout)
    assert match, out.stdout
    result = evaluate_from_data(gt, rec)
    assert match.groups() == tuple(f"{result[k]:.6f}" for k in ("music_ndcg", "tag_ndcg", "score"))


def test_numpy_ints_in_memory():
    # The predictor may hand over numpy integers before they are written to JSON.
    gt, rec, _ = make_case(13, n=20)
    as_numpy = [{**r, "id": np.int64(r["id"]), "songs": [np.int64(s) for s in r["songs"]]} for r in rec]
    assert evaluate_from_data(gt, as_numpy) == evaluate_from_data(gt, rec)


def test_gzipped_files(tmp_path):
    gt, rec, _ = make_case(8, n=20)
    for name, data in (("gt.json.gz", gt), ("rec.json.gz", rec)):
        with gzip.open(tmp_path / name, "wt", encoding="utf-8") as f:
            json.dump(data, f)
    result = evaluate_files(tmp_path / "gt.json.gz", tmp_path / "rec.json.gz")
    assert result == evaluate_from_data(gt, rec)


# ----------------------------------------------------------------------------------------------------------------
# (d) invalid input


def _drop_first(rec):
    del rec[0]


def _add_extra(rec):
    rec.append({"id": 999_999, "songs": list(range(100)), "tags": [f"x{i}" for i in range(10)]})


INVALID = {
    # case: (edit of a valid results list, text the message must contain besides the file name)
    "missing id": (_drop_first, "{id0}"),
    "extra id": (_add_extra, "999999"),
    "99 songs": (lambda rec: rec[0]["songs"].pop(), "{id0}"),
    "11 tags": (lambda rec: rec[0]["tags"].append("one more"), "{id0}"),
    "duplicate song": (lambda rec: rec[0]["songs"].__setitem__(5, rec[0]["songs"][4]), "{id0}"),
    "duplicate tag": (lambda rec: rec[0]["tags"].__setitem__(9, rec[0]["tags"][0]), "{id0}"),
    "duplicate playlist id": (lambda rec: rec.append(copy.deepcopy(rec[0])), "{id0}"),
    "string song id": (lambda rec: rec[0]["songs"].__setitem__(0, "12"), "{id0}"),
    "songs not a list": (lambda rec: rec[0].__setitem__("songs", 5), "{id0}"),
    "missing tags key": (lambda rec: rec[0].pop("tags"), "{id0}"),
    "missing id key": (lambda rec: rec[0].pop("id"), "record 0"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_results(tmp_path, case):
    gt, rec, _ = make_case(9, n=10)
    edit, expected = INVALID[case]
    expected = expected.format(id0=rec[0]["id"])
    edit(rec)
    gt_path, rec_path = write_json(tmp_path / "gt.json", gt), write_json(tmp_path / "rec.json", rec)
    with pytest.raises(ResultsError, match=re.escape(expected)):
        evaluate_files(gt_path, rec_path)
    out = run_cli(f"--gt_fname={gt_path}", f"--rec_fname={rec_path}")
    assert out.returncode != 0
    assert out.stdout == ""
    assert str(rec_path) in out.stderr and expected in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_results_not_a_list(tmp_path):
    gt, rec, _ = make_case(9, n=3)
    with pytest.raises(ResultsError, match="expected a list of playlists, got dict"):
        evaluate_files(write_json(tmp_path / "gt.json", gt), write_json(tmp_path / "rec.json", {"results": rec}))


def test_duplicate_answer_id():
    gt, rec, _ = make_case(9, n=3)
    with pytest.raises(ResultsError, match=f"answers: record 3 .*duplicate playlist id {gt[0]['id']}"):
        evaluate_from_data(gt + [gt[0]], rec)


def test_missing_question(tmp_path):
    gt, rec, question = make_case(9, n=5)
    pid = question.pop(2)["id"]
    with pytest.raises(ResultsError, match=f"questions: no question for playlist id {pid}"):
        evaluate_from_data(gt, rec, question)


def test_malformed_json(tmp_path):
    gt, rec, _ = make_case(9, n=3)
    gt_path = write_json(tmp_path / "gt.json", gt)
    rec_path = tmp_path / "rec.json"
    rec_path.write_text('[{"id": 1,\n  "songs": [1, 2,, 3]}]', encoding="utf-8")
    out = run_cli(f"--gt_fname={gt_path}", f"--rec_fname={rec_path}")
    assert out.returncode != 0
    assert f"{rec_path}: malformed JSON at line 2, column 18" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_file(tmp_path):
    gt, _, _ = make_case(9, n=3)
    gt_path = write_json(tmp_path / "gt.json", gt)
    missing = tmp_path / "no_such_results.json"
    out = run_cli(f"--gt_fname={gt_path}", f"--rec_fname={missing}")
    assert out.returncode != 0
    assert f"{missing}: no such file" in out.stderr
    assert "Traceback" not in out.stderr


# ----------------------------------------------------------------------------------------------------------------
# (e) by question type


def test_by_type_recombines():
    gt, rec, question = make_case(10, n=203)
    result = evaluate_from_data(gt, rec, question)
    by_type = result["by_type"]
    assert tuple(by_type) == QUESTION_TYPES
    assert sum(r["count"] for r in by_type.values()) == result["count"] == 203
    for key in ("music_ndcg", "tag_ndcg", "score"):
        recombined = sum(r[key] * r["count"] for r in by_type.values()) / result["count"]
        assert recombined == pytest.approx(result[key], abs=1e-12)
    # Each type's numbers are the plain metric over its own playlists.
    songs_only = {q["id"] for q in question if question_type(q) == "songs only"}
    music, tag, score = reference_scores(
        [g for g in gt if g["id"] in songs_only], [r for r in rec if r["id"] in songs_only]
    )
    assert by_type["songs only"]["music_ndcg"] == pytest.approx(music, abs=1e-9)
    assert by_type["songs only"]["tag_ndcg"] == pytest.approx(tag, abs=1e-9)
    assert by_type["songs only"]["score"] == pytest.approx(score, abs=1e-9)


def test_by_type_only_present_types():
    gt, rec, question = make_case(11, n=8)
    for q in question:
        q["songs"], q["tags"] = [], ["a"]
    assert list(evaluate_from_data(gt, rec, question)["by_type"]) == ["tags only"]


def test_cli_by_type_table(tmp_path):
    gt, rec, question = make_case(12, n=40)
    out = run_cli(
        f"--gt_fname={write_json(tmp_path / 'gt.json', gt)}",
        f"--rec_fname={write_json(tmp_path / 'rec.json', rec)}",
        f"--question_fname={write_json(tmp_path / 'q.json', question)}",
    )
    assert out.returncode == 0, out.stderr
    head, table = out.stdout.split("\n\n")
    assert LINES.fullmatch(head + "\n")
    header, *rows = table.strip().splitlines()
    assert header.split() == ["question", "type", "count", "music", "nDCG", "Tag", "nDCG", "Score"]
    by_type = evaluate_from_data(gt, rec, question)["by_type"]
    assert len(rows) == len(by_type) == 4
    for row, (name, r) in zip(rows, by_type.items()):
        assert row.startswith(name)
        values = [f"{r[key]:.6f}" for key in ("music_ndcg", "tag_ndcg", "score")]
        assert row[len(name):].split() == [str(r["count"]), *values]
        assert len(row) == len(header)  # aligned columns


def test_ndcg_rows_equals_ndcg_on_random_rankings_with_ties():
    """The fusion's row-wise nDCG (common/metric.py ndcg_rows, over a hit matrix) is the arena nDCG of the same
    ranked lists: random pools, answers of 0..30 items, keys full of ties ranked by the fusion's exact top-k."""
    from common.metric import ideal_dcg, ndcg_rows
    from predictor.fusion import top_columns

    rng = np.random.default_rng(7)
    for k in (10, 100):
        n, width = 200, 150
        items = np.stack([rng.permutation(1000)[:width] for _ in range(n)])  # distinct items per row
        items[rng.random((n, width)) < 0.1] = -1  # pads
        key = rng.integers(0, 4, (n, width)).astype(np.float32)  # 4 values: ties everywhere, also at the k-th place
        key[items < 0] = -np.inf
        answers = [rng.choice(1000, rng.integers(0, 31), replace=False).tolist() for _ in range(n)]
        cols = top_columns(key, k)
        hits = np.array([[x in set(a) for x in row] for row, a in zip(items, answers)]) & (items >= 0)
        got = ndcg_rows(hits, cols, ideal_dcg(answers))
        ranked = [[int(items[r, c]) for c in cols[r] if c >= 0] for r in range(n)]
        want = [ndcg(a, lst) for a, lst in zip(answers, ranked)]
        assert np.allclose(got, want, rtol=0, atol=1e-12) and any(w > 0 for w in want) and any(not a for a in answers)
