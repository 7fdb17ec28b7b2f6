"""Checkpoints: one self-describing dict per file, written atomically; a model is rebuilt from its checkpoint alone.

Keys (see trainer/loop.py for how training fills them):
    model_name, model_config   registry name (models.MODELS) and config-dataclass fields: enough to rebuild the model
    model                      state_dict
    optimizer, scheduler       Adam and Noam (LambdaLR) state, for --resume
    step                       optimizer steps taken so far, all stages together
    stage, stage_index         training stage name ("train", "mlm", "finetune") and its position
    epoch, batch, epoch_done   the epoch these weights come from, batches done in it, whether it was finished
    early_stopped              the stage ended by early stopping (resume moves on to the next stage)
    best_score, best_epoch     the stage's best validation score so far and its epoch
    recommender                the weights were chosen on a validation score of a recommending stage; False for a
                               model 2 stopped during MLM pre-training (its output layers are untrained)
    vocab_hash, sp_hash        fingerprints of the dumps' vocabulary and SentencePiece model (Dumps.fingerprint):
                               a model refuses dumps with another vocabulary, a title model another title model
    train_config, history      the resolved run config and one dict per validation
    rng, elapsed               torch RNG states and training wall time, for --resume (under torchrun: rank 0's
                               states, and every rank's under rng["ranks"])
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from common.jsonio import InputError, atomic_path
from data_loader.dumps import Dumps
from models.base import PlaylistModel

REQUIRED_KEYS = ("model_name", "model_config", "model", "vocab_hash")


def save_checkpoint(path: str | os.PathLike, ckpt: dict[str, Any]) -> None:
    """torch.save to a temporary sibling, renamed over `path` once complete."""
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                    mmap: bool = False) -> dict[str, Any]:
    """Load a checkpoint dict (tensors only, no pickled code), checking that it is one of ours. mmap: map the
    tensors instead of reading them (CPU), for a look at the small entries of a large checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise InputError(f"{path}: not a readable checkpoint: {e}") from None
    missing = [k for k in REQUIRED_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise InputError(f"{path}: not a checkpoint of this project (missing {', '.join(missing)})")
    return ckpt


def _model_class(model_name: str) -> type[PlaylistModel]:
    from models import MODELS  # models/__init__ imports the model files; keep this module light to import

    if model_name not in MODELS:
        raise InputError(f"unknown model {model_name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[model_name]


def check_data(ckpt: dict[str, Any], fingerprint: dict[str, str], path: str | os.PathLike, uses_title: bool) -> None:
    """Refuse a checkpoint trained on other dumps than `fingerprint` (Dumps.fingerprint) describes: its label ids
    would mean other items, and a title model's (`uses_title`) piece ids other pieces (step 1 re-run on changed
    titles)."""
    if ckpt["vocab_hash"] != fingerprint["vocab_hash"]:
        raise InputError(f"{path}: trained on vocabulary {ckpt['vocab_hash']}, but the dumps have vocabulary "
                         f"{fingerprint['vocab_hash']}; use the dumps the model was trained on (or retrain)")
    if uses_title and ckpt.get("sp_hash") != fingerprint["sp_hash"]:
        had = f"SentencePiece model {ckpt['sp_hash']}" if ckpt.get("sp_hash") else "an unrecorded SentencePiece model"
        raise InputError(f"{path}: trained with {had}, but the dumps have SentencePiece model "
                         f"{fingerprint['sp_hash']} (step 1 was re-run?); use the dumps the model was trained on "
                         f"(or retrain)")


def is_recommender(ckpt: dict[str, Any]) -> bool:
    """Whether the weights were chosen on a validation score as a recommender (not, e.g., mid-MLM weights).

    Checkpoints written by the trainer say so ("recommender"); an older trainer checkpoint without that key is one
    when it has a best score; a bare weights file (no training state, e.g. a benchmark's untrained models) is
    taken as the caller meant it."""
    if "recommender" in ckpt:
        return bool(ckpt["recommender"])
    return "stage" not in ckpt or ckpt.get("best_score") is not None


def not_a_recommender(ckpt: dict[str, Any], path: str | os.PathLike) -> str | None:
    """Why the checkpoint at `path` cannot recommend (None when it can: `is_recommender`)."""
    if is_recommender(ckpt):
        return None
    return (f"{path}: not a recommender yet: training stopped in stage {ckpt.get('stage')!r} at step "
            f"{ckpt.get('step')} before any validation of its recommendations (model 2 needs its MLM pre-training "
            f"and then fine-tuning); continue it with the trainer's --resume")


def build_model(model_name: str, model_config: dict[str, Any]) -> PlaylistModel:
    """A fresh model of the registered type from its config fields."""
    cls = _model_class(model_name)
    return cls(cls.config_class(**model_config))


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu", dumps: Dumps | None = None,
               recommender: bool = False) -> PlaylistModel:
    """The model of a checkpoint, on `device`, in eval mode.

    Args:
        dumps: when given, the checkpoint must have been trained on these dumps (check_data).
        recommender: refuse weights that were never validated as a recommender (a model 2 stopped during its
            MLM pre-training: its song and tag layers are untrained).
    """
    ckpt = load_checkpoint(path, map_location=device)
    if dumps is not None:
        check_data(ckpt, dumps.fingerprint, path, _model_class(ckpt["model_name"]).uses_title)
    if recommender and not_a_recommender(ckpt, path):
        raise InputError(not_a_recommender(ckpt, path))
    model = build_model(ckpt["model_name"], ckpt["model_config"])
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval()
