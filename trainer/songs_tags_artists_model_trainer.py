"""Step 2: train model 1, songs_tags_artists (docs/original.md section 2), into {output_dir}/songs_tags_artists/.

    python trainer/songs_tags_artists_model_trainer.py [--bs=128] [--gpu=N] [--tags_loss_weight=0.15]
        [--artists_loss_weight=0.15] [--warmup_steps=4000] [--dataset_dir=dataset] [--output_dir=output]
        [--epochs=300] [--max_minutes=None] [--seed=0] [--amp=False] [--resume=False]
    torchrun --nproc_per_node=N trainer/songs_tags_artists_model_trainer.py ...   (N processes, one global --bs)

Only assembly: dumps + model + denoising data + the generic Trainer (trainer/loop.py holds the loop).
"""
from __future__ import annotations

import torch

from common.cli import check_flags, run_cli
from data_loader.dumps import open_dumps
from data_loader.songs_tags_artists_data import SongsTagsArtistsData
from models.songs_tags_artists import SongsTagsArtistsConfig, SongsTagsArtistsModel
from trainer.distributed import pick_rank_device
from trainer.loop import Stage, fit_run
from trainer.run_dir import check_train_flags, recorded_flags
from trainer.validation import validate


def main(bs: int = 128, gpu: int | None = None, tags_loss_weight: float = 0.15, artists_loss_weight: float = 0.15,
         warmup_steps: int = 4000, dataset_dir: str = "dataset", output_dir: str = "output", epochs: int = 300,
         max_minutes: float | None = None, seed: int = 0, amp: bool = False, resume: bool = False,
         valid_every: int = 5, patience: int = 50, progress: bool = True, run_name: str | None = None,
         overwrite: bool = False, save_every_minutes: float | None = 30.0, log_every: int = 100,
         tensorboard: bool = True) -> None:
    """Train model 1 and keep its best-validation checkpoint.

    Args:
        bs: batch size (the last partial batch of an epoch is kept).
        gpu: CUDA device index; -1 for the CPU; default CUDA device 0 when there is one, else the CPU. Under
            torchrun: unset (each process on cuda:LOCAL_RANK, NCCL) or -1 (the CPU, gloo).
        tags_loss_weight: weight of the tag BCE term.
        artists_loss_weight: weight of the artist BCE term.
        warmup_steps: Noam warmup.
        dataset_dir: the dataset folder step 1 read (holds the local val questions and answers).
        output_dir: step 1's output folder; the run goes to {output_dir}/songs_tags_artists/.
        epochs: at most this many epochs (early stopping may end sooner).
        max_minutes: time box for this invocation; stops at a batch boundary, then validates and saves.
        seed: seeds the model init, dropout and the per-epoch sampling.
        amp: bf16 autocast on CUDA (ignored on the CPU).
        resume: continue from {output_dir}/songs_tags_artists/last.pt.
        valid_every: validate at epoch 1 and every this many epochs (the original: 5).
        patience: stop once this many epochs passed since the best score (checked at validations).
        progress: show a tqdm bar per epoch when stderr is a terminal.
        run_name: the run folder under output_dir; default songs_tags_artists (a seed ensemble: ..._seed1).
        overwrite: start a new run even if the run folder holds one (the old folder is moved aside, not deleted).
        save_every_minutes: also write last.pt this often during an epoch (none: only at validations).
        log_every: a progress line (step, loss, lr, steps/s) in log.txt every this many steps.
        tensorboard: TensorBoard scalars in the run folder (when tensorboard is installed).
    """
    flags = dict(locals())  # the resolved command line, recorded in config.json and the checkpoints
    check_flags(tags_loss_weight=(tags_loss_weight >= 0, "at least 0"),
                artists_loss_weight=(artists_loss_weight >= 0, "at least 0"))
    check_train_flags(flags, SongsTagsArtistsModel.name)  # shared flags and the run folder, before any work
    device = pick_rank_device(gpu)
    dumps = open_dumps(dataset_dir, output_dir)
    torch.manual_seed(seed)
    config = SongsTagsArtistsConfig.from_dumps(dumps, tags_loss_weight=tags_loss_weight,
                                               artists_loss_weight=artists_loss_weight)
    model = SongsTagsArtistsModel(config).to(device)
    data = SongsTagsArtistsData(dumps.train, dumps.vocab, bs, seed, config.max_songs, config.max_len)
    stage = Stage("train", data, epochs, lambda m: validate(m, dumps, device, bs, amp), valid_every)
    fit_run(model, [stage], dumps, device, flags)


if __name__ == "__main__":
    run_cli(main, fill=recorded_flags(main, SongsTagsArtistsModel.name))  # --resume: left-out flags as recorded
