"""Item-neighbour collaborative filtering with popularity damping (Zhu et al.), optionally with discriminative
reweighting by a per-question linear SVM: the method of the Melon challenge's 2nd place (final leaderboard 0.349192).

Reference: L. Zhu, B. He, M. Ji, C. Ju, Y. Chen, "Automatic Music Playlist Continuation via Neighbor-based
Collaborative Filtering and Discriminative Reweighting/Reranking", Proc. ACM RecSys Challenge 2018 (formulas as
summarised at chbczl.cn/post/recsys_2018_knn_discriminative_reranking; the exponent names and the locality exponent
theta as the Melon 2nd place, github.com/JunsolKim/kakao-arena-melon-ysocio13, parametrised them). Own implementation.

Items are a playlist's songs, tags and title keywords (baselines/items.py). R is the binary [P, I] matrix of the P
playlists of orig/train over the I items; |P(i)| = sum_v R[v, i] is item i's popularity, |T(v)| = sum_i R[v, i] the
number of items of playlist v, T(u) the known items of question u. Three exponents:

    neighbour weight  w_uv  = ( |T(u) & T(v)| / |T(v)|^(1 - beta) ) ^ theta                     (paper eq. 1)
    item similarity   s_ij  = sum_v R[v, i] w_uv R[v, j] / ( |P(i)|^alpha |P(j)|^(1 - alpha) )   (paper eq. 2)
    score             r_uj  = 1 / |T(u)| * sum_{i in T(u)} s_ij                                  (paper eq. 3)

- alpha: the asymmetric cosine between the two items' popularities (alpha = 0.5 is the cosine; larger alpha damps
  the question item i's popularity more and the candidate j's less). The paper calls it beta.
- beta: damps long neighbour playlists: a playlist's overlap with the question is divided by |T(v)|^(1 - beta)
  (beta = 1: raw overlap). The paper writes |T(v)|^a with a = 1 - beta.
- theta: locality, the exponent on each neighbour playlist's weight (theta > 1 trusts the closest playlists more).
  Taken literally, the summarised eq. 1-2 (s_ij from x_i^T x_j, two overlap factors) is theta = 2; the 2nd place
  put theta there as a free exponent and used 0.99.

With the SVM (--svm, after the paper's discriminative reweighting, as the 2nd place's code runs it): per question,
every item j gets the feature vector (s_ij for i in T(u)); an L2-regularised linear SVM (scikit-learn LinearSVC,
squared hinge) separates the question's own items (positives) from every other item (the items no neighbour holds
have all-zero features: one sample stands for them, weighted by their number), with C = clip(0.4 + 0.0055 (100 -
|T(u)|), 0.2, 1) (the 2nd place's schedule: shorter questions are regularised less) unless svm_c is given; its
weights c_i replace the uniform 1 / |T(u)|: r_uj = sum_i c_i s_ij. Items that fit the question badly get small or
negative weights. With svm_negatives = N, N negatives are drawn instead among the other scored items (seeded by the
question id, so that the answer does not depend on the batch) and the features divided by their largest value.

Popularities and lengths count + 0.1 (|P(i)| + 0.1, |T(v)| + 0.1), as the 2nd place's code does. Fed (the
default, baselines/common.py), the corpus holds the questions' visible parts: a question's own row counts in the
popularities but is never its neighbour, as the 2nd place's code removes the question's own column.

Everything else as the other baselines: seen songs and tags are never recommended, songs issued after the
question's updt_date are dropped (with song_meta.json; dates corrected as data_loader/issue_dates.py), ties go to
the more popular item, short lists are topped up from popularity. The scores of a batch of questions are two sparse
products (questions x playlists, then playlists x items); the SVM is fitted question by question.

Defaults alpha, beta, theta = 1.0, 0.3, 0.8, no SVM: chosen on re-splits of orig/train alone, never on the val answers
(docs/hybrid.md has the search and its scores).

    python -m baselines.item_cf --dataset_dir=dataset --out_path=reco_result/item_cf.json [--alpha=0.9] [--svm]
"""
from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp

from baselines.common import Ranked, drop_own_rows, own_rows, run_baseline
from baselines.items import Items, rank_batches, recommend_with
from common.arena import SONG_CANDIDATES, TAG_CANDIDATES
from common.cli import check_flags, run_cli

ALPHA, BETA, THETA = 1.0, 0.3, 0.8  # the 2nd place: 0.9, 0.7, 0.99 (see the docstring)
SECOND_PLACE = {"alpha": 0.9, "beta": 0.7, "theta": 0.99, "svm": True}  # the 2nd place's published settings
SMOOTH = 0.1  # added to popularities and lengths before the exponents
SVM_TOL, SVM_MAX_ITER = 1e-6, 100_000
BATCH = 64


class ItemCF:
    """The fitted similarity of Zhu et al. over orig/train: scores for batches of questions."""

    def __init__(self, train: list[dict], alpha: float = ALPHA, beta: float = BETA, theta: float = THETA):
        self.items = Items(train)
        self.r = self.items.matrix(train)  # binary [P, I]
        self.rt = self.r.T.tocsr()  # [I, P]
        pop = np.asarray(self.r.sum(0)).ravel() + SMOOTH  # |P(i)| + 0.1 [I]
        length = np.asarray(self.r.sum(1)).ravel() + SMOOTH  # |T(v)| + 0.1 [P]
        self.item_left = (pop ** -alpha).astype(np.float32)  # [I] the question item i's factor
        self.item_right = (pop ** (alpha - 1.0)).astype(np.float32)  # [I] the candidate j's factor
        self.r_out = self.r[:, : self.items.n_out].tocsr()  # [P, n_out] the items that can be recommended
        self.length_damp = (length ** (beta - 1.0)).astype(np.float32)  # [P]
        self.theta = theta

    def neighbour_weights(self, known: sp.csr_matrix, own: np.ndarray | None = None) -> sp.csr_matrix:
        """w [b, P] of eq. 1 for the questions' item rows `known` [b, I]; `own` [b]: each question's own row in the
        corpus (-1: none), which never counts as its neighbour."""
        w = (known @ self.rt).tocsr()  # overlaps |T(u) & T(v)|
        if own is not None:
            w = drop_own_rows(w, own)
        w = w.multiply(self.length_damp[None, :]).tocsr()
        w.data **= self.theta
        return w

    def scores(self, known: sp.csr_matrix, own: np.ndarray | None = None) -> sp.csr_matrix:
        """r [b, n_out] of eq. 3 for the songs and tags; stored where some neighbour holds the item."""
        w = self.neighbour_weights(known, own)
        left = (known @ sp.diags(self.item_left) @ self.rt).tocsr()  # [b, P] sum_{i in T(u)} R[v, i] / |P(i)|^alpha
        r = (w.multiply(left).tocsr() @ self.r_out).tocsr()
        n_items = np.maximum(np.diff(known.indptr), 1)
        r.data *= self.item_right[r.indices] / np.repeat(n_items, np.diff(r.indptr)).astype(np.float32)
        return r

    def similarities(self, items: np.ndarray, w: sp.csr_matrix) -> sp.csr_matrix:
        """s [len(items), I]: s_ij of eq. 2 for one question's items i, given its neighbour weights w [1, P]."""
        rows = self.rt[items].multiply(w).tocsr()  # [m, P] R[v, i] w_uv
        return sp.diags(self.item_left[items]) @ (rows @ self.r) @ sp.diags(self.item_right)

    def svm_scores(self, known: sp.csr_matrix, base: sp.csr_matrix, ids: list[int], c: float | None,
                   negatives: int | None, own: np.ndarray | None = None) -> sp.csr_matrix:
        """[b, n_out] the candidates of `base` (the plain scores [b, n_out]) rescored with each question's items
        reweighted by its SVM (see the module docstring). A question without other candidates keeps its scores."""
        w = self.neighbour_weights(known, own)
        out = base.copy()
        for b in range(known.shape[0]):
            items = known.indices[known.indptr[b] : known.indptr[b + 1]]
            row = slice(base.indptr[b], base.indptr[b + 1])
            s = self.similarities(items, w[b]).tocsc()  # [m, I]
            others = np.setdiff1d(np.flatnonzero(np.diff(s.indptr)), items)  # scored items not the question's
            if len(items) == 0 or len(others) == 0:
                continue
            weights = svm_item_weights(s, items, others, c, negatives, int(ids[b]))  # [m]
            out.data[row] = s[:, base.indices[row]].T @ weights
        return out


def svm_c_for(n_items: int) -> float:
    """The 2nd place's C for a question of n_items items: clip(0.4 + 0.0055 (100 - n), 0.2, 1)."""
    return float(np.clip(0.4 + (100 - n_items) * 0.0055, 0.2, 1.0))


def svm_item_weights(s: sp.csc_matrix, items: np.ndarray, others: np.ndarray, c: float | None,
                     negatives: int | None, seed: int) -> np.ndarray:
    """float [m]: the linear SVM's weight of each of the question's m items; s [m, I] its similarities, `others`
    the other items with a nonzero feature. negatives None: every other item is a negative (the all-zero ones as one
    sample weighted by their number); N: N of `others` drawn at random, features scaled to a largest value of 1."""
    from sklearn.svm import LinearSVC  # optional dependency: only the --svm path needs it

    if negatives is None:
        x = s[:, np.concatenate([items, others])].T.toarray()  # [m + n, m]
        n_zero = s.shape[1] - len(items) - len(others)  # items no neighbour holds: all-zero features
        y = np.r_[np.ones(len(items)), np.zeros(len(others))]
        weight = np.ones(len(y))
        if n_zero > 0:
            x, y, weight = np.vstack([x, np.zeros((1, len(items)))]), np.r_[y, 0.0], np.r_[weight, n_zero]
    else:
        sample = np.random.default_rng(abs(seed)).choice(others, min(negatives, len(others)), replace=False)
        x = s[:, np.concatenate([items, sample])].T.toarray()  # [m + n, m]
        x /= max(float(x.max()), 1e-30)
        y, weight = np.r_[np.ones(len(items)), np.zeros(len(sample))], None
    model = LinearSVC(C=svm_c_for(len(items)) if c is None else c, tol=SVM_TOL, max_iter=SVM_MAX_ITER, random_state=0)
    return model.fit(x, y, sample_weight=weight).coef_.ravel()


def rank(train: list[dict], questions: list[dict], song_meta: list[dict] | None = None,
         n_songs: int = SONG_CANDIDATES, n_tags: int = TAG_CANDIDATES, alpha: float = ALPHA, beta: float = BETA,
         theta: float = THETA, svm: bool = False,
         svm_c: float | None = None, svm_negatives: int | None = None, date_filter: bool = True,
         batch: int = BATCH) -> Ranked:
    """Each question's first n_songs / n_tags songs and tags by item-CF score (see the module docstring)."""
    cf = ItemCF(train, alpha, beta, theta)
    own_row = dict(zip((q["id"] for q in questions), own_rows(train, questions).tolist()))

    def score(known: sp.csr_matrix, qs: list[dict]) -> sp.csr_matrix:
        own = np.array([own_row[q["id"]] for q in qs], dtype=np.int64)
        base = cf.scores(known, own)
        return cf.svm_scores(known, base, [q["id"] for q in qs], svm_c, svm_negatives, own) if svm else base

    dates = cf.items.song_dates(train, song_meta, date_filter)
    return rank_batches(cf.items, questions, score, dates, n_songs, n_tags, batch)


def recommend(train: list[dict], questions: list[dict], song_meta: list[dict] | None = None,
              **options) -> list[dict]:
    """Item-CF recommendations for every question (options as rank's), topped up from popularity."""
    return recommend_with(rank, train, questions, song_meta, **options)


def main(dataset_dir: str = "dataset", question_path: str | None = None, out_path: str = "reco_result/results.json",
         alpha: float = ALPHA, beta: float = BETA, theta: float = THETA, svm: bool = False,
         svm_c: float | None = None, svm_negatives: int | None = None, date_filter: bool = True,
         feed: bool = True) -> None:
    """Args:
        dataset_dir: folder with train.json, step 1's split and, optionally, song_meta.json.
        question_path: question file; default {dataset_dir}/questions/val.json.
        out_path: results file to write.
        alpha: item-popularity exponent of the asymmetric cosine, in [0, 1].
        beta: neighbour-length damping: overlaps are divided by |T(v)|^(1 - beta), beta in [0, 1].
        theta: locality exponent on each neighbour playlist's weight (> 0).
        svm: reweight each question's items with a linear SVM (discriminative reweighting; slower).
        svm_c: the SVM's C (inverse L2 regularisation strength), > 0; default the 2nd place's schedule by question
            length, clip(0.4 + 0.0055 (100 - n), 0.2, 1).
        svm_negatives: negative items drawn per question for the SVM, at least 1; default every other item.
        date_filter: drop songs issued after the question's updt_date (needs song_meta.json).
        feed: learn from train.json and the questions' visible parts (false: orig/train.json alone).
    """
    check_flags(alpha=(0 <= alpha <= 1, "in [0, 1]"), beta=(0 <= beta <= 1, "in [0, 1]"), theta=(theta > 0, "> 0"),
                svm_c=(svm_c is None or svm_c > 0, "> 0"),
                svm_negatives=(svm_negatives is None or svm_negatives >= 1, "at least 1"))
    run_baseline(functools.partial(recommend, alpha=alpha, beta=beta, theta=theta, svm=svm, svm_c=svm_c,
                                   svm_negatives=svm_negatives, date_filter=date_filter),
                 dataset_dir, question_path, out_path, name="item_cf", feed=feed)


if __name__ == "__main__":
    run_cli(main)
