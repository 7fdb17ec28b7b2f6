"""Steps 1-3 in order: dump the datasets, train model 1, train model 2 (the original's train.py).

Each step runs as its own process, as in the original (os.system there), so that each starts with a clean memory;
the first step that fails stops the run with its exit status. With --nproc_per_node=N the trainers run on N
processes of this machine through torchrun (`python -m torch.distributed.run --standalone`; trainer/distributed.py).

    python train.py [--gpu=0] [--dataset_dir=dataset] [--output_dir=output] [--max_minutes=30] [--epochs=300] \\
        [--mlm_epochs=100] [--warmup_steps=4000] [--amp] [--resume | --overwrite] [--skip_dump] [--nproc_per_node=N] \\
        [--seeds=0,1,2]

With --seeds (a seed ensemble, for soft voting in Ensemble.py --seeds / the hybrid), each model is trained once per
seed into its own run folder {model}_seed{s}; without it, once into {model} with the trainer's default seed.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from common.cli import check_flags, check_gpu, check_output_dir, run_cli
from models import RUNS
from trainer.run_dir import prepare_run_dir, run_dir

ROOT = Path(__file__).resolve().parent


def flags(**values) -> list[str]:
    """--name=value for every value that is set (None means: the step's own default)."""
    return [f"--{k}={v}" for k, v in values.items() if v is not None]


def step_command(script: str, args: list[str], nproc_per_node: int | None = None) -> list[str]:
    """`python script args`, or with nproc_per_node the same under torchrun on this machine."""
    torchrun = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc_per_node}"]
    return [sys.executable, *(torchrun if nproc_per_node else []), script, *args]


def run_step(script: str, args: list[str], nproc_per_node: int | None = None) -> None:
    """Run a step from the repo root (on nproc_per_node processes via torchrun); exit with its status if it fails."""
    cmd = step_command(script, args, nproc_per_node)
    print("+ " + " ".join(cmd), flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    rc = subprocess.run(cmd, cwd=ROOT, env=env).returncode
    if rc != 0:
        print(f"{script} failed with exit status {rc}; stopping", file=sys.stderr)
        sys.exit(rc)


def main(gpu: int | None = None, dataset_dir: str = "dataset", output_dir: str = "output",
         max_minutes: float | None = None, epochs: int | None = None, mlm_epochs: int | None = None,
         warmup_steps: int | None = None, amp: bool = False, resume: bool = False, overwrite: bool = False,
         skip_dump: bool = False, nproc_per_node: int | None = None, seeds: list[int] | None = None) -> None:
    """Dump, then train both models.

    Args:
        gpu: CUDA device for training; -1 = CPU; unset = cuda:0 when there is one, else the CPU.
        dataset_dir: holds train.json (and optionally song_meta.json); step 1 writes the split here.
        output_dir: dumps and the two run folders go here.
        max_minutes: time box per model (model 2: MLM and fine-tuning together).
        epochs: at most this many epochs per model (model 2: fine-tuning epochs); default the original's 300.
        mlm_epochs: model 2's MLM pre-training epochs; default the original's 100.
        warmup_steps: Noam warmup of both models; default the original's 4000 (a short demo run needs far fewer).
        amp: bf16 autocast on CUDA.
        resume: continue both trainings from their last.pt.
        overwrite: start both trainings anew even where a run exists (the old run folders are moved aside).
        skip_dump: reuse the dumps already in output_dir.
        nproc_per_node: train each model on this many processes of this machine (torchrun + DDP: one per GPU, or
            CPU processes with --gpu=-1); the global batch stays 128. Unset: one process, as the original.
        seeds: train each model once per seed, into run folders {model}_seed{s} (e.g. 0,1,2); default one run each.
    """
    check_flags(max_minutes=(max_minutes is None or max_minutes > 0, "a positive number of minutes"),
                epochs=(epochs is None or epochs >= 1, "at least 1"),
                mlm_epochs=(mlm_epochs is None or mlm_epochs >= 0, "at least 0"),
                warmup_steps=(warmup_steps is None or warmup_steps >= 1, "at least 1"),
                nproc_per_node=(nproc_per_node is None or nproc_per_node >= 1, "at least 1"),
                gpu=(nproc_per_node is None or gpu is None or gpu == -1,
                     "unset or -1 with --nproc_per_node (each process uses its own GPU)"),
                seeds=(seeds is None or (len(seeds) > 0 and len(set(seeds)) == len(seeds) and min(seeds) >= 0),
                       "distinct seeds >= 0, e.g. 0,1,2"))
    check_gpu(gpu)
    check_output_dir("output_dir", output_dir)
    for run in RUNS:  # refuse before step 1 runs, not after it (the trainers check again and move old runs aside)
        for seed in seeds or [None]:
            prepare_run_dir(run_dir(output_dir, run, seed), resume, overwrite, dry_run=True)
    dataset_dir, output_dir = str(Path(dataset_dir).resolve()), str(Path(output_dir).resolve())
    paths = flags(dataset_dir=dataset_dir, output_dir=output_dir)
    if not skip_dump:
        run_step("data_loader/dump_datasets.py", paths)
    train = paths + flags(gpu=gpu, max_minutes=max_minutes, epochs=epochs, warmup_steps=warmup_steps)
    train += flags(amp=amp, resume=resume, overwrite=overwrite)
    for run, extra in ((RUNS[0], []), (RUNS[1], flags(mlm_epochs=mlm_epochs))):
        for seed in seeds or [None]:
            folder = flags(seed=seed, run_name=None if seed is None else run_dir(output_dir, run, seed).name)
            run_step(f"trainer/{run}_model_trainer.py", train + extra + folder, nproc_per_node)


if __name__ == "__main__":
    run_cli(main)
