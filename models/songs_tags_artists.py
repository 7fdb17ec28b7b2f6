"""Model 1, "songs_tags_artists": an order-free BERT autoencoder over a playlist's songs, tags and artists.

Port of models/OrderlessBertAE.py in SeonbeomKim/kakao-arena-music-recommendation (docs/original.md section 2).
Input [songs_cls, tags_cls, artists_cls] + songs + tags + artists (no position or segment embeddings, so the cls
outputs do not depend on the items' order); the hidden states at the three cls positions score every song, tag and
artist against the same embedding table they were looked up in (tied weights, one table dropout mask for both).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from data_loader.playlists import CSR, Playlists, hstack, padded, truncate
from models.base import PlaylistModel
from models.layers import (Encoder, TableDropout, float32_logits, multi_hot_bce_mean, ranking_logits,
                           segment_logits, top100_ranking_term)

N_CLS = 3  # songs_cls, tags_cls, artists_cls open every row


@dataclass
class SongsTagsArtistsConfig:
    n_songs: int  # S; label ids: songs [0,S), tags [S,S+T), artists [S+T,S+T+A), then 5 specials
    n_tags: int  # T
    n_artists: int  # A; 0 without song_meta.json: no artist tokens, no artist head or loss
    d_model: int = 240
    n_layers: int = 1
    n_heads: int = 2
    d_ff: int = 960  # 4 * d_model, tanh-GELU
    dropout: float = 0.1  # attention weights and both residual branches
    table_dropout: float = 0.1  # element-wise on the whole tied table, one mask per step
    max_len: int = 280  # positions per row: 3 cls + <=100 songs + tags + artists (artists truncated to fit)
    max_songs: int = 100  # songs fed per question at inference, as in the original
    tags_loss_weight: float = 0.15
    artists_loss_weight: float = 0.15

    @property
    def vocab_size(self) -> int:
        return self.n_songs + self.n_tags + self.n_artists + 5

    @property
    def songs_cls(self) -> int:
        return self.n_songs + self.n_tags + self.n_artists

    @property
    def tags_cls(self) -> int:
        return self.songs_cls + 1

    @property
    def artists_cls(self) -> int:
        return self.songs_cls + 2

    @property
    def pad(self) -> int:
        return self.songs_cls + 3

    @classmethod
    def from_dumps(cls, dumps, **overrides) -> "SongsTagsArtistsConfig":
        """Sizes from a step-1 dumps folder (data_loader.dumps.Dumps); any field can be overridden."""
        v = dumps.meta["vocab"]
        return cls(n_songs=v["n_songs"], n_tags=v["n_tags"], n_artists=v["n_artists"], **overrides)


class SongsTagsArtistsModel(PlaylistModel):
    name = "songs_tags_artists"
    config_class = SongsTagsArtistsConfig

    def __init__(self, config: SongsTagsArtistsConfig):
        super().__init__()
        self.config = c = config
        # the one tied table [S+T+A+5, d]: input embeddings of every token and output weights of the three heads
        self.embedding = nn.Parameter(torch.empty(c.vocab_size, c.d_model).normal_(0.0, c.d_model**-0.5))
        self.table_dropout = TableDropout(c.table_dropout)
        self.encoder = Encoder(c.d_model, c.n_layers, c.n_heads, c.d_ff, c.dropout, "gelu_tanh")
        self.song_bias = nn.Parameter(torch.zeros(c.n_songs))
        self.tag_bias = nn.Parameter(torch.zeros(c.n_tags))
        self.artist_bias = nn.Parameter(torch.zeros(c.n_artists))

    def heads(self, ids: torch.Tensor, n_logits: int = 3) -> tuple:
        """ids long [B, L] (cls tokens first, pad-padded) -> segment_logits' arguments for the first n_logits
        heads (songs, tags, artists): the dropped table, the cls outputs [B, n_logits, d], the bounds, the biases."""
        c = self.config
        bounds = [(0, c.n_songs), (c.n_songs, c.n_songs + c.n_tags), (c.n_songs + c.n_tags, c.songs_cls)][:n_logits]
        biases = [self.song_bias, self.tag_bias, self.artist_bias][:n_logits]
        mask = ids != c.pad  # [B, L]
        table, rows, scale = self.table_dropout(self.embedding, ids)  # dropped table = table * scale
        emb = rows * (mask.to(rows.dtype) * (math.sqrt(c.d_model) * scale))[..., None]  # [B, L, d], 0 at pads
        h = self.encoder(emb, mask, n_out=n_logits)  # [B, n_logits, d]: only the cls outputs are read
        return table, h * scale if scale != 1.0 else h, bounds, biases

    def forward(self, ids: torch.Tensor, n_logits: int = 3) -> list[torch.Tensor]:
        """ids long [B, L] (cls tokens first, pad-padded) -> logits of the first n_logits heads:
        songs [B, S], tags [B, T], artists [B, A]."""
        return segment_logits(*self.heads(ids, n_logits))

    def loss(self, batch: dict[str, torch.Tensor], ranking_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """BCE(songs) + 0.15 BCE(tags) + 0.15 BCE(artists), each a mean over batch x vocabulary; `ranking_weight`
        times the top-100 ranking term on songs is added to the first value only (under bf16 autocast its top 100
        comes from the song logits in float32: layers.float32_logits)."""
        c = self.config
        with_artists = c.n_artists > 0
        table, queries, bounds, biases = self.heads(batch["ids"], n_logits=3 if with_artists else 2)
        logits = segment_logits(table, queries, bounds, biases)
        plain = multi_hot_bce_mean(logits[0], batch["song_targets"]) \
            + c.tags_loss_weight * multi_hot_bce_mean(logits[1], batch["tag_targets"])
        if with_artists:
            plain = plain + c.artists_loss_weight * multi_hot_bce_mean(logits[2], batch["artist_targets"])
        if not ranking_weight:
            return plain, plain.detach()
        rank_by = None if logits[0].dtype == table.dtype else \
            float32_logits(table, queries[:, :1], bounds[:1], biases[:1])[0]
        total = plain + ranking_weight * top100_ranking_term(logits[0], batch["song_targets"], rank_by=rank_by)
        return total, plain.detach()

    def scores(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Song and tag logits to rank; float32 also under bf16 autocast (layers.ranking_logits)."""
        songs, tags = ranking_logits(*self.heads(batch["ids"], n_logits=2))
        return songs, tags

    @staticmethod
    def accepts(q: Playlists) -> np.ndarray:
        """Questions with at least one in-vocabulary song or tag."""
        return (q.songs.lengths() > 0) | (q.tags.lengths() > 0)

    def question_batch(self, q: Playlists, rows: np.ndarray) -> dict[str, torch.Tensor]:
        """{"ids": long [len(rows), L]}: cls tokens + the first max_songs songs + all tags + the artists
        (Playlists.artists: those of all the question's in-vocab songs), cut to max_len, pad-padded to the
        longest row."""
        c = self.config
        q = q.take(np.asarray(rows, dtype=np.int64))
        cls = CSR(np.tile(np.array([c.songs_cls, c.tags_cls, c.artists_cls], np.int32), len(q)),
                  np.arange(len(q) + 1, dtype=np.int64) * N_CLS)
        seqs = truncate(hstack([cls, truncate(q.songs, c.max_songs), q.tags, q.artists]), c.max_len)
        return {"ids": torch.from_numpy(padded(seqs, c.pad))}
