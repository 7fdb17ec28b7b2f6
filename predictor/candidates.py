"""Candidate extraction, vectorised on the device: the original's "walk the top-k, skip seen and future songs,
keep the first n" for a whole batch at once (ORIGINAL.md 2.4 and 4).
"""
from __future__ import annotations

import torch


def filtered_topk(logits: torch.Tensor, seen: torch.Tensor | None, k_search: int, k_keep: int,
                  banned: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Top `k_search` items by logit, minus seen and banned ones, first `k_keep` kept in rank order.

    Args:
        logits: float [B, V] pre-sigmoid scores.
        seen: long [2, P] (row, item) pairs to skip (the question's own items), or None.
        k_search: how deep the original walks the ranking (20000 / 300 in the ensemble, 10000 / 30 in validation).
        k_keep: how many survivors to keep (500 / 50, or 100 / 10).
        banned: bool [B, V], True where an item may not be proposed (a song issued after the playlist's updt_date).
    Returns:
        probs float [B, k_keep] sigmoid scores, idx long [B, k_keep]; where fewer than k_keep items survive the
        walk, the tail has idx -1 and prob 0 (the original would return a shorter list).
    """
    B, V = logits.shape
    k_search = min(k_search, V)
    top_logits, top_idx = torch.topk(logits.float(), k_search, dim=1)  # sorted descending
    drop = torch.zeros(B, V, dtype=torch.bool, device=logits.device)
    if seen is not None and seen.numel():
        drop[seen[0], seen[1]] = True
    if banned is not None:
        drop |= banned
    keep = ~torch.gather(drop, 1, top_idx)  # [B, k_search]
    # stable sort puts the survivors first while keeping their rank order
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices[:, :k_keep]
    idx = torch.gather(top_idx, 1, order)
    ok = torch.gather(keep, 1, order)
    probs = torch.sigmoid(torch.gather(top_logits, 1, order)) * ok
    if order.shape[1] < k_keep:  # vocabulary smaller than k_keep
        pad = k_keep - order.shape[1]
        idx = torch.cat([idx, idx.new_full((B, pad), -1)], 1)
        probs = torch.cat([probs, probs.new_zeros(B, pad)], 1)
        ok = torch.cat([ok, ok.new_zeros(B, pad)], 1)
    return probs, torch.where(ok, idx, torch.full_like(idx, -1))


def issue_date_banned(song_issue_dates: torch.Tensor, updt: torch.Tensor) -> torch.Tensor:
    """bool [B, S]: song issue date (int [S], YYYYMMDD) later than the playlist's updt (int [B]); equal is allowed."""
    return song_issue_dates[None, :] > updt[:, None]
