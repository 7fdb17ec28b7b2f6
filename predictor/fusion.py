"""Fusion for the hybrid ensemble, vectorised over questions with numpy: candidate pools, fused scores, the exact
top-k, nDCG, the weight search per question type and the two-half cross-fit (predictor/hybrid.py explains the method).

Everything here works per *target* (songs, tags), each with its own fusion parameter; the weights are one vector per
question type for both targets (`tie=True`, maximising 0.85 * song nDCG + 0.15 * tag nDCG), or each target's own
(song nDCG depends only on the song weights, tag nDCG only on the tag weights), as measured in predictor/hybrid.py.

A `Pool` puts the members' candidate lists for N questions side by side, the popularity fallback last:

    items  int64 [N, U]        each question's distinct candidates (raw song ids, or tag codes), -1 pads
    where  M x int64 [N, K_m]  the column of member m's rank-r candidate
    scores M x float32 [N, K_m] member m's own score of it

A fusion gives each candidate a value f (from its rank, or from its member's score); a question's fused score of an
item is

    S(item) = sum over members m proposing it of w[type, m] * f_m(item)

and its answer is the items of positive S by descending S (ties: the item first proposed by the earlier member, then
the better rank), then the fallback (popularity minus seen and future-dated items) in its order. Both the search and
the final answers rank through the same `fused_scores` and `top_columns`, so the search optimises what is written.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from evaluate import QUESTION_TYPES, idcg

FUSIONS = ("exp", "rrf", "calibrated", "score")
TARGETS = ("songs", "tags")
K_OUT = {"songs": 100, "tags": 10}  # the answer size, and the metric's cut-off
# fusion parameter grids searched on the fit half: exp's temperature T, rrf's k, score's power p
PARAM_GRID = {("exp", "songs"): (10.0, 25.0, 50.0, 100.0, 200.0, 400.0), ("exp", "tags"): (2.0, 5.0, 10.0, 20.0, 50.0),
              ("rrf", "songs"): (1.0, 10.0, 30.0, 60.0, 120.0), ("rrf", "tags"): (1.0, 3.0, 10.0, 30.0, 60.0),
              ("calibrated", "songs"): (None,), ("calibrated", "tags"): (None,),
              ("score", "songs"): (0.25, 0.5, 1.0, 2.0, 4.0), ("score", "tags"): (0.25, 0.5, 1.0, 2.0, 4.0)}
# calibrated: hit rates are estimated per bin of ranks [edge_i, edge_i+1)
CAL_EDGES = {"songs": (0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500), "tags": (0, 1, 2, 3, 5, 10, 20, 50)}
CAL_FLOOR = 1e-6  # a calibrated value never reaches 0, so every proposed item keeps a positive score
SCORE_FLOOR = 1e-6  # likewise a scaled member score (scores <= 0, e.g. ALS dot products, get the floor)
WEIGHT_GRID = (0.0, 0.1, 0.2, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 3.0, 5.0)  # coordinate-ascent candidates per member
ROUNDS = 3  # coordinate-ascent sweeps over the members (stops early when a sweep changes nothing)
START = "equal"  # the ascent starts from equal weights ("equal") or from each type's best member alone ("best")
MIN_GAIN = 0.0  # a move must raise the summed nDCG of the fit rows by more than this
N_TYPES = len(QUESTION_TYPES)


# ----------------------------------------------------------------------------------------------------------------
# Pools


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
        (int64 [N, k] positions, -1 where even the whole list is too short; bool [N] rows whose date filter was relaxed).
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


# ----------------------------------------------------------------------------------------------------------------
# Scores, top-k, nDCG


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


def ndcg_rows(hits: np.ndarray, cols: np.ndarray, ideal: np.ndarray) -> np.ndarray:
    """float64 [N]: nDCG of each row's ranked columns (evaluate.py's formula; 0 for an empty answer).

    hits bool [N, U] (`hit_matrix`), cols int [N, k] (`top_columns`), ideal float [N] the IDCG of each answer (0 = empty).
    """
    got = np.take_along_axis(hits, np.maximum(cols, 0), 1) & (cols >= 0)
    dcg = got @ (1.0 / np.log(np.arange(cols.shape[1]) + 2.0))
    return np.divide(dcg, ideal, out=np.zeros(len(ideal)), where=ideal > 0)


def ideal_dcg(answers: Sequence[Sequence]) -> np.ndarray:
    return np.array([idcg(len(a)) if len(a) else 0.0 for a in answers])


# ----------------------------------------------------------------------------------------------------------------
# Fitting


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
    factors = [1.0] if tie_with is None else [0.85 if d.target == "songs" else 0.15 for d in datas]
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


def fit(pools: dict[str, Pool], types: np.ndarray, rows: np.ndarray, answers: Sequence[dict[str, list[int]]],
        kind: str, tie: bool = False) -> dict[str, TargetFit]:
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
    return fit(pools, types, fit_rows, [answers[i] for i in fit_rows], kind, tie)


def cross_fit(pools: dict[str, Pool], types: np.ndarray, answers: Sequence, seed: int, kind: str,
              tie: bool = False) -> list[tuple[np.ndarray, np.ndarray, dict[str, TargetFit]]]:
    """Both folds: (fit rows, held-out rows, the fit on the fit rows alone), half A -> B first."""
    a, b = halves(types, seed)
    return [(fit_rows, held, fold_fit(pools, types, answers, fit_rows, kind, tie)) for fit_rows, held in ((a, b), (b, a))]
