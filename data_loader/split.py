"""The local validation split: the official kakao-arena split_data.py procedure with ratio 0.9 (docs/original.md 1.2).

Given the same train.json, the four lists are identical to what the original produces, provided both Python's
`random` and numpy's legacy global RandomState are seeded 777 right before (`seeded_split` does that) and
the random draws happen in the original's order:
  1. `random.shuffle` of the playlist list; train = the first int(N * ratio), val = the rest;
  2. val cut in order into four groups at int(n * 0.3), int(n * 0.8), int(n * 0.95);
  3. per group, per playlist, per masked column (songs before tags) one `np.random.shuffle` of a boolean mask
     whose first floor(L/2) entries are True (an empty or one-item mask draws nothing);
  4. one `np.random.shuffle` of an index array that reorders questions and answers together.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Sequence

import numpy as np

from common.jsonio import write_json

SPLIT_SEED = 777
SPLIT_RATIO = 0.9
# (name, masked columns, deleted columns, end of the group as a share of val); names as common/arena.py's QUESTION_TYPES
GROUPS = (
    ("songs only", ("songs",), ("tags",), 0.3),
    ("songs+tags", ("songs", "tags"), (), 0.8),
    ("tags only", ("tags",), ("songs",), 0.95),
    ("title only", (), ("songs", "tags"), 1.0),
)
ANSWER_CAP = {"songs": 100, "tags": 10}  # a deleted column's answer is its first 100 songs / 10 tags


def group_sizes(n_val: int) -> dict[str, int]:
    """How many val playlists fall in each group, e.g. 11508 -> 3452 / 5754 / 1726 / 576."""
    cuts = [0] + [int(n_val * end) for *_, end in GROUPS]  # the last group runs to the end: int(n * 1.0) == n
    return {g[0]: cuts[k + 1] - cuts[k] for k, g in enumerate(GROUPS)}


def _mask_column(items: list) -> tuple[list, list]:
    """Hide a random half: the question keeps floor(L/2) items, the answer the other ceil(L/2); order is kept."""
    mask = np.full(len(items), False)
    mask[: len(items) // 2] = True
    np.random.shuffle(mask)
    keep = mask.tolist()
    return [x for x, k in zip(items, keep) if k], [x for x, k in zip(items, keep) if not k]


def _mask_group(playlists: Sequence[dict], masked: tuple[str, ...], deleted: tuple[str, ...]) -> tuple[list, list]:
    """Questions and answers of one group. Records are copied; every other field stays in both."""
    questions, answers = [], []
    for p in playlists:
        q, a = dict(p), dict(p)
        for col in deleted:
            q[col], a[col] = [], p[col][: ANSWER_CAP[col]]
        for col in masked:
            q[col], a[col] = _mask_column(p[col])
        questions.append(q)
        answers.append(a)
    return questions, answers


def split_playlists(playlists: Sequence[dict], ratio: float = SPLIT_RATIO) -> tuple[list, list, list, list]:
    """(orig_train, orig_val, questions, answers), drawing from the global `random` and `np.random` states.

    The input is not modified; orig_train/orig_val hold the input records themselves, questions/answers copies.
    """
    shuffled = list(playlists)
    random.shuffle(shuffled)
    n_train = int(len(shuffled) * ratio)
    train, val = shuffled[:n_train], shuffled[n_train:]

    questions, answers, start = [], [], 0
    for (_, masked, deleted, _), size in zip(GROUPS, group_sizes(len(val)).values()):
        q, a = _mask_group(val[start : start + size], masked, deleted)
        questions += q
        answers += a
        start += size
    order = np.arange(len(questions))
    np.random.shuffle(order)
    return train, val, [questions[i] for i in order], [answers[i] for i in order]


def seeded_split(playlists: Sequence[dict], ratio: float = SPLIT_RATIO,
                 seed: int = SPLIT_SEED) -> tuple[list, list, list, list]:
    """`split_playlists` right after seeding Python's `random` and numpy's legacy global RandomState, as the
    original."""
    random.seed(seed)
    np.random.seed(seed)
    return split_playlists(playlists, ratio)


def split_paths(dataset_dir: str | Path) -> dict[str, Path]:
    """Where the split goes: next to the input, as in the original."""
    d = Path(dataset_dir)
    return {"orig_train": d / "orig" / "train.json", "orig_val": d / "orig" / "val.json",
            "val_questions": d / "questions" / "val.json", "val_answers": d / "answers" / "val.json"}


def write_split(dataset_dir: str | Path, parts: tuple[list, list, list, list]) -> dict[str, Path]:
    """Write the four lists (each atomically, UTF-8, ensure_ascii=False); returns their paths."""
    paths = split_paths(dataset_dir)
    for path, records in zip(paths.values(), parts):
        write_json(path, records)
    return paths
