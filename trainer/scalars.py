"""TensorBoard scalars of a run, written into its run folder when the `tensorboard` package is installed.

    pip install -e ".[tensorboard]"  &&  tensorboard --logdir=output     (one run per run folder)

Tags: train/loss, train/lr, train/steps_per_s (every --log_every steps), train/epoch_loss and val/<metric> (every
validation), all against the optimizer step. Without tensorboard (or off, or on a rank other than 0) every call
does nothing: tensorboard is imported only here and only when asked for.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable


class Scalars:
    def __init__(self, run_dir: str | Path | None, log: Callable[[str], None]):
        """run_dir: where the event files go; None: write nothing. `log` says once when tensorboard is missing."""
        self.writer: Any = None
        if run_dir is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package
        except ImportError:
            log("tensorboard is not installed: no TensorBoard scalars (pip install -e \".[tensorboard]\")")
            return
        self.writer = SummaryWriter(log_dir=str(run_dir))

    def add(self, step: int, **values: Any) -> None:
        """One scalar per numeric value, at optimizer step `step` (other values are skipped)."""
        if self.writer is None:
            return
        for tag, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
