"""Step 3: train model 2, plylst_title (docs/original.md section 3), into {output_dir}/plylst_title/.

    python trainer/plylst_title_model_trainer.py [--bs=128] [--gpu=N] [--tags_loss_weight=0.15]
        [--warmup_steps=4000] [--dataset_dir=dataset] [--output_dir=output] [--mlm_epochs=100] [--epochs=300]
        [--max_minutes=None] [--seed=0] [--amp=False] [--resume=False]
    torchrun --nproc_per_node=N trainer/plylst_title_model_trainer.py ...   (N processes, one global --bs)

Two stages through the same Trainer: "mlm" (masked-title pre-training, a fixed number of epochs, MLM loss and
accuracy on the val question titles after every epoch, no early stopping), then "finetune" (title -> songs and
tags, validated and early-stopped like model 1) with the Noam step reset to 1 and the Adam state kept.
Only assembly here: trainer/loop.py holds the loop.
"""
from __future__ import annotations

import torch

from common.cli import check_flags, run_cli
from data_loader.dumps import open_dumps
from data_loader.plylst_title_data import TitleFinetuneData, TitleMLMData, mlm_validation_batches
from models.plylst_title import PlylstTitleConfig, PlylstTitleModel
from trainer.distributed import pick_rank_device
from trainer.loop import Stage, fit_run
from trainer.run_dir import check_train_flags, recorded_flags
from trainer.validation import validate, validate_mlm


def main(bs: int = 128, gpu: int | None = None, tags_loss_weight: float = 0.15, warmup_steps: int = 4000,
         dataset_dir: str = "dataset", output_dir: str = "output", mlm_epochs: int = 100, epochs: int = 300,
         max_minutes: float | None = None, seed: int = 0, amp: bool = False, resume: bool = False,
         valid_every: int = 5, patience: int = 50, progress: bool = True, run_name: str | None = None,
         overwrite: bool = False, save_every_minutes: float | None = 30.0, log_every: int = 100,
         tensorboard: bool = True) -> None:
    """Pre-train model 2 as a masked language model, fine-tune it, and keep its best-validation checkpoint.

    Args:
        bs: batch size in both stages (the last partial batch of an epoch is kept).
        gpu: CUDA device index; -1 for the CPU; default CUDA device 0 when there is one, else the CPU. Under
            torchrun: unset (each process on cuda:LOCAL_RANK, NCCL) or -1 (the CPU, gloo).
        tags_loss_weight: weight of the tag BCE term in fine-tuning.
        warmup_steps: Noam warmup, in each stage.
        dataset_dir: the dataset folder step 1 read (holds the local val questions and answers).
        output_dir: step 1's output folder; the run goes to {output_dir}/plylst_title/.
        mlm_epochs: MLM pre-training epochs (always all of them).
        epochs: at most this many fine-tuning epochs (early stopping may end sooner).
        max_minutes: time box for this invocation; stops at a batch boundary, then validates and saves.
        seed: seeds the model init, dropout, masking and shuffling.
        amp: bf16 autocast on CUDA (ignored on the CPU).
        resume: continue from {output_dir}/plylst_title/last.pt (in whichever stage it stopped).
        valid_every: fine-tuning validates at epoch 1 and every this many epochs (the original: 5).
        patience: fine-tuning stops once this many epochs passed since the best score.
        progress: show a tqdm bar per epoch when stderr is a terminal.
        run_name: the run folder under output_dir; default plylst_title (a seed ensemble: plylst_title_seed1).
        overwrite: start a new run even if the run folder holds one (the old folder is moved aside, not deleted).
        save_every_minutes: also write last.pt this often during an epoch (none: only at validations).
        log_every: a progress line (step, loss, lr, steps/s) in log.txt every this many steps.
        tensorboard: TensorBoard scalars in the run folder (when tensorboard is installed).
    """
    flags = dict(locals())  # the resolved command line, recorded in config.json and the checkpoints
    check_flags(tags_loss_weight=(tags_loss_weight >= 0, "at least 0"), mlm_epochs=(mlm_epochs >= 0, "at least 0"))
    check_train_flags(flags, PlylstTitleModel.name)  # shared flags and the run folder, before any work
    device = pick_rank_device(gpu)
    dumps = open_dumps(dataset_dir, output_dir)
    torch.manual_seed(seed)
    model = PlylstTitleModel(PlylstTitleConfig.from_dumps(dumps, tags_loss_weight=tags_loss_weight)).to(device)
    n_pieces, max_pieces = model.config.n_pieces, model.config.max_pieces
    mlm_val = mlm_validation_batches(dumps.val_questions, n_pieces, bs, seed, max_pieces)
    stages = [
        Stage("mlm", TitleMLMData(dumps.train, n_pieces, bs, seed, max_pieces), mlm_epochs,
              lambda m: validate_mlm(m, mlm_val, device, amp), valid_every=1, early_stop=False,
              ranking_from_epoch=None),
        Stage("finetune", TitleFinetuneData(dumps.train, dumps.vocab, bs, seed, max_pieces), epochs,
              lambda m: validate(m, dumps, device, bs, amp), valid_every),
    ]
    fit_run(model, stages, dumps, device, flags)


if __name__ == "__main__":
    run_cli(main, fill=recorded_flags(main, PlylstTitleModel.name))  # --resume: left-out flags as recorded
