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
    vocab_hash                 dumps meta vocab hash: a model refuses dumps with another vocabulary
    train_config, history      the resolved run config and one dict per validation
    rng, elapsed               torch RNG states and training wall time, for --resume
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from data_loader.jsonio import InputError, atomic_path
from models.base import PlaylistModel

REQUIRED_KEYS = ("model_name", "model_config", "model", "vocab_hash")


def save_checkpoint(path: str | os.PathLike, ckpt: dict[str, Any]) -> None:
    """torch.save to a temporary sibling, renamed over `path` once complete."""
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict (tensors only, no pickled code), checking that it is one of ours."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise InputError(f"{path}: not a readable checkpoint: {e}") from None
    missing = [k for k in REQUIRED_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise InputError(f"{path}: not a checkpoint of this project (missing {', '.join(missing)})")
    return ckpt


def check_vocab(ckpt: dict[str, Any], vocab_hash: str, path: str | os.PathLike) -> None:
    """Refuse a checkpoint trained on another vocabulary than the dumps in use: its label ids mean other items."""
    if ckpt["vocab_hash"] != vocab_hash:
        raise InputError(f"{path}: trained on vocabulary {ckpt['vocab_hash']}, but the dumps have vocabulary "
                         f"{vocab_hash}; use the dumps the model was trained on (or retrain)")


def build_model(model_name: str, model_config: dict[str, Any]) -> PlaylistModel:
    """A fresh model of the registered type from its config fields."""
    from models import MODELS  # models/__init__ imports the model files; keep this module light to import

    if model_name not in MODELS:
        raise InputError(f"unknown model {model_name!r}; known: {', '.join(sorted(MODELS))}")
    cls = MODELS[model_name]
    return cls(cls.config_class(**model_config))


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu",
               vocab_hash: str | None = None) -> PlaylistModel:
    """The model of a checkpoint, on `device`, in eval mode; `vocab_hash` (dumps meta) is checked when given."""
    ckpt = load_checkpoint(path, map_location=device)
    if vocab_hash is not None:
        check_vocab(ckpt, vocab_hash, path)
    model = build_model(ckpt["model_name"], ckpt["model_config"])
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval()
