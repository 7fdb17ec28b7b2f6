"""The model-1 vocabulary from orig/train.json, as the original's Label_info (docs/original.md 1.3).

Songs and tags are ranked by occurrence count; artists by document frequency: +1 per playlist for each artist of
the playlist's in-vocabulary songs. Ranks are descending with ties in first-seen order (Python's stable sorted(...,
reverse=True) over a Counter filled in file order), and each list is cut at the shortest prefix whose cumulative
share exceeds its recall (vocab.cumulative_share_cutoff).

Two deliberate differences from the original, neither of which changes a label id:
- artists are the ints of artist_id_basket rather than 'artist_%d' strings (label ids are disjoint by range);
- ties between artists first seen in the same playlist are ordered by first occurrence (song position, then basket
  position); the original added each playlist's artists from a set of strings, whose order depends on the
  per-process string hash seed, so its artist tie order was not reproducible from run to run anyway.

Everything is counted with numpy over flat arrays (5M song occurrences take about a second).
"""
from __future__ import annotations

from itertools import chain
from typing import Mapping, Sequence

import numpy as np

from data_loader.playlists import CSR
from data_loader.vocab import Vocab, cumulative_share_cutoff

RECALL = {"songs": 0.9, "tags": 0.95, "artists": 0.98}  # parameters.py: songs_recall, tags_recall, artists_recall


def flat_songs(records: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(song ids int64 [nnz] in file order, lengths int64 [N]) of validated playlist records."""
    lengths = np.fromiter((len(r["songs"]) for r in records), dtype=np.int64, count=len(records))
    songs = np.fromiter(chain.from_iterable(r["songs"] for r in records), dtype=np.int64, count=int(lengths.sum()))
    return songs, lengths


def group_values(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """np.unique(codes, return_index, return_inverse, return_counts) for ids in [0, 2**31).

    Sorts value * n + position, whose keys are distinct, so a plain quicksort gives the stable order: several
    times faster than the stable argsort np.unique uses on millions of ids.
    Returns (sorted distinct values, first index of each, code of each input, counts).
    """
    n = len(codes)
    key = np.sort(np.asarray(codes, dtype=np.int64) * n + np.arange(n))
    ordered, order = np.divmod(key, max(n, 1))
    new = np.ones(n, dtype=bool)
    new[1:] = ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(new)
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return ordered[starts], order[starts], inverse, np.diff(np.append(starts, n))


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique(values) by sort and compare: numpy 2.x's np.unique takes a hash-set path here that is tens of
    times slower on millions of distinct ints."""
    values = np.sort(values)
    new = np.ones(len(values), dtype=bool)
    new[1:] = values[1:] != values[:-1]
    return values[new]


def frequency_order(first: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Positions of group_values' distinct values, most frequent first with ties in first-seen order."""
    seen = np.argsort(first)  # first-seen order (the first indices are distinct)
    return seen[np.argsort(-counts[seen], kind="stable")]


def _rank_tags(records: Sequence[dict]) -> tuple[list[str], np.ndarray]:
    index: dict[str, int] = {}  # tag -> code in first-seen order
    codes = np.fromiter((index.setdefault(t, len(index)) for r in records for t in r["tags"]), dtype=np.int64)
    counts = np.bincount(codes, minlength=len(index))
    rank = np.argsort(-counts, kind="stable")
    names = list(index)
    return [names[i] for i in rank], counts[rank]


def _filter_rows(values: np.ndarray, offsets: np.ndarray) -> CSR:
    """Drop the -1 entries of a CSR-shaped array."""
    keep = values >= 0
    rows = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    out = np.zeros(len(offsets), dtype=np.int64)
    np.cumsum(np.bincount(rows[keep], minlength=len(offsets) - 1), out=out[1:])
    return CSR(values[keep].astype(np.int32), out)


def _baskets(songs: Sequence[int], song_artists: Mapping[int, Sequence[int]]) -> CSR:
    """Raw artist ids of each song (empty for a song without metadata)."""
    rows = [song_artists.get(s, ()) for s in songs]
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, rows), dtype=np.int64, count=len(rows)), out=offsets[1:])
    values = np.fromiter(chain.from_iterable(rows), dtype=np.int32, count=int(offsets[-1]))
    return CSR(values, offsets)


def build_vocab(train: Sequence[dict], song_artists: Mapping[int, Sequence[int]] | None,
                recall: Mapping[str, float] = RECALL) -> tuple[Vocab, dict[str, int]]:
    """Vocab from orig/train records; also the number of distinct songs/tags/artists before the cut.

    Args:
        train: validated orig/train.json records.
        song_artists: song id -> artist_id_basket from song_meta.json, or None without it (then no artists).
    """
    raw, lengths = flat_songs(train)
    # distinct ids and each occurrence's code among them: memory follows the number of distinct songs, not the
    # largest id (a lookup table indexed by raw id would take 8 bytes per id up to the largest)
    song_ids, first, code, counts = group_values(raw)
    order = frequency_order(first, counts)
    kept_codes = order[: cumulative_share_cutoff(counts[order], recall["songs"])]
    songs = song_ids[kept_codes]
    tags, tag_counts = _rank_tags(train)
    tags = tags[: cumulative_share_cutoff(tag_counts, recall["tags"])]
    distinct = {"songs": len(song_ids), "tags": len(tag_counts), "artists": 0}
    n_songs, n_tags = len(songs), len(tags)
    song_list = songs.tolist()
    no_artists = CSR(np.zeros(0, np.int32), np.zeros(n_songs + 1, np.int64))
    if song_artists is None:
        return Vocab(song_list, tags, [], no_artists), distinct

    baskets = _baskets(song_list, song_artists)
    label_of_code = np.full(len(song_ids), -1, dtype=np.int64)
    label_of_code[kept_codes] = np.arange(n_songs)
    labels = label_of_code[code]  # [nnz] label of each occurrence, -1 outside the vocabulary
    rows = np.repeat(np.arange(len(train)), lengths)[labels >= 0]
    per_song = baskets.take(labels[labels >= 0])  # artists of every in-vocab occurrence, in file order
    rows = np.repeat(rows, per_song.lengths())
    if len(per_song.values) == 0:  # no vocab song has metadata
        return Vocab(song_list, tags, [], no_artists), distinct
    artist_ids, first, code, _ = group_values(per_song.values)
    pairs = sorted_unique(rows * len(artist_ids) + code)  # one per (playlist, artist): document frequency
    df = np.bincount(pairs % len(artist_ids), minlength=len(artist_ids))
    rank = frequency_order(first, df)
    kept = rank[: cumulative_share_cutoff(df[rank], recall["artists"])]
    distinct["artists"] = len(artist_ids)

    # raw artist id -> label id (S + T + rank), -1 outside the vocabulary; every basket id is in artist_ids
    # because every vocab song occurs in train
    label_of_code = np.full(len(artist_ids), -1, dtype=np.int64)
    label_of_code[kept] = n_songs + n_tags + np.arange(len(kept))
    basket_labels = label_of_code[np.searchsorted(artist_ids, baskets.values)]
    vocab = Vocab(song_list, tags, artist_ids[kept].tolist(), _filter_rows(basket_labels, baskets.offsets))
    return vocab, distinct
