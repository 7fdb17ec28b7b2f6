"""Candidate extraction, vectorised on the device: the original's "walk the top-k, skip seen and future songs,
keep the first n" for a whole batch at once (docs/original.md 2.4 and 4).

Both validation during training (trainer/validation.py) and the ensemble (predictor/ensembling.py) rank this way, so
it lives here, below both: the predictor imports the trainer's modules, never the other way round.
"""
from __future__ import annotations

import torch


def topk_index_ties(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """torch.topk(x, k, dim=1) with TF's tie rule: equal values rank by index, lowest first, also at the cut.

    torch.topk leaves the order of equal values unspecified and, where a group of equal values straddles the k-th
    place, keeps an arbitrary part of it; TF's top_k (the original's ranking) keeps and orders them by index. Only
    rows with such ties are redone, and a tie across the cut is seen in the (k+1)-th value, so the usual cost is
    that of torch.topk. x float [B, V]; returns values [B, k] (descending) and indices long [B, k].
    """
    values, idx = torch.topk(x, min(k + 1, x.shape[1]), dim=1)  # sorted descending; one more to see the cut
    straddle = values[:, k - 1] == values[:, k] if 0 < k < x.shape[1] else torch.zeros(len(x), dtype=torch.bool)
    values, idx = values[:, :k], idx[:, :k]
    kth = values[:, -1:]
    if straddle.any():  # the k-th value also occurs past the cut: keep the lowest indices of its group
        rows = straddle.nonzero().squeeze(1)
        xs, th = x[rows], kth[rows]
        above, at = xs > th, xs == th
        take = above | (at & (torch.cumsum(at, 1) <= k - above.sum(1, keepdim=True)))  # lowest-index ties
        sel = take.nonzero()[:, 1].view(len(rows), k)  # row-major: ascending index in each row
        v = torch.gather(xs, 1, sel)
        order = torch.sort(v, dim=1, descending=True, stable=True).indices  # by value; ties keep index order
        idx[rows], values[rows] = torch.gather(sel, 1, order), torch.gather(v, 1, order)
    new = values[:, 1:] != values[:, :-1]  # [B, k-1]: a new value starts here
    tied = ~new.all(1)
    if tied.any():  # within each run of equal values, order by index: one sort on (run number, index)
        rows = tied.nonzero().squeeze(1)
        run = torch.cat([torch.zeros(len(rows), 1, dtype=torch.long, device=x.device),
                         torch.cumsum(new[rows], 1)], 1)
        order = torch.sort(run * x.shape[1] + idx[rows], dim=1).indices
        idx[rows] = torch.gather(idx[rows], 1, order)
        values[rows] = torch.gather(values[rows], 1, order)
    return values, idx


def filtered_topk(logits: torch.Tensor, seen: torch.Tensor | None, k_search: int, k_keep: int,
                  banned: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Top `k_search` items by logit (ties by index, as TF's top_k), minus seen and banned ones, first `k_keep` kept
    in rank order.

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
    top_logits, top_idx = topk_index_ties(logits.float(), k_search)  # descending, ties by index
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
    """`filtered_topk(logits, None, k_search, k_keep, banned)`, walking a shallow top-(2 * k_keep) first.

    The top 2 * k_keep is a prefix of the top k_search (both rank ties by index), so a row with k_keep survivors in
    it has the same first k_keep survivors as the full walk; only the other rows (e.g. old playlists whose date bans
    many songs) are walked k_search deep. This saves most of the top-k time on large vocabularies (CPU, [128, 239k]:
    0.55 s for k = 20000, 0.14 s for k = 1000).
    Returns probs float [B, k_keep], idx long [B, k_keep] (-1 and 0 past the survivors).
    """
    k_try = min(k_search, 2 * k_keep)
    probs, idx = filtered_topk(logits, None, k_try, k_keep, banned)
    if k_try < k_search:
        short = (idx < 0).any(1)
        if short.any():
            probs[short], idx[short] = filtered_topk(logits[short], None, k_search, k_keep, banned[short])
    return probs, idx
