"""Build the next epoch and the next batches in background threads, so that numpy work overlaps the GPU's.

Batches are pure functions of (stage, epoch, index) (data_loader/*_data.py), so prefetching changes no result.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterator, Protocol, Sequence

import torch


class EpochData(Protocol):
    """Training data: epoch e (from 1) is a sequence of batch dicts (models/base.py), a pure function of e."""

    def epoch(self, epoch: int) -> Sequence[dict[str, torch.Tensor]]: ...


def _pinned(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.pin_memory() for k, v in batch.items()}


class Prefetcher:
    """Builds the next epoch and the next batches in background threads, so that numpy work overlaps the GPU's.

    Batches are pure functions of (stage, epoch, index), so prefetching changes no result. When disabled (the
    default on the CPU, where threads would only compete with torch's) everything is built in line.
    """

    def __init__(self, enabled: bool, pin: bool, depth: int = 8):
        self.enabled, self.pin, self.depth = enabled, pin, depth
        self._epoch_pool = ThreadPoolExecutor(1, "epoch-prefetch") if enabled else None
        self._batch_pool = ThreadPoolExecutor(1, "batch-prefetch") if enabled else None
        self._next: tuple[tuple[int, int], Future] | None = None

    def epoch(self, data: EpochData, si: int, epoch: int, prefetch_next: bool) -> Sequence[dict[str, torch.Tensor]]:
        """Epoch `epoch` of stage `si` (ready if it was prefetched); start building the next one if asked."""
        ready, self._next = self._next, None
        batches = ready[1].result() if ready is not None and ready[0] == (si, epoch) else data.epoch(epoch)
        if self.enabled and prefetch_next:
            self._next = ((si, epoch + 1), self._epoch_pool.submit(data.epoch, epoch + 1))
        return batches

    def batches(self, batches: Sequence[dict[str, torch.Tensor]], start: int) -> Iterator[dict[str, torch.Tensor]]:
        """Host batches start.. of an epoch (pinned when `pin`), built up to `depth` ahead when enabled."""
        build = (lambda i: _pinned(batches[i])) if self.pin else batches.__getitem__
        if not self.enabled:
            yield from (build(i) for i in range(start, len(batches)))
            return
        pending = deque(self._batch_pool.submit(build, i) for i in range(start, min(start + self.depth, len(batches))))
        upcoming = start + len(pending)
        try:
            while pending:
                batch = pending.popleft().result()
                if upcoming < len(batches):
                    pending.append(self._batch_pool.submit(build, upcoming))
                    upcoming += 1
                yield batch
        finally:  # an epoch cut short (time box) drops what was queued
            for f in pending:
                f.cancel()

    def close(self) -> None:
        for pool in (self._epoch_pool, self._batch_pool):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
