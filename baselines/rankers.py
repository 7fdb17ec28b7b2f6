"""The baselines that rank candidates, by name: `rank(train, questions, song_meta, n_songs, n_tags) -> Ranked`
(baselines/common.py). These are the hybrid ensemble's non-BERT members (predictor/hybrid.py)."""
from __future__ import annotations

from typing import Callable

from baselines import implicit_als, implicit_bm25, item_cf, most_popular, playlist_knn
from baselines.common import Ranked

Ranker = Callable[..., Ranked]

RANKERS: dict[str, Ranker] = {
    "most_popular": most_popular.rank,
    "playlist_knn": playlist_knn.rank,
    "item_cf": item_cf.rank,
    "als": implicit_als.rank,
    "bm25": implicit_bm25.rank,
}
