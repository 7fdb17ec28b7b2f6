"""Watching a run: TensorBoard scalars (trainer/scalars.py) and validation curves (reports/curves.py).

Covers: a fit writes train/loss, train/lr, train/steps_per_s at every progress line and train/epoch_loss and every
validation metric at every validation, at the optimizer step, equal to what log.txt and the history hold; without
tensorboard (import refused) the fit runs, logs one line and writes no event file; `tensorboard=False` writes none;
plot_runs draws one PNG per run with a scored validation (model 2's MLM-only history and folders without a
checkpoint are skipped) and the CLI lists them. Toy model of tests/test_trainer.py, CPU, seconds.
Run: python -m pytest tests/test_watching.py -q
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reports.curves import plot_runs, run_history
from test_trainer import REPO, ToyData, toy_trainer
from trainer.checkpoint import save_checkpoint
from trainer.loop import Stage

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def scored_stage(epochs: int = 3) -> Stage:
    scores = iter([0.1, 0.3, 0.2, 0.4, 0.5])
    return Stage("train", ToyData(2), epochs, lambda m: {"score": next(scores), "music_ndcg": 0.25}, valid_every=1)


def test_tensorboard_scalars_match_the_log_and_the_history(tmp_path: Path):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    trainer = toy_trainer(tmp_path, [scored_stage()], log_every=2)
    trainer.fit()
    events = event_accumulator.EventAccumulator(str(tmp_path / "toy"))
    events.Reload()
    steps = {tag: [e.step for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    values = {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    assert set(steps) == {"train/loss", "train/lr", "train/steps_per_s", "train/epoch_loss", "val/score",
                          "val/music_ndcg"}
    assert steps["train/loss"] == steps["train/lr"] == steps["train/steps_per_s"] == [2, 4, 6]  # every log_every
    assert steps["val/score"] == steps["train/epoch_loss"] == [h["step"] for h in trainer.history]
    assert values["val/score"] == pytest.approx([h["score"] for h in trainer.history])
    assert values["train/epoch_loss"] == pytest.approx([h["loss"] for h in trainer.history])
    progress = [line for line in (tmp_path / "toy" / "log.txt").read_text().splitlines() if " steps/s " in line]
    for tag, field in (("train/loss", " loss "), ("train/lr", " lr ")):
        logged = [float(line.split(field)[1].split()[0]) for line in progress]
        assert values[tag] == pytest.approx(logged, rel=1e-4)


def test_without_tensorboard_training_runs_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # any import of it raises ImportError
    trainer = toy_trainer(tmp_path, [scored_stage(1)])
    assert trainer.fit()["step"] == 2
    log = (tmp_path / "toy" / "log.txt").read_text()
    assert log.count("tensorboard is not installed") == 1
    assert not list((tmp_path / "toy").glob("events.out.tfevents.*"))
    off = toy_trainer(tmp_path / "off", [scored_stage(1)], tensorboard=False)
    off.fit()
    assert not list((tmp_path / "off" / "toy").glob("events.out.tfevents.*"))


def history(stage: str, scores: list[float]) -> list[dict]:
    return [{"stage": stage, "epoch": e, "step": 10 * e, "score": s, "music_ndcg": s, "tag_ndcg": s / 2}
            for e, s in enumerate(scores, start=1)]


def test_plot_runs_draws_one_png_per_scored_run(tmp_path: Path):
    out = tmp_path / "output"
    mlm = [{"stage": "mlm", "epoch": 1, "step": 5, "mlm_loss": 7.0, "mlm_acc": 0.1}]
    save_checkpoint(out / "songs_tags_artists" / "last.pt", {"history": history("train", [0.1, 0.3, 0.2])})
    save_checkpoint(out / "plylst_title" / "best.pt", {"history": mlm + history("finetune", [0.2, 0.4])})
    save_checkpoint(out / "plylst_title_mlm_only" / "last.pt", {"history": mlm})
    (out / "dumps").mkdir()
    assert run_history(out / "dumps") is None
    assert [h["score"] for h in run_history(out / "songs_tags_artists")] == [0.1, 0.3, 0.2]

    written = plot_runs(out)
    assert written == [out / "curves" / "plylst_title.png", out / "curves" / "songs_tags_artists.png"]
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in written)
    assert plot_runs(tmp_path / "nothing_here") == []

    proc = subprocess.run([sys.executable, "-m", "reports.curves", f"--output_dir={out}"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.split() == [str(p) for p in written]
