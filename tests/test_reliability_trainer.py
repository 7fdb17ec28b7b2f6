"""Trainer reliability (run folders, checkpoints tied to their data, unfinished model 2, signals, the progress log) and
the TF1 Adam.

Covers: one AdamTF1 step against a hand-computed TF1 update at step 1 (relative error < 1e-6) and several steps
against a plain TF1 loop, with torch's Adam measurably different there; its state surviving a save/load; a run
folder that holds a run refused without --resume / --overwrite (files byte-identical, config.json not rewritten),
--overwrite moving it aside, --resume refusing batch-changing flags and noting others; train.py refusing before
step 1 runs; checkpoints pinned to the SentencePiece model (model 2 refused under another title model, model 1
not); a model 2 stopped during MLM never used as a recommender (Ensemble refuses, leaderboard skips, loud
warning); SIGTERM/SIGINT stopping at a batch boundary with last.pt saved, exit 128+signal, one line, and a resume
that ends exactly where an uninterrupted run ends; periodic last.pt (save_every_minutes) and progress lines.
Data: tests/conftest.py (240 generated playlists through step 1). Run: python -m pytest tests/test_reliability_trainer.py -q
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from common.jsonio import InputError
from data_loader.dumps import load_dumps
from data_loader.songs_tags_artists_data import SongsTagsArtistsData
from data_loader.title import train_sentencepiece
from models.songs_tags_artists import SongsTagsArtistsConfig, SongsTagsArtistsModel
from predictor.ensembling import load_members
from reports import leaderboard
from trainer.adam_tf1 import AdamTF1
from trainer.checkpoint import load_checkpoint, load_model
from trainer.loop import Interrupted, Stage, TrainConfig, Trainer
from trainer.validation import validate

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# --------------------------------------------------------------------------------------------------------------
# Adam as TF1 computes it


def tf1_adam(p: np.ndarray, grads: list[np.ndarray], lr: float, b1: float, b2: float, eps: float) -> np.ndarray:
    """tf.train.AdamOptimizer written out in float64: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t),
    p -= lr_t m / (sqrt(v) + eps), epsilon added to the uncorrected sqrt(v)."""
    p, m, v = p.astype(np.float64), np.zeros_like(p, np.float64), np.zeros_like(p, np.float64)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps)
    return p


def run_optimizer(cls, p0: np.ndarray, grads: list[np.ndarray], **kw) -> np.ndarray:
    p = torch.nn.Parameter(torch.tensor(p0, dtype=torch.float32))
    opt = cls([p], lr=1e-3, betas=(0.9, 0.98), eps=1e-9, **kw)
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
    return p.detach().numpy().astype(np.float64)


@pytest.mark.parametrize("fused", [False, True])
def test_adam_tf1_first_step_matches_the_tf1_formula(fused):
    """At step 1 the two epsilon placements differ most: TF1's update is lr sqrt(1-b2)/(1-b1) g/(|g| sqrt(1-b2)
    + eps)... written out by hand here for gradients around and below eps = 1e-9 (BCE over ~350k songs)."""
    rng = np.random.default_rng(0)
    p0 = np.zeros(200, np.float32)  # so that float32 keeps the whole update (~1e-7 .. 1e-3) for the comparison
    g = (rng.normal(size=200) * np.logspace(-12, -6, 200)).astype(np.float32)
    lr, b1, b2, eps = 1e-3, 0.9, 0.98, 1e-9
    m, v = (1 - b1) * g.astype(np.float64), (1 - b2) * g.astype(np.float64) ** 2
    want = p0 - lr * math.sqrt(1 - b2) / (1 - b1) * m / (np.sqrt(v) + eps)
    got = run_optimizer(AdamTF1, p0, [g], fused=fused)
    update_want, update_got = want - p0, got - p0
    assert np.max(np.abs(update_got - update_want) / np.abs(update_want)) < 1e-6
    torch_adam = run_optimizer(torch.optim.Adam, p0, [g], fused=fused) - p0
    assert np.max(np.abs(torch_adam - update_want) / np.abs(update_want)) > 0.5  # what the change is about


def test_adam_tf1_several_steps_and_state_round_trip():
    rng = np.random.default_rng(1)
    p0 = np.zeros(50, np.float32)
    grads = [(rng.normal(size=50) * 1e-8).astype(np.float32) for _ in range(6)]
    want = tf1_adam(p0, grads, 1e-3, 0.9, 0.98, 1e-9)
    got = run_optimizer(AdamTF1, p0, grads, fused=True)
    np.testing.assert_allclose(got - p0, want - p0, rtol=1e-5, atol=1e-12)

    # three steps, save, load into a fresh optimizer, three more: the same as six in a row
    p = torch.nn.Parameter(torch.tensor(p0))
    opt = AdamTF1([p], lr=1e-3, betas=(0.9, 0.98), eps=1e-9, fused=True)
    for g in grads[:3]:
        p.grad = torch.tensor(g)
        opt.step()
    state = opt.state_dict()
    q = torch.nn.Parameter(p.detach().clone())
    opt2 = AdamTF1([q], lr=1e-3, betas=(0.9, 0.98), eps=1e-9, fused=True)
    opt2.load_state_dict(state)
    for g in grads[3:]:
        q.grad = torch.tensor(g)
        opt2.step()
    np.testing.assert_allclose(q.detach().numpy() - p0, want - p0, rtol=1e-5, atol=1e-12)
    assert opt2.param_groups[0]["tf_step"] == 6


def test_trainer_uses_tf1_adam(run_root):
    trainer = model1_trainer(run_root, max_steps=1)
    assert isinstance(trainer.optimizer, AdamTF1)
    assert trainer.optimizer.defaults["fused"]


# --------------------------------------------------------------------------------------------------------------
# helpers


def model1_trainer(root: Path, run: str = "m1", epochs: int = 2, **config) -> Trainer:
    dumps = load_dumps(root / "output")
    torch.manual_seed(0)
    model = SongsTagsArtistsModel(SongsTagsArtistsConfig.from_dumps(dumps, d_model=32, d_ff=64))
    stage = Stage("train", SongsTagsArtistsData(dumps.train, dumps.vocab, 64, 0), epochs,
                  lambda m: validate(m, dumps, CPU, 64), valid_every=5)
    config = {"warmup_steps": 10, "progress": False, **config}
    return Trainer(model, [stage], root / run, CPU, TrainConfig(**config), dumps.fingerprint)


def run_entry(script: str, root: Path, *flags: str, **popen) -> subprocess.CompletedProcess | subprocess.Popen:
    cmd = [sys.executable, script, "--gpu=-1", f"--dataset_dir={root / 'dataset'}",
           f"--output_dir={root / 'output'}", *flags]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if popen:
        return subprocess.Popen(cmd, cwd=REPO, env=env, text=True, **popen)
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)


@pytest.fixture
def entry_root(small_dataset: Path, run_root: Path) -> Path:
    (run_root / "dataset").symlink_to(small_dataset / "dataset")
    return run_root


def train_in_process(root: Path, model: str, **flags) -> None:
    """A trainer's main() in this process (no interpreter start-up): for runs whose exit status is not the point."""
    from trainer import plylst_title_model_trainer, songs_tags_artists_model_trainer

    main = {"songs_tags_artists": songs_tags_artists_model_trainer.main, "plylst_title": plylst_title_model_trainer.main}
    main[model](gpu=-1, dataset_dir=str(root / "dataset"), output_dir=str(root / "output"), progress=False, **flags)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# --------------------------------------------------------------------------------------------------------------
# run folders


def test_a_run_folder_holding_a_run_is_not_replaced(entry_root: Path):
    trainer = "trainer/songs_tags_artists_model_trainer.py"
    proc = run_entry(trainer, entry_root, "--epochs=1", "--warmup_steps=50", "--progress=false")
    assert proc.returncode == 0, proc.stderr
    run = entry_root / "output" / "songs_tags_artists"
    before = snapshot(run)

    proc = run_entry(trainer, entry_root, "--epochs=1")  # a second run without --resume
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "already holds a run" in proc.stderr and "--resume" in proc.stderr and "--overwrite" in proc.stderr
    assert snapshot(run) == before

    proc = run_entry(trainer, entry_root, "--resume", "--bs=64", "--seed=3")  # changes the batches: refused
    assert proc.returncode == 2 and "--bs=128, --seed=0" in proc.stderr and "--bs=64, --seed=3" in proc.stderr
    assert snapshot(run) == before  # config.json not rewritten

    proc = run_entry(trainer, entry_root, "--resume", "--warmup_steps=4000")  # given, not as recorded: refused
    assert proc.returncode == 2 and "refuses --warmup_steps=4000" in proc.stderr
    assert snapshot(run) == before

    # left out, --warmup_steps keeps the run's 50 (not the default 4000); a given --epochs may change: noted
    proc = run_entry(trainer, entry_root, "--resume", "--epochs=2", "--progress=false")
    assert proc.returncode == 0, proc.stderr
    assert "resume: overriding epochs 1 -> 2" in proc.stdout and "warmup" not in proc.stdout
    flags = json.loads((run / "config.json").read_text())["flags"]
    assert flags["epochs"] == 2 and flags["warmup_steps"] == 50 and flags["bs"] == 128

    resumed = snapshot(run)
    proc = run_entry(trainer, entry_root, "--epochs=1", "--overwrite", "--progress=false")
    assert proc.returncode == 0, proc.stderr
    aside = [p for p in run.parent.iterdir() if p.name.startswith("songs_tags_artists.replaced-")]
    assert len(aside) == 1 and snapshot(aside[0]) == resumed
    assert load_checkpoint(run / "last.pt")["epoch"] == 1


def test_train_py_refuses_before_step_1(entry_root: Path):
    (entry_root / "output" / "plylst_title").mkdir(parents=True)
    (entry_root / "output" / "plylst_title" / "best.pt").write_bytes(b"a user's model")
    meta = entry_root / "output" / "dumps" / "meta.json"
    stamp = meta.stat().st_mtime_ns
    proc = run_entry("train.py", entry_root, "--epochs=1")
    assert proc.returncode == 2 and "already holds a run" in proc.stderr
    assert meta.stat().st_mtime_ns == stamp and "dump_datasets" not in proc.stdout
    assert (entry_root / "output" / "plylst_title" / "best.pt").read_bytes() == b"a user's model"


# --------------------------------------------------------------------------------------------------------------
# the title model's checkpoint pins the SentencePiece model ; unfinished model 2


def test_train_py_resume_continues_both_runs_after_step_1_reruns(small_dataset: Path, tmp_path: Path):
    """train.py --resume re-runs step 1 (same data, same dumps byte for byte: the title model's checkpoint still
    fits) and continues both runs with their recorded flags (--warmup_steps, --mlm_epochs left out)."""
    (tmp_path / "dataset").mkdir()
    for name in ("train.json", "song_meta.json"):
        shutil.copy(small_dataset / "dataset" / name, tmp_path / "dataset" / name)
    proc = run_entry("train.py", tmp_path, "--epochs=1", "--mlm_epochs=1", "--warmup_steps=50")
    assert proc.returncode == 0, proc.stderr
    sp_model = (tmp_path / "output" / "dumps" / "plylst_title_bpe.model").read_bytes()
    proc = run_entry("train.py", tmp_path, "--resume", "--epochs=2")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "output" / "dumps" / "plylst_title_bpe.model").read_bytes() == sp_model
    for run in ("songs_tags_artists", "plylst_title"):
        flags = json.loads((tmp_path / "output" / run / "config.json").read_text())["flags"]
        assert flags["warmup_steps"] == 50 and flags["epochs"] == 2
        assert load_checkpoint(tmp_path / "output" / run / "last.pt")["epoch"] == 2
    assert flags["mlm_epochs"] == 1


def test_title_checkpoints_refuse_another_sentencepiece_model(entry_root: Path):
    train_in_process(entry_root, "songs_tags_artists", epochs=1)
    train_in_process(entry_root, "plylst_title", epochs=1, mlm_epochs=1)
    out = entry_root / "output"
    dumps = load_dumps(out)
    members = load_members(out, dumps, CPU)
    assert [m.name for m in members] == ["songs_tags_artists", "plylst_title"]
    # step 1 re-run on changed titles: same vocabulary, another SentencePiece model
    titles = [f"{w} 노래 모음 {i}" for i, w in enumerate(["drive", "coffee", "night", "rain", "run"] * 200)]
    train_sentencepiece(titles, out / "dumps", vocab_size=200)
    dumps = load_dumps(out)
    with pytest.raises(InputError, match="SentencePiece"):
        load_members(out, dumps, CPU)
    assert load_members(out, dumps, CPU, ("songs_tags_artists",))[0].name == "songs_tags_artists"
    proc = run_entry("trainer/plylst_title_model_trainer.py", entry_root, "--resume", "--epochs=2", "--mlm_epochs=1")
    assert proc.returncode == 1 and "SentencePiece" in proc.stderr


def test_model2_stopped_during_mlm_is_not_a_recommender(entry_root: Path):
    proc = run_entry("trainer/plylst_title_model_trainer.py", entry_root, "--mlm_epochs=1000", "--epochs=1",
                     "--max_minutes=0.02", "--progress=false")
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" in proc.stderr and "is not a recommender" in proc.stderr
    best = entry_root / "output" / "plylst_title" / "best.pt"
    ckpt = load_checkpoint(best)
    assert ckpt["stage"] == "mlm" and ckpt["recommender"] is False
    with pytest.raises(InputError, match="not a recommender"):
        load_model(best, CPU, recommender=True)
    with pytest.raises(InputError, match="not a recommender"):
        load_members(entry_root / "output", load_dumps(entry_root / "output"), CPU, ("plylst_title",))
    train_in_process(entry_root, "songs_tags_artists", epochs=1)
    proc = run_entry("predictor/Ensemble.py", entry_root, f"--question_path={entry_root / 'dataset/questions/val.json'}",
                     f"--out_path={entry_root / 'r.json'}")
    assert proc.returncode == 1 and "not a recommender" in proc.stderr and not (entry_root / "r.json").exists()
    rows = dict(leaderboard.bert_methods(str(entry_root / "dataset"), str(entry_root / "output"),
                                         entry_root / "dataset/questions/val.json", -1, 64))
    assert isinstance(rows["bert_plylst_title"], str) and "not a recommender" in rows["bert_plylst_title"]


# --------------------------------------------------------------------------------------------------------------
# signals, periodic last.pt and progress lines


def test_sigterm_stops_at_a_batch_boundary_and_resume_is_exact(run_root: Path):
    reference = model1_trainer(run_root, "ref", epochs=3)
    reference.fit()

    trainer = model1_trainer(run_root, "cut", epochs=3)
    real_loss = trainer.model.loss
    calls = []

    def loss_then_signal(batch, weight=0.0):
        calls.append(trainer.model.training)  # validation computes a loss too
        if sum(calls) == 6:  # mid-epoch 2 (4 batches an epoch): the handler only sets a flag
            os.kill(os.getpid(), signal.SIGTERM)
        return real_loss(batch, weight)

    trainer.model.loss = loss_then_signal
    with pytest.raises(Interrupted) as e:
        trainer.fit()
    assert e.value.signum == signal.SIGTERM and trainer.step == 6  # the step in flight was finished
    ckpt = load_checkpoint(run_root / "cut" / "last.pt")
    assert (ckpt["step"], ckpt["epoch"], ckpt["batch"], ckpt["epoch_done"]) == (6, 2, 2, False)
    assert "stopped by SIGTERM" in (run_root / "cut" / "log.txt").read_text()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored

    resumed = model1_trainer(run_root, "cut", epochs=3)
    resumed.fit(resume=True)
    for (n, a), b in zip(reference.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), n


def test_sigint_in_the_entry_point_saves_and_exits_130(entry_root: Path):
    run = entry_root / "output" / "songs_tags_artists"
    proc = run_entry("trainer/songs_tags_artists_model_trainer.py", entry_root, "--epochs=300", "--valid_every=300",
                     "--log_every=1", "--progress=false", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 600
    while time.time() < deadline and not ((run / "log.txt").is_file() and " steps/s " in (run / "log.txt").read_text()):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert "Traceback" not in err and lines[-1].startswith("error: stopped by SIGINT at step ")
    step = int(lines[-1].split("at step ")[1].split(":")[0])
    assert load_checkpoint(run / "last.pt")["step"] == step
    proc = run_entry("trainer/songs_tags_artists_model_trainer.py", entry_root, "--resume", "--epochs=300",
                     "--valid_every=300", "--max_minutes=0.01", "--progress=false")
    assert proc.returncode == 0, proc.stderr
    assert f"step {step}" in proc.stdout.split("resumed from", 1)[1].splitlines()[0]


def test_a_killed_checkpoint_write_is_cleaned_up(run_root: Path):
    """A temp file of a dead writer (the checkpoint write of a killed run) is removed when the next run starts."""
    run = run_root / "m1"
    run.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = run / f".best.{int(dead.stdout)}.0123abcd.tmp.pt"
    orphan.write_bytes(b"half a checkpoint")
    live = run / f".last.{os.getpid()}.0123abcd.tmp.pt"
    live.write_bytes(b"being written")
    model1_trainer(run_root, max_steps=1)
    assert not orphan.exists() and live.exists()


def test_periodic_last_pt_and_progress_lines(run_root: Path):
    trainer = model1_trainer(run_root, "periodic", epochs=1, save_every_minutes=1e-9, log_every=1)
    saves = []
    original = trainer._save_last
    trainer._save_last = lambda *a: saves.append(a) or original(*a)
    trainer.fit()
    n = len(trainer.stages[0].data.epoch(1))
    assert n > 2 and [s[2] for s in saves] == list(range(1, n + 1))  # after every batch
    log = (run_root / "periodic" / "log.txt").read_text()
    progress = [x for x in log.splitlines() if " steps/s " in x]
    assert len(progress) == n and progress[0].startswith(f"[songs_tags_artists] step       1 epoch   1 batch 1/{n} loss ")
