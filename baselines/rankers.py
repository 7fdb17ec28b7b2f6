"""The one registry of the baselines, in leaderboard order: the leaderboard runs each one's `recommend`, and the
hybrid ensemble (predictor/members.py) takes those with a `rank` as members.

    recommend(train, questions, song_meta) -> results.json records (100 songs, 10 tags each)
    rank(train, questions, song_meta, n_songs, n_tags) -> Ranked candidate lists with scores (baselines/common.py)
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

from baselines import genre_most_popular, implicit_als, implicit_bm25, item_cf, most_popular, playlist_knn
from baselines.common import Ranked


@dataclass(frozen=True)
class Baseline:
    recommend: Callable[..., list[dict]]
    rank: Callable[..., Ranked] | None = None  # None: no candidate lists, so no hybrid member
    needs_song_meta: bool = False  # skipped (with a word) on data without song_meta.json
    needs_package: str | None = None  # an optional package it imports when run


BASELINES: dict[str, Baseline] = {
    "most_popular": Baseline(most_popular.recommend, most_popular.rank),
    "genre_most_popular": Baseline(genre_most_popular.recommend, needs_song_meta=True),
    "playlist_knn": Baseline(playlist_knn.recommend, playlist_knn.rank),
    "item_cf": Baseline(item_cf.recommend, item_cf.rank),
    # the Melon 2nd place's published configuration: their exponents and the per-question SVM
    "item_cf_svm": Baseline(functools.partial(item_cf.recommend, **item_cf.SECOND_PLACE),
                            functools.partial(item_cf.rank, **item_cf.SECOND_PLACE)),
    "als": Baseline(implicit_als.recommend, implicit_als.rank, needs_package="implicit"),
    "bm25": Baseline(implicit_bm25.recommend, implicit_bm25.rank, needs_package="implicit"),
}
# The baselines that rank candidates, by name: the hybrid ensemble's non-BERT members.
RANKERS: dict[str, Callable[..., Ranked]] = {name: b.rank for name, b in BASELINES.items() if b.rank is not None}
