"""One trainer for both models (docs/original.md 2.4, 3.3, 3.4): fit() -> _train_epoch() -> validate -> early stopping.

Nothing here knows which model it trains. A run is a list of `Stage`s (model 1: "train"; model 2: "mlm" then
"finetune"), each with its own data, epoch count, validation function and early-stopping switch. Shared by all
stages: one Adam(betas (0.9, 0.98), eps 1e-9) whose state carries over between stages, and the Noam schedule
whose step counter restarts at 1 with every stage.

Per stage: validation at epoch 1, every `valid_every`-th epoch and the stage's last epoch; last.pt at every
validation and every `save_every_minutes`; best.pt whenever the score improves (stages with `early_stop`); stop
once epoch >= best_epoch + patience at a validation epoch. The ranking term (weight 2) is switched on from the
stage's epoch 50. The time box (`max_minutes`) and `max_steps` stop at a batch boundary, then validate and save
once, so that every run leaves a last.pt to resume from and a best.pt. SIGINT / SIGTERM stop at the next batch
boundary too: last.pt is saved (no validation), and the process exits with 128 + the signal number. --resume
continues from last.pt at the same batch with the same RNG state: epochs are pure functions of (seed, epoch)
(data_loader/*_data.py) and the torch RNG state is saved. The optimizer is Adam as TF1 computes it
(trainer/adam_tf1.py).

Run folder (trainer/run_dir.py): config.json (resolved config), log.txt, last.pt, best.pt, and TensorBoard scalars
when tensorboard is installed (trainer/scalars.py).

Under torchrun (trainer/distributed.py) every rank trains on its shard of each global batch through DDP; rank 0
alone validates, logs and writes the run folder while the others wait; the ranks agree every step on stopping
(signal, time box, max_steps) and on the periodic last.pt, so that they all stop and save at the same step.
last.pt holds every rank's RNG state; --resume continues on as many processes as wrote it and refuses any other
number (check_processes).
"""
from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm

from common.cli import UsageError
from common.jsonio import InputError, remove_stale_temps, write_json
from data_loader.dumps import Dumps
from models.base import PlaylistModel
from trainer import distributed
from trainer.adam_tf1 import AdamTF1, carry_adam_steps
from trainer.checkpoint import check_data, is_recommender, load_checkpoint, save_checkpoint
from trainer.distributed import Dist
from trainer.noam import noam_scheduler
from trainer.prefetch import EpochData, Prefetcher
from trainer.run_dir import resume_conflicts, run_dir
from trainer.scalars import Scalars


@dataclass
class Stage:
    """One training stage and its per-stage settings."""

    name: str  # "train" (model 1), "mlm" / "finetune" (model 2)
    data: EpochData
    epochs: int
    validate: Callable[[PlaylistModel], dict[str, float]]  # metrics in log order; needs "score" if early_stop
    valid_every: int = 5
    early_stop: bool = True  # keep best.pt on "score" and stop after `patience` epochs without improvement
    ranking_from_epoch: int | None = 50  # the ranking term is on from this epoch of the stage; None: never
    ranking_weight: float = 2.0


@dataclass
class TrainConfig:
    warmup_steps: int = 4000
    patience: int = 50  # epochs without a better score before early stopping
    max_minutes: float | None = None  # time box for this invocation; None: no limit
    max_steps: int | None = None  # stop after this many optimizer steps in all (smoke tests, benchmarks)
    seed: int = 0
    amp: bool = False  # bf16 autocast, CUDA only
    prefetch: bool | None = None  # build epochs and batches in background threads; None: on CUDA only
    progress: bool = True  # tqdm bar per epoch (only on a terminal)
    save_every_minutes: float | None = 30.0  # also write last.pt this often (at a batch boundary); None: never
    log_every: int = 100  # a progress line (step, mean loss, lr, steps/s) every this many optimizer steps
    tensorboard: bool = True  # TensorBoard scalars in the run folder when tensorboard is installed
    # table-dropout masks from a generator seeded by (seed, step), identical on every rank; None: under torchrun.
    # Off, they come from torch's global generator (seeded once per run), as on one process always
    step_masks: bool | None = None


class Interrupted(Exception):
    """Training stopped by a signal; last.pt holds the state to --resume from."""

    def __init__(self, signum: int, step: int, path: Path):
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}: saved {path}; continue with "
                         f"--resume")
        self.signum = signum


def early_stopping(score: float, best_score: float | None, best_epoch: int, epoch: int,
                   patience: int) -> tuple[float, int, bool, bool]:
    """-> (best_score, best_epoch, improved, stop): improved is strictly greater; stop once epoch >= best + patience."""
    improved = best_score is None or score > best_score
    if improved:
        best_score, best_epoch = score, epoch
    return best_score, best_epoch, improved, epoch >= best_epoch + patience


def format_log(tag: str, epoch: int, step: int, loss: float, metrics: dict[str, Any], lr: float,
               elapsed: float) -> str:
    """The fixed-format validation line: tag, epoch, step, mean train loss, the metrics in order, lr, elapsed."""
    shown = " ".join(f"{k} {v:.6f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
    return (f"[{tag}] epoch {epoch:3d} step {step:7d} loss {loss:.6f} | {shown} | "
            f"lr {lr:.4e} elapsed {elapsed:.1f}s")


class RunLog:
    """Print a line (unless echo is False) and append it to run_dir/log.txt; nothing when not enabled (the ranks
    other than 0)."""

    def __init__(self, path: Path, enabled: bool = True):
        self.path, self.enabled = path, enabled

    def __call__(self, line: str, echo: bool = True) -> None:
        if not self.enabled:
            return
        if echo:
            print(line, flush=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


class Trainer:
    def __init__(self, model: PlaylistModel, stages: list[Stage], run_dir: str | Path, device: torch.device,
                 config: TrainConfig, fingerprint: dict[str, str], run_config: dict[str, Any] | None = None,
                 dist: Dist = Dist()):
        """
        Args:
            model: the model, already on `device`; its config must have `d_model` (Noam).
            stages: the stages in order.
            run_dir: the run folder (created by rank 0).
            fingerprint: the dumps' vocabulary and SentencePiece hashes (Dumps.fingerprint), stored in checkpoints
                and checked on resume.
            run_config: the resolved flags (and anything else) to write to config.json and the checkpoints.
            dist: this process's rank among torchrun's (trainer/distributed.init); default the single process.
        """
        self.model, self.stages, self.device, self.config, self.dist = model, stages, device, config, dist
        self.run_dir = Path(run_dir)
        if dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            for path in remove_stale_temps(self.run_dir):  # e.g. a checkpoint write cut short by a kill
                print(f"removed {path}, left by a killed run")
        self.fingerprint = dict(fingerprint)
        self.run_config = dict(run_config or {}, train=dataclasses.asdict(config),
                               stages=[{f.name: getattr(s, f.name) for f in dataclasses.fields(s)
                                        if f.name not in ("data", "validate")} for s in stages],
                               model_name=model.name, model_config=model.config_dict(), world_size=dist.world_size)
        self.log = RunLog(self.run_dir / "log.txt", dist.is_main)
        self.log(f"device: {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
        if dist.enabled:
            self.log(f"torchrun: {dist.world_size} processes, global batch split across them (rank 0 logs)")
        self.ddp = distributed.wrap(model, dist, device)  # under torchrun: the DDP module whose forward is the loss
        self.step_masks = dist.enabled if config.step_masks is None else config.step_masks
        self.amp = config.amp and device.type == "cuda"
        if config.amp and not self.amp:
            self.log("--amp applies to CUDA only; training in float32 on the CPU")
        self.prefetch = Prefetcher(False, pin=False)  # the real one is made per fit(): its threads end with it
        # fused on the CPU too: ~9x faster than the foreach Adam on model 1's ~100M-float table (80 vs 730 ms)
        self.optimizer = AdamTF1(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9, fused=True)
        self.scheduler = noam_scheduler(self.optimizer, model.config.d_model, config.warmup_steps)
        self.step = 0
        self.best_score: float | None = None
        self.best_epoch = 0
        self.history: list[dict[str, Any]] = []
        self.elapsed_before = 0.0  # training time of earlier invocations (resume)
        self._t0 = time.time()
        self._validated_step = -1
        self._signal: int | None = None  # SIGINT / SIGTERM received: stop at the next batch boundary
        self._stop_signal: int | None = None  # the signal that stopped the run (on any rank)
        self._time_up = False  # the time box stopped the run (on any rank)
        self._saved_at = time.time()  # when last.pt was last written
        self.scalars = Scalars(None, self.log)  # the real one is made per fit(): its writer closes with it

    # ------------------------------------------------------------------------------------------------------------
    # the loop

    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train through all stages (or continue from last.pt); return {best_score, best_epoch, step, stopped}.

        On the CPU, torch's deterministic algorithms are on during the fit (index_put_ with accumulate, used by the
        table-dropout backward, is otherwise not bitwise repeatable), so a CPU run and its resume are exact.
        """
        previous = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(previous or self.device.type == "cpu")
        cuda = self.device.type == "cuda"
        self.prefetch = Prefetcher(cuda if self.config.prefetch is None else self.config.prefetch, pin=cuda)
        self.scalars = Scalars(self.run_dir if self.config.tensorboard and self.dist.is_main else None, self.log)
        handlers = self._catch_signals()
        try:
            return self._fit(resume)
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            torch.use_deterministic_algorithms(previous)
            self.prefetch.close()
            self.scalars.close()
            self.model.seed_table_masks(None)

    def _catch_signals(self) -> dict[int, Any]:
        """Route SIGINT / SIGTERM to a stop at the next batch boundary; -> the handlers to restore afterwards.

        A second signal while stopping gets the previous handler (Ctrl-C twice: KeyboardInterrupt; the atomic
        checkpoint write then leaves the old last.pt in place)."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def stop(signum: int, frame: Any) -> None:
            self._signal = signum
            signal.signal(signum, previous[signum])
            print(f"\n{signal.Signals(signum).name}: stopping at the next batch boundary and saving last.pt",
                  file=sys.stderr, flush=True)

        for s in previous:
            signal.signal(s, stop)
        return previous

    def _fit(self, resume: bool) -> dict[str, Any]:
        torch.manual_seed(self.config.seed + self.dist.rank)  # other dropouts differ per rank
        self._t0 = time.time()
        start = (0, 1, 0, False)  # stage index, epoch, batch, stage already begun
        if resume:
            start = self._resume()
        # written only once the resume checks have passed: a refused resume leaves the run's config.json as it was
        if self.dist.is_main:
            write_json(self.run_dir / "config.json", self.run_config, indent=2)
        self._saved_at = time.time()
        if start[0] >= len(self.stages):
            self.log("the run in this folder has already finished; nothing to resume")
            return {"best_score": self.best_score, "best_epoch": self.best_epoch, "step": self.step, "stopped": "done"}
        stopped = "done"
        for si in range(start[0], len(self.stages)):
            stage = self.stages[si]
            epoch, batch = (start[1], start[2]) if si == start[0] else (1, 0)
            if not (si == start[0] and start[3]):
                self._begin_stage(si)
            for epoch in range(epoch, stage.epochs + 1):
                loss, done, interrupted = self._train_epoch(si, epoch, batch)
                batch = 0
                last = epoch == stage.epochs
                if interrupted and self._stop_signal is not None:
                    path = self._save_last(si, epoch, done)
                    self.log(f"[{self._tag(stage)}] stopped by {signal.Signals(self._stop_signal).name} at epoch "
                             f"{epoch}, step {self.step}; saved {path} (resume with --resume)")
                    raise Interrupted(self._stop_signal, self.step, path)
                if interrupted:
                    self._validate_and_save(si, epoch, done, False, loss)
                    stopped = "time box" if self._time_up else "max_steps"
                    break
                if epoch == 1 or epoch % stage.valid_every == 0 or last:
                    if self._validate_and_save(si, epoch, done, True, loss):
                        self.log(f"[{self._tag(stage)}] early stop at epoch {epoch}: best score "
                                 f"{self.best_score:.6f} at epoch {self.best_epoch}")
                        break
            if stopped != "done":
                break
        if self.dist.is_main:
            self._finish(si, epoch, stopped)
        return {"best_score": self.best_score, "best_epoch": self.best_epoch, "step": self.step, "stopped": stopped}

    def _finish(self, si: int, epoch: int, stopped: str) -> None:
        """Rank 0 at the end of the run: make sure there is a best.pt, warn if it is no recommender, log the end."""
        if not (self.run_dir / "best.pt").exists():
            # stopped before any stage that selects on a score: keep the current weights, marked as no recommender
            save_checkpoint(self.run_dir / "best.pt", self._checkpoint(si, epoch, 0, True, False, gather=False))
            self.log(f"no validation score yet; best.pt holds the weights at step {self.step}")
        if not is_recommender(load_checkpoint(self.run_dir / "best.pt")):
            warning = (f"WARNING: {self.run_dir / 'best.pt'} is not a recommender: training stopped in stage "
                       f"{self.stages[si].name!r} before any validated recommendation; the ensemble refuses it. "
                       f"Continue with --resume (or give the first stages fewer epochs).")
            self.log(warning)
            print(warning, file=sys.stderr, flush=True)
        best = "none" if self.best_score is None else f"{self.best_score:.6f} at epoch {self.best_epoch}"
        self.log(f"finished ({stopped}) at step {self.step}: best score {best}; run folder {self.run_dir}")

    def _begin_stage(self, si: int) -> None:
        """A new stage: Noam restarts at step 1, Adam keeps its state (primed for parameters new to training)."""
        self.scheduler = noam_scheduler(self.optimizer, self.model.config.d_model, self.config.warmup_steps)
        if si > 0:
            n = carry_adam_steps(self.optimizer, self.step)
            self.log(f"[{self._tag(self.stages[si])}] stage starts: lr step reset to 1, Adam state kept "
                     f"({n} parameter tensors start at Adam step {self.step}, as TF's global bias correction)")
        self.best_score, self.best_epoch = None, 0

    def _train_epoch(self, si: int, epoch: int, start: int = 0) -> tuple[float, int, bool]:
        """Train batches start.. of the epoch; -> (mean plain loss, batches done, stopped by time box/max_steps)."""
        stage = self.stages[si]
        batches = self.prefetch.epoch(stage.data, si, epoch, epoch < stage.epochs)
        weight = stage.ranking_weight if stage.ranking_from_epoch is not None and epoch >= stage.ranking_from_epoch \
            else 0.0
        self.model.train()
        total, n = torch.zeros((), device=self.device), 0
        bar = tqdm(total=len(batches), initial=start, desc=f"{self._tag(stage)} epoch {epoch}", leave=False,
                   disable=not (self.config.progress and sys.stderr.isatty() and self.dist.is_main),
                   dynamic_ncols=True)
        stream = self.prefetch.batches(batches, start)
        done, interrupted = start, False
        since, since_loss, since_t = 0, torch.zeros((), device=self.device), time.time()
        for i in range(start, len(batches)):
            if self._should_stop():
                interrupted = True
                break
            # this rank's shard of the global batch and its share of the loss (the whole batch and 1 on one process)
            part, share = distributed.local_batch(next(stream), self.model, self.dist)
            batch = {k: v.to(self.device, non_blocking=True) for k, v in part.items()}
            if self.step_masks:  # the same table-dropout masks on every rank: seeded by (seed, step)
                self.model.seed_table_masks(lambda index: distributed.mask_seed(self.config.seed, self.step + 1, index))
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                loss, plain = self.model.loss(batch, weight) if self.ddp is None else self.ddp(batch, weight)
            if self.dist.enabled:  # DDP averages the ranks' gradients: the sum of share * gradient is the batch's
                loss, plain = loss * (share * self.dist.world_size), plain * share
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            total += plain.detach().float()
            since_loss += plain.detach().float()
            n, since = n + 1, since + 1
            done = i + 1
            bar.update()
            if n % 100 == 0 and not bar.disable and not self.dist.enabled:
                bar.set_postfix(loss=f"{total.item() / n:.5f}")
            if self.step % self.config.log_every == 0:  # a sign of life in log.txt (and when stdout is no terminal)
                rate = since / max(time.time() - since_t, 1e-9)
                mean, lr = self.dist.sum(since_loss.item())[0] / since, self.scheduler.get_last_lr()[0]
                line = (f"[{self._tag(stage)}] step {self.step:7d} epoch {epoch:3d} batch {done}/{len(batches)} "
                        f"loss {mean:.6f} lr {lr:.4e} {rate:.2f} steps/s elapsed {self._elapsed():.1f}s")
                self.log(line, echo=bar.disable)
                self.scalars.add(self.step, **{"train/loss": mean, "train/lr": lr, "train/steps_per_s": rate})
                since, since_loss, since_t = 0, torch.zeros((), device=self.device), time.time()
            due = self.config.save_every_minutes and time.time() - self._saved_at >= 60 * self.config.save_every_minutes
            if self.config.save_every_minutes and self.dist.max(int(due))[0]:  # one rank due: all save (RNG states)
                self._save_last(si, epoch, done)
        stream.close()
        bar.close()
        if epoch == 1 and stage.epochs > 1 and not stage.early_stop and self.config.max_minutes and not interrupted:
            self._warn_if_stage_outlasts_time_box(si, len(batches) - start, n)
        return (self.dist.sum(total.item())[0] / n if n else float("nan")), done, interrupted

    def _warn_if_stage_outlasts_time_box(self, si: int, epoch_batches: int, done: int) -> None:
        """After epoch 1 of a stage that selects nothing (model 2's MLM), warn if at this pace its remaining epochs
        would not fit in the time box: the run would end without a recommender."""
        stage = self.stages[si]
        per_epoch = (time.time() - self._t0) / max(done / max(epoch_batches, 1), 1e-9)
        left = 60 * self.config.max_minutes - (time.time() - self._t0)
        if per_epoch * (stage.epochs - 1) > left:
            self.log(f"WARNING: [{self._tag(stage)}] at {per_epoch:.0f} s per epoch its {stage.epochs} epochs need "
                     f"~{per_epoch * stage.epochs / 60:.0f} min, more than the {self.config.max_minutes:g}-minute "
                     f"time box: the run will stop before any recommending stage (lower the stage's epochs, e.g. "
                     f"--mlm_epochs, or raise --max_minutes, or continue later with --resume)")

    def _save_last(self, si: int, epoch: int, done: int) -> Path:
        """last.pt at a batch boundary inside epoch `epoch` (done batches of it), without validating.
        Every rank calls it (the checkpoint holds every rank's RNG state); rank 0 writes."""
        path = self.run_dir / "last.pt"
        ckpt = self._checkpoint(si, epoch, done, False, False)
        if self.dist.is_main:
            save_checkpoint(path, ckpt)
        self._saved_at = time.time()
        return path

    def _validate_and_save(self, si: int, epoch: int, batch: int, epoch_done: bool, loss: float) -> bool:
        """Validate (rank 0), log, save last.pt (and best.pt on improvement); -> whether to stop early (every rank)."""
        stop = improved = False
        if self._validated_step != self.step:  # a time box right after a validation does not repeat it
            self._validated_step = self.step
            if self.dist.is_main:
                improved, stop = self._validate(si, epoch, loss)
            stop = self.dist.broadcast(stop)  # under torchrun the other ranks wait here while rank 0 validates
        ckpt = self._checkpoint(si, epoch, batch, epoch_done, stop)
        if self.dist.is_main:
            if improved:
                save_checkpoint(self.run_dir / "best.pt", ckpt)
            save_checkpoint(self.run_dir / "last.pt", ckpt)
        self._saved_at = time.time()
        return stop

    def _validate(self, si: int, epoch: int, loss: float) -> tuple[bool, bool]:
        """Validate the model, record and log the metrics; -> (the score improved, stop early)."""
        stage = self.stages[si]
        self.log(f"[{self._tag(stage)}] validating at epoch {epoch}, step {self.step} ...")
        metrics = stage.validate(self.model)
        lr = self.scheduler.get_last_lr()[0]
        self.history.append({"stage": stage.name, "epoch": epoch, "step": self.step, "loss": loss,
                             **metrics, "lr": lr, "elapsed": self._elapsed()})
        self.log(format_log(self._tag(stage), epoch, self.step, loss, metrics, lr, self._elapsed()))
        self.scalars.add(self.step, **{"train/epoch_loss": loss}, **{f"val/{k}": v for k, v in metrics.items()})
        if not stage.early_stop:
            return False, False
        self.best_score, self.best_epoch, improved, stop = early_stopping(
            metrics["score"], self.best_score, self.best_epoch, epoch, self.config.patience)
        return improved, stop

    # ------------------------------------------------------------------------------------------------------------
    # stopping, checkpoints, resume

    def _elapsed(self) -> float:
        return self.elapsed_before + time.time() - self._t0

    def _over_time(self) -> bool:
        return self.config.max_minutes is not None and time.time() - self._t0 >= 60 * self.config.max_minutes

    def _should_stop(self) -> bool:
        """Stop before the next batch: a signal, the time box or max_steps. The ranks agree (a signal or time-up on
        any rank stops them all at this step); the agreed cause is kept in _stop_signal and _time_up."""
        steps_done = self.config.max_steps is not None and self.step >= self.config.max_steps
        signum, time_up, steps_done = self.dist.max(self._signal or 0, int(self._over_time()), int(steps_done))
        self._stop_signal, self._time_up = signum or None, bool(time_up)
        return bool(signum or time_up or steps_done)

    def _tag(self, stage: Stage) -> str:
        return self.model.name if len(self.stages) == 1 else f"{self.model.name}:{stage.name}"

    def _checkpoint(self, si: int, epoch: int, batch: int, epoch_done: bool, early_stopped: bool,
                    gather: bool = True) -> dict[str, Any]:
        """The checkpoint dict (trainer/checkpoint.py). Under torchrun rng holds rank 0's states and, when
        `gather` (a collective: every rank calls it), every rank's under "ranks"."""
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        if self.dist.enabled and gather:
            ranks = self.dist.gather(rng)
            rng = {**ranks[0], "ranks": ranks}
        return {
            "model_name": self.model.name, "model_config": self.model.config_dict(),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "step": self.step,
            "stage": self.stages[si].name, "stage_index": si, "epoch": epoch, "batch": batch, "epoch_done": epoch_done,
            "early_stopped": early_stopped, "best_score": self.best_score, "best_epoch": self.best_epoch,
            "recommender": self.stages[si].early_stop and self.best_score is not None, **self.fingerprint,
            "train_config": self.run_config, "history": self.history,
            "rng": rng, "elapsed": self._elapsed(),
        }

    def _resume(self) -> tuple[int, int, int, bool]:
        """Restore everything from last.pt; -> (stage index, epoch, batch, stage already begun) to continue at."""
        path = self.run_dir / "last.pt"
        ckpt = load_checkpoint(path, map_location=self.device)
        check_data(ckpt, self.fingerprint, path, self.model.uses_title)
        check_processes(ckpt, self.dist.world_size, path)
        overridden = resume_conflicts(ckpt.get("train_config", {}).get("flags", {}),
                                      self.run_config.get("flags", {}), path)
        if overridden:
            self.log(f"resume: {overridden}")
        if ckpt["model_name"] != self.model.name or ckpt["model_config"] != self.model.config_dict():
            raise InputError(f"{path}: holds {ckpt['model_name']} with config {ckpt['model_config']}, not "
                             f"{self.model.name} with config {self.model.config_dict()}; use another --output_dir")
        if [s.name for s in self.stages][ckpt["stage_index"]] != ckpt["stage"]:
            raise InputError(f"{path}: stage {ckpt['stage']!r} is not stage {ckpt['stage_index']} of this run")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.step, self.history, self.elapsed_before = ckpt["step"], ckpt["history"], ckpt["elapsed"]
        self.best_score, self.best_epoch = ckpt["best_score"], ckpt["best_epoch"]
        rng = ckpt["rng"]
        if "ranks" in rng:  # written under torchrun: this rank's own states (check_processes: as many ranks)
            rng = rng["ranks"][self.dist.rank]
        if "torch" in rng:
            torch.set_rng_state(rng["torch"].cpu())
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"].cpu(), self.device)
        self._validated_step = self.step
        si, epoch, batch = ckpt["stage_index"], ckpt["epoch"], ckpt["batch"]
        if ckpt["early_stopped"]:
            position = (si + 1, 1, 0, False)
        elif ckpt["epoch_done"]:
            position = (si, epoch + 1, 0, True)
        else:
            position = (si, epoch, batch, True)
        self.log(f"resumed from {path}: stage {ckpt['stage']}, epoch {epoch}, step {self.step}")
        return position


def check_processes(ckpt: dict[str, Any], world_size: int, path: str | Path) -> None:
    """A run resumes on the number of processes that wrote its checkpoint (1 without torchrun), or not at all.

    Each process draws the dropouts of its shard of the rows from its own RNG stream (seed + rank), and the
    checkpoint holds each stream's state: on as many processes every stream continues where it stopped (an exact
    resume); on another number the shards and streams differ, and no choice of states continues the run as it
    would have gone on. UsageError, in one line, otherwise."""
    written = len(ckpt["rng"].get("ranks", ())) or 1
    if written == world_size:
        return
    processes = lambda n: f"{n} process" + ("es" if n > 1 else "")  # noqa: E731
    how = "without torchrun, or torchrun --nproc_per_node=1" if written == 1 else \
        f"torchrun --nproc_per_node={written}, or {written} in all over several machines"
    raise UsageError(f"{path} was written by {processes(written)}; resume it on {processes(written)} ({how}): the "
                     f"random draws of each process (dropout) are part of the run. Or start a new run (--overwrite, "
                     f"or another --run_name)")


def dumps_summary(dumps: Dumps) -> dict[str, Any]:
    """What config.json records about the data a run was trained on."""
    m = dumps.meta
    return {"dir": str(dumps.dir), "created": m["created"], "sources": m["sources"], "split": m["split"],
            "vocab": m["vocab"], "sentencepiece": m["sentencepiece"], "has_song_meta": m["has_song_meta"]}


def fit_run(model: PlaylistModel, stages: list[Stage], dumps: Dumps, device: torch.device,
            flags: dict[str, Any]) -> dict[str, Any]:
    """Train `model` through `stages` into {flags["output_dir"]}/{flags["run_name"] or model.name}/; -> the summary.

    `flags` are the entry point's resolved CLI arguments: the TrainConfig fields among them configure the Trainer,
    `resume` goes to fit, and all of them, with the device, are recorded in config.json and the checkpoints.
    Under torchrun this process joins the process group first (trainer/distributed.py) and leaves it at the end.
    """
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in flags.items() if k in fields})
    run_config = {"flags": {**flags, "device": str(device)}, "dumps": dumps_summary(dumps)}
    folder = run_dir(flags["output_dir"], model.name, run_name=flags.get("run_name"))
    dist = distributed.init(device)
    try:
        trainer = Trainer(model, stages, folder, device, config, dumps.fingerprint, run_config, dist)
        return trainer.fit(flags["resume"])
    except Interrupted as e:
        if dist.is_main:
            print(f"error: {e}", file=sys.stderr)
        sys.exit(128 + e.signum)
    finally:
        distributed.teardown(dist)
