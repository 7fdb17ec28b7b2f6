"""The ensemble's tensor work, vectorised over a batch of questions (docs/original.md 4).

`blend` sums the weighted candidate scores of several models over their union and ranks the union with the
original's stable sort (equal scores keep insertion order: the first model's candidates in rank order, then the
next model's new ones). `fill_first_allowed` tops a short list up with the first allowed items of the vocabulary,
which is in popularity order; the cold start is the same fill applied to an empty list.
"""
from __future__ import annotations

import torch


def blend(idx: torch.Tensor, score: torch.Tensor, k: int) -> torch.Tensor:
    """Rank the union of candidate lists by summed score and keep the top `k`.

    Args:
        idx: long [B, C] candidate item ids, the members' lists concatenated in member order; -1 = no candidate.
        score: float [B, C] the weighted score of each candidate (already multiplied by its member's weight).
        k: how many to keep.
    Returns:
        long [B, k] item ids by descending summed score, ties in first-insertion order; -1 pads rows whose
        union has fewer than k items (the padding is always at the end of the row).
    """
    B, C = idx.shape
    if C == 0:
        return idx.new_full((B, k), -1)
    # group equal ids: a stable sort keeps each id's occurrences in insertion order, so a group's first
    # element is the id's first insertion
    sorted_idx, perm = torch.sort(idx, dim=1, stable=True)
    sorted_score = torch.gather(score, 1, perm)
    start = torch.ones_like(sorted_idx, dtype=torch.bool)
    start[:, 1:] = sorted_idx[:, 1:] != sorted_idx[:, :-1]
    group = torch.cumsum(start, dim=1) - 1  # [B, C] group number of every sorted element
    total = torch.zeros(B, C, dtype=score.dtype, device=score.device).scatter_add_(1, group, sorted_score)
    # back to insertion order: the summed score at each id's first position, -inf elsewhere and at padding
    key_sorted = torch.where(start & (sorted_idx >= 0), torch.gather(total, 1, group), float("-inf"))
    key = torch.empty_like(key_sorted).scatter_(1, perm, key_sorted)
    top = torch.sort(key, dim=1, descending=True, stable=True).indices[:, :k]
    out = torch.where(torch.gather(key, 1, top) > float("-inf"), torch.gather(idx, 1, top), -1)
    if out.shape[1] < k:
        out = torch.cat([out, out.new_full((B, k - out.shape[1]), -1)], 1)
    return out


def fill_first_allowed(chosen: torch.Tensor, blocked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill the -1 tail of each row with the lowest-numbered items that are neither blocked nor already chosen.

    Args:
        chosen: long [B, k] item ids with any -1 padding at the end of the row (as `blend` returns them).
        blocked: bool [B, V] items that may not be added (seen, issued after the playlist's date, ...).
    Returns:
        (long [B, k] the filled rows, -1 left where too few items are allowed; bool [B] rows that were short).
    """
    B, k = chosen.shape
    short = (chosen < 0).any(1)
    if not short.any():
        return chosen, short
    rows = short.nonzero().squeeze(1)
    part = chosen[rows]
    ok = ~blocked[rows]
    r, c = (part >= 0).nonzero(as_tuple=True)
    ok[r, part[r, c]] = False
    V = ok.shape[1]
    # the k allowed items with the smallest ids: topk of -id over the allowed ones
    rank = torch.where(ok, -torch.arange(V, device=ok.device, dtype=torch.float32), float("-inf"))
    val, extra = torch.topk(rank, min(k, V), dim=1)
    extra = torch.where(val > float("-inf"), extra, -1)
    merged = torch.cat([part, extra], 1)
    # chosen items first, then the extra ones, dropping the -1 gaps (stable sort on "is padding")
    order = torch.sort((merged < 0).to(torch.int8), dim=1, stable=True).indices[:, :k]
    out = chosen.clone()
    out[rows] = torch.gather(merged, 1, order)
    return out, short
