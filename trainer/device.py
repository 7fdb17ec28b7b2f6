"""Device choice shared by every entry point: --gpu=-1 is the CPU, no flag is CUDA device 0 when there is one."""
from __future__ import annotations

import torch


def pick_device(gpu: int | None = None) -> torch.device:
    if gpu is not None and gpu < 0:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        if gpu is not None:
            print(f"--gpu={gpu} asked for CUDA but none is available; using the CPU")
        return torch.device("cpu")
    return torch.device(f"cuda:{gpu or 0}")
