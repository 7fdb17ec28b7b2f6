"""Raw playlist records (validated JSON dicts) -> `Playlists` arrays for the models."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import sentencepiece as spm

from data_loader.playlists import CSR, Playlists, row_sets, updt_to_int
from data_loader.title import normalise_title
from data_loader.vocab import Vocab


def _filter_csr(labels: np.ndarray, lengths: np.ndarray) -> CSR:
    """Drop the -1 (out-of-vocabulary) entries of a flat label array cut into rows of `lengths`."""
    keep = labels >= 0
    rows = np.repeat(np.arange(len(lengths)), lengths)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows[keep], minlength=len(lengths)), out=offsets[1:])
    return CSR(labels[keep].astype(np.int32), offsets)


def artists_csr(songs: CSR, vocab: Vocab) -> CSR:
    """For each row of song label ids, the sorted set of their in-vocab artist label ids."""
    per_song = vocab.song_artists.lengths()[songs.values]
    return row_sets(np.repeat(songs.row_ids(), per_song), vocab.song_artists.take(songs.values).values, len(songs))


def encode_playlists(records: Sequence[dict], vocab: Vocab, sp: spm.SentencePieceProcessor) -> Playlists:
    """Encode validated playlist dicts: songs/tags to in-vocab label ids (order kept), titles to BPE ids."""
    n = len(records)
    song_lens = np.fromiter((len(r["songs"]) for r in records), dtype=np.int64, count=n)
    flat_songs = np.fromiter((s for r in records for s in r["songs"]), dtype=np.int64, count=int(song_lens.sum()))
    songs = _filter_csr(vocab.song_labels(flat_songs), song_lens)

    tag_lens = np.fromiter((len(r["tags"]) for r in records), dtype=np.int64, count=n)
    flat_tags = np.fromiter((vocab.tag_label(t) for r in records for t in r["tags"]), dtype=np.int64,
                            count=int(tag_lens.sum()))
    tags = _filter_csr(flat_tags, tag_lens)

    titles = [normalise_title(r.get("plylst_title", "")) for r in records]
    title = CSR.from_lists(sp.encode(titles)) if n else CSR.from_lists([])
    # an empty normalised title encodes to [] already; keep that explicit for safety
    return Playlists(
        ids=np.fromiter((r["id"] for r in records), dtype=np.int64, count=n),
        updt=np.fromiter((updt_to_int(r["updt_date"]) for r in records), dtype=np.int32, count=n),
        songs=songs, tags=tags, artists=artists_csr(songs, vocab), title=title,
    )
