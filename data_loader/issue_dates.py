"""The corrected issue date of every vocabulary song (the original's util.get_song_issue_dict, docs/original.md 1.4).

Predictions drop a song whose issue date is later than the question playlist's updt date. Some song_meta dates
are 0 or later than playlists that already contain the song, so they are corrected first: scanning the FULL
train.json (both split halves), a vocab song is "strange" in a playlist when its date is 0 or later than the
playlist's updt YYYYMMDD, and a strange song gets the minimum updt over the playlists where it is strange.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from data_loader.build_vocab import flat_songs
from data_loader.playlists import CSR, updt_to_int
from data_loader.vocab import Vocab


def song_issue_dates(vocab: Vocab, full_train: Sequence[dict], issue: Mapping[int, int] | None,
                     flat: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """int32 [S] corrected YYYYMMDD issue dates in vocab order.

    Args:
        vocab: the vocabulary; only its songs are looked at.
        full_train: all validated records of train.json (not only orig/train).
        issue: song id -> int(issue_date) from song_meta.json (a song missing from it counts as date 0), or None
            without song_meta: then every date is 0, which never filters anything.
        flat: flat_songs(full_train) when the caller has it already.
    """
    if issue is None:
        return np.zeros(vocab.n_songs, dtype=np.int32)
    dates = np.fromiter((issue.get(s, 0) for s in vocab.songs), dtype=np.int64, count=vocab.n_songs)
    raw, lengths = flat_songs(full_train) if flat is None else flat
    updt = np.fromiter((updt_to_int(r["updt_date"]) for r in full_train), dtype=np.int64, count=len(full_train))
    labels = vocab.song_labels(raw)
    occ_updt = np.repeat(updt, lengths)[labels >= 0]
    labels = labels[labels >= 0]
    strange = (dates[labels] == 0) | (dates[labels] > occ_updt)
    corrected = np.full(vocab.n_songs, np.iinfo(np.int64).max)
    np.minimum.at(corrected, labels[strange], occ_updt[strange])
    return np.where(corrected < np.iinfo(np.int64).max, corrected, dates).astype(np.int32)


def popularity_issue_dates(song_ids: np.ndarray, train: Sequence[dict], song_meta: Sequence[dict]) -> np.ndarray:
    """int32 [n]: the issue dates of the songs `song_ids` (raw ids, e.g. a ranker's columns), corrected as
    `song_issue_dates` corrects the models' over the playlists `train`."""
    vocab = Vocab(song_ids.tolist(), [], [], CSR(np.zeros(0, np.int32), np.zeros(len(song_ids) + 1, np.int64)))
    return song_issue_dates(vocab, train, {s["id"]: int(s["issue_date"]) for s in song_meta})
