"""The candidate pool of the hybrid ensemble: every member's candidate lists for N questions side by side, the
popularity fallback last, as integer item codes (raw song ids; tags get codes here).

    items  int64 [N, U]        each question's distinct candidates (raw song ids, or tag codes), -1 pads
    where  M x int64 [N, K_m]  the column of member m's rank-r candidate
    scores M x float32 [N, K_m] member m's own score of it

The fallback is each question's first 100 songs / 10 tags by popularity over the training playlists that it may get
(not its own items, not issued after its updt_date when song_meta.json gives issue dates).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from baselines.common import Ranked, popularity
from common.arena import N_SONGS, N_TAGS
from common.jsonio import InputError
from data_loader.issue_dates import popularity_issue_dates
from data_loader.playlists import updt_to_int
from predictor.members import QuestionSet


@dataclass
class Pool:
    """The distinct candidates of every member for one target of N questions, with the fallback's (see the module
    docstring). Columns hold each row's distinct items in first-proposal order: the first member's list, then the
    next member's new items, ..., then the fallback's new items; this order breaks ties between equal scores."""

    items: np.ndarray  # int64 [N, U] item codes, -1 pads
    where: list[np.ndarray]  # per member int64 [N, K_m]: the column of its rank-r candidate; -1 where it has none
    scores: list[np.ndarray]  # per member float32 [N, K_m]: its own score of its rank-r candidate
    fallback_key: np.ndarray  # float32 [N, U] -1 - the item's rank in the fallback list; -inf if not in it

    @property
    def n_members(self) -> int:
        return len(self.where)

    @property
    def depth(self) -> int:
        """The longest member list."""
        return max((w.shape[1] for w in self.where), default=0)

    @classmethod
    def build(cls, member_items: Sequence[np.ndarray], fallback: np.ndarray,
              member_scores: Sequence[np.ndarray] | None = None) -> "Pool":
        """From each member's int64 [N, K_m] ranked item codes (-1 pads), the fallback's int64 [N, K_fb], and the
        members' float [N, K_m] scores of their candidates (default 0: for the rank fusions)."""
        lists = [*member_items, fallback]
        flat = np.concatenate(lists, 1)  # [N, L]
        N, L = flat.shape
        # group equal items of a row: a stable sort keeps each item's occurrences in column order
        key = np.where(flat >= 0, flat, np.iinfo(np.int64).max)
        order = np.argsort(key, axis=1, kind="stable")
        sorted_key = np.take_along_axis(key, order, 1)
        start = np.ones((N, L), dtype=bool)
        start[:, 1:] = sorted_key[:, 1:] != sorted_key[:, :-1]
        start &= sorted_key != np.iinfo(np.int64).max  # padding forms no group
        group = np.cumsum(start, axis=1) - 1  # [N, L] group of every sorted element (by item value)
        first = np.full((N, L), L, dtype=np.int64)  # [N, groups] the column of each group's first occurrence
        r, c = np.nonzero(start)
        first[r, group[r, c]] = order[r, c]
        # number the groups by first occurrence: that is the item's output column
        by_first = np.argsort(first, axis=1, kind="stable")
        column_of_group = np.empty_like(by_first)
        np.put_along_axis(column_of_group, by_first, np.broadcast_to(np.arange(L), (N, L)), 1)
        column = np.empty((N, L), dtype=np.int64)  # [N, L] output column of every input element
        np.put_along_axis(column, order, np.take_along_axis(column_of_group, np.maximum(group, 0), 1), 1)
        column[flat < 0] = -1
        U = max(int(start.sum(1).max(initial=0)), 1)
        items = np.full((N, U), -1, dtype=np.int64)
        rows, cols = np.nonzero(column >= 0)
        items[rows, column[rows, cols]] = flat[rows, cols]
        bounds = np.cumsum([0] + [x.shape[1] for x in lists])
        where = [column[:, bounds[m] : bounds[m + 1]] for m in range(len(lists))]
        fallback_key = np.full((N, U), -np.inf, dtype=np.float32)
        fb = where.pop()
        rows, ranks = np.nonzero(fb >= 0)
        fallback_key[rows, fb[rows, ranks]] = -1.0 - ranks
        if member_scores is None:
            member_scores = [np.zeros(x.shape, dtype=np.float32) for x in member_items]
        return cls(items, where, [np.asarray(x, dtype=np.float32) for x in member_scores], fallback_key)

    def take(self, rows: np.ndarray) -> "Pool":
        """The pool of questions `rows` only."""
        return Pool(self.items[rows], [w[rows] for w in self.where], [x[rows] for x in self.scores],
                    self.fallback_key[rows])


def first_allowed(n_pop: int, seen: Sequence[np.ndarray], k: int, dates: np.ndarray | None = None,
                  limit: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first `k` positions of a popularity list of `n_pop` items that each question may get.

    Args:
        seen: per question, int positions (in the popularity list) of its own items, which it may not get.
        dates: int [n_pop] issue date of each item, with `limit` int [N] each question's updt date: items issued
            later are skipped, unless a question would then get fewer than k (then its date filter is relaxed).
    Returns:
        (int64 [N, k] positions, -1 where even the whole list is too short; bool [N] rows whose date filter was
        relaxed).
    """
    max_seen = max((len(s) for s in seen), default=0)

    def walk(rows: np.ndarray, use_dates: bool) -> tuple[np.ndarray, np.ndarray]:
        got = np.full((len(rows), k), -1, dtype=np.int64)
        todo, width = np.arange(len(rows)), k + max_seen
        while True:
            width = min(width, n_pop)
            sub = rows[todo]
            lens = np.array([len(seen[i]) for i in sub], dtype=np.int64)
            pos = np.concatenate([seen[i] for i in sub]).astype(np.int64) if lens.sum() else np.zeros(0, np.int64)
            r = np.repeat(np.arange(len(sub)), lens)
            allowed = np.ones((len(sub), width), dtype=bool)
            allowed[r[pos < width], pos[pos < width]] = False
            if use_dates:
                allowed &= dates[None, :width] <= limit[sub, None]
            first = np.argsort(~allowed, axis=1, kind="stable")[:, :k]
            got[todo, : first.shape[1]] = np.where(np.take_along_axis(allowed, first, 1), first, -1)
            todo = todo[(got[todo] < 0).any(1)]
            if not len(todo) or width == n_pop:
                return got, todo
            width *= 4

    out, short = walk(np.arange(len(seen)), dates is not None)
    relaxed = np.zeros(len(seen), dtype=bool)
    if dates is not None and len(short):
        out[short], _ = walk(short, False)
        relaxed[short] = True
    return out, relaxed


def fallback_lists(qs: QuestionSet) -> tuple[np.ndarray, np.ndarray]:
    """Per question the first 100 songs (raw ids, int64 [N, 100]) and 10 tags (object [N, 10]) by popularity over
    orig/train.json that it may get: not its own, and (with song_meta.json) not issued after its updt_date.
    Raises InputError when even the whole popularity list is too short."""
    song_pop = np.asarray(popularity(p["songs"] for p in qs.train), dtype=np.int64)
    tag_pop = np.asarray(popularity(p["tags"] for p in qs.train), dtype=object)
    out = []
    for pop, key, k in ((song_pop, "songs", N_SONGS), (tag_pop, "tags", N_TAGS)):
        where = {item: i for i, item in enumerate(pop.tolist())}
        seen = [np.array([where[x] for x in q[key] if x in where], dtype=np.int64) for q in qs.records]
        dates = limit = None
        if key == "songs" and qs.song_meta is not None:
            dates = popularity_issue_dates(song_pop, qs.train, qs.song_meta)
            limit = np.array([updt_to_int(q["updt_date"]) for q in qs.records], dtype=np.int64)
        pos, _ = first_allowed(len(pop), seen, k, dates, limit)
        if (pos < 0).any():
            pid = qs.records[int(np.flatnonzero((pos < 0).any(1))[0])]["id"]
            raise InputError(f"playlist id {pid}: orig/train.json holds too few {key} to recommend {k} unseen ones")
        out.append(pop[pos])
    return out[0], out[1]


@dataclass
class Encoded:
    """The pools of both targets, and the tag strings behind the tag codes."""

    pools: dict[str, Pool]
    tag_names: np.ndarray  # object [n_codes]
    tag_code: dict[str, int]


def encode(rankings: Sequence[Ranked], fallback: tuple[np.ndarray, np.ndarray]) -> Encoded:
    """Pools over the members' candidates (in member order) and the fallback lists; tags become integer codes."""
    tag_lists = [r.tags for r in rankings] + [fallback[1]]
    flat = np.concatenate([t.ravel() for t in tag_lists]).astype(object)
    present = np.not_equal(flat, None)
    names, inverse = np.unique(flat[present].astype(str), return_inverse=True)
    codes = np.full(len(flat), -1, dtype=np.int64)
    codes[present] = inverse
    parts = np.split(codes, np.cumsum([t.size for t in tag_lists])[:-1])
    tags = [c.reshape(t.shape) for c, t in zip(parts, tag_lists)]
    pools = {"songs": Pool.build([r.songs for r in rankings], fallback[0], [r.song_scores for r in rankings]),
             "tags": Pool.build(tags[:-1], tags[-1], [r.tag_scores for r in rankings])}
    return Encoded(pools, names.astype(object), {t: i for i, t in enumerate(names.tolist())})


def answer_codes(answers: Sequence[dict], enc: Encoded) -> list[dict[str, list[int]]]:
    """Answers as item codes (a tag no member proposes gets -2, which matches nothing but counts in the IDCG)."""
    return [{"songs": list(a["songs"]), "tags": [enc.tag_code.get(t, -2) for t in a["tags"]]} for a in answers]


def fused_records(ids: Sequence[int], answered: dict[str, np.ndarray], enc: Encoded) -> list[dict]:
    """results.json records from `predictor.fusion.fuse` output, in the given order."""
    return [{"id": int(pid), "songs": s, "tags": t} for pid, s, t in
            zip(ids, answered["songs"].tolist(), enc.tag_names[answered["tags"]].tolist())]
