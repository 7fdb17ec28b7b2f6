"""Distributed training (trainer/distributed.py) on the CPU: gloo, 2 processes started by the test.

Covers: a global batch's shards (rows, (row, column) pairs, aligned MLM labels, empty shards) against a per-row
reference; each model's loss units, whose share-weighted shard losses add up to the whole batch's loss; the
step-seeded table-dropout masks (the same for the same seed, and the global-RNG masks unchanged without one);
2 ranks leave the same parameters as 1 process on the same global batches (model 1 with dropout off over an odd
batch and a 1-row last batch where rank 1's shard is empty; model 1 with table dropout on, the reference drawing
the same (seed, step) masks; model 2 across MLM -> fine-tuning), rank 1 writing no file; SIGTERM to rank 1 alone
stops both ranks at the same step with last.pt saved, and a 2-rank --resume continues from that step to the
parameters of an uninterrupted run; with every dropout on, a 2-rank run stopped and resumed on 2 ranks ends bit for
bit where the uninterrupted one does; --resume on another number of processes refused (2 -> 1 and 1 -> 2, the
latter by both ranks) with one line; --gpu refused under torchrun; train.py's torchrun command.
The ranks run tests/_distributed_worker.py with the variables torchrun sets (localhost, a free port).
Data: tests/conftest.py (240 generated playlists through step 1). Run: python -m pytest tests/test_distributed.py -q
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import train
from _distributed_worker import CASES, trainer_for
from common.cli import UsageError
from models.layers import TableDropout, keep_mask
from models.plylst_title import PlylstTitleConfig, PlylstTitleModel
from models.songs_tags_artists import SongsTagsArtistsConfig, SongsTagsArtistsModel
from trainer import distributed
from trainer.checkpoint import load_checkpoint
from trainer.distributed import Dist, local_batch, shard, shard_rows

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
ATOL, RTOL = 1e-4, 1e-4  # float reduction order (sums split across ranks), amplified by Adam over a few steps

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# --------------------------------------------------------------------------------------------------------------
# shards and loss units


def test_shard_rows_are_contiguous_and_cover_the_batch():
    assert [shard_rows(5, r, 2) for r in range(2)] == [(0, 3), (3, 5)]
    assert [shard_rows(1, r, 2) for r in range(2)] == [(0, 1), (1, 1)]  # the last rank's shard is empty
    assert [shard_rows(7, r, 3) for r in range(3)] == [(0, 3), (3, 5), (5, 7)]


def test_shard_takes_the_rows_pairs_and_aligned_labels_of_its_rows():
    ids = torch.arange(5 * 4).view(5, 4)
    songs = torch.tensor([[0, 0, 1, 3, 4, 4], [7, 8, 9, 10, 11, 12]])
    positions = torch.tensor([[0, 2, 2, 3], [1, 1, 3, 2]])
    labels = torch.tensor([100, 101, 102, 103])
    batch = {"ids": ids, "song_targets": songs, "mlm_positions": positions, "mlm_labels": labels}
    for rank, (lo, hi) in enumerate([(0, 3), (3, 5)]):
        part = shard(batch, rank, 2)
        assert torch.equal(part["ids"], ids[lo:hi])
        expected = [(r - lo, c) for r, c in songs.T.tolist() if lo <= r < hi]
        assert [tuple(x) for x in part["song_targets"].T.tolist()] == expected
        kept = [i for i, r in enumerate(positions[0].tolist()) if lo <= r < hi]
        assert part["mlm_positions"].T.tolist() == [[positions[0, i] - lo, positions[1, i]] for i in kept]
        assert part["mlm_labels"].tolist() == [labels[i] for i in kept]
    empty = shard({"ids": ids[:1], "song_targets": songs[:, :2]}, 1, 2)
    assert empty["ids"].shape == (0, 4) and empty["song_targets"].shape == (2, 0)
    with pytest.raises(ValueError, match="x"):
        shard({"ids": ids, "x": ids}, 0, 2)


def model_batches():
    """(model, batch) pairs: model 1 denoising, model 2 fine-tuning and MLM (tiny sizes, dropout off)."""
    torch.manual_seed(0)
    m1 = SongsTagsArtistsModel(SongsTagsArtistsConfig(40, 8, 6, d_model=8, d_ff=16, dropout=0.0, table_dropout=0.0))
    m2 = PlylstTitleModel(PlylstTitleConfig(40, 8, 30, d_model=8, d_ff=16, dropout=0.0, table_dropout=0.0,
                                            max_pieces=6))
    c = m1.config
    ids1 = torch.full((5, 6), c.pad)
    ids1[:, :3] = torch.tensor([c.songs_cls, c.tags_cls, c.artists_cls])
    ids1[:, 3:5] = torch.randint(0, 40, (5, 2))
    pairs = lambda v: torch.stack([torch.arange(5).repeat_interleave(2), torch.randint(0, v, (10,))])  # noqa: E731
    ids2 = torch.randint(8, 30, (5, 9))
    finetune = {"ids": ids2, "song_targets": pairs(40), "tag_targets": pairs(8)}
    mlm = {"ids": ids2, "mlm_positions": torch.tensor([[0, 0, 0, 1, 3, 4, 4], [2, 3, 5, 2, 4, 2, 6]]),
           "mlm_labels": torch.randint(0, 30, (7,))}
    return [(m1, {"ids": ids1, "song_targets": pairs(40), "tag_targets": pairs(8), "artist_targets": pairs(6)}),
            (m2, finetune), (m2, mlm)]


def test_loss_units_weigh_the_shard_losses_into_the_batch_loss():
    units = [model.loss_units(batch) for model, batch in model_batches()]
    assert units == [5, 5, 7]  # rows, rows, masked positions
    for model, batch in model_batches():
        model.train()
        whole = model.loss(batch)[0]
        for world in (2, 3):
            parts = [local_batch(batch, model, Dist(rank, world)) for rank in range(world)]
            assert sum(share for _, share in parts) == pytest.approx(1.0)
            total = sum(share * model.loss(part)[0] for part, share in parts if share)
            torch.testing.assert_close(total, whole, rtol=1e-6, atol=1e-7)


def test_an_empty_shard_becomes_a_zero_weight_row():
    model, batch = model_batches()[0]
    one_row = {k: v[:, v[0] == 0] if v.dim() == 2 and k != "ids" else v[:1] for k, v in batch.items()}
    part, share = local_batch(one_row, model, Dist(1, 2))
    assert share == 0.0 and len(part["ids"]) == 1  # it still runs forward and backward with the others


def test_step_seeded_table_masks_are_shared_and_the_default_masks_unchanged():
    table = torch.ones(300, 8)
    a, b = TableDropout(0.5).train(), TableDropout(0.5).train()
    a.seed_masks(distributed.mask_seed(0, 7))
    b.seed_masks(distributed.mask_seed(0, 7))
    torch.manual_seed(1)
    mask_a = a(table)[0]
    torch.manual_seed(2)  # the global generator plays no part
    assert torch.equal(mask_a, b(table)[0])
    b.seed_masks(distributed.mask_seed(0, 8))
    assert not torch.equal(mask_a, b(table)[0])
    b.seed_masks(None)  # back to torch's global generator: the masks keep_mask draws from it
    torch.manual_seed(3)
    expected = keep_mask((300, 8), 0.5, CPU, torch.float32)
    torch.manual_seed(3)
    assert torch.equal(b(table)[0], expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_step_seeded_table_masks_on_cuda():
    table = torch.ones(1000, 8, device="cuda")
    a, b = TableDropout(0.5).train(), TableDropout(0.5).train()
    for module in (a, b):
        module.seed_masks(distributed.mask_seed(0, 7))
    assert torch.equal(a(table)[0], b(table)[0])
    assert 0.4 < (a(table)[0] == 0).float().mean().item() < 0.6


def test_gpu_index_refused_under_torchrun(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(UsageError, match="--gpu must be unset or -1 under torchrun"):
        distributed.check_gpu_flag(0)
    distributed.check_gpu_flag(-1)
    distributed.check_gpu_flag(None)
    monkeypatch.setenv("WORLD_SIZE", "1")
    distributed.check_gpu_flag(0)


def test_train_py_launches_the_trainers_through_torchrun():
    assert train.step_command("trainer/x.py", ["--a=1"], None) == [sys.executable, "trainer/x.py", "--a=1"]
    assert train.step_command("trainer/x.py", ["--a=1"], 4) == [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4", "trainer/x.py", "--a=1"]
    proc = subprocess.run([sys.executable, "train.py", "--nproc_per_node=0"], cwd=REPO, capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "--nproc_per_node must be at least 1" in proc.stderr


# --------------------------------------------------------------------------------------------------------------
# two processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(out: Path, root: Path, *args: str) -> list[subprocess.Popen]:
    """Start 2 ranks of tests/_distributed_worker.py as torchrun would (env:// rendezvous on localhost)."""
    port, procs = free_port(), []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
               "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        procs.append(subprocess.Popen([sys.executable, str(REPO / "tests" / "_distributed_worker.py"), str(out),
                                       str(root), *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    return procs


def finish(procs: list[subprocess.Popen], timeout: float = 120) -> list[int]:
    """Wait for every rank; -> exit statuses. A rank still running after `timeout` s is killed (and fails the test)."""
    codes = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("a rank hung")
        codes.append(p.returncode)
        if p.returncode not in (0, 128 + signal.SIGTERM):
            print(err, file=sys.stderr)
    return codes


@pytest.fixture(scope="module")
def two_rank_runs(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One launch of 2 ranks: the equality cases (rank 1 pointed at its own run folders), m1_drop, then m1_long
    until a SIGTERM to rank 1 alone (after step 3) stops it."""
    root = tmp_path_factory.mktemp("ddp")
    shutil.copytree(small_dataset / "output" / "dumps", root / "output" / "dumps")
    procs = launch(root, root, "m1_plain", "m1_masks", "m2", "m1_drop", "m1_long", "--log_every=1")
    log, deadline = root / "m1_long" / "log.txt", time.time() + 120
    while time.time() < deadline and not (log.is_file() and " step       3 " in log.read_text()):
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGTERM)  # rank 0 learns it at the next step's agreement
    assert finish(procs) == [143, 143]
    return root


def max_differences(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> tuple[float, float]:
    """(max absolute, max relative) difference over every parameter."""
    abs_diff = max((a[k] - b[k]).abs().max().item() for k in a if a[k].numel())
    rel = max(((a[k] - b[k]).abs() / b[k].abs().clamp_min(1e-6)).max().item() for k in a if a[k].numel())
    return abs_diff, rel


@pytest.mark.parametrize("case", ["m1_plain", "m1_masks", "m2"])
def test_two_ranks_take_the_steps_of_one_process(two_rank_runs: Path, case: str, tmp_path: Path):
    ranks = [torch.load(two_rank_runs / f"{case}.rank{r}.pt") for r in range(2)]
    reference = trainer_for(case, two_rank_runs, tmp_path / case, Dist(), step_masks=True)
    reference.fit()
    assert ranks[0]["step"] == ranks[1]["step"] == reference.step > 3
    for (name, a), b in zip(ranks[0]["model"].items(), ranks[1]["model"].values()):
        assert torch.equal(a, b), name  # DDP keeps the ranks' weights identical
    got, want = ranks[0]["model"], reference.model.state_dict()
    print(f"{case}: {reference.step} steps, max abs / rel parameter difference %.2e / %.2e" % max_differences(got, want))
    for name, value in want.items():
        torch.testing.assert_close(got[name], value, atol=ATOL, rtol=RTOL, msg=lambda m: f"{name}: {m}")
    # and not by accident: one step with other table masks moves the weights further than the tolerance
    if CASES[case][1] > 0:
        other = trainer_for(case, two_rank_runs, tmp_path / "other", Dist(), step_masks=False)
        other.fit()
        assert max_differences(other.model.state_dict(), want)[0] > 1000 * ATOL


@pytest.mark.parametrize("case", ["m1_plain", "m2"])
def test_rank_0_alone_writes_the_run_folder(two_rank_runs: Path, case: str):
    assert {"config.json", "log.txt", "last.pt", "best.pt"} <= {p.name for p in (two_rank_runs / case).iterdir()}
    assert not (two_rank_runs / f"{case}_rank1").exists()
    log = (two_rank_runs / case / "log.txt").read_text()
    assert log.count("device: cpu") == 1 and "torchrun: 2 processes" in log
    ckpt = load_checkpoint(two_rank_runs / case / "last.pt")
    assert not any(k.startswith("module.") for k in ckpt["model"])  # the unwrapped model's names
    assert len(ckpt["rng"]["ranks"]) == 2 and ckpt["train_config"]["world_size"] == 2


def test_a_signal_to_one_rank_stops_both_and_resume_continues(two_rank_runs: Path):
    root, run = two_rank_runs, two_rank_runs / "m1_long"
    stopped = [torch.load(root / f"m1_long.rank{r}.pt") for r in range(2)]
    ckpt = load_checkpoint(run / "last.pt")
    k = ckpt["step"]
    assert stopped[0]["step"] == stopped[1]["step"] == k >= 3
    assert stopped[0]["result"]["stopped"] == stopped[1]["result"]["stopped"] == "signal"
    assert "stopped by SIGTERM" in (run / "log.txt").read_text()

    assert finish(launch(root, root, "m1_long", "--resume", f"--max_steps={k + 3}")) == [0, 0]
    resumed = torch.load(root / "m1_long.rank0.pt")
    assert resumed["step"] == k + 3
    log = (run / "log.txt").read_text()
    assert f"resumed from {run / 'last.pt'}: stage train, epoch {ckpt['epoch']}, step {k}" in log
    reference = trainer_for("m1_long", root, root / "reference", Dist(), step_masks=True, max_steps=k + 3)
    reference.fit()
    for name, value in reference.model.state_dict().items():
        torch.testing.assert_close(resumed["model"][name], value, atol=ATOL, rtol=RTOL, msg=lambda m: f"{name}: {m}")


def test_a_two_process_run_refuses_to_resume_on_one(two_rank_runs: Path, tmp_path: Path):
    """Each process's dropout draws are its own RNG stream over its shard of the rows: on another number of processes
    a run cannot go on as it would have, so --resume refuses, in one line, before restoring or writing anything."""
    run = tmp_path / "m1_long"
    shutil.copytree(two_rank_runs / "m1_long", run)
    (run / "config.json").write_text("{}")
    before = (run / "last.pt").read_bytes()
    step = load_checkpoint(run / "last.pt")["step"]
    trainer = trainer_for("m1_long", two_rank_runs, run, Dist(), max_steps=step + 1)
    with pytest.raises(UsageError) as refused:
        trainer.fit(resume=True)
    assert str(refused.value) == (
        f"{run / 'last.pt'} was written by 2 processes; resume it on 2 processes (torchrun --nproc_per_node=2, or 2 "
        f"in all over several machines): the random draws of each process (dropout) are part of the run. Or start "
        f"a new run (--overwrite, or another --run_name)")
    assert (run / "last.pt").read_bytes() == before and (run / "config.json").read_text() == "{}"
    assert trainer.step == 0


def test_resume_is_exact_on_as_many_processes_and_refused_on_another_number(two_rank_runs: Path, run_root: Path):
    """m1_drop has every dropout on, so each rank draws its own: stopped at step 3 and resumed on 2 ranks, it ends with
    the parameters of the uninterrupted 2-rank run bit for bit (each rank restores its own RNG state from last.pt).
    m1_long's last.pt, written by one process, is then refused by both ranks with the same line."""
    trainer_for("m1_long", run_root, run_root / "m1_long", Dist(), max_steps=2).fit()
    assert finish(launch(run_root, run_root, "m1_drop", "--max_steps=3")) == [0, 0]
    procs = launch(run_root, run_root, "m1_drop", "m1_long", "--resume", "--max_steps=8")
    errors = [p.communicate(timeout=120)[1] for p in procs]
    got, want = (torch.load(root / "m1_drop.rank0.pt") for root in (run_root, two_rank_runs))
    assert got["step"] == want["step"] == 8
    for name, value in want["model"].items():
        assert torch.equal(got["model"][name], value), name
    assert [p.returncode for p in procs] == [1, 1]
    line = (f"{run_root / 'm1_long' / 'last.pt'} was written by 1 process; resume it on 1 process (without torchrun, "
            f"or torchrun --nproc_per_node=1): the random draws of each process (dropout) are part of the run")
    assert all(line in err for err in errors)
    assert load_checkpoint(run_root / "m1_long" / "last.pt")["step"] == 2
