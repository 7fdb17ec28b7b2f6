"""What the item-based peers share (item_cf, implicit_als, implicit_bm25): the item columns of the playlist x item
matrix, and the step from a batch of item scores to ranked candidates.

Items are a playlist's songs, its tags and its title keywords. Songs and tags get one column each, in popularity
order over orig/train (playlist_knn.Features), so that column order breaks score ties towards the more popular
item. Title keywords (Zhu et al.'s cold-start items, as the 2nd place of the Melon challenge used them) are the tags
that occur KEYWORD_MIN_COUNT+ times in orig/train, normalised as titles are (data_loader/title.normalise_title): a
playlist holds keyword k when k is a substring of its normalised title. A keyword column is distinct from the tag
column of the same name (a title saying "드라이브" is not the tag "드라이브"), and only songs and tags are ever
recommended; keywords let a title-only question reach the playlists whose titles share its words.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from baselines.common import Ranked, popularity, to_results
from baselines.playlist_knn import Features
from common.arena import N_SONGS, N_TAGS
from data_loader.issue_dates import popularity_issue_dates
from data_loader.playlists import updt_to_int
from data_loader.title import normalise_title

KEYWORD_MIN_COUNT = 5


class Items:
    """Column index: songs, then tags (each by descending popularity in orig/train), then title keywords."""

    def __init__(self, train: list[dict]):
        f = Features(train)
        self.song_columns = f.song_columns  # raw song ids -> columns (-1 unknown), memory by distinct songs
        self.song_ids, self.tags, self.tag_col = f.song_ids, f.tags, f.tag_col
        self.n_songs, self.n_tags = f.n_songs, f.n_tags
        self.n_out = self.n_songs + self.n_tags  # the columns that can be recommended
        counts: dict[str, int] = {}
        for p in train:
            for t in p["tags"]:
                counts[t] = counts.get(t, 0) + 1
        self.keyword_col: dict[str, int] = {}
        for t in self.tags:  # popularity order; two tags with one normalised form share a keyword
            k = normalise_title(t)
            if counts[t] >= KEYWORD_MIN_COUNT and k:
                self.keyword_col.setdefault(k, self.n_out + len(self.keyword_col))
        self._lengths = sorted({len(k) for k in self.keyword_col if " " not in k})
        self._spaced = [k for k in self.keyword_col if " " in k]  # e.g. "hip hop" from the tag "Hip_Hop"
        self._word_cache: dict[str, set[str]] = {}
        self._title_cache: dict[str, list[int]] = {}
        self.size = self.n_out + len(self.keyword_col)

    def keywords(self, title: str) -> list[int]:
        """Keyword columns of a raw title: every keyword that is a substring of the normalised title."""
        t = normalise_title(title)
        if t not in self._title_cache:
            found = {k for k in self._spaced if k in t}
            for word in t.split():  # words repeat across titles far more than titles do
                if word not in self._word_cache:
                    subs = {word[i : i + n] for n in self._lengths for i in range(len(word) - n + 1)}
                    self._word_cache[word] = {k for k in subs if k in self.keyword_col}
                found |= self._word_cache[word]
            self._title_cache[t] = sorted(self.keyword_col[k] for k in found)
        return self._title_cache[t]

    def columns(self, p: dict) -> list[int]:
        """The item columns of one playlist: its known songs and tags and its title keywords (unknown ones dropped)."""
        song = self.song_columns(p["songs"])
        return (song[song >= 0].tolist() + [self.tag_col[t] for t in p["tags"] if t in self.tag_col]
                + self.keywords(p.get("plylst_title") or ""))

    def matrix(self, playlists: Sequence[dict]) -> sp.csr_matrix:
        """Binary float32 [N, size]: the items of each playlist (repeated ids count once)."""
        cols = [self.columns(p) for p in playlists]
        indptr = np.cumsum([0] + [len(c) for c in cols])
        flat = np.fromiter((c for row in cols for c in row), dtype=np.int64, count=int(indptr[-1]))
        m = sp.csr_matrix((np.ones(len(flat), np.float32), flat, indptr), shape=(len(playlists), self.size))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    def song_dates(self, train: list[dict], song_meta: list[dict] | None, date_filter: bool) -> np.ndarray | None:
        """int32 [n_songs] corrected issue dates of the song columns (playlist_knn's), or None: no date filter."""
        if not date_filter or song_meta is None:
            return None
        return popularity_issue_dates(self.song_ids, train, song_meta)


# score(known [b, size] csr, questions) -> the batch's song and tag scores [b, n_out]: a CSR matrix whose stored
# entries are the method's candidates, or a dense float32 array where every finite entry is one
Scorer = Callable[[sp.csr_matrix, Sequence[dict]], "sp.csr_matrix | np.ndarray"]


def rank_batches(items: Items, questions: Sequence[dict], score: Scorer, dates: np.ndarray | None, n_songs: int,
                 n_tags: int, batch: int) -> Ranked:
    """Ranked candidates of every question, scoring `batch` questions at a time (see rank_batch)."""
    parts = []
    for start in range(0, len(questions), batch):
        qs = questions[start : start + batch]
        known = items.matrix(qs)
        parts.append(rank_batch(items, score(known, qs), known, qs, dates, n_songs, n_tags))
    return concat(parts)


def recommend_with(rank: Callable[..., Ranked], train: list[dict], questions: list[dict],
                   song_meta: list[dict] | None = None, **options) -> list[dict]:
    """results.json records: `rank`'s first 100 songs / 10 tags per question, topped up from popularity."""
    ranked = rank(train, questions, song_meta, N_SONGS, N_TAGS, **options)
    return to_results(ranked, questions, popularity(p["songs"] for p in train), popularity(p["tags"] for p in train))


def rank_batch(items: Items, scores: sp.csr_matrix | np.ndarray, known: sp.csr_matrix, questions: Sequence[dict],
               dates: np.ndarray | None, n_songs: int, n_tags: int) -> Ranked:
    """Ranked candidates of a batch of questions from their item scores, minus seen items and future songs.

    Args:
        items: the item columns.
        scores: [b, n_out] each question's scores of the song and tag columns: CSR, whose stored entries are the
            candidates, or a dense float32 array (modified in place) whose finite entries are.
        known: [b, >= n_out] the questions' own items (nonzero = seen, never recommended).
        questions: the b question records (their ids and updt_date).
        dates: int32 [n_songs] song issue dates, or None: no date filter.
        n_songs, n_tags: candidates kept per question (fewer when fewer are left).
    """
    updt = None
    if dates is not None:
        updt = np.fromiter((updt_to_int(q["updt_date"]) for q in questions), dtype=np.int64, count=len(questions))
    seen = known[:, : items.n_out].tocsr()
    if sp.issparse(scores):
        song_cols, song_scores, tag_cols, tag_scores = _top_sparse(scores.tocsr(), seen, dates, updt, items.n_songs,
                                                                   n_songs, n_tags)
    else:
        _drop_dense(scores, seen, dates, updt)
        song_cols, song_scores = _top_dense(scores[:, : items.n_songs], n_songs)
        tag_cols, tag_scores = _top_dense(scores[:, items.n_songs :], n_tags)
    tag_names = np.asarray(items.tags + [None], dtype=object)  # the last entry pads
    return Ranked(np.asarray([q["id"] for q in questions], dtype=np.int64),
                  np.where(song_cols >= 0, items.song_ids[song_cols], -1), song_scores, tag_names[tag_cols],
                  tag_scores)


def _top_sparse(scores: sp.csr_matrix, seen: sp.csr_matrix, dates: np.ndarray | None, updt: np.ndarray | None,
                n_songs_cols: int, n_songs: int, n_tags: int) -> tuple[np.ndarray, ...]:
    """(song columns, song scores, tag columns, tag scores) [b, min(n, width)] of each row's best stored entries
    that are neither seen nor songs issued after the row's updt date; best first, ties by column; -1 / 0 pad."""
    b = scores.shape[0]
    k_songs, k_tags = min(n_songs, n_songs_cols), min(n_tags, scores.shape[1] - n_songs_cols)
    out = (np.full((b, k_songs), -1, np.int64), np.zeros((b, k_songs), np.float32),
           np.full((b, k_tags), -1, np.int64), np.zeros((b, k_tags), np.float32))
    for r in range(b):  # per question, over its candidates only (a few thousand: cheap)
        row = slice(scores.indptr[r], scores.indptr[r + 1])
        c, v = scores.indices[row], scores.data[row]
        keep = ~np.isin(c, seen.indices[seen.indptr[r] : seen.indptr[r + 1]])
        song = c < n_songs_cols
        if dates is not None:
            keep &= ~song | (dates[np.minimum(c, n_songs_cols - 1)] <= updt[r])
        for cols, vals, part, offset in ((*out[:2], keep & song, 0), (*out[2:], keep & ~song, n_songs_cols)):
            top_c, top_v = _top_row(c[part] - offset, v[part], cols.shape[1])
            cols[r, : len(top_c)], vals[r, : len(top_c)] = top_c, top_v
    return out


def _top_row(c: np.ndarray, v: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (column, score) pairs, best first, ties by column."""
    if len(v) > k:  # every entry tied with the k-th best stays, so that ties still go by column
        sel = v >= np.partition(v, len(v) - k)[len(v) - k]
        c, v = c[sel], v[sel]
    order = np.lexsort((c, -v))[:k]
    return c[order], v[order]


def _drop_dense(scores: np.ndarray, seen: sp.csr_matrix, dates: np.ndarray | None, updt: np.ndarray | None) -> None:
    """Set seen entries and, in song columns, songs issued after the row's updt date to -inf (in place)."""
    scores[seen.nonzero()] = -np.inf
    if dates is not None:
        by_date = np.argsort(dates, kind="stable")
        first_banned = np.searchsorted(dates[by_date], updt, side="right")
        for r, start in enumerate(first_banned):  # per question: its banned songs are a suffix in date order
            scores[r, by_date[start:]] = -np.inf


def _top_dense(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(columns, scores) [b, min(n, width)] of each row's n best finite entries, best first, ties by column;
    -1 / 0 where a row has fewer finite entries."""
    import torch  # torch.topk: ~10x numpy's row-wise argpartition on rows of 10^5-10^6 scores

    k = min(n, scores.shape[1])
    vals, cols = torch.topk(torch.from_numpy(np.ascontiguousarray(scores)), k, dim=1)
    vals, cols = vals.numpy(), cols.numpy()
    order = np.lexsort((cols, -vals), axis=1)  # ties by column within the k kept
    cols, vals = np.take_along_axis(cols, order, axis=1), np.take_along_axis(vals, order, axis=1)
    ok = np.isfinite(vals)
    return np.where(ok, cols, -1), np.where(ok, vals, 0.0).astype(np.float32)


def concat(parts: Sequence[Ranked]) -> Ranked:
    """One Ranked from the batches' (all of one width); no batch: no question."""
    if not parts:
        return Ranked.from_lists([], [], [], [], [])
    return Ranked(*(np.concatenate([getattr(r, f) for r in parts]) for f in
                    ("ids", "songs", "song_scores", "tags", "tag_scores")))
