"""Run folders: where a model's run lives, and the rules for starting, continuing or replacing one.

A run lives in {output_dir}/{name}: the model's name, {model}_seed{s} for one seed of a seed ensemble
(train.py --seeds), or a --run_name. A new run refuses a folder that holds a run: --resume continues it (flags left
out keep the run's recorded values; flags that would change its batches, schedule or loss are refused),
--overwrite moves it aside to {run}.replaced-<time> first (nothing is deleted).
"""
from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any, Callable

from common.cli import UsageError, check_flags, check_gpu, check_output_dir
from common.jsonio import load_json
from trainer import distributed

# Flags a resumed run must keep: they decide the batches (bs, seed), the schedule or the loss. Others (epochs,
# max_minutes, gpu, amp, ...) may change on --resume; the log says which did. Left out on the command line, a flag
# takes the run's recorded value (recorded_flags).
FIXED_ON_RESUME = ("bs", "seed", "warmup_steps", "tags_loss_weight", "artists_loss_weight", "mlm_epochs")
# Flags that only say how this invocation runs: never compared on --resume.
PER_INVOCATION = ("resume", "overwrite", "gpu", "max_minutes", "progress", "dataset_dir", "output_dir", "run_name",
                  "save_every_minutes", "log_every", "tensorboard")


def run_dir(output_dir: str | Path, model: str, seed: int | None = None, run_name: str | None = None) -> Path:
    """The run folder of `model` under output_dir: {run_name} when given, else {model}_seed{seed} for one seed of a
    seed ensemble, else {model}."""
    return Path(output_dir) / (run_name or (model if seed is None else f"{model}_seed{seed}"))


def check_train_flags(flags: dict[str, Any], default_run: str) -> Path:
    """The flags every trainer shares and its run folder, checked before any work; -> the run folder.

    A UsageError names the bad flags; prepare_run_dir refuses a folder holding a run without --resume/--overwrite
    (under torchrun rank 0 moves an old run aside, the other ranks only check).
    """
    f = flags
    check_flags(bs=(f["bs"] >= 1, "at least 1"), warmup_steps=(f["warmup_steps"] >= 1, "at least 1"),
                epochs=(f["epochs"] >= 1, "at least 1"),
                max_minutes=(f["max_minutes"] is None or f["max_minutes"] > 0, "a positive number of minutes"),
                valid_every=(f["valid_every"] >= 1, "at least 1"), patience=(f["patience"] >= 1, "at least 1"),
                save_every_minutes=(f["save_every_minutes"] is None or f["save_every_minutes"] > 0,
                                    "a positive number of minutes or none"),
                log_every=(f["log_every"] >= 1, "at least 1"))
    check_gpu(f["gpu"])
    distributed.check_gpu_flag(f["gpu"])
    check_output_dir("output_dir", f["output_dir"])
    return prepare_run_dir(run_dir(f["output_dir"], default_run, run_name=f["run_name"]), f["resume"], f["overwrite"],
                           f, dry_run=not distributed.is_main_process())


def recorded_flags(main: Callable[..., Any], default_run: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """For run_cli's `fill`: on --resume, the flags the command line leaves out take the run's recorded values
    (its config.json), not the entry point's defaults, so `--resume` alone continues a run started with, e.g.,
    --warmup_steps=300. Flags of this invocation only (PER_INVOCATION) keep their defaults; a flag given on the
    command line is compared by resume_conflicts (refused or noted)."""
    params = inspect.signature(main).parameters

    def fill(given: dict[str, Any]) -> dict[str, Any]:
        if not given.get("resume"):
            return {}
        output_dir = given.get("output_dir", params["output_dir"].default)
        config = run_dir(output_dir, default_run, run_name=given.get("run_name")) / "config.json"
        if not config.is_file():
            return {}  # nothing recorded: prepare_run_dir says what is missing
        recorded = load_json(config).get("flags", {})
        return {k: v for k, v in recorded.items() if k in params and k not in PER_INVOCATION and k not in given}

    return fill


def resume_conflicts(old: dict[str, Any], new: dict[str, Any], source: str | Path) -> str:
    """Compare a run's recorded flags with a resume's: UsageError if one of FIXED_ON_RESUME differs; -> a note
    naming the other flags that differ (the resume overrides them), or "" when none does."""
    fixed = [k for k in FIXED_ON_RESUME if k in old and k in new and old[k] != new[k]]
    if fixed:
        raise UsageError(f"{source}: the run was started with " + ", ".join(f"--{k}={old[k]}" for k in fixed)
                         + "; a resumed run keeps its batches, schedule and loss, so --resume refuses "
                         + ", ".join(f"--{k}={new[k]}" for k in fixed)
                         + " (drop the flag, or start a new run with --overwrite or another --run_name)")
    changed = [k for k in new if k in old and k not in PER_INVOCATION + FIXED_ON_RESUME and old[k] != new[k]]
    return ("overriding " + ", ".join(f"{k} {old[k]} -> {new[k]}" for k in changed)) if changed else ""


def prepare_run_dir(folder: str | Path, resume: bool, overwrite: bool, flags: dict[str, Any] | None = None,
                    dry_run: bool = False) -> Path:
    """Check (before any work) that a run may go into `folder`, and make room for a new one if asked.

    - resume: the folder must hold a last.pt; with `flags`, the run's config.json must agree on FIXED_ON_RESUME.
    - a new run into a folder holding a run (best.pt or last.pt) is refused unless `overwrite`, which moves the
      old folder aside to {folder}.replaced-<time> (nothing is deleted); `dry_run` only checks.
    """
    folder = Path(folder)
    if resume and overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    held = [p.name for p in (folder / "best.pt", folder / "last.pt") if p.exists()]
    if resume:
        if not (folder / "last.pt").is_file():
            raise UsageError(f"{folder}: no last.pt to resume from; drop --resume to start a new run")
        config = folder / "config.json"
        if flags is not None and config.is_file():
            resume_conflicts(load_json(config).get("flags", {}), flags, config)
    elif held and not overwrite:
        raise UsageError(f"{folder} already holds a run ({', '.join(held)}); pass --resume to continue it, or "
                         f"--overwrite to start a new run (the old one is moved aside, not deleted)")
    elif held and not dry_run:
        aside = folder.with_name(f"{folder.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
        folder.rename(aside)
        print(f"--overwrite: moved the earlier run {folder} to {aside}")
    return folder
