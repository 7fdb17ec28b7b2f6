"""Independent references for the tests, written from docs/original.md and the README one item at a time
(plain Python loops, never the code under test), shared by several test files.

- walk: the original's candidate walk (docs/original.md 2.4 and 4): the top k_search items by score, equal scores in
  index order (TF's top_k), skipping some, the first k_keep survivors.
- pad_from_popularity: the README's fill of a short list ("filled from popularity, skipping seen items, duplicates
  and future songs"; the vocabulary is in popularity order, so the most popular items are the lowest ids).
- ndcg: the arena metric of docs/original.md 5 (DCG over the list, IDCG over the whole answer length).
- normalise_title: docs/original.md 1.5's title cleaning, character by character.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence


def walk(scores: Sequence[float], skip: Callable[[int], bool], k_search: int, k_keep: int) -> list[int]:
    """The first k_keep items i with not skip(i) among the k_search best, best first, ties by lower index."""
    ranked = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))[:k_search]
    return [i for i in ranked if not skip(i)][:k_keep]


def pad_from_popularity(chosen: Sequence[int], n_items: int, k: int, *allowed: Callable[[int], bool]) -> list[int]:
    """`chosen` followed by the lowest item ids that pass allowed[0], then (still short) allowed[1], ..., up to k
    items, never repeating one."""
    out, taken = list(chosen), set(chosen)
    for ok in allowed:
        for i in range(n_items):
            if len(out) >= k:
                return out
            if i not in taken and ok(i):
                out.append(i)
                taken.add(i)
    return out


def ndcg(answer: Sequence, ranked: Sequence) -> float:
    """sum over hits at 0-based position i of 1/ln(i + 2), divided by the same sum over len(answer) positions."""
    hits = set(answer)
    gain = sum(1.0 / math.log(i + 2) for i, x in enumerate(ranked) if x in hits)
    return gain / sum(1.0 / math.log(i + 2) for i in range(len(answer)))


def normalise_title(title: str) -> str:
    """Each run of characters other than Hangul syllables, ASCII letters, digits, '&' and ' ' becomes one space;
    then strip and lowercase (inner runs of spaces are kept)."""
    out, in_run = [], False
    for ch in title:
        kept = "\uac00" <= ch <= "\ud7a3" or (ch.isascii() and ch.isalnum()) or ch in "& "  # 가-힣, a-z A-Z 0-9
        if kept:
            out.append(ch)
        elif not in_run:
            out.append(" ")
        in_run = not kept
    return "".join(out).strip().lower()
