"""Playlist kNN: recommend what the most similar training playlists hold (the family most top arena teams used).

Every playlist of orig/train.json and every question becomes a sparse row over songs, tags and title words
(normalised as the title model does, then split on spaces), each feature weighted by its IDF, log(P / df) over the
P training playlists, and the row L2-normalised. For a question, the `k` training playlists of highest cosine
similarity are its neighbours; an item's score is the sum of sim^power over the neighbours that hold it. Seen items
are removed (and, with song_meta.json and `date_filter`, songs issued after the question's updt_date, with the
dates corrected over orig/train as data_loader/issue_dates.py does for the models); ties go to
the more popular item; short lists are topped up from popularity.

Defaults k = 200, power = 1: chosen on re-splits of orig/train alone, never on the val answers (docs/hybrid.md).
Everything runs as sparse matrix products in batches of questions.

    python -m baselines.playlist_knn --dataset_dir=dataset --out_path=reco_result/playlist_knn.json [--k=200]
"""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from baselines.common import Ranked, drop_own_rows, own_rows, popularity, run_baseline, to_results
from common.arena import N_SONGS, N_TAGS, SONG_CANDIDATES, TAG_CANDIDATES
from common.cli import check_flags, run_cli
from data_loader.issue_dates import popularity_issue_dates
from data_loader.playlists import updt_to_int
from data_loader.title import normalise_title
from data_loader.vocab import sorted_lookup

K, POWER, BATCH = 200, 1.0, 256


class Features:
    """Column index: songs then tags in popularity order (so that column order breaks score ties), then words."""

    def __init__(self, train: list[dict]):
        songs = np.fromiter((s for p in train for s in p["songs"]), dtype=np.int64)
        ids, first, counts = np.unique(songs, return_index=True, return_counts=True)
        order = np.lexsort((first, -counts))
        self.song_ids = ids[order]  # int64 [n_songs] raw id of each song column
        # sorted ids and their columns: a lookup whose size follows the number of songs, not the largest id
        self._sorted_ids, self._sorted_cols = ids, np.argsort(order)
        tag_counts: dict[str, int] = {}
        for p in train:
            for t in p["tags"]:
                tag_counts[t] = tag_counts.get(t, 0) + 1
        self.tags = sorted(tag_counts, key=lambda t: -tag_counts[t])  # stable: ties in first-seen order
        self.tag_col = {t: len(self.song_ids) + i for i, t in enumerate(self.tags)}
        self.word_col: dict[str, int] = {}
        base = len(self.song_ids) + len(self.tags)
        for p in train:
            for w in _words(p):
                self.word_col.setdefault(w, base + len(self.word_col))
        self.n_songs, self.n_tags = len(self.song_ids), len(self.tags)
        self.size = base + len(self.word_col)

    def song_columns(self, songs: Sequence[int]) -> np.ndarray:
        """int64 column of each raw song id, -1 for a song not in orig/train."""
        return sorted_lookup(self._sorted_ids, self._sorted_cols, songs)

    def matrix(self, playlists: list[dict]) -> sp.csr_matrix:
        """Binary float32 [N, size]: the known songs, tags and title words of each playlist."""
        rows, cols = [], []
        for i, p in enumerate(playlists):
            song = self.song_columns(p["songs"])
            c = song[song >= 0].tolist() + [self.tag_col[t] for t in p["tags"] if t in self.tag_col]
            c += [self.word_col[w] for w in _words(p) if w in self.word_col]
            cols += c
            rows += [i] * len(c)
        m = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(len(playlists), self.size))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m


def _words(p: dict) -> list[str]:
    return normalise_title(p["plylst_title"]).split()


def _normalise_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(1)).ravel())
    return sp.diags(1.0 / np.maximum(norms, 1e-12)).astype(np.float32) @ m


def _top_k_rows(sims: sp.csr_matrix, k: int, power: float) -> sp.csr_matrix:
    """Keep the k largest entries of each row, raised to `power`."""
    indptr, indices, data = [0], [], []
    for r in range(sims.shape[0]):
        a, b = sims.indptr[r], sims.indptr[r + 1]
        d, c = sims.data[a:b], sims.indices[a:b]
        if len(d) > k:
            keep = np.argpartition(-d, k)[:k]
            d, c = d[keep], c[keep]
        indices.append(c)
        data.append(d ** power)
        indptr.append(indptr[-1] + len(d))
    return sp.csr_matrix((np.concatenate(data), np.concatenate(indices), indptr), shape=sims.shape)


def _ranked(scores: sp.csr_matrix, r: int) -> tuple[np.ndarray, np.ndarray]:
    """(columns, scores) of row r by descending score, ties by column (that is, by popularity)."""
    a, b = scores.indptr[r], scores.indptr[r + 1]
    cols, vals = scores.indices[a:b], scores.data[a:b]
    order = np.lexsort((cols, -vals))
    return cols[order], vals[order]


def rank(train: list[dict], questions: list[dict], song_meta: list[dict] | None = None, n_songs: int = SONG_CANDIDATES,
         n_tags: int = TAG_CANDIDATES, k: int = K, power: float = POWER, date_filter: bool = True,
         batch: int = BATCH) -> Ranked:
    """Each question's first n_songs / n_tags neighbour-voted songs and tags (see the module docstring)."""
    f = Features(train)
    x = f.matrix(train)
    idf = np.log(x.shape[0] / np.maximum(np.asarray(x.sum(0)).ravel(), 1)).astype(np.float32)  # [size]
    xt = _normalise_rows(x @ sp.diags(idf)).T.tocsr()  # [size, P]
    song_items = x[:, : f.n_songs].tocsr()  # binary [P, n_songs]
    tag_items = x[:, f.n_songs : f.n_songs + f.n_tags].tocsr()  # binary [P, n_tags]
    dates = None
    if date_filter and song_meta is not None:
        dates = popularity_issue_dates(f.song_ids, train, song_meta)
    tag_names = np.asarray(f.tags, dtype=object)
    own = own_rows(train, questions)  # a fed corpus holds each question's visible part: never its own neighbour
    ranked: tuple[list, ...] = ([], [], [], [])
    for start in range(0, len(questions), batch):
        qs = questions[start : start + batch]
        qx = _normalise_rows(f.matrix(qs) @ sp.diags(idf))
        w = _top_k_rows(drop_own_rows((qx @ xt).tocsr(), own[start : start + batch]), k, power)  # [b, P]
        song_scores, tag_scores = (w @ song_items).tocsr(), (w @ tag_items).tocsr()
        for r, q in enumerate(qs):
            cols, vals = _ranked(song_scores, r)
            keep = ~np.isin(f.song_ids[cols], np.asarray(q["songs"], dtype=np.int64))
            if dates is not None:
                keep &= dates[cols] <= updt_to_int(q["updt_date"])
            cols, vals = cols[keep][:n_songs], vals[keep][:n_songs]
            tcols, tvals = _ranked(tag_scores, r)
            tkeep = ~np.isin(tag_names[tcols], np.asarray(q["tags"], dtype=object))
            row = (f.song_ids[cols], vals, tag_names[tcols[tkeep][:n_tags]], tvals[tkeep][:n_tags])
            for out, x in zip(ranked, row):
                out.append(x)
    return Ranked.from_lists([q["id"] for q in questions], *ranked)


def recommend(train: list[dict], questions: list[dict], song_meta: list[dict] | None = None, k: int = K,
              power: float = POWER, date_filter: bool = True, batch: int = BATCH) -> list[dict]:
    """kNN recommendations for every question: the ranked candidates, topped up from popularity."""
    ranked = rank(train, questions, song_meta, N_SONGS, N_TAGS, k, power, date_filter, batch)
    return to_results(ranked, questions, popularity(p["songs"] for p in train), popularity(p["tags"] for p in train))


def main(dataset_dir: str = "dataset", question_path: str | None = None, out_path: str = "reco_result/results.json",
         k: int = K, power: float = POWER, date_filter: bool = True, feed: bool = True) -> None:
    """Args:
        dataset_dir: folder with train.json, step 1's split and, optionally, song_meta.json.
        question_path: question file; default {dataset_dir}/questions/val.json.
        out_path: results file to write.
        k: neighbours per question.
        power: similarity exponent of a neighbour's vote.
        date_filter: drop songs issued after the question's updt_date (needs song_meta.json).
        feed: learn from train.json and the questions' visible parts (false: orig/train.json alone).
    """
    check_flags(k=(k >= 1, "at least 1"), power=(power > 0, "> 0"))
    run_baseline(functools.partial(recommend, k=k, power=power, date_filter=date_filter), dataset_dir, question_path,
                 out_path, name="playlist_knn", feed=feed)


if __name__ == "__main__":
    run_cli(main)
