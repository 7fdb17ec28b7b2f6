"""The practical roofline of a training step: the time of its dense matmuls alone, same shapes, same device.

`record_matmuls` runs a function (one forward + backward) under a dispatch mode that notes every matrix product
it issues (mm, addmm, bmm, baddbmm, forward and backward alike); `time_matmuls` replays exactly those products on
fresh tensors and times them. A step that costs close to its matmuls has nothing left to remove but FLOPs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_MATMULS = {"mm", "addmm", "bmm", "baddbmm"}


@dataclass(frozen=True)
class MatmulCall:
    op: str  # one of _MATMULS
    shapes: tuple[tuple[int, ...], ...]  # tensor argument shapes, in call order
    dtype: torch.dtype

    @property
    def flops(self) -> int:
        a, b = self.shapes[-2], self.shapes[-1]
        batch = a[0] if len(a) == 3 else 1
        return 2 * batch * a[-2] * a[-1] * b[-1]


class _Recorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[MatmulCall] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in _MATMULS:
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            self.calls.append(MatmulCall(name, tuple(tuple(t.shape) for t in tensors), tensors[-1].dtype))
        return func(*args, **(kwargs or {}))


def record_matmuls(step: Callable[[], object]) -> list[MatmulCall]:
    """Every matrix product `step()` issues (run it once, as it would run in training)."""
    with _Recorder() as rec:
        step()
    return rec.calls


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_matmuls(calls: list[MatmulCall], device: torch.device, repeats: int = 5) -> float:
    """Seconds per replay of all `calls` (median of `repeats`, after one warm-up)."""
    ops = {"mm": torch.mm, "addmm": torch.addmm, "bmm": torch.bmm, "baddbmm": torch.baddbmm}
    inputs = [[torch.randn(s, device=device, dtype=c.dtype) for s in c.shapes] for c in calls]
    times = []
    for r in range(repeats + 1):
        _sync(device)
        t0 = time.perf_counter()
        for c, args in zip(calls, inputs):
            ops[c.op](*args)
        _sync(device)
        if r:
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]
