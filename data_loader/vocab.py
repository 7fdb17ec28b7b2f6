"""The model-1 label vocabulary (the original's Label_info + LabelEncoder), stored as human-readable JSON.

Label ids: songs [0,S), tags [S,S+T), artists [S+T,S+T+A), then the five specials in SPECIALS order.
Each list is in descending playlist-frequency order, so `songs[:k]` and `tags[:k]` are the most popular items
(the cold-start fallback uses them). There is no unknown token: out-of-vocabulary items are dropped on encoding.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from common.jsonio import InputError, load_json, write_json
from data_loader.playlists import CSR

SPECIALS = ("@songs_cls", "@tags_cls", "@artists_cls", "@pad", "@sep")


def cumulative_share_cutoff(counts_desc: np.ndarray, recall: float) -> int:
    """How many items to keep: the shortest prefix whose cumulative share is strictly greater than `recall`.

    `counts_desc` are the frequencies sorted in descending order. This is the original's filter_low_freq_item:
    before adding item k it stops if sum(counts[:k]) / total > recall. recall >= 1.0 keeps everything.
    """
    counts = np.asarray(counts_desc, dtype=np.int64)
    if len(counts) == 0:
        return 0
    share = np.cumsum(counts) / counts.sum()
    over = np.flatnonzero(share > recall)
    return int(over[0]) + 1 if len(over) else len(counts)


def sorted_lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """int64 values[i] where keys[i] == query, -1 where query is not in `keys` (sorted int64, distinct).

    A binary search rather than a table indexed by id: memory follows the number of keys, whatever the ids.
    """
    query = np.asarray(query, dtype=np.int64)
    if len(keys) == 0:
        return np.full(query.shape, -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return np.where(keys[pos] == query, values[pos], -1)


@dataclass
class Vocab:
    songs: list[int]  # raw song ids, most frequent first
    tags: list[str]
    artists: list[int]  # raw artist ids (artist_id_basket values)
    song_artists: CSR  # [S] rows: artist *label* ids of each vocab song (in-vocab artists only)
    _song_sorted: np.ndarray = field(init=False, repr=False)
    _song_sorted_labels: np.ndarray = field(init=False, repr=False)
    _tag_lookup: dict = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # sorted raw ids + their labels: a searchsorted lookup works for any id range (user data too)
        raw = np.asarray(self.songs, dtype=np.int64)
        order = np.argsort(raw, kind="stable")
        self._song_sorted, self._song_sorted_labels = raw[order], order
        self._tag_lookup = {t: self.n_songs + i for i, t in enumerate(self.tags)}

    # sizes and special ids ----------------------------------------------------------------------------
    @property
    def n_songs(self) -> int:
        return len(self.songs)

    @property
    def n_tags(self) -> int:
        return len(self.tags)

    @property
    def n_artists(self) -> int:
        return len(self.artists)

    @property
    def size(self) -> int:
        return self.n_songs + self.n_tags + self.n_artists + len(SPECIALS)

    def special(self, name: str) -> int:
        return self.n_songs + self.n_tags + self.n_artists + SPECIALS.index(name)

    @property
    def pad(self) -> int:
        return self.special("@pad")

    # encoding ------------------------------------------------------------------------------------------
    def song_labels(self, raw: np.ndarray) -> np.ndarray:
        """Raw song ids -> label ids, -1 where out of vocabulary (vectorised)."""
        return sorted_lookup(self._song_sorted, self._song_sorted_labels, raw)

    def tag_label(self, tag: str) -> int:
        return self._tag_lookup.get(tag, -1)

    def encode_songs(self, raw: Sequence[int]) -> np.ndarray:
        labels = self.song_labels(np.asarray(raw, dtype=np.int64))
        return labels[labels >= 0].astype(np.int32)

    def encode_tags(self, raw: Sequence[str]) -> np.ndarray:
        labels = [self._tag_lookup.get(t, -1) for t in raw]
        return np.asarray([x for x in labels if x >= 0], dtype=np.int32)

    # persistence ----------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "songs": list(map(int, self.songs)),
            "tags": list(self.tags),
            "artists": list(map(int, self.artists)),
            "specials": list(SPECIALS),
            "song_artists": [self.song_artists.row(i).tolist() for i in range(self.n_songs)],
        }

    @property
    def hash(self) -> str:
        """Fingerprint of the label ids: checkpoints carry it, and a model refuses a vocabulary it was not trained
        on."""
        key = json.dumps([self.songs, self.tags, self.artists], ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "Vocab":
        d = load_json(path)
        if not isinstance(d, dict) or not {"songs", "tags", "artists", "song_artists"} <= d.keys():
            raise InputError(f"{path}: not a vocabulary file (needs songs, tags, artists, song_artists)")
        if tuple(d.get("specials", SPECIALS)) != SPECIALS:
            raise InputError(f"{path}: special tokens {d.get('specials')} differ from {list(SPECIALS)}")
        return cls(d["songs"], d["tags"], d["artists"], CSR.from_lists(d["song_artists"]))
