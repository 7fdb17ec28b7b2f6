"""The one interface both models share, so that trainers, validation and the ensemble never branch on model type.

A batch is a dict of CPU or device tensors built by the data code (data_loader/) or by `question_batch`:

    ids              long [B, L]   input token ids (model-specific layout, padded)
    song_targets     long [2, P]   (row, song index in [0,S)) of every positive song        -- training only
    tag_targets      long [2, P]   (row, tag index in [0,T), i.e. label id - S)            -- training only
    artist_targets   long [2, P]   (row, artist index in [0,A), i.e. label id - S - T)     -- model 1 training only
    mlm_positions    long [2, M]   (row, column) of the masked title pieces                -- model 2 MLM only
    mlm_labels       long [M]      the original piece id at each masked position           -- model 2 MLM only
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar

import numpy as np
import torch
from torch import nn

from data_loader.playlists import Playlists
from models.layers import TableDropout


class PlaylistModel(nn.Module):
    """Base class: subclasses set `name` and `config` and implement the four methods below (`loss_units` has a
    default)."""

    name: ClassVar[str]
    uses_title: ClassVar[bool] = False  # reads title pieces: its checkpoints are tied to the SentencePiece model
    config: Any  # the model's config dataclass; a model is rebuilt from it alone: type(model)(config)

    def loss(self, batch: dict[str, torch.Tensor], ranking_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to minimise, plain loss for logging). `ranking_weight` > 0 adds the top-100 ranking term."""
        raise NotImplementedError

    def scores(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-sigmoid logits: songs [B, S], tags [B, T]. Call under eval() and no_grad() for inference."""
        raise NotImplementedError

    @staticmethod
    def accepts(q: Playlists) -> np.ndarray:
        """bool [N]: the questions this model answers (the ensemble's routing rule)."""
        raise NotImplementedError

    def question_batch(self, q: Playlists, rows: np.ndarray) -> dict[str, torch.Tensor]:
        """The inference batch (CPU tensors) for questions `rows` of `q`; every item of the question is input."""
        raise NotImplementedError

    def loss_units(self, batch: dict[str, torch.Tensor]) -> int:
        """How many units `loss` averages over for this batch: its rows (the BCE means over rows x vocabulary).
        Distributed training weighs each rank's loss by its shard's share of the global batch's units."""
        return int(batch["ids"].shape[0])

    def seed_table_masks(self, seed_of: Callable[[int], int] | None) -> None:
        """Draw the next masks of the i-th table-dropout layer (in module order) from a generator seeded with
        seed_of(i); None: from torch's global generator again. Under torchrun every rank seeds them alike, so that
        all ranks drop the same rows of a shared table."""
        for index, module in enumerate(m for m in self.modules() if isinstance(m, TableDropout)):
            module.seed_masks(None if seed_of is None else seed_of(index))

    def config_dict(self) -> dict:
        return dataclasses.asdict(self.config)
