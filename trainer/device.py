"""Device choice shared by every entry point: --gpu=-1 is the CPU, no flag is CUDA device 0 when there is one."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

import torch


@functools.cache
def _keep_large_blocks_on_heap() -> None:
    """On Linux/glibc, serve large tensors from the heap instead of fresh mmaps.

    A CPU training step allocates several ~100-200 MB buffers (logits and their gradients over the song
    vocabulary); with glibc's defaults each comes from a new mmap whose page faults cost 65-200 ms, a quarter of
    the step. Turning mmap off for large blocks and keeping freed memory (trim threshold 1 GiB) reuses the pages.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4  # glibc's mallopt parameter numbers
        libc.mallopt(m_mmap_max, 0)
        libc.mallopt(m_trim_threshold, 1 << 30)
    except (OSError, AttributeError):  # not glibc (musl, ...): keep the defaults
        pass


def pick_device(gpu: int | None = None) -> torch.device:
    if gpu is not None and gpu < 0:
        device = torch.device("cpu")
    elif not torch.cuda.is_available():
        if gpu is not None:
            print(f"--gpu={gpu} asked for CUDA but none is available; using the CPU")
        device = torch.device("cpu")
    else:
        return torch.device(f"cuda:{gpu or 0}")
    _keep_large_blocks_on_heap()
    return device
