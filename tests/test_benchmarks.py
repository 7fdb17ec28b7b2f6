"""Smoke test of benchmarks/run.py: every phase runs end to end on a cut-down tiny sample and the report has them all.

Covers: step 1 as a child process with its peak RSS, the training rows of both models with their matmul roofline,
inference with untrained checkpoints, evaluation and the leaderboard section, and --skip_generate reusing step 0's
files. Timings are not checked (they are what the benchmark reports, not what it asserts).
"""
from __future__ import annotations

from pathlib import Path

from benchmarks import run
from data_loader.make_sample_dataset import generate, write


def test_benchmark_report(tmp_path: Path) -> None:
    data = generate("tiny", seed=0)
    kept = {q["id"] for q in data["val.json"][:30]}
    write(str(tmp_path / "dataset"), {
        "train.json": data["train.json"][:300], "song_meta.json": data["song_meta.json"],
        "val.json": data["val.json"][:30],
        "sample_answers/val.json": [a for a in data["sample_answers/val.json"] if a["id"] in kept]})

    run.main(preset="tiny", work_dir=str(tmp_path), gpu=-1, train_steps=1, skip_generate=True, bs=8)

    report = (tmp_path / "benchmark.md").read_text(encoding="utf-8")
    for heading in ("## Preprocessing", "## Training throughput", "## Inference", "## Evaluation", "## Quality"):
        assert heading in report
    assert "| 0 make_sample_dataset (tiny) | skipped (files exist) |" in report
    assert "| 1 dump_datasets |" in report
    rows = [line for line in report.splitlines() if line.startswith(("| songs_tags_artists |", "| plylst_title |"))]
    assert [r.split(" | ")[1] for r in rows] == ["denoising", "denoising + ranking", "fine-tune",
                                                 "fine-tune + ranking", "MLM"]
    assert "| 30 | untrained weights |" in report
    assert "| playlist_knn |" in report
    assert (tmp_path / "untrained" / "plylst_title" / "best.pt").is_file()
