"""Model 2, "plylst_title": a small BERT over the playlist title's BPE pieces that scores songs and tags.

Port of models/TitleBert.py in SeonbeomKim/kakao-arena-music-recommendation (docs/original.md section 3).
Input [@songs_cls, @tags_cls] + pieces[:50] + [@sep], padded with @pad to 53, with learned position embeddings.
Stage A pre-trains it as a masked language model (head tied to the BPE table); stage B scores songs from the
songs_cls output and tags from the tags_cls output against a separate [S+T, d] output table with table dropout.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from data_loader.playlists import Playlists, truncate
from data_loader.plylst_title_data import title_ids
from data_loader.title import PAD
from models.base import PlaylistModel
from models.layers import (Dropout, Encoder, TableDropout, float32_logits, multi_hot_bce_mean, ranking_logits,
                           segment_logits, top100_ranking_term)


@dataclass
class PlylstTitleConfig:
    n_songs: int  # S: song label ids [0,S) (model 1's label encoder)
    n_tags: int  # T: tag label ids [S,S+T)
    n_pieces: int  # SentencePiece vocabulary size (len(sp), normally 6000)
    d_model: int = 132
    n_layers: int = 2
    n_heads: int = 2
    d_ff: int = 528  # 4 * d_model, ReLU
    dropout: float = 0.1  # embeddings, attention weights and both residual branches
    table_dropout: float = 0.1  # element-wise on the [S+T, d] output table, one mask per step
    max_pieces: int = 50  # title pieces kept; rows are 2 cls + pieces + sep, padded to max_pieces + 3
    tags_loss_weight: float = 0.15
    label_smoothing: float = 0.1  # MLM target 0.9 + 0.1/V on the true piece, 0.1/V elsewhere

    @property
    def max_len(self) -> int:
        return self.max_pieces + 3

    @classmethod
    def from_dumps(cls, dumps, **overrides) -> "PlylstTitleConfig":
        """Sizes from a step-1 dumps folder (data_loader.dumps.Dumps); any field can be overridden."""
        v = dumps.meta["vocab"]
        return cls(n_songs=v["n_songs"], n_tags=v["n_tags"],
                   n_pieces=dumps.meta["sentencepiece"]["vocab_size"], **overrides)


class PlylstTitleModel(PlaylistModel):
    name = "plylst_title"
    config_class = PlylstTitleConfig
    uses_title = True

    def __init__(self, config: PlylstTitleConfig):
        super().__init__()
        self.config = c = config
        self.bpe_embedding = nn.Parameter(torch.empty(c.n_pieces, c.d_model).normal_(0.0, c.d_model**-0.5))
        self.position_embedding = nn.Parameter(nn.init.trunc_normal_(torch.empty(c.max_len, c.d_model),
                                                                     std=0.02, a=-0.04, b=0.04))
        self.emb_dropout = Dropout(c.dropout)
        self.encoder = Encoder(c.d_model, c.n_layers, c.n_heads, c.d_ff, c.dropout, "relu")
        self.output_table = nn.Parameter(nn.init.trunc_normal_(torch.empty(c.n_songs + c.n_tags, c.d_model),
                                                               std=0.02, a=-0.04, b=0.04))  # [S+T, d]
        self.table_dropout = TableDropout(c.table_dropout)
        self.song_bias = nn.Parameter(torch.zeros(c.n_songs))
        self.tag_bias = nn.Parameter(torch.zeros(c.n_tags))

    def hidden(self, ids: torch.Tensor, n_out: int | None = None) -> torch.Tensor:
        """ids long [B, L<=max_len] -> final hidden states [B, n_out or L, d]."""
        if ids.shape[1] > self.config.max_len:
            raise ValueError(f"{ids.shape[1]} positions, more than max_len {self.config.max_len}")
        mask = ids != PAD  # [B, L]
        emb = F.embedding(ids, self.bpe_embedding) * math.sqrt(self.config.d_model) \
            + self.position_embedding[: ids.shape[1]]  # [B, L, d]
        emb = self.emb_dropout(emb * mask[..., None].to(emb.dtype))
        return self.encoder(emb, mask, n_out)

    def heads(self, ids: torch.Tensor) -> tuple:
        """ids long [B, L] -> segment_logits' arguments for the song and tag heads: the dropped output table, the two
        cls outputs [B, 2, d], the bounds, the biases."""
        c = self.config
        h = self.hidden(ids, n_out=2)  # [B, 2, d]
        table, _, scale = self.table_dropout(self.output_table)  # dropped table = table * scale
        return (table, h * scale if scale != 1.0 else h, [(0, c.n_songs), (c.n_songs, c.n_songs + c.n_tags)],
                [self.song_bias, self.tag_bias])

    def forward(self, ids: torch.Tensor) -> list[torch.Tensor]:
        """ids long [B, L] -> [song logits [B, S], tag logits [B, T]] from the two cls positions."""
        return segment_logits(*self.heads(ids))

    def mlm_logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits [M, n_pieces] of the M masked pieces at batch["mlm_positions"] (long [2, M]: row, column):
        hidden @ bpe_embedding.T (the MLM head is tied to the input table, no bias)."""
        h = self.hidden(batch["ids"])  # [B, L, d]
        rows, cols = batch["mlm_positions"]
        return h[rows, cols] @ self.bpe_embedding.T  # [M, d] @ [d, n_pieces] -> [M, n_pieces]

    def mlm_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Label-smoothed cross-entropy of the masked pieces against batch["mlm_labels"] (long [M])."""
        return F.cross_entropy(self.mlm_logits(batch).float(), batch["mlm_labels"],
                               label_smoothing=self.config.label_smoothing)

    def loss(self, batch: dict[str, torch.Tensor], ranking_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """MLM loss when the batch has "mlm_labels" (stage A); else BCE(songs) + 0.15 BCE(tags), means over
        batch x vocabulary, plus `ranking_weight` times the top-100 ranking term on songs in the first value (under
        bf16 autocast its top 100 comes from the song logits in float32: layers.float32_logits)."""
        if "mlm_labels" in batch:
            total = self.mlm_loss(batch)
            return total, total.detach()
        table, queries, bounds, biases = self.heads(batch["ids"])
        songs, tags = segment_logits(table, queries, bounds, biases)
        plain = multi_hot_bce_mean(songs, batch["song_targets"]) \
            + self.config.tags_loss_weight * multi_hot_bce_mean(tags, batch["tag_targets"])
        if not ranking_weight:
            return plain, plain.detach()
        rank_by = None if songs.dtype == table.dtype else \
            float32_logits(table, queries[:, :1], bounds[:1], biases[:1])[0]
        total = plain + ranking_weight * top100_ranking_term(songs, batch["song_targets"], rank_by=rank_by)
        return total, plain.detach()

    def loss_units(self, batch: dict[str, torch.Tensor]) -> int:
        """The masked positions of an MLM batch (its loss is a mean over them); else the rows."""
        return int(batch["mlm_labels"].numel()) if "mlm_labels" in batch else super().loss_units(batch)

    def scores(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Song and tag logits to rank; float32 also under bf16 autocast (layers.ranking_logits)."""
        songs, tags = ranking_logits(*self.heads(batch["ids"]))
        return songs, tags

    @staticmethod
    def accepts(q: Playlists) -> np.ndarray:
        """Questions whose normalised title has at least one piece."""
        return q.title.lengths() > 0

    def question_batch(self, q: Playlists, rows: np.ndarray) -> dict[str, torch.Tensor]:
        """{"ids": long [len(rows), max_len]}: [@songs_cls, @tags_cls] + pieces[:max_pieces] + [@sep], @pad-padded."""
        c = self.config
        pieces = truncate(q.title.take(np.asarray(rows, dtype=np.int64)), c.max_pieces)
        return {"ids": torch.from_numpy(title_ids(pieces, c.max_pieces))}
