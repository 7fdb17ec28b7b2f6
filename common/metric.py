"""The Kakao Arena 2020 (Melon Playlist Continuation) metric: song nDCG@100, tag nDCG@10 and the arena score.

For one playlist with the hidden answer list ``gt`` and a ranked recommendation ``rec``:

    DCG  = sum over 0-based i with rec[i] in gt of 1 / ln(i + 2)
    IDCG = sum_{i=0}^{len(gt)-1} 1 / ln(i + 2)      (the FULL answer length, not min(len(gt), k))
    nDCG = DCG / IDCG

Song nDCG scores rec songs[:100] and tag nDCG rec tags[:10]. Both are averaged over all answer playlists, and

    score = 0.85 * song nDCG + 0.15 * tag nDCG

Because IDCG uses the full answer length, an answer with more than 10 tags can never reach tag nDCG 1.
This is the logic of the official kakao-arena ``evaluate.py`` (docs/original.md section 5), with these differences:

- The official precomputes IDCG for lengths 0..100 and would raise IndexError on a longer answer. The arena
  split never makes one (a masked answer keeps ceil(L/2) of at most 200 items; a deleted one is cut to 100 songs
  or 10 tags), but other data may, so longer answers get their IDCG computed.
- An empty answer scores 0 (sklearn's convention) where the official divides by zero. The Melon split never
  makes one.
- Every failed check raises ``ResultsError`` naming the file, the record and the playlist id.
- ``evaluate_from_data`` scores in-memory lists (the trainers, the predictor and the reports use it), and results
  can be broken down by question type (common/arena.py); ``ndcg_rows`` is the same nDCG for a matrix of hits
  (the fusion's search scores thousands of rankings with it).

evaluate.py at the repository root is the command line over files.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from common.arena import N_SONGS, N_TAGS, QUESTION_TYPES, SONG_WEIGHT, TAG_WEIGHT, question_type


class ResultsError(ValueError):
    """An answer, results or question file (or in-memory list) that cannot be scored."""


# ----------------------------------------------------------------------------------------------------------------
# The metric


def _discount_sum(length: int) -> float:
    # A plain left-to-right loop, as the official sums it: the result does not depend on the Python
    # version (3.12's sum() of floats is compensated).
    total = 0.0
    for i in range(length):
        total += 1.0 / math.log(i + 2)
    return total


IDCG = [_discount_sum(length) for length in range(N_SONGS + 1)]  # IDCG[n] for answers of n items, n = 0..100


def idcg(length: int) -> float:
    """Ideal DCG of an answer with ``length`` items: sum_{i<length} 1/ln(i+2). Table look-up up to 100 items."""
    return IDCG[length] if length < len(IDCG) else _discount_sum(length)


def ndcg(gt: Sequence, rec: Sequence) -> float:
    """nDCG of the ranked list ``rec`` against the answer ``gt`` (module docstring); 0 for an empty answer.

    Cut ``rec`` to the metric's k before calling; every item of ``rec`` counts, duplicates included.
    """
    if len(gt) == 0:
        return 0.0
    answer = set(gt)
    dcg = 0.0
    for i in [i for i, item in enumerate(rec) if item in answer]:  # add in rank order, as the official does
        dcg += 1.0 / math.log(i + 2)
    return dcg / idcg(len(gt))


def ndcg_rows(hits: np.ndarray, cols: np.ndarray, ideal: np.ndarray) -> np.ndarray:
    """float64 [N]: nDCG of each row's ranked columns (`ndcg`'s formula, the columns distinct; 0 for an empty answer).

    hits bool [N, U] (the fusion's hit matrix), cols int [N, k] (its top columns, -1 pads), ideal float [N] the IDCG
    of each answer (0 = empty).
    """
    got = np.take_along_axis(hits, np.maximum(cols, 0), 1) & (cols >= 0)
    dcg = got @ (1.0 / np.log(np.arange(cols.shape[1]) + 2.0))
    return np.divide(dcg, ideal, out=np.zeros(len(ideal)), where=ideal > 0)


def ideal_dcg(answers: Sequence[Sequence]) -> np.ndarray:
    """float64 [N]: the IDCG of each answer (0 for an empty one), for `ndcg_rows`."""
    return np.array([idcg(len(a)) if len(a) else 0.0 for a in answers])


# ----------------------------------------------------------------------------------------------------------------
# Checks


def is_int(x: Any) -> bool:
    # numbers.Integral also admits numpy integers, which in-memory results from the predictor may hold.
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _index_playlists(playlists: Any, name: str) -> dict[Any, int]:
    """Check that ``playlists`` is a list of objects with an integer id and list-valued songs and tags, with no id
    twice; return {playlist id: record index}."""
    if not isinstance(playlists, list):
        raise ResultsError(f"{name}: expected a list of playlists, got {type(playlists).__name__}")
    index_of: dict[Any, int] = {}
    for index, p in enumerate(playlists):
        if not isinstance(p, dict):
            raise ResultsError(f"{name}: record {index}: expected a playlist object, got {type(p).__name__}")
        if "id" not in p:
            raise ResultsError(f"{name}: record {index}: missing key 'id'")
        pid = p["id"]
        if not is_int(pid):
            raise ResultsError(f"{name}: record {index}: id {pid!r} is not an integer")
        where = f"{name}: record {index} (playlist id {pid})"
        for key in ("songs", "tags"):
            if key not in p:
                raise ResultsError(f"{where}: missing key {key!r}")
            if not isinstance(p[key], (list, tuple)):
                raise ResultsError(f"{where}: {key!r} must be a list, got {type(p[key]).__name__}")
        if pid in index_of:
            raise ResultsError(f"{where}: duplicate playlist id {pid} (first at record {index_of[pid]})")
        index_of[pid] = index
    return index_of


# (key, size, the usual item type, full item check, what an item must be)
_REC_LISTS: tuple[tuple[str, int, type, Callable[[Any], bool], str], ...] = (
    ("songs", N_SONGS, int, is_int, "an integer song id"),
    ("tags", N_TAGS, str, lambda x: isinstance(x, str), "a string tag"),
)


def _check_recommendation(p: dict, where: str) -> None:
    """Exactly 100 distinct integer songs and 10 distinct string tags."""
    for key, size, usual_type, valid, kind in _REC_LISTS:
        items = p[key]
        if len(items) != size:
            raise ResultsError(f"{where}: {len(items)} {key}, expected exactly {size}")
        # The type test runs in C for the usual case; the item loop only admits numpy ints or names the culprit.
        if not set(map(type, items)) <= {usual_type}:
            for item in items:
                if not valid(item):
                    raise ResultsError(f"{where}: {key} item {item!r} is not {kind}")
        if len(set(items)) != size:
            seen = set()
            for item in items:
                if item in seen:
                    raise ResultsError(f"{where}: {key} item {item!r} appears more than once")
                seen.add(item)


# ----------------------------------------------------------------------------------------------------------------
# Scoring


def _summary(music_sum: float, tag_sum: float, count: int) -> dict:
    music, tag = music_sum / count, tag_sum / count
    return {"music_ndcg": music, "tag_ndcg": tag, "score": SONG_WEIGHT * music + TAG_WEIGHT * tag, "count": count}


def evaluate_from_data(
    gt: list[dict],
    rec: list[dict],
    question: list[dict] | None = None,
    *,
    gt_name: str = "answers",
    rec_name: str = "results",
    question_name: str = "questions",
) -> dict:
    """Score recommendations ``rec`` against answers ``gt``, both lists of {"id", "songs", "tags"} playlists.

    Args:
        gt: answer playlists (the hidden songs and tags).
        rec: one recommendation per answer playlist: exactly 100 distinct songs and 10 distinct tags.
        question: the question playlists; when given, the result also holds "by_type", one entry per question
            type present (in QUESTION_TYPES order) with the same keys as the overall result.
        gt_name, rec_name, question_name: how error messages name the three lists (the CLI passes file names).

    Returns:
        {"music_ndcg", "tag_ndcg", "score", "count"} (+ "by_type"), averaged over all answer playlists.

    Raises:
        ResultsError: a list of the wrong shape, a duplicate or unmatched playlist id, or a recommendation with the
            wrong number of songs or tags or a duplicate item.
    """
    gt_index = _index_playlists(gt, gt_name)
    if not gt_index:
        raise ResultsError(f"{gt_name}: no playlists to score")
    rec_index = _index_playlists(rec, rec_name)
    for index, p in enumerate(rec):
        _check_recommendation(p, f"{rec_name}: record {index} (playlist id {p['id']})")
    missing = gt_index.keys() - rec_index.keys()
    if missing:
        raise ResultsError(
            f"{rec_name}: no recommendation for playlist id {min(missing)} of {gt_name} ({len(missing)} missing in all)"
        )
    extra = rec_index.keys() - gt_index.keys()
    if extra:
        raise ResultsError(f"{rec_name}: playlist id {min(extra)} is not in {gt_name} ({len(extra)} extra in all)")

    types: dict[Any, str] = {}
    if question is not None:
        question_index = _index_playlists(question, question_name)
        for pid in gt_index:
            if pid not in question_index:
                raise ResultsError(f"{question_name}: no question for playlist id {pid} of {gt_name}")
            types[pid] = question_type(question[question_index[pid]])

    # Accumulate in results order, as the official does; [music sum, tag sum, count] per group.
    totals = {"all": [0.0, 0.0, 0]} | {t: [0.0, 0.0, 0] for t in QUESTION_TYPES}
    for p in rec:
        answer = gt[gt_index[p["id"]]]
        music = ndcg(answer["songs"], p["songs"][:N_SONGS])
        tag = ndcg(answer["tags"], p["tags"][:N_TAGS])
        groups = ("all", types[p["id"]]) if types else ("all",)
        for group in groups:
            totals[group][0] += music
            totals[group][1] += tag
            totals[group][2] += 1

    result = _summary(*totals["all"])
    if types:
        result["by_type"] = {t: _summary(*totals[t]) for t in QUESTION_TYPES if totals[t][2]}
    return result
