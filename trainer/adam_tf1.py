"""Adam exactly as TensorFlow 1's tf.train.AdamOptimizer computes it (the original's optimizer, docs/original.md 2.4).

TF1 (and the Adam paper's "efficient" form) folds both bias corrections into the step size and adds epsilon to the
*uncorrected* root of the second moment:

    lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)          p <- p - lr_t * m / (sqrt(v) + eps)

torch.optim.Adam adds epsilon after the correction instead:

    p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

They are the same update when torch's epsilon is eps / sqrt(1 - b2^t). With eps = 1e-9 the difference matters:
BCE gradients averaged over a batch x ~350k songs are mostly far below 1e-9 on the song table, so for the first
~200 steps (while 1 - 0.98^t is small) torch's effective epsilon is several times TF1's and the updates differ by
a few percent of the largest update. `AdamTF1` sets each group's epsilon to eps / sqrt(1 - b2^t) before every step
and leaves the arithmetic to torch's fused (or foreach) kernel: no Python loop over parameters.

t is one global step count per parameter group, as TF1's shared beta-power accumulators: it advances on every
step() even for parameters without a gradient (those are skipped by torch and keep their own count; the trainer
primes parameters that start training late to the global count, carry_adam_steps below).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import torch


class AdamTF1(torch.optim.Adam):
    """torch.optim.Adam with TF1's epsilon placement (see the module docstring); other arguments as Adam's."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, **kwargs: Any):
        super().__init__(params, lr=lr, betas=betas, eps=eps, **kwargs)
        for group in self.param_groups:
            group.setdefault("tf_eps", eps)  # the epsilon of the TF1 formula; group["eps"] is derived per step
            group.setdefault("tf_step", 0)  # the global step count t of the last update

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:  # a torch.optim.Adam state: t from the parameters' own counts
            if "tf_step" not in group:
                steps = [float(self.state[p]["step"]) for p in group["params"] if "step" in self.state[p]]
                group["tf_step"] = int(max(steps, default=0))
                group["tf_eps"] = group["eps"]

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        for group in self.param_groups:
            group["tf_step"] += 1
            group["eps"] = group["tf_eps"] / math.sqrt(1.0 - group["betas"][1] ** group["tf_step"])
        return super().step(closure)


def carry_adam_steps(optimizer: torch.optim.Adam, steps: int) -> int:
    """Give every parameter without Adam state a state at step `steps` with zero moments; return how many.

    TF1's Adam keeps one global bias-correction counter per optimizer, so the parameters that get their first
    gradient in model 2's fine-tuning (output table, biases) see bias correction ~1 from their first step there
    (first updates ~0.7 lr, not ~lr as with per-parameter torch Adam). Priming their state reproduces that.
    """
    template = next((s["step"] for s in optimizer.state.values() if "step" in s), None)
    if template is None or steps == 0:
        return 0
    n = 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            if not optimizer.state[p]:
                optimizer.state[p] = {"step": torch.full_like(template, float(steps)),
                                      "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                                      "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
                n += 1
    return n
