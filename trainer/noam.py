"""The Noam learning-rate schedule of "Attention Is All You Need", as both original trainers use it (docs/original.md
2.4).

    lr(step) = d_model^-0.5 * min(step^-0.5, step * warmup^-1.5),   step = 1, 2, ...

It rises linearly for `warmup` steps and then decays as step^-0.5; the peak d_model^-0.5 * warmup^-0.5 is
1.0206e-3 for model 1 (d=240) and 1.3762e-3 for model 2 (d=132) with warmup 4000.
"""
from __future__ import annotations

import functools

import torch
from torch.optim.lr_scheduler import LambdaLR


def noam_lr(step: int, d_model: int, warmup: int) -> float:
    """Learning rate at optimizer step `step` (counted from 1)."""
    if step < 1:
        raise ValueError(f"Noam steps count from 1, got {step}")
    return d_model ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)


def _factor(i: int, d_model: int, warmup: int) -> float:
    # LambdaLR calls this with 0 for the first optimizer step, so the Noam step is i + 1
    return noam_lr(i + 1, d_model, warmup)


def noam_scheduler(optimizer: torch.optim.Optimizer, d_model: int, warmup: int) -> LambdaLR:
    """A LambdaLR whose factor is the Noam rate; build the optimizer with lr=1.0 so that factor == lr.

    A fresh scheduler on the same optimizer restarts the count at step 1 (model 2's fine-tuning stage).
    """
    for group in optimizer.param_groups:
        if group.get("initial_lr", group["lr"]) != 1.0:
            raise ValueError("noam_scheduler needs an optimizer built with lr=1.0")
    return LambdaLR(optimizer, functools.partial(_factor, d_model=d_model, warmup=warmup))
