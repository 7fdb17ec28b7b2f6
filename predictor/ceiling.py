"""What limits any fusion: the share of the answers' songs and tags that reach the candidate pool.

A fusion only re-orders the members' candidates (and tops lists up from popularity), so an answer item that no member
proposes is out of its reach. For each target, question type and member this counts the answer items among the
member's candidates, over all the answer items (a micro-average: long answers weigh more):

    reach(member, type) = sum over questions of that type of |answer & candidates(member)| / sum of |answer|

"all members" is the union of their candidates, the most any fusion of them can put in a list; "+ fallback" adds the
popularity lists the answers are topped up from. The candidate lists are deeper than the answer (500 songs / 50 tags
per member), so a reachable item still has to be ranked into the first 100 / 10.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from common.arena import QUESTION_TYPES
from predictor.fusion import TARGETS
from predictor.fusion_fit import hit_matrix
from predictor.pool import Pool


def reach(pool: Pool, answers: Sequence[Sequence[int]], types: np.ndarray,
          members: Sequence[str]) -> dict[str, dict[str, float]]:
    """{row label: {"overall" and each question type present: the share of answer items in reach}} for one target.

    pool: the target's pool of N questions; answers: each question's answer as item codes (codes no member proposes
    count in the total and are never in reach); types int [N] index into QUESTION_TYPES.
    """
    N, U = pool.items.shape
    hits = hit_matrix(pool, answers)  # [N, U] the column's item is an answer item
    total = np.array([len(a) for a in answers], dtype=np.float64)  # [N]
    proposed = []
    for where in pool.where:  # [N, K_m] columns of a member's candidates
        mask = np.zeros((N, U), dtype=bool)
        rows, ranks = np.nonzero(where >= 0)
        mask[rows, where[rows, ranks]] = True
        proposed.append(mask)
    union = np.logical_or.reduce(proposed) if proposed else np.zeros((N, U), dtype=bool)
    labelled = [*zip(members, proposed), ("all members", union), ("+ fallback", union | (pool.fallback_key > -np.inf))]
    out = {}
    for label, mask in labelled:
        found = (hits & mask).sum(1).astype(np.float64)  # [N]
        out[label] = {"overall": _share(found, total)}
        for t, name in enumerate(QUESTION_TYPES):
            rows = types == t
            if rows.any():
                out[label][name] = _share(found[rows], total[rows])
    return out


def _share(found: np.ndarray, total: np.ndarray) -> float:
    return float(found.sum() / total.sum()) if total.sum() else 0.0


def pool_reach(pools: dict[str, Pool], codes: Sequence[dict[str, list[int]]], types: np.ndarray,
               members: Sequence[str]) -> dict[str, dict[str, dict[str, float]]]:
    """`reach` of both targets: {target: {row label: {column: share}}}."""
    return {t: reach(pools[t], [c[t] for c in codes], types, members) for t in TARGETS}


def reach_table(ceiling: dict[str, dict[str, dict[str, float]]]) -> str:
    """The printed table: one line per target and row label, the overall share then one per question type."""
    lines = [f"{'answer items within reach':<40} {'overall':>8} " + " ".join(f"{t[:8]:>8}" for t in QUESTION_TYPES)]
    for target, rows in ceiling.items():
        for label, shares in rows.items():
            cells = " ".join(f"{shares[t]:8.4f}" if t in shares else f"{'-':>8}" for t in QUESTION_TYPES)
            lines.append(f"{target + ': ' + label:<40} {shares['overall']:8.4f} {cells}")
    return "\n".join(lines)
