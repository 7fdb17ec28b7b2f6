"""One rank of the 2-process tests of tests/test_distributed.py, started with the variables torchrun sets
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT):

    python tests/_distributed_worker.py OUT ROOT CASE... [--max_steps=N] [--resume] [--log_every=N]

trains each CASE (see CASES) in turn on the tiny dump under ROOT/output into ROOT/CASE (in the cases with their own
folders, rank r > 0 gets ROOT/CASE_rank{r} instead, which must stay unwritten) and saves {step, result, model
state} to OUT/CASE.rank{r}.pt.
A signal exits with 128 + its number, as the trainers do. `trainer_for` also builds the single-process references.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from data_loader.dumps import load_dumps
from data_loader.plylst_title_data import TitleFinetuneData, TitleMLMData, mlm_validation_batches
from data_loader.songs_tags_artists_data import SongsTagsArtistsData
from models.plylst_title import PlylstTitleConfig, PlylstTitleModel
from models.songs_tags_artists import SongsTagsArtistsConfig, SongsTagsArtistsModel
from trainer import distributed
from trainer.distributed import Dist
from trainer.loop import Interrupted, Stage, TrainConfig, Trainer
from trainer.validation import validate, validate_mlm

CPU = torch.device("cpu")
SMALL = dict(d_model=16, d_ff=32)

# case -> (model, table dropout, batch size: None = the epoch's playlists - 1, i.e. batches of n-1 rows and 1 row,
#          rank 1 gets its own run folder, the other dropouts: 0 in the cases compared with one process, where
#          only the (shared) table masks may be random)
CASES = {
    "m1_plain": ("model1", 0.0, None, True, 0.0),  # an odd global batch split 108/107, then a 1-row batch: rank 1 empty
    "m1_masks": ("model1", 0.1, 71, True, 0.0),  # table dropout on; batches 71, 71, 71, 3 (split 2/1)
    "m2": ("model2", 0.1, 50, True, 0.0),  # MLM (unused output table) then fine-tuning with table dropout
    "m1_drop": ("model1", 0.1, 64, False, 0.1),  # every dropout on (per-rank draws): the exact resume test
    "m1_long": ("model1", 0.0, 64, False, 0.0),  # many short epochs: the signal and resume test
}


def trainer_for(case: str, root: Path, run_dir: Path, dist: Dist, **config) -> Trainer:
    """The Trainer of `case` (the same model init, data and schedule on every rank and in the references)."""
    kind, table_dropout, bs, _, dropout = CASES[case]
    dumps = load_dumps(root / "output")
    torch.manual_seed(0)
    config = TrainConfig(**{"warmup_steps": 10, "progress": False, "tensorboard": False, **config})
    if kind == "model1":
        model = SongsTagsArtistsModel(SongsTagsArtistsConfig.from_dumps(dumps, table_dropout=table_dropout,
                                                                        dropout=dropout, **SMALL))
        data = SongsTagsArtistsData(dumps.train, dumps.vocab, bs or len(SongsTagsArtistsData(dumps.train,
                                                                                             dumps.vocab)) - 1)
        epochs, valid_every = (300, 1000) if case == "m1_long" else (2, 5)
        stages = [Stage("train", data, epochs, lambda m: validate(m, dumps, CPU, 64), valid_every)]
    else:
        model = PlylstTitleModel(PlylstTitleConfig.from_dumps(dumps, table_dropout=table_dropout, dropout=dropout,
                                                              **SMALL))
        n = model.config.n_pieces
        mlm_val = mlm_validation_batches(dumps.val_questions, n, 64)
        stages = [Stage("mlm", TitleMLMData(dumps.train, n, bs), 1, lambda m: validate_mlm(m, mlm_val, CPU),
                        valid_every=1, early_stop=False, ranking_from_epoch=None),
                  Stage("finetune", TitleFinetuneData(dumps.train, dumps.vocab, bs), 2,
                        lambda m: validate(m, dumps, CPU, 64))]
    return Trainer(model, stages, run_dir, CPU, config, dumps.fingerprint, {"case": case}, dist)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("root", type=Path)
    parser.add_argument("cases", nargs="+", choices=sorted(CASES))
    parser.add_argument("--max_steps", type=int)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--log_every", type=int, default=100)
    a = parser.parse_args()
    torch.set_num_threads(1)
    dist = distributed.init(CPU)
    code = 0
    for case in a.cases:
        run_dir = a.root / (case if dist.is_main or not CASES[case][3] else f"{case}_rank{dist.rank}")
        trainer = trainer_for(case, a.root, run_dir, dist, max_steps=a.max_steps, log_every=a.log_every)
        try:
            result = trainer.fit(a.resume)
        except Interrupted as e:
            result, code = {"stopped": "signal"}, 128 + e.signum
        torch.save({"step": trainer.step, "result": result, "model": trainer.model.state_dict()},
                   a.out / f"{case}.rank{dist.rank}.pt")
    distributed.teardown(dist)
    sys.exit(code)


if __name__ == "__main__":
    main()
