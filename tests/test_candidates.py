"""Candidate extraction (trainer/candidates.py) against the literal walk of docs/original.md 4 (tests/_references.py).

Covers: first_survivors on one batch that mixes rows whose shallow top-(2 k_keep) walk leaves enough survivors and
rows where it does not (the deep second walk), with bans, a row banned whole, and equal logits inside the kept
range (index order); filtered_topk with seen items and bans; issue_date_banned (only dates after updt_date are
banned, an equal date is allowed); and, marked as a known failure, equal logits straddling the keep cut.
Run: python -m pytest tests/test_candidates.py -q
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from _references import walk

from trainer.candidates import filtered_topk, first_survivors, issue_date_banned, topk_index_ties

V, SEARCH, KEEP = 400, 300, 20  # first_survivors' shallow walk: the top 40


def batch() -> tuple[np.ndarray, np.ndarray]:
    """Logits float32 [6, V] (distinct but for row 4's ties) and bans bool [6, V], one kind of row each."""
    rng = np.random.default_rng(0)
    logits = (np.stack([rng.permutation(V) for _ in range(6)]) * (8 / V) - 4).astype(np.float32)
    banned = np.zeros((6, V), bool)
    banned[1] = rng.random(V) < 0.9  # short in the shallow walk: the deep walk finds the rest
    banned[2, np.argsort(-logits[2])[:45]] = True  # the whole shallow walk banned, survivors further down
    banned[3] = True  # nothing survives
    logits[4, np.argsort(-logits[4])[[3, 7, 8, 12, 15]]] = 3.97  # equal logits, all in the top 20
    banned[5] = rng.random(V) < 0.5
    return logits, banned


def expected(logits: np.ndarray, skip, k_search: int, k_keep: int) -> tuple[list[list[int]], list[list[float]]]:
    """Per row: the literal walk, padded with -1; its float32 sigmoid scores, padded with 0."""
    idx, probs = [], []
    for r in range(len(logits)):
        items = walk(logits[r], lambda i: skip(r, i), k_search, k_keep)
        p = torch.sigmoid(torch.from_numpy(logits[r][items])).tolist() if items else []
        idx.append(items + [-1] * (k_keep - len(items)))
        probs.append(p + [0.0] * (k_keep - len(items)))
    return idx, probs


def test_first_survivors_matches_the_walk_on_a_mixed_batch():
    logits, banned = batch()
    probs, idx = first_survivors(torch.from_numpy(logits), torch.from_numpy(banned), SEARCH, KEEP)
    want_idx, want_probs = expected(logits, lambda r, i: banned[r, i], SEARCH, KEEP)
    assert idx.tolist() == want_idx
    assert probs.tolist() == want_probs
    shallow = set(np.argsort(-logits[1])[: 2 * KEEP].tolist())
    assert len(shallow & set(want_idx[1])) < KEEP and -1 not in want_idx[1]  # row 1 needs the deep walk
    assert (idx[3] == -1).all()


def test_filtered_topk_skips_seen_and_banned_items():
    logits, banned = batch()
    seen = [(0, int(np.argmax(logits[0]))), (0, 7), (5, int(np.argmax(logits[5])))]
    pairs = torch.tensor(seen).T
    probs, idx = filtered_topk(torch.from_numpy(logits), pairs, SEARCH, KEEP, torch.from_numpy(banned))
    want_idx, want_probs = expected(logits, lambda r, i: banned[r, i] or (r, i) in seen, SEARCH, KEEP)
    for r in (0, 1, 2, 3, 5):  # row 4's ties go in torch.topk's order here: first_survivors orders them
        assert idx[r].tolist() == want_idx[r] and probs[r].tolist() == want_probs[r]
    _, idx = filtered_topk(torch.from_numpy(logits[:1, :30]), None, SEARCH, 50)  # fewer items than places
    assert sorted(idx[0, :30].tolist()) == list(range(30)) and (idx[0, 30:] == -1).all()


def test_issue_date_banned_only_after_the_playlist_date():
    dates = torch.tensor([20200101, 20200102, 20191231, 0])
    updt = torch.tensor([20200101, 19000101])
    assert issue_date_banned(dates, updt).tolist() == [[False, True, False, False], [True, True, True, False]]


def test_equal_logits_at_the_keep_cut_keep_the_lowest_indices():
    """A tie group straddling the cut (of the shallow walk, of k_keep) keeps its lowest indices, in index order,
    as TF's top_k does: torch.topk alone keeps an arbitrary part of it."""
    logits = torch.zeros(3, 1500)
    logits[1, 700:] = 1.0  # 800 equal leaders: the shallow top 1000 cuts through the zeros after them
    logits[2, ::3] = -1.0
    banned = torch.zeros(3, 1500, dtype=torch.bool)
    banned[1, 700:1250] = True  # only 250 leaders survive: the rest come from the zeros, lowest index first
    _, idx = first_survivors(logits, banned, 20000, 500)
    assert idx[0].tolist() == list(range(500))
    assert idx[1].tolist() == list(range(1250, 1500)) + list(range(250))
    assert idx[2].tolist() == [i for i in range(1500) if i % 3][:500]


def test_topk_index_ties_against_sorting_by_value_then_index():
    """TF's top_k order written as a Python sort key, on integer logits full of ties (across the cut too)."""
    for seed in range(5):
        x = torch.randint(0, 5, (6, 50), generator=torch.Generator().manual_seed(seed)).float()
        for k in (1, 17, 49, 50):
            values, idx = topk_index_ties(x, k)
            for r in range(6):
                want = sorted(range(50), key=lambda j: (-x[r, j].item(), j))[:k]
                assert idx[r].tolist() == want and values[r].tolist() == x[r, want].tolist()
