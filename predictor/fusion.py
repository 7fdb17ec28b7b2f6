"""Applying a fusion of the hybrid ensemble, vectorised over questions with numpy: member values, fused scores and
the exact top-k of a candidate pool (predictor/pool.py). predictor/fusion_fit.py fits one; docs/hybrid.md explains
the method and why the default is the score fusion.

Everything here works per *target* (songs, tags), each with its own fusion parameter. A fusion gives each candidate a
value f (from its rank, or from its member's score); a question's fused score of an item is

    S(item) = sum over members m proposing it of w[type, m] * f_m(item)

and its answer is the items of positive S by descending S (ties: the item first proposed by the earlier member, then
the better rank), then the fallback (popularity minus seen and future-dated items) in its order. The search and the
final answers rank through the same `fused_scores` and `top_columns`, so the search optimises what is written.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from common.arena import N_SONGS, N_TAGS, QUESTION_TYPES
from predictor.pool import Pool

FUSIONS = ("exp", "rrf", "calibrated", "score")
TARGETS = ("songs", "tags")
K_OUT = {"songs": N_SONGS, "tags": N_TAGS}  # the answer size, and the metric's cut-off
# calibrated: hit rates are estimated per bin of ranks [edge_i, edge_i+1)
CAL_EDGES = {"songs": (0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500), "tags": (0, 1, 2, 3, 5, 10, 20, 50)}
SCORE_FLOOR = 1e-6  # a scaled member score never reaches 0 either (scores <= 0, e.g. ALS dot products, get it)
N_TYPES = len(QUESTION_TYPES)


@dataclass
class TargetFit:
    """The fusion of one target: its kind and parameter, weights [N_TYPES, M], and what the kind learned on the fit
    questions: calibration float [N_TYPES, M, bins] (calibrated), scale float [M] (score)."""

    kind: str
    param: float | None
    weights: np.ndarray
    calibration: np.ndarray | None = None
    scale: np.ndarray | None = None

    def values(self, pool: Pool, types: np.ndarray, target: str) -> list[np.ndarray]:
        return member_values(pool, types, target, self.kind, self.param, self.calibration, self.scale)


def value_tables(kind: str, param: float | None, n_members: int, depth: int,
                 calibration: np.ndarray | None = None, edges: Sequence[int] = ()) -> np.ndarray:
    """float32 [N_TYPES, n_members, depth]: the value of a candidate at each rank, per question type and member.

    exp: exp(-r / T); rrf: 1 / (k + r + 1) (reciprocal rank fusion, ranks counted from 1); calibrated: the
    per-bin hit rates `calibration` float [N_TYPES, n_members, len(edges) - 1] spread over their ranks.
    """
    r = np.arange(depth, dtype=np.float64)
    if kind == "exp":
        row = np.exp(-r / param)
    elif kind == "rrf":
        row = 1.0 / (param + r + 1.0)
    elif kind == "calibrated":
        bins = np.searchsorted(np.asarray(edges), r, side="right") - 1  # [depth] bin of each rank
        return np.asarray(calibration, dtype=np.float32)[:, :, np.minimum(bins, len(edges) - 2)]
    else:
        raise ValueError(f"unknown fusion {kind!r}; known: {', '.join(FUSIONS)}")
    return np.broadcast_to(row.astype(np.float32), (N_TYPES, n_members, depth)).copy()


def member_values(pool: Pool, types: np.ndarray, target: str, kind: str, param: float | None,
                  calibration: np.ndarray | None = None, scale: np.ndarray | None = None) -> list[np.ndarray]:
    """Per member float32 [N, K_m]: the value of each of its candidates.

    exp, rrf, calibrated: from the candidate's rank (`value_tables`; types int [N] picks the calibrated table of each
    row's question type). score: max(s / scale[m], SCORE_FLOOR) ** p, the member's own score s over its scale (the
    median of its best candidate's score on the fit questions), so that members of unrelated scales mix.
    """
    if kind == "score":
        return [np.maximum(s / np.float32(c), np.float32(SCORE_FLOOR)) ** np.float32(param)
                for s, c in zip(pool.scores, scale)]
    tables = value_tables(kind, param, pool.n_members, pool.depth, calibration, CAL_EDGES[target])
    return [tables[types[:, None], m, np.arange(w.shape[1])[None, :]] for m, w in enumerate(pool.where)]


def aggregate(pool: Pool, values: Sequence[np.ndarray]) -> np.ndarray:
    """float32 [M, N, U]: member m's value of each item (0 where m does not propose it); values from `member_values`."""
    N, U = pool.items.shape
    out = np.zeros((pool.n_members, N, U), dtype=np.float32)
    base = (np.arange(N, dtype=np.int64) * U)[:, None]
    for m, (where, v) in enumerate(zip(pool.where, values)):
        ok = where >= 0
        out[m].ravel()[:] = np.bincount((base + where)[ok], weights=v[ok], minlength=N * U)
    return out


def fused_scores(agg: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """float32 [N, L]: sum over members of weights[:, m] * agg[m]. weights float [N, M] (or [M]: every row alike)."""
    w = np.broadcast_to(np.asarray(weights, dtype=np.float32), (agg.shape[1], agg.shape[0]))
    out = np.zeros(agg.shape[1:], dtype=np.float32)
    for m in range(agg.shape[0]):
        if w[:, m].any():
            out += w[:, m, None] * agg[m]
    return out


def ranking_key(pool: Pool, scores: np.ndarray) -> np.ndarray:
    """float32 [N, L]: positive fused scores as they are, then fallback items by fallback rank (below 0), -inf for
    the rest (later occurrences of an item, pads, and items nobody scored that the fallback does not hold)."""
    return np.where(scores > 0, scores, pool.fallback_key)


def top_columns(key: np.ndarray, k: int) -> np.ndarray:
    """int64 [N, k]: the columns of the k largest keys per row, by descending key, equal keys in column order;
    -1 where fewer than k keys are finite. Exact: no arbitrary choice among ties at the k-th place."""
    N, U = key.shape
    kk = min(k, U)
    kth = -np.partition(-key, kk - 1, axis=1)[:, kk - 1]  # [N] the k-th largest key
    r, c = np.nonzero(key >= kth[:, None])  # at least kk per row; columns ascending within a row
    v = key[r, c]
    counts = np.bincount(r, minlength=N)
    if (counts == kk).all():  # no tie across the k-th place: sort each row's kk keys
        c, v = c.reshape(N, kk), v.reshape(N, kk)
        order = np.argsort(-v, axis=1, kind="stable")
        cols, vals = np.take_along_axis(c, order, 1), np.take_along_axis(v, order, 1)
    else:
        order = np.lexsort((c, -v, r))  # by row, then descending key, then column
        at = (np.cumsum(counts) - counts)[:, None] + np.arange(kk)  # [N, kk] each row's first kk
        cols, vals = c[order][at], v[order][at]
    cols = np.where(vals == -np.inf, -1, cols)
    if kk < k:
        cols = np.concatenate([cols, np.full((N, k - kk), -1, dtype=np.int64)], 1)
    return cols


def fuse(pools: dict[str, Pool], types: np.ndarray, rows: np.ndarray, fits: dict[str, TargetFit],
         chunk: int = 2048) -> dict[str, np.ndarray]:
    """The answers of questions `rows`: per target int64 [n, K_OUT] item codes (-1 where even the fallback is short)."""
    out = {}
    for target in TARGETS:
        parts = []
        for start in range(0, len(rows), chunk):
            r = rows[start : start + chunk]
            pool = pools[target].take(r)
            w = fits[target].weights[types[r]]  # [n, M]
            agg = aggregate(pool, fits[target].values(pool, types[r], target))
            cols = top_columns(ranking_key(pool, fused_scores(agg, w)), K_OUT[target])
            parts.append(np.where(cols >= 0, np.take_along_axis(pool.items, np.maximum(cols, 0), 1), -1))
        out[target] = np.concatenate(parts) if parts else np.zeros((0, K_OUT[target]), dtype=np.int64)
    return out
