"""Playlists as flat arrays: ragged lists in CSR form (flat int32 values + int64 offsets per playlist).

Step 1 encodes every playlist file once into a `Playlists` object and saves it as one `.npz`, so trainers and the
predictor never re-parse JSON or loop in Python per item. Item ids are the model-1 label ids of `Vocab`
(songs [0,S), tags [S,S+T), artists [S+T,S+T+A)); titles are SentencePiece ids of the normalised title.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from common.jsonio import atomic_path


@dataclass
class CSR:
    """A ragged int matrix: row i is values[offsets[i]:offsets[i+1]]."""

    values: np.ndarray  # int32 [nnz]
    offsets: np.ndarray  # int64 [n+1], offsets[0] == 0

    @classmethod
    def from_lists(cls, rows: Iterable[Sequence[int]]) -> "CSR":
        rows = [np.asarray(r, dtype=np.int32).reshape(-1) for r in rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum([len(r) for r in rows], out=offsets[1:])
        values = np.concatenate(rows) if rows else np.zeros(0, np.int32)
        return cls(values.astype(np.int32, copy=False), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def row(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def take(self, idx: np.ndarray) -> "CSR":
        """The sub-matrix of the given rows, in that order (vectorised gather)."""
        idx = np.asarray(idx, dtype=np.int64)
        lens = self.lengths()[idx]
        offsets = np.zeros(len(idx) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        # position of every output element in self.values: row start + rank within the row
        starts = np.repeat(self.offsets[:-1][idx] - offsets[:-1], lens)
        return CSR(self.values[starts + np.arange(offsets[-1])], offsets)

    def row_ids(self) -> np.ndarray:
        """int64 [nnz]: the row of every stored value (the COO row index)."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.lengths())


@dataclass
class Playlists:
    """N playlists encoded for the models. All arrays are aligned on the playlist axis."""

    ids: np.ndarray  # int64 [N]   playlist ids from the JSON
    updt: np.ndarray  # int32 [N]  updt_date as YYYYMMDD
    songs: CSR  # in-vocabulary song label ids, original order
    tags: CSR  # in-vocabulary tag label ids, original order
    artists: CSR  # artist label ids of the songs (sorted union)
    title: CSR  # SentencePiece ids of the normalised title, untruncated (empty if the title normalises to "")

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, idx: np.ndarray) -> "Playlists":
        idx = np.asarray(idx, dtype=np.int64)
        return Playlists(
            self.ids[idx], self.updt[idx],
            self.songs.take(idx), self.tags.take(idx), self.artists.take(idx), self.title.take(idx),
        )

    def save(self, path: str | Path) -> None:
        arrays = {"ids": self.ids, "updt": self.updt}
        for f in ("songs", "tags", "artists", "title"):
            csr: CSR = getattr(self, f)
            arrays[f"{f}_values"], arrays[f"{f}_offsets"] = csr.values, csr.offsets
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "Playlists":
        with np.load(path) as z:
            csrs = {f: CSR(z[f"{f}_values"], z[f"{f}_offsets"]) for f in ("songs", "tags", "artists", "title")}
            return cls(ids=z["ids"], updt=z["updt"], **csrs)


def updt_to_int(updt_date: str) -> int:
    """'2019-12-17 14:06:45.000' -> 20191217 (the original's convert_updt_date)."""
    return int(updt_date[0:4] + updt_date[5:7] + updt_date[8:10])


def row_sets(rows: np.ndarray, values: np.ndarray, n_rows: int) -> CSR:
    """CSR of the distinct values of each row, sorted, from COO (row, value) pairs.

    Sort-based: numpy 2's hash-based np.unique is an order of magnitude slower on millions of int64 keys.
    """
    width = int(values.max(initial=0)) + 1
    key = np.sort(rows.astype(np.int64) * width + values)
    key = key[np.concatenate([[True], key[1:] != key[:-1]])] if len(key) else key
    offsets = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(key // width, minlength=n_rows), out=offsets[1:])
    return CSR((key % width).astype(np.int32), offsets)


def hstack(parts: list[CSR]) -> CSR:
    """Row-wise concatenation of CSRs with the same number of rows: row i = parts[0][i] + parts[1][i] + ..."""
    lens = np.stack([p.lengths() for p in parts])  # [K, n]
    offsets = np.zeros(lens.shape[1] + 1, dtype=np.int64)
    np.cumsum(lens.sum(0), out=offsets[1:])
    values = np.empty(offsets[-1], dtype=np.int32)
    start = offsets[:-1].copy()  # where the next part of each row goes
    for p, n in zip(parts, lens):
        within = np.arange(len(p.values)) - np.repeat(p.offsets[:-1], n)
        values[np.repeat(start, n) + within] = p.values
        start += n
    return CSR(values, offsets)


def truncate(csr: CSR, n: int) -> CSR:
    """The first n values of every row."""
    full = csr.lengths()
    lens = np.minimum(full, n)
    keep = np.arange(len(csr.values)) - np.repeat(csr.offsets[:-1], full) < np.repeat(lens, full)
    offsets = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    return CSR(csr.values[keep], offsets)


def padded(csr: CSR, pad: int, width: int | None = None) -> np.ndarray:
    """int64 [n, width] with row i = csr[i] followed by `pad`; width defaults to the longest row."""
    lens = csr.lengths()
    width = int(lens.max(initial=0)) if width is None else width
    out = np.full((len(lens), width), pad, dtype=np.int64)
    rows = csr.row_ids()
    out[rows, np.arange(len(rows)) - np.repeat(csr.offsets[:-1], lens)] = csr.values
    return out
