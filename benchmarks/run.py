"""The benchmarks (docs/benchmarks.md): one command, one report (printed and written to {work_dir}/benchmark.md).

    python -m benchmarks.run [--preset=demo|full] [--work_dir=benchmarks/results/<preset>] [--gpu=None]
        [--train_steps=10] [--skip_generate=False] [--amp=False] [--quality=True] [--inference_questions=None]

Phases, in order, on the sample dataset of the preset (data_loader/make_sample_dataset.py):
    0. sample generation and 1. dump_datasets, each as its own process: wall time and the child's peak RSS;
    2. training throughput of each model's real batches (model 1 denoising, model 2 fine-tuning and MLM, the
       ranking term off and on) next to the practical roofline: the time of the same step's matmuls alone
       (benchmarks/roofline.py), measured in the same run; on CUDA a float32 and a bf16-autocast row each;
    3. inference: the ensemble (predictor.ensembling.run_ensemble) on the sample's leaderboard questions,
       dataset/val.json;
    4. evaluation time (and score) of its results against dataset/sample_answers/val.json;
    5. quality: the leaderboard (reports.leaderboard) on step 1's local split, questions/ vs answers/val.json;
       and the validation curve (PNG, reports/curves.py) of every run trained into {work_dir}/output.

Layout of work_dir: dataset/ (step 0's files and step 1's split), output/ (the dumps; train into it with
`python train.py --dataset_dir=W/dataset --output_dir=W/output` to benchmark trained models), untrained/ (freshly
initialised checkpoints, used for inference when output/ has no best.pt of both models), inference/, benchmark.md.
Step 0 replaces only the sample it wrote (its marker vouches for it); a sample of a work folder made before step 0
kept a marker is recognised by its sample_answers/ and made again; other data in dataset/ stops the run before any
work, with one line saying what to do (--skip_generate, or another --work_dir).
--amp: bf16 autocast for inference on CUDA (training gets both rows on CUDA regardless; the CPU ignores it).
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import torch

from benchmarks.roofline import record_matmuls, time_matmuls
from common.cli import UsageError, check_flags, check_gpu, run_cli
from common.jsonio import InputError, atomic_write, load_json, write_json
from common.metric import ResultsError, evaluate_from_data
from data_loader.dumps import Dumps, load_dumps
from data_loader.make_sample_dataset import MARKER, OUTPUT_FILES, PRESETS, not_ours
from data_loader.plylst_title_data import TitleFinetuneData, TitleMLMData
from data_loader.songs_tags_artists_data import SongsTagsArtistsData
from models import MODELS, RUNS
from predictor.ensembling import run_ensemble
from reports import leaderboard
from reports.curves import plot_runs
from trainer.checkpoint import save_checkpoint
from trainer.device import pick_device

ROOT = Path(__file__).resolve().parent.parent
WARMUP_STEPS = 2  # untimed steps before the timed ones (allocator, autotuning, lazy Adam state)
RANKING_WEIGHT = 2.0  # the trainers' ranking weight from epoch 50


# ----------------------------------------------------------------------------------------------------------------
# small helpers


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def machine(device: torch.device) -> str:
    """CPU model, cores torch uses (of those available), torch version, and the CUDA device if any."""
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.is_file() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
               platform.processor() or "unknown CPU")
    text = f"{cpu}, torch uses {torch.get_num_threads()} of {len(os.sched_getaffinity(0))} cores, " \
           f"torch {torch.__version__}"
    return text + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ", no GPU")


def table(header: Sequence[str], rows: list[Sequence[Any]]) -> list[str]:
    """Markdown table lines; the first column left-aligned, the others right-aligned."""
    return [f"| {' | '.join(header)} |", "|---|" + "---:|" * (len(header) - 1),
            *(f"| {' | '.join(str(c) for c in row)} |" for row in rows)]


# Forks `python args` and reports that child's peak RSS (wait4's ru_maxrss, kB) on the file descriptor argv[1].
# Why a launcher: Linux starts a forked child's max RSS at the RSS of the address space it copied, so a step forked
# straight from this process (torch loaded, a few hundred MB) would report at least that; this launcher is ~13 MB.
LAUNCHER = """import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
_, status, usage = os.wait4(pid, 0)
os.write(int(sys.argv[1]), str(usage.ru_maxrss).encode())
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_child(args: list[str]) -> tuple[float, int]:
    """Run `python args` from the repo root; -> (wall seconds, its peak RSS in kB). Fails on a non-zero exit."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    print("+ python " + " ".join(args), flush=True)
    read, write = os.pipe()
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(write), *args], cwd=ROOT, env=env,
                            pass_fds=(write,))
    os.close(write)
    rc = proc.wait()
    seconds = time.perf_counter() - start
    with os.fdopen(read) as f:
        peak_kb = f.read()
    if rc:
        raise InputError(f"{args[0]} failed with exit status {rc}")
    return seconds, int(peak_kb)


# ----------------------------------------------------------------------------------------------------------------
# phases 0 and 1: preprocessing


def made_before_marker(dataset_dir: Path) -> bool:
    """Whether dataset_dir holds a sample that step 0 wrote before it recorded its files: no marker, and both
    sample answer files, which only step 0 writes (real data has none), as plain files."""
    answers = [dataset_dir / f for f in OUTPUT_FILES if f.startswith("sample_answers/")]
    return not (dataset_dir / MARKER).exists() and all(p.is_file() and not p.is_symlink() for p in answers)


def step0_flags(dataset_dir: Path, work_flag: str, generated: bool) -> list[str]:
    """Step 0's extra flags for the work folder's dataset, before any work: none for an empty folder or the sample
    step 0 vouches for; --force for the benchmark's own sample from before the marker (step 0 would refuse it and
    ask for a flag this command does not have). Other data is refused with a UsageError saying what to do;
    `work_flag` is --work_dir as given, for the message."""
    foreign = not_ours(str(dataset_dir), list(OUTPUT_FILES))
    if not foreign:
        return []
    if made_before_marker(dataset_dir):
        print(f"{dataset_dir}: a sample made before step 0 recorded its files; making it again")
        return ["--force"]
    hint = "add --skip_generate to benchmark on these files, or choose another --work_dir" if generated else \
        "choose another --work_dir"
    raise UsageError(f"--work_dir={work_flag}: {dataset_dir} holds {', '.join(foreign)}, not written by step 0 or "
                     f"changed since (real data?); nothing was written: {hint}")


def preprocess(preset: str, dataset_dir: Path, output_dir: Path, skip_generate: bool,
               work_flag: str | None = None) -> list[str]:
    """Steps 0 and 1 as processes; -> report lines (table and vocabulary sizes)."""
    rows = []
    generated = all((dataset_dir / f).is_file() for f in ("train.json", "song_meta.json", "val.json",
                                                           "sample_answers/val.json"))
    if skip_generate and generated:
        rows.append([f"0 make_sample_dataset ({preset})", "skipped (files exist)", ""])
    else:
        force = step0_flags(dataset_dir, work_flag or str(dataset_dir.parent), generated)
        s, kb = run_child(["data_loader/make_sample_dataset.py", f"--out_dir={dataset_dir}", f"--preset={preset}",
                           *force])
        rows.append([f"0 make_sample_dataset ({preset})", f"{s:.1f}", f"{kb / 1024:,.0f}"])
    s, kb = run_child(["data_loader/dump_datasets.py", f"--dataset_dir={dataset_dir}", f"--output_dir={output_dir}"])
    rows.append(["1 dump_datasets", f"{s:.1f}", f"{kb / 1024:,.0f}"])

    meta = load_dumps(output_dir).meta
    v, split = meta["vocab"], meta["split"]
    sizes = (f"{meta['sources']['train.json']['n']:,} playlists -> train {split['n_train']:,} / "
             f"val {split['n_val']:,}; "
             f"vocabulary: songs {v['n_songs']:,}, tags {v['n_tags']:,}, artists {v['n_artists']:,} "
             f"(model 1 table {v['size']:,} rows); title BPE pieces {meta['sentencepiece']['vocab_size']:,}")
    print(sizes)
    return ["## Preprocessing", "", *table(["step", "wall s", "peak RSS MiB"], rows), "", sizes]


# ----------------------------------------------------------------------------------------------------------------
# phase 2: training throughput and its matmul roofline


@dataclass
class TrainCase:
    model: str  # models.MODELS name
    batches: str  # what the batches are, for the table
    data: Any  # an EpochData: .epoch(e) -> sequence of batch dicts
    ranking_weight: float = 0.0


def training_cases(dumps: Dumps, bs: int) -> list[TrainCase]:
    denoising = SongsTagsArtistsData(dumps.train, dumps.vocab, bs)
    finetune = TitleFinetuneData(dumps.train, dumps.vocab, bs)
    mlm = TitleMLMData(dumps.train, dumps.meta["sentencepiece"]["vocab_size"], bs)
    return [TrainCase("songs_tags_artists", "denoising", denoising),
            TrainCase("songs_tags_artists", "denoising + ranking", denoising, RANKING_WEIGHT),
            TrainCase("plylst_title", "fine-tune", finetune),
            TrainCase("plylst_title", "fine-tune + ranking", finetune, RANKING_WEIGHT),
            TrainCase("plylst_title", "MLM", mlm)]


def real_batches(data: Any, n: int, device: torch.device) -> tuple[list[dict[str, torch.Tensor]], float]:
    """The first n batches of epoch 1 (cycled if the epoch is shorter), on `device`, and the host seconds per
    batch it took to build them: the epoch's setup amortised over its batches plus slicing the batch."""
    start = time.perf_counter()
    epoch = data.epoch(1)
    setup = time.perf_counter() - start
    start = time.perf_counter()
    host = [epoch[i % len(epoch)] for i in range(n)]
    per_batch = setup / len(epoch) + (time.perf_counter() - start) / n
    return [{k: v.to(device) for k, v in b.items()} for b in host], per_batch


def measure_training(case: TrainCase, dumps: Dumps, device: torch.device, steps: int, bf16: bool) -> dict[str, float]:
    """ms per optimizer step over `steps` real batches after WARMUP_STEPS, and the matmuls of one such step."""
    cls = MODELS[case.model]
    torch.manual_seed(0)
    model = cls(cls.config_class.from_dumps(dumps)).to(device).train()
    # as trainer/loop.py builds it; a small fixed lr instead of the Noam schedule (the lr does not change the time)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9,
                                 fused=True)
    batches, build_s = real_batches(case.data, WARMUP_STEPS + steps, device)

    def forward_backward(batch: dict[str, torch.Tensor]) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss, _ = model.loss(batch, case.ranking_weight)
        loss.backward()

    def step(batch: dict[str, torch.Tensor]) -> None:
        optimizer.zero_grad(set_to_none=True)
        forward_backward(batch)
        optimizer.step()

    for batch in batches[:WARMUP_STEPS]:
        step(batch)
    sync(device)
    start = time.perf_counter()
    for batch in batches[WARMUP_STEPS:]:
        step(batch)
    sync(device)
    step_s = (time.perf_counter() - start) / steps
    playlists = sum(len(b["ids"]) for b in batches[WARMUP_STEPS:])

    # the roofline: every matmul of one forward + backward at the first timed batch's shapes, replayed alone
    optimizer.zero_grad(set_to_none=True)
    calls = record_matmuls(lambda: forward_backward(batches[WARMUP_STEPS]))
    matmul_s = time_matmuls(calls, device)
    flops = sum(c.flops for c in calls)
    return {"step_ms": 1e3 * step_s, "playlists_s": playlists / (steps * step_s), "build_ms": 1e3 * build_s,
            "matmul_ms": 1e3 * matmul_s, "ratio": step_s / matmul_s, "gflop": flops / 1e9,
            "tflops": flops / matmul_s / 1e12}


def training(dumps: Dumps, device: torch.device, steps: int, bs: int) -> list[str]:
    """Phase 2 over every case and dtype; -> report lines."""
    dtypes = [False, True] if device.type == "cuda" else [False]
    rows = []
    # trainer/loop.py trains with deterministic algorithms on the CPU (exact resume); time what it runs
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(deterministic or device.type == "cpu")
    try:
        for case in training_cases(dumps, bs):
            for bf16 in dtypes:
                r = measure_training(case, dumps, device, steps, bf16)
                dtype = "bf16 autocast" if bf16 else "fp32"
                print(f"  {case.model} {case.batches} {dtype}: {r['step_ms']:.1f} ms/step, "
                      f"{r['playlists_s']:,.0f} playlists/s; matmuls {r['matmul_ms']:.1f} ms", flush=True)
                rows.append([case.model, case.batches, dtype, f"{r['step_ms']:.1f}", f"{r['playlists_s']:,.0f}",
                             f"{r['build_ms']:.1f}", f"{r['matmul_ms']:.1f}", f"{r['ratio']:.2f}",
                             f"{r['gflop']:.1f}", f"{r['tflops']:.2f}"])
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    finally:
        torch.use_deterministic_algorithms(deterministic)
    header = ["model", "batches", "dtype", "ms/step", "playlists/s", "batch build ms", "matmul ms/step",
              "step / matmuls", "matmul GFLOP/step", "matmul TFLOP/s"]
    return ["## Training throughput", "",
            f"Batch size {bs}; {WARMUP_STEPS} warm-up steps, then {steps} timed steps (forward, backward, Adam step) "
            f"over consecutive real batches of epoch 1, already on the device. Batch build: host time per batch "
            f"(epoch setup amortised + slicing), not in ms/step. Matmuls: every mm/addmm/bmm of one forward + "
            f"backward at the shapes of the first timed batch, replayed alone on the same device "
            f"(benchmarks/roofline.py): the practical roofline; step / matmuls is how far the step is from it.",
            "", *table(header, rows)]


# ----------------------------------------------------------------------------------------------------------------
# phases 3 and 4: inference and evaluation


def untrained_models(folder: Path, dumps: Dumps) -> Path:
    """A models folder for the ensemble: freshly initialised best.pt of both models and a link to the dumps."""
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "dumps"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(dumps.dir.resolve(), target_is_directory=True)
    torch.manual_seed(0)
    for name in RUNS:  # the run folders are named after their models
        cls = MODELS[name]
        model = cls(cls.config_class.from_dumps(dumps))
        save_checkpoint(folder / name / "best.pt", {"model_name": model.name, "model_config": model.config_dict(),
                                                   "model": model.state_dict(), **dumps.fingerprint,
                                                   "recommender": True})  # timing only: any weights will do
    return folder


def question_file(dataset_dir: Path, work: Path, limit: int | None) -> Path:
    """The leaderboard questions of the sample, or a copy of their first `limit`."""
    path = dataset_dir / "val.json"
    if limit is None:
        return path
    short = work / "inference" / f"val_first{limit}.json"
    write_json(short, load_json(path)[:limit])
    return short


def inference(dataset_dir: Path, output_dir: Path, work: Path, gpu: int | None, amp: bool, bs: int,
              limit: int | None) -> tuple[list[str], Path, Path, bool]:
    """Phase 3; -> (report lines, questions path, results path, trained weights?)."""
    trained = all((output_dir / r / "best.pt").is_file() for r in RUNS)
    models_dir = output_dir if trained else untrained_models(work / "untrained", load_dumps(output_dir))
    questions = question_file(dataset_dir, work, limit)
    results = work / "inference" / "results.json"
    out = run_ensemble(bs=bs, gpu=gpu, question_path=str(questions), out_path=str(results),
                       dataset_dir=str(dataset_dir), output_dir=str(models_dir), amp=amp)
    seconds, n = out["seconds"], out["n"]
    total, work_s = sum(seconds.values()), seconds.get("forward", 0.0) + seconds.get("candidates/blend", 0.0)
    weights = "trained best.pt" if trained else "untrained weights"
    header = ["questions", "weights", "playlists/s (forward + candidates/blend)", "playlists/s end to end",
              *(f"{k} s" for k in seconds), "total s"]
    row = [f"{n:,}", weights, f"{n / work_s:,.1f}", f"{n / total:,.1f}", *(f"{v:.2f}" for v in seconds.values()),
           f"{total:.2f}"]
    lines = ["## Inference", "",
             f"predictor.ensembling.run_ensemble on {questions}" + (", bf16 autocast" if amp else "")
             + f"; routing: {', '.join(f'{k} {v:,}' for k, v in out['counts'].items())}.", "", *table(header, [row])]
    return lines, questions, results, trained


def evaluation(dataset_dir: Path, questions: Path, results: Path, trained: bool) -> list[str]:
    """Phase 4: evaluate.evaluate_from_data on the inference results vs the sample's answers; -> report lines."""
    start = time.perf_counter()
    q, rec = load_json(questions), load_json(results)
    ids = {p["id"] for p in q}
    gt = [a for a in load_json(dataset_dir / "sample_answers" / "val.json") if a["id"] in ids]
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    r = evaluate_from_data(gt, rec, q)
    score_s = time.perf_counter() - start
    note = "" if trained else " (untrained weights: the score only shows that the pipeline runs)"
    print(f"  evaluation: {score_s:.2f}s, score {r['score']:.6f}{note}")
    return ["## Evaluation", "",
            *table(["playlists", "scoring s", "reading the 3 files s", "music nDCG", "tag nDCG", "score"],
                   [[f"{r['count']:,}", f"{score_s:.2f}", f"{read_s:.2f}", f"{r['music_ndcg']:.6f}",
                     f"{r['tag_ndcg']:.6f}", f"{r['score']:.6f}"]]),
            "", f"evaluate.evaluate_from_data of the inference results against "
                f"{dataset_dir / 'sample_answers' / 'val.json'}{note}."]


# ----------------------------------------------------------------------------------------------------------------
# phase 5: quality


def leaderboard_report(dataset_dir: Path, output_dir: Path, gpu: int | None) -> list[str]:
    """The leaderboard on step 1's local split, its markdown as written to {output_dir}/leaderboard.md."""
    leaderboard.main(dataset_dir=str(dataset_dir), output_dir=str(output_dir), gpu=gpu)
    return ["## Quality", "", (output_dir / "leaderboard.md").read_text(encoding="utf-8").rstrip()]


# ----------------------------------------------------------------------------------------------------------------
# entry point


def main(preset: str = "demo", work_dir: str | None = None, gpu: int | None = None, train_steps: int = 10,
         skip_generate: bool = False, amp: bool = False, quality: bool = True,
         inference_questions: int | None = None, bs: int = 128) -> None:
    """Run every benchmark phase and write {work_dir}/benchmark.md.

    Args:
        preset: sample dataset size: "demo" (minutes on a laptop CPU), "full" (the competition's sizes) or "tiny".
        work_dir: where the dataset, dumps, results and the report go; default benchmarks/results/<preset>.
        gpu: CUDA device; -1 = CPU; unset = cuda:0 when there is one, else the CPU.
        train_steps: timed training steps per row.
        skip_generate: reuse step 0's files when they exist in {work_dir}/dataset.
        amp: bf16 autocast for inference on CUDA.
        quality: run the leaderboard (baselines, and the BERT models where {work_dir}/output has best.pt).
        inference_questions: time inference on the first N leaderboard questions only.
        bs: batch size for training and inference (the trainers' default 128).
    """
    if preset not in PRESETS:
        raise UsageError(f"--preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    check_flags(train_steps=(train_steps >= 1, "at least 1"), bs=(bs >= 1, "at least 1"),
                inference_questions=(inference_questions is None or inference_questions >= 1, "at least 1"))
    check_gpu(gpu)
    flags = dict(preset=preset, work_dir=work_dir, gpu=gpu, train_steps=train_steps, skip_generate=skip_generate,
                 amp=amp, quality=quality, inference_questions=inference_questions, bs=bs)
    command = "python -m benchmarks.run " + " ".join(f"--{k}={v}" for k, v in flags.items() if v is not None)
    work = Path(work_dir or f"benchmarks/results/{preset}").resolve()
    dataset_dir, output_dir = work / "dataset", work / "output"
    device = pick_device(gpu)
    began = datetime.now(timezone.utc)
    report = [f"# Benchmark: {preset} preset", "",
              f"Machine: {machine(device)}.", "",
              f"Run {began.isoformat(timespec='seconds')}: `{command}` (work_dir {work}).", ""]

    print("== phases 0-1: preprocessing", flush=True)
    report += preprocess(preset, dataset_dir, output_dir, skip_generate, work_dir or str(work)) + [""]

    print(f"== phase 2: training throughput on {device}", flush=True)
    report += training(load_dumps(output_dir), device, train_steps, bs) + [""]

    print("== phase 3: inference", flush=True)
    lines, questions, results, trained = inference(dataset_dir, output_dir, work, gpu, amp, bs,
                                                   inference_questions)
    report += lines + [""]

    print("== phase 4: evaluation", flush=True)
    report += evaluation(dataset_dir, questions, results, trained) + [""]

    if quality:
        print("== phase 5: quality", flush=True)
        report += leaderboard_report(dataset_dir, output_dir, gpu) + [""]
        curves = plot_runs(output_dir)
        report += ["Validation curves: " + (", ".join(str(p) for p in curves) if curves else
                                            f"none (no trained run in {output_dir})"), ""]

    minutes = (datetime.now(timezone.utc) - began).total_seconds() / 60
    report.append(f"Benchmark wall time {minutes:.1f} min.")
    text = "\n".join(report) + "\n"
    with atomic_write(work / "benchmark.md") as f:
        f.write(text)
    print("\n" + text)


if __name__ == "__main__":
    run_cli(main, (ResultsError,))
