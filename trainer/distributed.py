"""torchrun + DistributedDataParallel: the process group, rank helpers, and each rank's shard of a global batch.

    torchrun --nproc_per_node=N trainer/songs_tags_artists_model_trainer.py ...     (one machine, N processes)

Under torchrun (WORLD_SIZE > 1) every process builds the same global batch of --bs rows (epochs are pure functions
of (seed, epoch)) and trains on its contiguous shard of rows (`shard`). The losses are means (BCE over rows x
vocabulary, MLM over masked positions), so each rank's loss is scaled by world_size x (its units / the global
batch's units) (PlaylistModel.loss_units) before DDP averages the gradients: the update is the one a single
process makes on the whole batch. A rank whose shard is empty (a last batch with fewer rows than ranks) runs a
stand-in row with weight 0, so that it still joins the gradient all-reduce. Table-dropout masks are drawn from a
generator seeded by (seed, step) (`mask_seed`), the same on every rank; the other dropouts differ per rank.

Data: NCCL on CUDA (each process on cuda:LOCAL_RANK), gloo on the CPU (--gpu=-1). Control (stop flags, the
validation result, RNG states for checkpoints): a gloo group, so that agreeing on a flag every step never waits on
the GPU. Both groups time out after TIMEOUT: rank 0 validates alone while the others wait, minutes at full scale.

Not under torchrun (or with one process) `Dist()` stands for the single process: its collectives return their
input and the trainer runs exactly as before.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from common.cli import check_flags
from models.base import PlaylistModel
from trainer.device import pick_device

TIMEOUT = timedelta(minutes=60)  # a collective waits this long (rank 0's validation, checkpoint writing)
MASK_STREAM = 5  # distinguishes the table-mask seeds from the data streams' (seed, stream, epoch)

# the batch layout of models/base.py: row-major tensors, (row, column) pairs, and values aligned with pairs
ROW_KEYS = ("ids",)  # [B, L]
PAIR_KEYS = ("song_targets", "tag_targets", "artist_targets", "mlm_positions")  # [2, P], the row in [0]
ALIGNED_KEYS = {"mlm_labels": "mlm_positions"}  # [P], one value per pair of the named key


# ----------------------------------------------------------------------------------------------------------------
# where this process runs


def world_size() -> int:
    """The number of processes torchrun started (WORLD_SIZE); 1 outside torchrun."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Rank 0 (or no torchrun): the process that writes the run folder."""
    return int(os.environ.get("RANK", "0")) == 0


def check_gpu_flag(gpu: int | None) -> None:
    """Under torchrun --gpu is unset (each process takes cuda:LOCAL_RANK) or -1 (the CPU, gloo)."""
    check_flags(gpu=(world_size() == 1 or gpu is None or gpu == -1,
                     "unset or -1 under torchrun: each process uses cuda:LOCAL_RANK (choose the GPUs with "
                     "CUDA_VISIBLE_DEVICES), -1 trains on the CPU"))


def pick_rank_device(gpu: int | None) -> torch.device:
    """The training device: trainer.device.pick_device on one process; under torchrun cuda:LOCAL_RANK when CUDA is
    there and --gpu is not -1, else the CPU."""
    if world_size() == 1:
        return pick_device(gpu)
    if gpu == -1 or not torch.cuda.is_available():
        return pick_device(-1)
    device = torch.device(f"cuda:{int(os.environ['LOCAL_RANK'])}")
    torch.cuda.set_device(device)
    return device


# ----------------------------------------------------------------------------------------------------------------
# the process group


@dataclass(frozen=True)
class Dist:
    """This process's place among the ranks, and the collectives the trainer needs (no-ops on one process)."""

    rank: int = 0
    world_size: int = 1
    control: Any = None  # the gloo process group for flags and objects (None on one process)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def max(self, *flags: int) -> list[int]:
        """Element-wise maximum of integer flags over the ranks (any rank's signal or time-up stops them all)."""
        if not self.enabled:
            return list(flags)
        t = torch.tensor(flags, dtype=torch.int64)
        tdist.all_reduce(t, tdist.ReduceOp.MAX, group=self.control)
        return t.tolist()

    def sum(self, *values: float) -> list[float]:
        """Element-wise sum of numbers over the ranks (float64)."""
        if not self.enabled:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64)
        tdist.all_reduce(t, group=self.control)
        return t.tolist()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank; the others wait here (up to TIMEOUT) until rank 0 sends it."""
        if not self.enabled:
            return obj
        box = [obj]
        tdist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        tdist.all_gather_object(out, obj, group=self.control)
        return out


def init(device: torch.device) -> Dist:
    """Join torchrun's process group (NCCL on CUDA, gloo on the CPU; its env:// rendezvous); Dist() outside it."""
    if world_size() == 1:
        return Dist()
    backend = "nccl" if device.type == "cuda" else "gloo"
    tdist.init_process_group(backend, timeout=TIMEOUT)
    control = tdist.new_group(backend="gloo", timeout=TIMEOUT) if backend != "gloo" else tdist.group.WORLD
    return Dist(tdist.get_rank(), tdist.get_world_size(), control)


def teardown(dist: Dist) -> None:
    if dist.enabled and tdist.is_initialized():
        tdist.destroy_process_group()


# ----------------------------------------------------------------------------------------------------------------
# the model under DDP and the batches


class LossOf(nn.Module):
    """forward(batch, ranking_weight) = model.loss(...): DDP synchronises the gradients of what runs in forward."""

    def __init__(self, model: PlaylistModel):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor], ranking_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.loss(batch, ranking_weight)


def wrap(model: PlaylistModel, dist: Dist, device: torch.device) -> DistributedDataParallel | None:
    """Under torchrun the DDP module whose forward is model.loss (its backward all-reduces, i.e. averages, the
    gradients; parameters a stage leaves unused, model 2's output table during MLM, keep no gradient); None on one
    process."""
    if not dist.enabled:
        return None
    return DistributedDataParallel(LossOf(model), device_ids=[device.index] if device.type == "cuda" else None,
                                   find_unused_parameters=True)


def shard_rows(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rows [lo, hi) of rank `rank` among `world` contiguous shards of n rows (sizes differ by at most 1, the
    larger first); empty when n < world for the last ranks."""
    base, extra = divmod(n, world)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


def take_rows(batch: dict[str, torch.Tensor], lo: int, hi: int) -> dict[str, torch.Tensor]:
    """Rows [lo, hi) of a batch (models/base.py layout), row numbers of the pairs renumbered from 0."""
    out: dict[str, torch.Tensor] = {}
    keep: dict[str, torch.Tensor] = {}
    for key, value in batch.items():
        if key in ROW_KEYS:
            out[key] = value[lo:hi]
        elif key in PAIR_KEYS:
            keep[key] = (value[0] >= lo) & (value[0] < hi)
            out[key] = value[:, keep[key]] - torch.tensor([[lo], [0]], dtype=value.dtype)
        elif key not in ALIGNED_KEYS:
            raise ValueError(f"cannot shard batch key {key!r}: models/base.py's layout has "
                             f"{', '.join(ROW_KEYS + PAIR_KEYS + tuple(ALIGNED_KEYS))}")
    for key, pairs in ALIGNED_KEYS.items():
        if key in batch:
            out[key] = batch[key][keep[pairs]]
    return out


def shard(batch: dict[str, torch.Tensor], rank: int, world: int) -> dict[str, torch.Tensor]:
    """Rank `rank`'s contiguous share of the rows of a global batch."""
    return take_rows(batch, *shard_rows(len(batch["ids"]), rank, world))


def local_batch(batch: dict[str, torch.Tensor], model: PlaylistModel,
                dist: Dist) -> tuple[dict[str, torch.Tensor], float]:
    """(this rank's batch, its weight = its loss units / the global batch's); (batch, 1.0) on one process.

    An empty shard becomes the global batch's first row with weight 0: the rank still runs forward and backward
    (zero gradients) and joins the all-reduce.
    """
    if not dist.enabled:
        return batch, 1.0
    part = shard(batch, dist.rank, dist.world_size)
    units = model.loss_units(part)
    if units == 0:
        return take_rows(batch, 0, 1), 0.0
    return part, units / model.loss_units(batch)


def mask_seed(seed: int, step: int, index: int = 0) -> int:
    """The seed of table-dropout module `index`'s mask at optimizer step `step` (from 1) of a run seeded `seed`."""
    return int(np.random.SeedSequence([seed, MASK_STREAM, step, index]).generate_state(1, np.uint64)[0])
