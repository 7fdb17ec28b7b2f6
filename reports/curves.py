"""Validation curves: one PNG per run in an output folder, the validation score per epoch from its checkpoint.

    python -m reports.curves [--output_dir=output]        -> {output_dir}/curves/{run}.png

A run is a folder of output_dir holding last.pt (or best.pt); its `history` (one dict per validation,
trainer/loop.py) gives the points. Plotted: the score (0.85 song nDCG + 0.15 tag nDCG) per epoch of each stage that
has one, with the song and tag nDCG beside it and the best epoch marked; model 2's MLM stage has no score (its
MLM loss is in log.txt and TensorBoard). matplotlib is imported only here, when a plot is drawn.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from common.cli import UsageError, check_output_dir, run_cli
from common.jsonio import InputError, atomic_path

SHOWN = (("score", "score", 2.0), ("music_ndcg", "song nDCG", 1.0), ("tag_ndcg", "tag nDCG", 1.0))


def run_history(run_dir: Path) -> list[dict[str, Any]] | None:
    """The validation history of the run in run_dir (last.pt, else best.pt); None when it holds neither.

    The checkpoint is memory-mapped: only the small history is read, not the weights.
    """
    for name in ("last.pt", "best.pt"):
        path = run_dir / name
        if path.is_file():
            try:
                ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except Exception as e:  # torch raises several types for truncated or foreign files
                raise InputError(f"{path}: not a readable checkpoint: {e}") from None
            return list(ckpt.get("history", []))
    return None


def plot_history(history: list[dict[str, Any]], title: str, path: Path) -> Path:
    """Draw the score-bearing stages of `history` into the PNG `path` (written atomically)."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.add_subplot()
    stages = [s for s in dict.fromkeys(h["stage"] for h in history) if any("score" in h for h in history
                                                                               if h["stage"] == s)]
    for stage in stages:
        # in step order: a time-boxed run validates mid-epoch, and its resume that epoch again
        points = sorted((h for h in history if h["stage"] == stage and "score" in h), key=lambda h: h["step"])
        epochs = [h["epoch"] for h in points]
        label = "" if len(stages) == 1 else f"{stage}: "
        for key, name, width in SHOWN:
            if all(key in h for h in points):
                ax.plot(epochs, [h[key] for h in points], marker="o", markersize=3, linewidth=width,
                        label=label + name)
        best = max(points, key=lambda h: h["score"])
        ax.annotate(f"best {best['score']:.4f}, epoch {best['epoch']}", (best["epoch"], best["score"]),
                    textcoords="offset points", xytext=(0, -14), ha="center", fontsize=8)  # below: clear of the title
    ax.set(xlabel="epoch", ylabel="validation", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def plot_runs(output_dir: str | Path) -> list[Path]:
    """One PNG per run of output_dir with at least one scored validation, in {output_dir}/curves/; -> the files."""
    output_dir = Path(output_dir)
    written = []
    for run_dir in sorted(p for p in output_dir.iterdir() if p.is_dir()) if output_dir.is_dir() else []:
        history = run_history(run_dir)
        if history and any("score" in h for h in history):
            written.append(plot_history(history, f"{run_dir.name}: validation per epoch",
                                        output_dir / "curves" / f"{run_dir.name}.png"))
    return written


def main(output_dir: str = "output") -> None:
    """Plot the validation score per epoch of every run in output_dir.

    Args:
        output_dir: the folder holding the run folders (the trainers' --output_dir).
    """
    if not Path(output_dir).is_dir():  # a mistyped folder would otherwise "succeed" with no curve
        raise UsageError(f"--output_dir={output_dir}: no such folder; pass the folder the trainers wrote their runs to")
    check_output_dir("output_dir", output_dir)
    written = plot_runs(output_dir)
    print("\n".join(str(p) for p in written) if written else f"no run with a validation score in {output_dir}")


if __name__ == "__main__":
    run_cli(main)
