"""The training machinery: trainer/noam.py, trainer/loop.py, trainer/checkpoint.py, trainer/validation.py and
the two entry points.

Covers: Noam values (peaks 1.0206e-3 for d=240 and 1.3762e-3 for d=132); early_stopping cases; the ranking-weight
switch; the original's defaults (validation at epoch 1 and every 5th, ranking term from epoch 50, patience 50); early
stopping and the Adam state carried into a new stage with TF's global bias correction, the trained
parameters' moments kept (toy model); a few real steps lower both models' losses; background prefetching changes
nothing; resume ends bit for bit where an uninterrupted run ends (weights, Adam state, schedule, last validation;
CPU): model 1 mid-epoch and at an epoch boundary, model 1 after a crash (the end-of-epoch checkpoint), model 2 in
MLM, at the MLM -> fine-tuning boundary and in fine-tuning, and model 2 through its entry point (--resume); a
refused vocabulary hash; a time-boxed fit leaves best.pt, last.pt, log.txt, config.json and the fixed log line;
both entry points end to end on a tiny dump (subprocess, --gpu=-1, --amp on the CPU is a logged no-op).
Validation itself: tests/test_validation.py.
Data: tests/conftest.py (240 generated playlists through step 1). Run: python -m pytest tests/test_trainer.py -q
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from common.jsonio import InputError
from data_loader.dumps import load_dumps
from data_loader.plylst_title_data import TitleFinetuneData, TitleMLMData, mlm_validation_batches
from data_loader.songs_tags_artists_data import SongsTagsArtistsData
from models.base import PlaylistModel
from models.plylst_title import PlylstTitleConfig, PlylstTitleModel
from models.songs_tags_artists import SongsTagsArtistsConfig, SongsTagsArtistsModel
from trainer.checkpoint import load_checkpoint, load_model
from trainer.loop import Stage, TrainConfig, Trainer, early_stopping
from trainer.noam import noam_lr, noam_scheduler
from trainer.plylst_title_model_trainer import main as train_model2
from trainer.validation import validate, validate_mlm

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
LOG_LINE = re.compile(r"^\[[a-z_:]+\] epoch +\d+ step +\d+ loss (\d+\.\d{6}|nan) \| (\w+ \d+(\.\d{6})? ?)+ \| "
                      r"lr \d\.\d{4}e[-+]\d\d elapsed \d+\.\ds$")
NDCG_METRICS = re.compile(r"\| music_ndcg \d\.\d{6} tag_ndcg \d\.\d{6} score \d\.\d{6} val_loss \d+\.\d{6} "
                          r"count \d+( (padded_songs|padded_tags|date_relaxed) \d+)* \|")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# --------------------------------------------------------------------------------------------------------------
# Noam and early stopping


def test_noam_values():
    assert noam_lr(4000, 240, 4000) == pytest.approx(1.0206e-3, rel=1e-4)
    assert noam_lr(4000, 132, 4000) == pytest.approx(1.3762e-3, rel=1e-4)
    assert noam_lr(1, 240, 4000) == pytest.approx(240 ** -0.5 * 4000 ** -1.5)
    assert noam_lr(16000, 240, 4000) == pytest.approx(240 ** -0.5 * 16000 ** -0.5)
    lrs = [noam_lr(s, 132, 4000) for s in range(1, 8001)]
    assert int(np.argmax(lrs)) + 1 == 4000
    with pytest.raises(ValueError):
        noam_lr(0, 240, 4000)


def test_noam_scheduler_sets_the_lr_of_every_step():
    p = nn.Parameter(torch.zeros(2))
    opt = torch.optim.Adam([p], lr=1.0)
    sched = noam_scheduler(opt, 240, 4000)
    for step in range(1, 6):  # the lr in force at optimizer step `step`
        assert opt.param_groups[0]["lr"] == pytest.approx(noam_lr(step, 240, 4000))
        opt.step()
        sched.step()
    noam_scheduler(opt, 240, 4000)  # a new stage restarts at step 1
    assert opt.param_groups[0]["lr"] == pytest.approx(noam_lr(1, 240, 4000))
    with pytest.raises(ValueError):
        noam_scheduler(torch.optim.Adam([p], lr=1e-3), 240, 4000)


def test_early_stopping_cases():
    assert early_stopping(0.1, None, 0, 1, 50) == (0.1, 1, True, False)
    assert early_stopping(0.2, 0.1, 1, 5, 50) == (0.2, 5, True, False)
    assert early_stopping(0.2, 0.2, 5, 10, 50) == (0.2, 5, False, False)  # equal is no improvement
    assert early_stopping(0.1, 0.2, 5, 50, 50) == (0.2, 5, False, False)
    assert early_stopping(0.1, 0.2, 5, 55, 50) == (0.2, 5, False, True)  # epoch >= best_epoch + patience
    assert early_stopping(0.3, 0.2, 5, 55, 50) == (0.3, 55, True, False)


# --------------------------------------------------------------------------------------------------------------
# a toy model for the stage mechanics


@dataclass
class ToyConfig:
    d_model: int = 16


class ToyModel(PlaylistModel):
    """loss = (a . x)^2 / 2, plus b . x in batches marked "use_b" (stage B); records the ranking weights."""

    name = "toy"
    config_class = ToyConfig

    def __init__(self, config: ToyConfig):
        super().__init__()
        self.config = config
        self.a = nn.Parameter(torch.ones(3))
        self.b = nn.Parameter(torch.ones(3))
        self.weights: list[float] = []

    def loss(self, batch, ranking_weight=0.0):
        self.weights.append(ranking_weight)
        loss = (self.a * batch["x"]).sum() ** 2 / 2
        if "use_b" in batch:
            loss = loss + (self.b * batch["x"]).sum()
        return loss, loss.detach()


class ToyData:
    def __init__(self, n_batches: int, use_b: bool = False):
        self.n, self.use_b = n_batches, use_b

    def epoch(self, epoch: int) -> list[dict[str, torch.Tensor]]:
        x = torch.full((3,), 2.0)
        return [{"x": x, "use_b": torch.ones(1)} if self.use_b else {"x": x} for _ in range(self.n)]


def toy_trainer(tmp_path: Path, stages: list[Stage], **config) -> Trainer:
    config = {"warmup_steps": 4, "progress": False, **config}
    return Trainer(ToyModel(ToyConfig()), stages, tmp_path / "toy", CPU, TrainConfig(**config),
                   {"vocab_hash": "hash", "sp_hash": "sp"})


def test_ranking_weight_switches_on_at_its_epoch_and_early_stopping_stops(tmp_path: Path):
    scores = iter([0.5, 0.4, 0.3, 0.2, 0.1])
    stage = Stage("train", ToyData(2), 10, lambda m: {"score": next(scores)}, valid_every=1,
                  ranking_from_epoch=3, ranking_weight=2.0)
    trainer = toy_trainer(tmp_path, [stage], patience=2)
    result = trainer.fit()
    assert trainer.model.weights == [0.0] * 4 + [2.0] * 2  # epochs 1-2 without, epoch 3 with the ranking term
    assert result["best_epoch"] == 1 and trainer.step == 6  # stopped at epoch 3 = best 1 + patience 2
    assert load_checkpoint(tmp_path / "toy" / "last.pt")["early_stopped"]
    assert load_checkpoint(tmp_path / "toy" / "best.pt")["epoch"] == 1
    assert "early stop at epoch 3" in (tmp_path / "toy" / "log.txt").read_text()
    assert trainer.fit(resume=True)["step"] == 6  # nothing left to do


def test_default_stage_validates_every_5_epochs_ranks_from_50_and_stops_after_50(tmp_path: Path):
    """The defaults are the original's (docs/original.md 2.3, 2.4): validation at epoch 1 and every 5th, the ranking term
    (weight 2) from epoch 50, early stop at the first validation with epoch >= best epoch + 50."""
    scores = iter([0.5] + [0.1] * 20)
    stage = Stage("train", ToyData(1), 300, lambda m: {"score": next(scores)})
    trainer = Trainer(ToyModel(ToyConfig()), [stage], tmp_path / "toy", CPU, TrainConfig(progress=False),
                      {"vocab_hash": "hash", "sp_hash": "sp"})
    trainer.fit()
    assert [h["epoch"] for h in trainer.history] == [1, *range(5, 56, 5)]  # stopped at 55 >= 1 + 50
    assert trainer.model.weights == [0.0] * 49 + [2.0] * 6


def test_new_stage_keeps_adam_state_with_tf_global_bias_correction(tmp_path: Path):
    n_a = 20
    stages = [Stage("a", ToyData(n_a), 1, lambda m: {"aux": 0.0}, early_stop=False, ranking_from_epoch=None),
              Stage("b", ToyData(5, use_b=True), 1, lambda m: {"score": 0.0})]
    trainer = toy_trainer(tmp_path, stages, max_steps=n_a + 1)
    trainer.fit()
    state = trainer.optimizer.state[trainer.model.b]
    assert float(state["step"]) == n_a + 1  # primed at n_a, then one stage-B step
    g, t = 2.0, n_a + 1
    m_hat = 0.1 * g / (1 - 0.9 ** t)
    v_hat = 0.02 * g * g / (1 - 0.98 ** t)
    expected = noam_lr(1, 16, 4) * m_hat / (v_hat ** 0.5 + 1e-9)  # ~0.47 lr here; per-parameter Adam would give lr
    assert torch.allclose(1.0 - trainer.model.b.detach(), torch.full((3,), expected), rtol=1e-5)
    # `a`, trained in stage A, keeps its moments: v after one more step is 0.98 v_A + 0.02 g^2, not 0.02 g^2
    stage_a_only = toy_trainer(tmp_path / "a_only", stages, max_steps=n_a)
    stage_a_only.fit()
    v_a = stage_a_only.optimizer.state[stage_a_only.model.a]["exp_avg_sq"]
    state_a = trainer.optimizer.state[trainer.model.a]
    assert float(state_a["step"]) == n_a + 1 and bool((state_a["exp_avg_sq"] >= 0.98 * v_a).all())
    assert bool((v_a > 0).all())


# --------------------------------------------------------------------------------------------------------------
# real models on the tiny dump


def model1_trainer(root: Path, run: str = "m1", seed: int = 0, epochs: int = 2, init_seed: int | None = None,
                   **config) -> Trainer:
    dumps = load_dumps(root / "output")
    torch.manual_seed(seed if init_seed is None else init_seed)
    model = SongsTagsArtistsModel(SongsTagsArtistsConfig.from_dumps(dumps, d_model=32, d_ff=64))
    stage = Stage("train", SongsTagsArtistsData(dumps.train, dumps.vocab, 64, seed), epochs,
                  lambda m: validate(m, dumps, CPU, 64), valid_every=5)
    config = {"warmup_steps": 10, "progress": False, "seed": seed, **config}
    return Trainer(model, [stage], root / run, CPU, TrainConfig(**config), dumps.fingerprint)


def fixed_batch_loss(model: PlaylistModel, batch: dict[str, torch.Tensor]) -> float:
    model.eval()
    with torch.no_grad():
        loss = float(model.loss(batch)[1])
    model.train()
    return loss


def test_training_lowers_model1_loss(run_root: Path):
    trainer = model1_trainer(run_root)
    batch = trainer.stages[0].data.epoch(1)[0]
    before = fixed_batch_loss(trainer.model, batch)
    trainer.fit()
    assert fixed_batch_loss(trainer.model, batch) < 0.5 * before
    assert [h["epoch"] for h in trainer.history] == [1, 2]  # epoch 1 and the last epoch


def model2_trainer(root: Path, run: str = "m2", mlm_epochs: int = 2, epochs: int = 2, init_seed: int = 0,
                   **config) -> Trainer:
    """Model 2 (d 32) through its two stages on the tiny dump: MLM (validated every epoch), then fine-tuning."""
    dumps = load_dumps(root / "output")
    torch.manual_seed(init_seed)
    model = PlylstTitleModel(PlylstTitleConfig.from_dumps(dumps, d_model=32, d_ff=64))
    n = model.config.n_pieces
    mlm_val = mlm_validation_batches(dumps.val_questions, n, 64)
    stages = [Stage("mlm", TitleMLMData(dumps.train, n, 64), mlm_epochs, lambda m: validate_mlm(m, mlm_val, CPU),
                    valid_every=1, early_stop=False, ranking_from_epoch=None),
              Stage("finetune", TitleFinetuneData(dumps.train, dumps.vocab, 64), epochs,
                    lambda m: validate(m, dumps, CPU, 64))]
    return Trainer(model, stages, root / run, CPU, TrainConfig(warmup_steps=10, progress=False, **config),
                   dumps.fingerprint)


def test_training_lowers_model2_losses_through_both_stages(run_root: Path):
    trainer = model2_trainer(run_root)
    model, (mlm_stage, finetune) = trainer.model, trainer.stages
    batch = finetune.data.epoch(1)[0]
    before, mlm_before = fixed_batch_loss(model, batch), mlm_stage.validate(model)["mlm_loss"]
    trainer.fit()
    assert fixed_batch_loss(model, batch) < 0.5 * before
    mlm = [h for h in trainer.history if h["stage"] == "mlm"]
    assert len(mlm) == 2 and mlm[-1]["mlm_loss"] < mlm_before
    assert [h["epoch"] for h in trainer.history if h["stage"] == "finetune"] == [1, 2]
    assert model.training


def assert_same_training_state(a: Trainer, b: Trainer) -> None:
    """Bit for bit: weights, Adam state (moments and step counts), schedule, step, and the last validation's metrics
    (its mean training loss covers only the batches since a resume, and a cut run validated once more)."""
    assert a.step == b.step
    for (name, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(x, y), name
    sa, sb = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
    assert sa.keys() == sb.keys()
    for k in sa:
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(sa[k][key], sb[k][key]), (k, key)
    assert a.scheduler.state_dict() == b.scheduler.state_dict()
    last_a, last_b = ({k: v for k, v in h[-1].items() if k not in ("elapsed", "loss")} for h in (a.history, b.history))
    assert last_a == last_b


@pytest.mark.parametrize("steps", [2, 4])  # mid-epoch, and at the epoch boundary (4 batches of 64 per epoch)
def test_save_load_resume_gives_the_same_next_step(run_root: Path, steps: int):
    straight = model1_trainer(run_root, "straight", max_steps=steps + 1)
    straight.fit()
    cut = model1_trainer(run_root, "cut", max_steps=steps)
    cut.fit()
    assert load_checkpoint(run_root / "cut" / "last.pt")["step"] == steps
    resumed = model1_trainer(run_root, "cut", max_steps=steps + 1, init_seed=99)  # other init: all comes from last.pt
    resumed.fit(resume=True)
    assert resumed.step == straight.step == steps + 1
    assert_same_training_state(straight, resumed)


def test_model2_resume_across_the_mlm_to_finetune_boundary(run_root: Path):
    """Cut in the MLM stage, exactly at its end (the fine-tuning stage begun, its new parameters' Adam state primed
    at the MLM step count) and inside fine-tuning; each resumed run ends where the uninterrupted one does."""
    straight = model2_trainer(run_root, "straight", mlm_epochs=1)
    n_mlm, n_ft = (len(stage.data.epoch(1)) for stage in straight.stages)
    end = n_mlm + n_ft + 1  # one batch into fine-tuning epoch 2
    straight.config.max_steps = end
    straight.fit()
    for cut in (1, n_mlm, n_mlm + 1):
        model2_trainer(run_root, f"cut{cut}", mlm_epochs=1, max_steps=cut).fit()
        ckpt = load_checkpoint(run_root / f"cut{cut}" / "last.pt")
        assert (ckpt["step"], ckpt["stage"]) == (cut, "mlm" if cut < n_mlm else "finetune")
        resumed = model2_trainer(run_root, f"cut{cut}", mlm_epochs=1, max_steps=end, init_seed=99)
        resumed.fit(resume=True)
        assert_same_training_state(straight, resumed)
    primed = straight.optimizer.state[straight.model.output_table]  # first gradient in fine-tuning
    assert float(primed["step"]) == end and straight.history[-1]["stage"] == "finetune"


class CrashingData:
    """Epoch data that raises when batch `batch` of epoch `epoch` is built: the process dies mid-epoch."""

    def __init__(self, data, epoch: int, batch: int):
        self.data, self.crash_epoch, self.crash_batch = data, epoch, batch

    def epoch(self, epoch: int):
        batches = self.data.epoch(epoch)
        if epoch != self.crash_epoch:
            return batches
        crash_batch = self.crash_batch

        class Crashing(list):
            def __getitem__(self, i):
                if i == crash_batch:
                    raise RuntimeError("crash")
                return batches[i]

        return Crashing(range(len(batches)))


def test_resume_after_a_crash_continues_with_the_next_epoch(run_root: Path):
    """The last checkpoint is the end-of-epoch validation of epoch 1 (the run died in epoch 2): resume starts
    epoch 2 at its first batch, as the uninterrupted run did."""
    straight = model1_trainer(run_root, "straight", max_steps=6)  # 4 batches per epoch: 2 into epoch 2
    straight.fit()
    crashing = model1_trainer(run_root, "crash", max_steps=6)
    crashing.stages[0].data = CrashingData(crashing.stages[0].data, epoch=2, batch=1)
    with pytest.raises(RuntimeError, match="crash"):
        crashing.fit()
    ckpt = load_checkpoint(run_root / "crash" / "last.pt")
    assert (ckpt["epoch"], ckpt["batch"], ckpt["epoch_done"], ckpt["step"]) == (1, 4, True, 4)
    resumed = model1_trainer(run_root, "crash", max_steps=6, init_seed=99)
    resumed.fit(resume=True)
    assert_same_training_state(straight, resumed)


def test_prefetching_changes_no_result(run_root: Path):
    plain = model1_trainer(run_root, "plain", max_steps=5, prefetch=False)  # 4 batches per epoch: crosses one
    plain.fit()
    prefetched = model1_trainer(run_root, "prefetched", max_steps=5, prefetch=True)
    prefetched.fit()
    for a, b in zip(plain.model.state_dict().values(), prefetched.model.state_dict().values()):
        assert torch.equal(a, b)


def test_checkpoints_refuse_another_vocabulary_and_rebuild_the_model(run_root: Path):
    trainer = model1_trainer(run_root, max_steps=2)
    trainer.fit()
    path = run_root / "m1" / "last.pt"
    dumps = load_dumps(run_root / "output")
    with pytest.raises(InputError, match="vocabulary"):
        load_model(path, CPU, SimpleNamespace(fingerprint={**dumps.fingerprint, "vocab_hash": "0123456789abcdef"}))
    other = model1_trainer(run_root)
    other.fingerprint["vocab_hash"] = "0123456789abcdef"
    with pytest.raises(InputError, match="vocabulary"):
        other.fit(resume=True)
    model = load_model(path, CPU, dumps)
    assert not model.training
    q = load_dumps(run_root / "output").val_questions
    batch = model.question_batch(q, np.flatnonzero(model.accepts(q))[:8])
    trainer.model.eval()
    with torch.no_grad():
        assert torch.equal(model.scores(batch)[0], trainer.model.scores(batch)[0])


def test_time_boxed_fit_leaves_a_complete_run_folder(run_root: Path):
    trainer = model1_trainer(run_root, "boxed", max_minutes=0.0, amp=True)
    result = trainer.fit()
    assert result["stopped"] == "time box" and trainer.step == 0
    run = run_root / "boxed"
    assert {p.name for p in run.iterdir()} >= {"best.pt", "last.pt", "log.txt", "config.json"}
    log = (run / "log.txt").read_text().splitlines()
    assert log[0] == "device: cpu"
    assert "--amp applies to CUDA only" in log[1]
    assert sum(bool(LOG_LINE.match(line)) and bool(NDCG_METRICS.search(line)) for line in log) == 1
    config = json.loads((run / "config.json").read_text())
    assert config["model_name"] == "songs_tags_artists" and config["train"]["max_minutes"] == 0.0
    ckpt = load_checkpoint(run / "last.pt")
    assert (ckpt["epoch"], ckpt["batch"], ckpt["epoch_done"]) == (1, 0, False)


# --------------------------------------------------------------------------------------------------------------
# entry points


def run_entry(script: str, root: Path, *flags: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, f"trainer/{script}", "--gpu=-1", f"--dataset_dir={root / 'dataset'}",
           f"--output_dir={root / 'output'}", "--progress=False", *flags]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)


@pytest.fixture
def entry_root(small_dataset: Path, run_root: Path) -> Path:
    (run_root / "dataset").symlink_to(small_dataset / "dataset")
    return run_root


def test_model1_entry_point_end_to_end(entry_root: Path):
    proc = run_entry("songs_tags_artists_model_trainer.py", entry_root, "--epochs=2", "--bs=128")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "device: cpu"
    run = entry_root / "output" / "songs_tags_artists"
    assert {"best.pt", "last.pt", "log.txt", "config.json"} <= {p.name for p in run.iterdir()}
    lines = [line for line in (run / "log.txt").read_text().splitlines() if re.match(r"^\[\S+\] epoch ", line)]
    assert len(lines) == 2 and all(LOG_LINE.match(x) and NDCG_METRICS.search(x) for x in lines), lines
    config = json.loads((run / "config.json").read_text())
    assert config["flags"]["epochs"] == 2 and config["model_config"]["d_model"] == 240
    assert config["dumps"]["vocab"]["hash"] == load_checkpoint(run / "best.pt")["vocab_hash"]
    assert load_model(run / "best.pt").name == "songs_tags_artists"


def test_model2_entry_point_end_to_end_and_resume(entry_root: Path):
    """One MLM and one fine-tuning epoch; then --resume with --epochs=2 continues with fine-tuning epoch 2 (the
    checkpoint is an end-of-epoch one) and ends bit for bit where an uninterrupted two-epoch run ends."""
    flags = ("--mlm_epochs=1", "--amp=True")
    proc = run_entry("plylst_title_model_trainer.py", entry_root, *flags, "--epochs=1")
    assert proc.returncode == 0, proc.stderr
    run = entry_root / "output" / "plylst_title"
    log = (run / "log.txt").read_text()
    assert "--amp applies to CUDA only" in log
    lines = [line for line in log.splitlines() if re.match(r"^\[\S+\] epoch ", line)]
    assert len(lines) == 2 and all(LOG_LINE.match(x) for x in lines), lines
    assert lines[0].startswith("[plylst_title:mlm] epoch   1") and " mlm_acc " in lines[0]
    assert lines[1].startswith("[plylst_title:finetune] epoch   1") and NDCG_METRICS.search(lines[1])
    first = load_checkpoint(run / "best.pt")
    assert (first["stage"], first["epoch"], first["epoch_done"]) == ("finetune", 1, True)

    proc = run_entry("plylst_title_model_trainer.py", entry_root, *flags, "--epochs=2", "--resume")
    assert proc.returncode == 0, proc.stderr
    assert "resumed from" in proc.stdout and "[plylst_title:finetune] epoch   2" in proc.stdout
    assert "[plylst_title:mlm]" not in proc.stdout.split("resumed from")[1]  # no stage repeated
    train_model2(gpu=-1, dataset_dir=str(entry_root / "dataset"), output_dir=str(entry_root / "output"),
                 mlm_epochs=1, epochs=2, amp=True, progress=False, run_name="straight")
    resumed, straight = (load_checkpoint(entry_root / "output" / name / "last.pt")
                         for name in ("plylst_title", "straight"))
    assert resumed["step"] == straight["step"] > first["step"]
    for name, weights in straight["model"].items():
        assert torch.equal(weights, resumed["model"][name]), name
    for k, state in straight["optimizer"]["state"].items():
        assert all(torch.equal(state[x], resumed["optimizer"]["state"][k][x]) for x in ("exp_avg", "exp_avg_sq"))


def test_entry_point_refuses_dumps_of_another_dataset(run_root: Path, tmp_path: Path):
    from trainer.songs_tags_artists_model_trainer import main

    with pytest.raises(InputError, match="made from"):
        main(gpu=-1, dataset_dir=str(tmp_path / "elsewhere"), output_dir=str(run_root / "output"))
