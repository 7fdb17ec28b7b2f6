"""Model 2's training data: MLM batches for stage A and title -> songs/tags batches for stage B
(docs/original.md 3.1-3.4).

Input row: [@songs_cls(3), @tags_cls(4)] + title pieces[:50] + [@sep(5)], padded with @pad(7) to 53 columns.

Stage A (MLM), every epoch after a reshuffle, over the normalised orig/train titles with more than one piece:
each piece (never the cls tokens or @sep) is selected with probability 15%; a selected piece becomes @mask(6)
with probability 80%, a uniform random id in [0, V-1] (specials included, as the original's randint) with 10%,
and stays itself with 10%. Titles where nothing was selected are skipped. The labels are the original pieces.
Stage B (fine-tuning): every playlist with a non-empty title; target = all its in-vocab songs and tags (an
empty target is kept, as in the original).

As in data_loader/songs_tags_artists_data.py, epoch e uses numpy's Generator seeded with (seed, stream, e) instead
of the original's Python `random` seeded 777, and the draws of an epoch are made at once with numpy.
"""
from __future__ import annotations

import numpy as np
import torch

from data_loader.playlists import CSR, Playlists, padded, truncate
from data_loader.songs_tags_artists_data import coo, distinct_items, epoch_rng
from data_loader.title import MASK, PAD, SEP, SONGS_CLS, TAGS_CLS
from data_loader.vocab import Vocab

MAX_PIECES = 50
SEQ_LEN = MAX_PIECES + 3  # title_model_max_sequence_length
MASK_PROB = 15  # percent: randint(1, 100) <= 15
MLM_STREAM, FINETUNE_STREAM, MLM_VAL_STREAM = 2, 3, 4


def title_ids(pieces: CSR, max_pieces: int = MAX_PIECES) -> np.ndarray:
    """int64 [n, max_pieces + 3]: [3, 4] + pieces (at most max_pieces each) + [5], padded with 7."""
    lens = pieces.lengths()
    if lens.max(initial=0) > max_pieces:
        raise ValueError(f"title rows must be truncated to {max_pieces} pieces first")
    ids = np.full((len(lens), max_pieces + 3), PAD, dtype=np.int64)
    ids[:, 0], ids[:, 1] = SONGS_CLS, TAGS_CLS
    ids[:, 2:] = padded(pieces, PAD, max_pieces + 1)
    ids[np.arange(len(lens)), 2 + lens] = SEP
    return ids


def mask_titles(pieces: CSR, n_pieces: int, rng: np.random.Generator,
                max_pieces: int = MAX_PIECES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply BERT's 15% / 80-10-10 selection to every piece of every row at once.

    Args:
        pieces: title pieces truncated to max_pieces, n rows.
        n_pieces: the SentencePiece vocabulary size V (random replacements are drawn from [0, V-1]).
    Returns:
        ids int64 [n, max_pieces + 3] with the replacements applied, positions int64 [2, M] (row, column) of the
        selected pieces in row-major order, labels int64 [M] the original pieces there.
    """
    nnz = len(pieces.values)
    selected = rng.integers(1, 101, nnz) <= MASK_PROB
    action = rng.integers(1, 11, nnz)  # 1..8 -> @mask, 9 -> random id, 10 -> unchanged
    random_id = rng.integers(0, n_pieces, nnz)
    new = np.where(action <= 8, MASK, np.where(action == 9, random_id, pieces.values))
    values = np.where(selected, new, pieces.values)
    ids = title_ids(CSR(values, pieces.offsets), max_pieces)
    rows = pieces.row_ids()[selected]
    cols = 2 + (np.arange(nnz) - np.repeat(pieces.offsets[:-1], pieces.lengths()))[selected]
    return ids, np.stack([rows, cols]), pieces.values[selected].astype(np.int64)


class TitleEpoch:
    """Batches of one epoch over precomputed id rows; each row optionally has MLM positions or song/tag targets."""

    def __init__(self, ids: np.ndarray, bs: int, mlm: tuple[np.ndarray, np.ndarray] | None = None,
                 targets: Playlists | None = None, n_songs: int = 0):
        self.ids, self.bs, self.mlm, self.targets, self.n_songs = ids, bs, mlm, targets, n_songs

    def __len__(self) -> int:
        return -(-len(self.ids) // self.bs)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        a, b = i * self.bs, min((i + 1) * self.bs, len(self.ids))
        batch = {"ids": torch.from_numpy(self.ids[a:b])}  # [B, max_pieces + 3]
        if self.mlm is not None:
            positions, labels = self.mlm
            lo, hi = np.searchsorted(positions[0], [a, b])  # positions are sorted by row
            batch["mlm_positions"] = torch.from_numpy(positions[:, lo:hi] - np.array([[a], [0]]))  # [2, M]
            batch["mlm_labels"] = torch.from_numpy(labels[lo:hi])  # [M]
        if self.targets is not None:
            t = self.targets.take(np.arange(a, b))
            batch["song_targets"] = coo(t.songs, 0)
            batch["tag_targets"] = coo(t.tags, self.n_songs)
        return batch


def _masked_epoch(pieces: CSR, n_pieces: int, bs: int, rng: np.random.Generator, shuffle: bool,
                  max_pieces: int) -> TitleEpoch:
    if shuffle:
        pieces = pieces.take(rng.permutation(len(pieces)))
    ids, positions, labels = mask_titles(pieces, n_pieces, rng, max_pieces)
    # drop the titles in which no piece was selected, renumbering the rows of the positions
    hit = np.bincount(positions[0], minlength=len(pieces)) > 0
    new_row = np.cumsum(hit) - 1
    return TitleEpoch(ids[hit], bs, mlm=(np.stack([new_row[positions[0]], positions[1]]), labels))


def maskable_titles(pl: Playlists, max_pieces: int) -> CSR:
    """The titles MLM can use: those with more than one piece, truncated to max_pieces."""
    return truncate(pl.title.take(np.flatnonzero(pl.title.lengths() > 1)), max_pieces)


class TitleMLMData:
    """Stage A: re-masked MLM epochs over the orig/train titles with more than one piece."""

    def __init__(self, train: Playlists, n_pieces: int, bs: int = 128, seed: int = 0, max_pieces: int = MAX_PIECES):
        self.pieces = maskable_titles(train, max_pieces)
        self.n_pieces, self.bs, self.seed, self.max_pieces = n_pieces, bs, seed, max_pieces

    def __len__(self) -> int:
        """Titles that can be masked (an epoch skips those where nothing gets selected)."""
        return len(self.pieces)

    def epoch(self, epoch: int) -> TitleEpoch:
        return _masked_epoch(self.pieces, self.n_pieces, self.bs, epoch_rng(self.seed, MLM_STREAM, epoch), True,
                             self.max_pieces)


def mlm_validation_batches(questions: Playlists, n_pieces: int, bs: int = 128, seed: int = 0,
                           max_pieces: int = MAX_PIECES) -> TitleEpoch:
    """The val question titles masked once with a fixed draw, so that the logged MLM loss compares across epochs."""
    return _masked_epoch(maskable_titles(questions, max_pieces), n_pieces, bs, epoch_rng(seed, MLM_VAL_STREAM, 0),
                         False, max_pieces)


class TitleFinetuneData:
    """Stage B: reshuffled epochs of (title ids, all in-vocab songs and tags) over the playlists with a title."""

    def __init__(self, train: Playlists, vocab: Vocab, bs: int = 128, seed: int = 0, max_pieces: int = MAX_PIECES):
        self.playlists = distinct_items(train.take(np.flatnonzero(train.title.lengths() > 0)))
        self.ids = title_ids(truncate(self.playlists.title, max_pieces), max_pieces)
        self.n_songs, self.bs, self.seed = vocab.n_songs, bs, seed

    def __len__(self) -> int:
        return len(self.playlists)

    def epoch(self, epoch: int) -> TitleEpoch:
        order = epoch_rng(self.seed, FINETUNE_STREAM, epoch).permutation(len(self.playlists))
        return TitleEpoch(self.ids[order], self.bs, targets=self.playlists.take(order), n_songs=self.n_songs)
