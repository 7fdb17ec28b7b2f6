"""Model 1's training data: the original's denoising by dropping items (docs/original.md 2.1), built one epoch at a
time.

For every orig/train playlist with at least one in-vocab song, tag or artist, each epoch, after a reshuffle:

    k_s = randint(lo, min(#songs, 100)),  lo = 1 if the playlist has no tags else 0    (uniform, inclusive)
    input songs = a random sample of k_s of its songs
    k_t = randint(lo_t, min(#tags, 5)),   lo_t = 1 if no song was sampled else 0
    input tags = a random sample of k_t of its tags; input artists = the in-vocab artists of the sampled songs only
    target = all in-vocab songs, tags and artists of the whole playlist

The draws for a whole epoch are made at once with numpy (one random key per song, the k_s smallest keys of a row
are its sample), so building an epoch costs a few sorts of the item arrays, not a Python loop per playlist.
Rows longer than 280 (songs_tags_artists_model_max_sequence_length) lose their last artists, as the model's
question_batch does; the original never truncates (the longest row of the full-size sample is ~210).
Randomness: the original seeds Python's `random` with 888; we cannot reproduce TensorFlow-era draws anyway, so
epoch e of a run with seed s uses numpy's Generator seeded with (s, stream, e). An epoch is therefore a pure function
of (seed, epoch), which is what lets --resume continue in the middle of an epoch with the same batches.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from data_loader.encode import artists_csr
from data_loader.playlists import CSR, Playlists, hstack, padded, row_sets, truncate
from data_loader.vocab import Vocab

MAX_SONGS = 100  # val_test_max_songs: a question shows at most 100 songs
MAX_TAGS = 5  # val_test_max_tags
MAX_LEN = 280  # positions per input row
DENOISING_STREAM = 1  # epoch_rng stream id; the title model's streams are 2, 3, 4


def epoch_rng(seed: int, stream: int, epoch: int) -> np.random.Generator:
    """The generator of one epoch of one data stream; independent of every other (seed, stream, epoch)."""
    return np.random.default_rng([seed, stream, epoch])


def distinct_items(pl: Playlists) -> Playlists:
    """The playlists with each song and tag listed once, sorted: a target is a set (the original's multi-hot).

    The Melon files repeat no item within a playlist, so this only guards the BCE against double positives.
    """
    return dataclasses.replace(pl, songs=row_sets(pl.songs.row_ids(), pl.songs.values, len(pl)),
                               tags=row_sets(pl.tags.row_ids(), pl.tags.values, len(pl)))


def sample_rows(csr: CSR, k: np.ndarray, rng: np.random.Generator) -> CSR:
    """A uniform random sample without replacement of k[i] values of each row i (random.sample, vectorised)."""
    lens = csr.lengths()
    # row + u sorts by row, then by a uniform key within the row; the first k[i] of row i are a uniform sample
    order = np.argsort(csr.row_ids() + rng.random(len(csr.values)), kind="stable")
    rank = np.arange(len(order)) - np.repeat(csr.offsets[:-1], lens)
    chosen = order[rank < np.repeat(k, lens)]
    offsets = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(k, out=offsets[1:])
    return CSR(csr.values[chosen], offsets)


def coo(csr: CSR, first_id: int) -> torch.Tensor:
    """long [2, nnz]: (row, label id - first_id) of every value, the batch dict's sparse target format."""
    return torch.from_numpy(np.stack([csr.row_ids(), csr.values.astype(np.int64) - first_id]))


def random_ints(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Uniform integers in [lo, hi] inclusive, element-wise (random.randint)."""
    return rng.integers(lo, hi + 1)


class DenoisingEpoch:
    """The batches of one epoch: `len()` of them, built lazily by index (the last one may be partial)."""

    def __init__(self, inputs: CSR, targets: Playlists, vocab: Vocab, bs: int):
        self.inputs, self.targets, self.bs = inputs, targets, bs
        self.n_songs, self.n_tags, self.pad = vocab.n_songs, vocab.n_tags, vocab.pad

    def __len__(self) -> int:
        return -(-len(self.inputs) // self.bs)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        rows = np.arange(i * self.bs, min((i + 1) * self.bs, len(self.inputs)))
        t = self.targets.take(rows)
        return {
            "ids": torch.from_numpy(padded(self.inputs.take(rows), self.pad)),  # [B, L]
            "song_targets": coo(t.songs, 0),
            "tag_targets": coo(t.tags, self.n_songs),
            "artist_targets": coo(t.artists, self.n_songs + self.n_tags),
        }


class SongsTagsArtistsData:
    """Epochs of denoising batches over the usable playlists of `train` (ids, targets as in models/base.py)."""

    def __init__(self, train: Playlists, vocab: Vocab, bs: int = 128, seed: int = 0, max_songs: int = MAX_SONGS,
                 max_len: int = MAX_LEN):
        """max_songs, max_len: the model config's (a question shows at most max_songs songs; rows are cut to
        max_len positions), so that training rows look like the model's question rows."""
        usable = (train.songs.lengths() > 0) | (train.tags.lengths() > 0) | (train.artists.lengths() > 0)
        self.playlists = distinct_items(train.take(np.flatnonzero(usable)))
        self.vocab, self.bs, self.seed, self.max_songs, self.max_len = vocab, bs, seed, max_songs, max_len
        self.cls = np.array([vocab.special(s) for s in ("@songs_cls", "@tags_cls", "@artists_cls")], np.int32)

    def __len__(self) -> int:
        """Playlists per epoch."""
        return len(self.playlists)

    def epoch(self, epoch: int) -> DenoisingEpoch:
        rng = epoch_rng(self.seed, DENOISING_STREAM, epoch)
        pl = self.playlists.take(rng.permutation(len(self.playlists)))
        n_songs, n_tags = pl.songs.lengths(), pl.tags.lengths()
        k_songs = random_ints(rng, (n_tags == 0).astype(np.int64), np.minimum(n_songs, self.max_songs))
        songs = sample_rows(pl.songs, k_songs, rng)
        k_tags = random_ints(rng, (k_songs == 0).astype(np.int64), np.minimum(n_tags, MAX_TAGS))
        tags = sample_rows(pl.tags, k_tags, rng)
        n = len(pl)
        cls = CSR(np.tile(self.cls, n), np.arange(n + 1, dtype=np.int64) * 3)
        inputs = truncate(hstack([cls, songs, tags, artists_csr(songs, self.vocab)]), self.max_len)
        return DenoisingEpoch(inputs, pl, self.vocab, self.bs)
