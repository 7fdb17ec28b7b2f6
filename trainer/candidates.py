"""Candidate extraction, vectorised on the device: the original's "walk the top-k, skip seen and future songs,
keep the first n" for a whole batch at once (ORIGINAL.md 2.4 and 4).

Both validation during training (trainer/validation.py) and the ensemble (predictor/ensembling.py) rank this way, so
it lives here, below both: the predictor imports the trainer's modules, never the other way round.
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


def first_survivors(logits: torch.Tensor, banned: torch.Tensor, k_search: int,
                    k_keep: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`filtered_topk(logits, None, k_search, k_keep, banned)`, walking a shallow top-(2 * k_keep) first, with
    equal logits in index order (TF's top_k order; torch.topk leaves it unspecified).

    The top 2 * k_keep is a prefix of the top k_search, so a row with k_keep survivors in it has the same first
    k_keep survivors as the full walk; only the other rows (e.g. old playlists whose date bans many songs) are
    walked k_search deep. This saves most of the top-k time on large vocabularies (CPU, [128, 239k]: 0.55 s for
    k = 20000, 0.14 s for k = 1000).
    Returns probs float [B, k_keep], idx long [B, k_keep] (-1 and 0 past the survivors).
    """
    k_try = min(k_search, 2 * k_keep)
    probs, idx = filtered_topk(logits, None, k_try, k_keep, banned)
    if k_try < k_search:
        short = (idx < 0).any(1)
        if short.any():
            probs[short], idx[short] = filtered_topk(logits[short], None, k_search, k_keep, banned[short])
    # order ties by index: sort by index, then stably by logit (the -1 padding goes last)
    key = torch.where(idx >= 0, torch.gather(logits.float(), 1, idx.clamp(min=0)), float("-inf"))
    by_index = torch.argsort(torch.where(idx >= 0, idx, logits.shape[1]), dim=1)
    order = torch.gather(by_index, 1, torch.sort(torch.gather(key, 1, by_index), dim=1, descending=True,
                                                 stable=True).indices)
    return torch.gather(probs, 1, order), torch.gather(idx, 1, order)
