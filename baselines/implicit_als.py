"""Implicit-feedback ALS (Hu, Koren, Volinsky 2008) from the `implicit` library, the matrix factorisation most teams
of the Melon challenge ran, over the playlist x item matrix of baselines/items.py (songs, tags, title keywords).

The model is fitted on the playlists of orig/train alone (confidence alpha per known item, implicit's conjugate
gradient solver). A question's factors are then the exact least-squares user step against the fitted item factors
(implicit's `recalculate_user`), so a question's answer does not depend on the other questions in the file; its
score of an item is the dot product of the two factors. A question with no known item has no factors and gets no
candidates (the popularity top-up answers it). Seen items, future songs (with song_meta.json), ties by popularity and
the top-up as the other baselines.

Defaults regularization 0.01 and 15 iterations (implicit's), 128 factors and alpha = 50: chosen on re-splits of
orig/train alone, never on the val answers (docs/hybrid.md has the search and its scores). `implicit` is an optional
dependency: it is imported when the model is fitted.

    python -m baselines.implicit_als --dataset_dir=dataset --out_path=reco_result/als.json [--factors=128]
"""
from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp

from baselines.common import Ranked, run_baseline
from baselines.items import Items, rank_batches, recommend_with
from common.arena import SONG_CANDIDATES, TAG_CANDIDATES
from common.cli import check_flags, run_cli

FACTORS, REGULARIZATION, CONFIDENCE, ITERATIONS = 128, 0.01, 50.0, 15
THREADS = 0  # implicit's native threads: 0 = one per core
BATCH = 64


def fit(x: sp.csr_matrix, factors: int = FACTORS, regularization: float = REGULARIZATION, alpha: float = CONFIDENCE,
        iterations: int = ITERATIONS, threads: int = THREADS, seed: int = 0):
    """implicit's AlternatingLeastSquares fitted on the binary playlist x item matrix x [P, I]."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):  # implicit's own threads do the work; a BLAS pool beside them only slows it
        model = AlternatingLeastSquares(factors=factors, regularization=regularization, alpha=alpha,
                                        iterations=iterations, num_threads=threads, random_state=seed)
        model.fit(x, show_progress=False)
    return model


def rank(train: list[dict], questions: list[dict], song_meta: list[dict] | None = None, n_songs: int = SONG_CANDIDATES,
         n_tags: int = TAG_CANDIDATES, factors: int = FACTORS, regularization: float = REGULARIZATION,
         alpha: float = CONFIDENCE, iterations: int = ITERATIONS, threads: int = THREADS, seed: int = 0,
         date_filter: bool = True, batch: int = BATCH) -> Ranked:
    """Each question's first n_songs / n_tags songs and tags by ALS score (see the module docstring)."""
    items = Items(train)
    model = fit(items.matrix(train), factors, regularization, alpha, iterations, threads, seed)
    item_factors = np.asarray(model.item_factors[: items.n_out])  # [n_out, factors]

    def score(known: sp.csr_matrix, qs: list[dict]) -> np.ndarray:
        user = model.recalculate_user(np.arange(known.shape[0]), known)  # [b, factors]
        scores = user @ item_factors.T  # [b, n_out]
        scores[np.diff(known.indptr) == 0] = -np.inf  # no known item: no factors, no candidates
        return scores

    dates = items.song_dates(train, song_meta, date_filter)
    return rank_batches(items, questions, score, dates, n_songs, n_tags, batch)


def recommend(train: list[dict], questions: list[dict], song_meta: list[dict] | None = None,
              **options) -> list[dict]:
    """ALS recommendations for every question (options as rank's), topped up from popularity."""
    return recommend_with(rank, train, questions, song_meta, **options)


def main(dataset_dir: str = "dataset", question_path: str | None = None, out_path: str = "reco_result/results.json",
         factors: int = FACTORS, regularization: float = REGULARIZATION, alpha: float = CONFIDENCE,
         iterations: int = ITERATIONS, threads: int = THREADS, seed: int = 0, date_filter: bool = True,
         feed: bool = True) -> None:
    """Args:
        dataset_dir: folder with train.json, step 1's split and, optionally, song_meta.json.
        question_path: question file; default {dataset_dir}/questions/val.json.
        out_path: results file to write.
        factors: latent factors.
        regularization: L2 regularisation of the factors (>= 0).
        alpha: confidence of a known item (> 0).
        iterations: ALS sweeps.
        threads: implicit's threads (0 = one per core).
        seed: seed of the initial factors.
        date_filter: drop songs issued after the question's updt_date (needs song_meta.json).
        feed: learn from train.json and the questions' visible parts (false: orig/train.json alone).
    """
    check_flags(factors=(factors >= 1, "at least 1"), regularization=(regularization >= 0, ">= 0"),
                alpha=(alpha > 0, "> 0"), iterations=(iterations >= 1, "at least 1"), threads=(threads >= 0, ">= 0"))
    run_baseline(functools.partial(recommend, factors=factors, regularization=regularization, alpha=alpha,
                                   iterations=iterations, threads=threads, seed=seed, date_filter=date_filter),
                 dataset_dir, question_path, out_path, name="als", feed=feed)


if __name__ == "__main__":
    run_cli(main)
