"""Smoke test of benchmarks/run.py: every phase runs end to end on a cut-down tiny sample, and what the report says
agrees with what the run wrote.

Covers: step 1 as a child process, its sizes line against the dumps' meta.json; the training rows of both models
(every case, positive times, step / matmuls and playlists/s consistent with the times shown); inference with
untrained checkpoints (30 questions, a valid results.json); the evaluation row against an independent nDCG of that
results.json (tests/_references.py); the quality section is the leaderboard's markdown, and its playlist_knn row
matches the nDCG of the results the leaderboard wrote; --skip_generate reusing step 0's files. Timings are not
compared with anything (they are what the benchmark reports).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _references import ndcg

from benchmarks import run
from common.cli import UsageError
from common.metric import evaluate_from_data
from data_loader.dumps import load_dumps
from data_loader.make_sample_dataset import MARKER, OUTPUT_FILES, generate, not_ours, write


def rows(report: str, first_cell: str) -> list[list[str]]:
    """The cells of the markdown table rows whose first cell starts with `first_cell`."""
    return [[c.strip() for c in line.strip("|").split("|")] for line in report.splitlines()
            if line.startswith(f"| {first_cell}")]


def number(cell: str) -> float:
    return float(cell.replace(",", ""))


def scores(answers: list[dict], results: list[dict]) -> tuple[float, float, float]:
    by_id = {r["id"]: r for r in results}
    music = sum(ndcg(a["songs"], by_id[a["id"]]["songs"][:100]) for a in answers) / len(answers)
    tag = sum(ndcg(a["tags"], by_id[a["id"]]["tags"][:10]) for a in answers) / len(answers)
    return music, tag, 0.85 * music + 0.15 * tag


def read(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_benchmark_report(tmp_path: Path) -> None:
    data = generate("tiny", seed=0)
    kept = {q["id"] for q in data["val.json"][:30]}
    write(str(tmp_path / "dataset"), {
        "train.json": data["train.json"][:300], "song_meta.json": data["song_meta.json"],
        "val.json": data["val.json"][:30],
        "sample_answers/val.json": [a for a in data["sample_answers/val.json"] if a["id"] in kept]})

    run.main(preset="tiny", work_dir=str(tmp_path), gpu=-1, train_steps=1, skip_generate=True, bs=8)

    report = (tmp_path / "benchmark.md").read_text(encoding="utf-8")
    assert "| 0 make_sample_dataset (tiny) | skipped (files exist) |" in report
    assert len(rows(report, "1 dump_datasets")) == 1
    meta = load_dumps(tmp_path / "output").meta
    v = meta["vocab"]
    assert (f"vocabulary: songs {v['n_songs']:,}, tags {v['n_tags']:,}, artists {v['n_artists']:,} "
            f"(model 1 table {v['size']:,} rows); title BPE pieces {meta['sentencepiece']['vocab_size']:,}") in report

    training = rows(report, "songs_tags_artists |") + rows(report, "plylst_title |")
    assert [r[1] for r in training] == ["denoising", "denoising + ranking", "fine-tune", "fine-tune + ranking", "MLM"]
    for r in training:
        step_ms, per_s, build_ms, matmul_ms, ratio = map(number, r[3:8])
        assert step_ms > 0 and matmul_ms > 0 and build_ms >= 0
        # the cells are rounded (times to 0.1 ms, the ratio to 0.01, per_s to 1): the ratio of the shown times
        # can be off by that rounding, so compare within the interval it allows
        lo, hi = (step_ms - 0.05) / (matmul_ms + 0.05), (step_ms + 0.05) / max(matmul_ms - 0.05, 1e-9)
        assert lo - 0.005 <= ratio <= hi + 0.005, r
        assert 8000 / (step_ms + 0.05) - 0.5 <= per_s <= 8000 / (step_ms - 0.05) + 0.5, r  # full batches of 8

    inference = rows(report, "30 | untrained weights")
    assert len(inference) == 1 and all(number(c) > 0 for c in inference[0][2:4])
    questions, answers = read(tmp_path / "dataset" / "val.json"), read(tmp_path / "dataset" / "sample_answers" / "val.json")
    results = read(tmp_path / "inference" / "results.json")
    evaluate_from_data(answers, results, questions)  # 30 valid answers, or it raises
    assert (tmp_path / "untrained" / "plylst_title" / "best.pt").is_file()
    evaluation = report.split("## Evaluation")[1].split("## Quality")[0]
    (row,) = rows(evaluation, "30 |")
    assert [number(c) for c in row[3:6]] == pytest.approx(scores(answers, results), abs=6e-7)  # %.6f

    board = (tmp_path / "output" / "leaderboard.md").read_text(encoding="utf-8").rstrip()
    assert report.split("## Quality\n\n")[1].startswith(board)
    (knn,) = rows(board, "playlist_knn | 30")
    local_answers = read(tmp_path / "dataset" / "answers" / "val.json")
    knn_results = read(tmp_path / "output" / "leaderboard" / "playlist_knn" / "results.json")
    assert [number(c) for c in knn[2:5]] == pytest.approx(scores(local_answers, knn_results), abs=6e-7)


def test_work_folder_from_before_the_step0_marker_is_made_again(tmp_path: Path) -> None:
    """A work folder whose sample step 0 wrote before it recorded its files (no marker; temps of that time's naming
    left by a killed run) is recognised as the benchmark's own: step 0 makes the sample again, instead of refusing."""
    dataset = tmp_path / "dataset"
    write(str(dataset), generate("tiny", seed=1))  # as step 0 wrote it then: no marker
    pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                             check=True).stdout)  # a writer that is gone
    stale = [dataset / f".train.json.{pid}.tmp", dataset / "sample_answers" / f".val.json.{pid}.tmp"]
    for path in stale:
        path.write_text("half written")

    lines = run.preprocess("tiny", dataset, tmp_path / "output", skip_generate=False)

    assert (dataset / MARKER).is_file() and not_ours(str(dataset), list(OUTPUT_FILES)) == []
    assert not any(path.exists() for path in stale)
    assert (dataset / "train.json").read_bytes() == json.dumps(generate("tiny", seed=0)["train.json"],
                                                               ensure_ascii=False).encode("utf-8")
    (row,) = rows("\n".join(lines), "0 make_sample_dataset (tiny)")
    assert number(row[1]) > 0


@pytest.mark.parametrize("files, hint", [
    (["train.json", "song_meta.json"], "choose another --work_dir"),
    (["train.json", "song_meta.json", "val.json", "sample_answers/val.json", MARKER],
     "add --skip_generate to benchmark on these files, or choose another --work_dir"),
])
def test_work_folder_with_data_step0_did_not_make_is_refused(tmp_path: Path, files, hint) -> None:
    """Real data (no sample answers), or a marked sample edited since: one line saying what to do, nothing written."""
    dataset = tmp_path / "dataset"
    for name in files:
        (dataset / name).parent.mkdir(parents=True, exist_ok=True)
        (dataset / name).write_text(json.dumps({"files": {}}) if name == MARKER else "[]")
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(UsageError) as e:
        run.main(preset="tiny", work_dir=str(tmp_path), gpu=-1)
    foreign = ", ".join(f for f in OUTPUT_FILES if f in files)
    assert str(e.value) == (f"--work_dir={tmp_path}: {dataset} holds {foreign}, not written by step 0 or changed "
                            f"since (real data?); nothing was written: {hint}")
    assert sorted(p for p in tmp_path.rglob("*")) == before
