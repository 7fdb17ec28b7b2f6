"""Fitting a fusion of the hybrid ensemble (predictor/fusion.py) on the questions it is handed: the fusion's
parameter and one weight vector per question type, by coordinate ascent on the summed nDCG of the fit questions, and
the two-half cross-fit whose held-out answers are the hybrid's honest score.

The weights are one vector per question type for both targets (`tie=True`, maximising 0.85 * song nDCG + 0.15 * tag
nDCG), or each target's own (song nDCG depends only on the song weights, tag nDCG only on the tag weights).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from common.arena import SONG_WEIGHT, TAG_WEIGHT
from common.metric import ideal_dcg, ndcg_rows
from predictor.fusion import (CAL_EDGES, K_OUT, N_TYPES, TARGETS, TargetFit, aggregate, fused_scores, member_values,
                              ranking_key, top_columns)
from predictor.pool import Pool

# fusion parameter grids searched on the fit questions: exp's temperature T, rrf's k, score's power p
PARAM_GRID = {("exp", "songs"): (10.0, 25.0, 50.0, 100.0, 200.0, 400.0), ("exp", "tags"): (2.0, 5.0, 10.0, 20.0, 50.0),
              ("rrf", "songs"): (1.0, 10.0, 30.0, 60.0, 120.0), ("rrf", "tags"): (1.0, 3.0, 10.0, 30.0, 60.0),
              ("calibrated", "songs"): (None,), ("calibrated", "tags"): (None,),
              ("score", "songs"): (0.25, 0.5, 1.0, 2.0, 4.0), ("score", "tags"): (0.25, 0.5, 1.0, 2.0, 4.0)}
CAL_FLOOR = 1e-6  # a calibrated value never reaches 0, so every proposed item keeps a positive score
WEIGHT_GRID = (0.0, 0.1, 0.2, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 3.0, 5.0)  # coordinate-ascent candidates per member
ROUNDS = 3  # coordinate-ascent sweeps over the members (stops early when a sweep changes nothing)
START = "equal"  # the ascent starts from equal weights ("equal") or from each type's best member alone ("best")
MIN_GAIN = 0.0  # a move must raise the summed nDCG of the fit rows by more than this


def hit_matrix(pool: Pool, answers: Sequence[Sequence[int]]) -> np.ndarray:
    """bool [N, U]: the column's item is in the row's answer (answers: item codes per row)."""
    N, L = pool.items.shape
    lens = np.array([len(a) for a in answers], dtype=np.int64)
    keys = np.unique(np.repeat(np.arange(N, dtype=np.int64), lens) * (1 << 40)
                     + (np.concatenate([np.asarray(a, dtype=np.int64) for a in answers]) if lens.sum() else 0))
    mine = np.arange(N, dtype=np.int64)[:, None] * (1 << 40) + pool.items
    if not len(keys):
        return np.zeros((N, L), dtype=bool)
    pos = np.minimum(np.searchsorted(keys, mine), len(keys) - 1)
    return (pool.items >= 0) & (keys[pos] == mine)


@dataclass
class FitData:
    """What the search sees of the questions it fits on: candidates, question types and answer-derived hits."""

    pool: Pool
    types: np.ndarray  # int [n]
    hits: np.ndarray  # bool [n, L]
    ideal: np.ndarray  # float [n]
    target: str


def calibrate(data: FitData) -> np.ndarray:
    """float [N_TYPES, M, bins]: per type and member, the rate at which a candidate in each rank bin is an answer
    item on the fit questions; shrunk towards the member's overall rate, made non-increasing, floored at CAL_FLOOR."""
    edges = np.asarray(CAL_EDGES[data.target])
    M = data.pool.n_members
    out = np.full((N_TYPES, M, len(edges) - 1), CAL_FLOOR)
    for m in range(M):
        where = data.pool.where[m]
        bins = np.searchsorted(edges, np.arange(where.shape[1]), side="right") - 1  # [K_m] bin of each rank
        present = where >= 0  # [n, K_m]
        hit = np.take_along_axis(data.hits, np.maximum(where, 0), 1) & present
        for t in range(N_TYPES):
            rows = data.types == t
            if not present[rows].any():
                continue
            n_b = np.bincount(bins, weights=present[rows].sum(0), minlength=len(edges) - 1)
            h_b = np.bincount(bins, weights=hit[rows].sum(0), minlength=len(edges) - 1)
            prior = h_b.sum() / max(n_b.sum(), 1)
            rate = (h_b + prior) / (n_b + 1.0)  # one pseudo-candidate at the overall rate per bin
            out[t, m] = np.maximum(np.minimum.accumulate(rate[: len(edges) - 1]), CAL_FLOOR)
    return out


def score_scale(pool: Pool) -> np.ndarray:
    """float [M]: each member's typical best score, the median over the questions of its first candidate's score
    (positive ones; 1 when there is none)."""
    out = np.ones(pool.n_members)
    for m, (where, s) in enumerate(zip(pool.where, pool.scores)):
        top = s[:, 0][(where[:, 0] >= 0) & (s[:, 0] > 0)] if where.shape[1] else s[:0, 0]
        if len(top):
            out[m] = float(np.median(top))
    return out


def _objective(parts: Sequence[tuple[FitData, np.ndarray, float]], w: np.ndarray, k_of: dict) -> float:
    """Sum over targets of factor * (sum of nDCG over the rows), for one weight vector w [M]."""
    total = 0.0
    for data, agg, factor in parts:
        cols = top_columns(ranking_key(data.pool, fused_scores(agg, w)), k_of[data.target])
        total += factor * ndcg_rows(data.hits, cols, data.ideal).sum()
    return total


def fit_target(data: FitData, kind: str, tie_with: FitData | None = None) -> tuple[TargetFit, float, TargetFit | None]:
    """Search one target's fusion parameter and weights per question type on `data` (the fit rows only).

    Coordinate ascent from equal weights and the middle of the parameter grid: each round first tries every value
    of the parameter grid (the parameter is shared by the question types: their objectives add up), then sweeps each
    type's members, each time keeping the WEIGHT_GRID value that improves the objective most (ties keep the current
    value; a type's weights are never all 0); it stops after a round that changed nothing, or after ROUNDS rounds.
    With `tie_with` (the other target's data on the same rows), one weight vector per type serves both targets and
    the objective is 0.85 * song nDCG + 0.15 * tag nDCG; each target keeps its own parameter.
    Returns (the fit, its mean nDCG (tied: the mean score) on the fit rows, the other target's fit when tied).
    """
    M = data.pool.n_members
    datas = [data] if tie_with is None else [data, tie_with]
    factors = [1.0] if tie_with is None else [SONG_WEIGHT if d.target == "songs" else TAG_WEIGHT for d in datas]
    cals = [calibrate(d) if kind == "calibrated" else None for d in datas]
    scales = [score_scale(d.pool) if kind == "score" else None for d in datas]
    grids = [PARAM_GRID[kind, d.target] for d in datas]
    types = [t for t in range(N_TYPES) if (data.types == t).any()]
    subs = {t: [FitData(d.pool.take(r), d.types[r], d.hits[r], d.ideal[r], d.target)
                for d in datas for r in [np.flatnonzero(data.types == t)]] for t in types}

    def parts(params: Sequence, t: int) -> list[tuple[FitData, np.ndarray, float]]:
        return [(sub, aggregate(sub.pool, member_values(sub.pool, sub.types, sub.target, kind, p, c, sc)), f)
                for sub, p, c, sc, f in zip(subs[t], params, cals, scales, factors)]

    params = [g[len(g) // 2] for g in grids]
    weights = np.ones((N_TYPES, M))
    current = {t: parts(params, t) for t in types}
    if START == "best":
        for t in types:
            alone = [_objective(current[t], np.eye(M)[m], K_OUT) for m in range(M)]
            weights[t] = np.eye(M)[int(np.argmax(alone))]
    score = {t: _objective(current[t], weights[t], K_OUT) for t in types}
    for _ in range(ROUNDS):
        changed = False
        for i, grid in enumerate(grids):
            for value in grid:
                if value == params[i]:
                    continue
                trial = [*params[:i], value, *params[i + 1 :]]
                trial_parts = {t: parts(trial, t) for t in types}
                trial_score = {t: _objective(trial_parts[t], weights[t], K_OUT) for t in types}
                if sum(trial_score.values()) > sum(score.values()) + max(MIN_GAIN, 1e-12):
                    params, current, score, changed = trial, trial_parts, trial_score, True
        for t in types:
            for m in range(M):
                for value in WEIGHT_GRID:
                    w = weights[t].copy()
                    w[m] = value
                    if value == weights[t, m] or not w.any():
                        continue
                    s = _objective(current[t], w, K_OUT)
                    if s > score[t] + max(MIN_GAIN, 1e-12):
                        weights[t], score[t], changed = w, s, True
        if not changed:
            break
    weights /= weights.max(1, keepdims=True)
    fits = [TargetFit(kind, p, weights.copy(), c, sc) for p, c, sc in zip(params, cals, scales)]
    return fits[0], sum(score.values()) / max(len(data.types), 1), (fits[1] if tie_with is not None else None)


def fit_fusion(pools: dict[str, Pool], types: np.ndarray, rows: np.ndarray,
               answers: Sequence[dict[str, list[int]]], kind: str, tie: bool = False) -> dict[str, TargetFit]:
    """The fusion of both targets fitted on questions `rows` only; answers[i] is the answer of question rows[i]
    (item codes per target). The search is given nothing of any other question's answer."""
    if len(answers) != len(rows):
        raise ValueError(f"{len(answers)} answers for {len(rows)} fit questions")
    data = {t: FitData(pools[t].take(rows), types[rows], hit_matrix(pools[t].take(rows), [a[t] for a in answers]),
                       ideal_dcg([a[t] for a in answers]), t) for t in TARGETS}
    if tie:
        songs, _, tags = fit_target(data["songs"], kind, tie_with=data["tags"])
        return {"songs": songs, "tags": tags}
    return {t: fit_target(data[t], kind)[0] for t in TARGETS}


def halves(types: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two halves of the questions, split within each question type with numpy's generator seeded `seed`; sorted
    row indices."""
    rng = np.random.default_rng(seed)
    a, b = [], []
    for t in range(N_TYPES):
        rows = rng.permutation(np.flatnonzero(types == t))
        a.append(rows[: len(rows) // 2])
        b.append(rows[len(rows) // 2 :])
    return np.sort(np.concatenate(a)), np.sort(np.concatenate(b))


def fold_fit(pools: dict[str, Pool], types: np.ndarray, answers: Sequence, fit_rows: np.ndarray, kind: str,
             tie: bool = False) -> dict[str, TargetFit]:
    """`fit` on the rows `fit_rows` of the full answer list: it reads answers[i] for i in fit_rows and no other."""
    return fit_fusion(pools, types, fit_rows, [answers[i] for i in fit_rows], kind, tie)


def cross_fit(pools: dict[str, Pool], types: np.ndarray, answers: Sequence, seed: int, kind: str,
              tie: bool = False) -> list[tuple[np.ndarray, np.ndarray, dict[str, TargetFit]]]:
    """Both folds: (fit rows, held-out rows, the fit on the fit rows alone), half A -> B first."""
    a, b = halves(types, seed)
    return [(fit_rows, held, fold_fit(pools, types, answers, fit_rows, kind, tie))
            for fit_rows, held in ((a, b), (b, a))]
