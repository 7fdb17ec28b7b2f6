"""What every baseline shares: reading the split, popularity rankings, topping lists up, writing results.json.

A baseline is a function `recommend(train, questions, song_meta) -> list of {"id", "songs", "tags"}` over the
raw JSON records; `cli` wraps it as the same CLI for all of them (python -m baselines.<name>), writing a results file
the official evaluate.py accepts.

What a baseline learns from, its corpus (`load_split`): fed (the default), all the data a question file allows, as
the strongest teams of the competition fitted their models: the playlists of {dataset_dir}/train.json that are not
among the questions (a question's full playlist holds its hidden answer) plus the visible part of every question;
not fed, {dataset_dir}/orig/train.json alone (step 1's 90% training half). A question's visible part is in the
corpus, so the neighbour methods never let a question score against its own row (`drop_own_rows`).

A baseline that scores candidates also has `rank(train, questions, song_meta, n_songs, n_tags) -> Ranked`: each
question's candidates best first, deeper than the answer, with the method's scores, for the hybrid ensemble
(predictor/hybrid.py) to fuse; its `recommend` is `to_results(rank(...))`.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Hashable, Iterable, Literal, Sequence

import numpy as np
import scipy.sparse as sp

from common.arena import N_SONGS, N_TAGS
from common.cli import check_output_file, step_inputs
from common.jsonio import InputError, load_json, write_json
from data_loader.schema import validate_playlists, validate_song_meta
from data_loader.split import split_paths


Recommender = Callable[[list[dict], list[dict], "list[dict] | None"], list[dict]]
SongMeta = Literal["unused", "optional", "required"]  # whether a baseline reads song_meta.json


def popularity(lists: Iterable[Sequence[Hashable]]) -> list:
    """Items by descending number of occurrences, ties in first-seen order (Counter.most_common, as the official)."""
    return [item for item, _ in Counter(item for items in lists for item in items).most_common()]


def top_up(first: Iterable, fallback: Iterable, seen: Iterable, k: int) -> list:
    """The first `k` distinct items of `first` then `fallback`, skipping `seen` ones."""
    out, skip = [], set(seen)
    for source in (first, fallback):
        for item in source:
            if item not in skip:
                out.append(item)
                skip.add(item)
                if len(out) == k:
                    return out
    return out


def answer(q: dict, songs: Iterable, tags: Iterable, song_pop: Sequence, tag_pop: Sequence) -> dict:
    """One result record: the ranked songs / tags minus the question's own, topped up from popularity.

    Raises InputError when even the whole popularity ranking cannot supply 100 songs / 10 tags.
    """
    rec = {"id": q["id"], "songs": top_up(songs, song_pop, q["songs"], N_SONGS),
           "tags": top_up(tags, tag_pop, q["tags"], N_TAGS)}
    if len(rec["songs"]) < N_SONGS or len(rec["tags"]) < N_TAGS:
        raise InputError(f"playlist id {q['id']}: the training playlists hold too few distinct songs or tags "
                         f"to recommend {N_SONGS} / {N_TAGS} unseen ones")
    return rec


@dataclass
class Ranked:
    """One method's ranked candidates for N questions, best first; seen songs and tags are already left out (and
    songs issued after the question's updt_date, where the method has dates). A short row is padded at its end."""

    ids: np.ndarray  # int64 [N] question ids, in question order
    songs: np.ndarray  # int64 [N, Ks] raw song ids; -1 pads
    song_scores: np.ndarray  # float32 [N, Ks] the method's scores, non-increasing along a row; 0 at padding
    tags: np.ndarray  # object [N, Kt] tag strings; None pads
    tag_scores: np.ndarray  # float32 [N, Kt]

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_lists(cls, ids: Sequence[int], songs: Sequence[Sequence[int]], song_scores: Sequence[Sequence[float]],
                   tags: Sequence[Sequence[str]], tag_scores: Sequence[Sequence[float]]) -> "Ranked":
        """From ragged per-question lists (each already best first)."""
        def pad(rows: Sequence[Sequence], fill, dtype) -> np.ndarray:
            out = np.full((len(rows), max(map(len, rows), default=0)), fill, dtype=dtype)
            for i, r in enumerate(rows):
                out[i, : len(r)] = r
            return out

        return cls(np.asarray(ids, dtype=np.int64), pad(songs, -1, np.int64), pad(song_scores, 0.0, np.float32),
                   pad(tags, None, object), pad(tag_scores, 0.0, np.float32))

    def row(self, i: int) -> tuple[list[int], list[str]]:
        """Question i's songs and tags, best first, without padding."""
        songs, tags = self.songs[i], self.tags[i]
        return songs[songs >= 0].tolist(), [t for t in tags.tolist() if t is not None]


def to_results(ranked: Ranked, questions: Sequence[dict], song_pop: Sequence, tag_pop: Sequence) -> list[dict]:
    """results.json records from ranked candidates, each topped up from popularity (see `answer`)."""
    return [answer(q, *ranked.row(i), song_pop, tag_pop) for i, q in enumerate(questions)]


def fed_corpus(train: list[dict], questions: list[dict]) -> list[dict]:
    """The playlists of `train` that are not among the questions (by id: a question's full playlist holds its hidden
    answer), then the visible part of every question."""
    asked = {q["id"] for q in questions}
    return [p for p in train if p["id"] not in asked] + list(questions)


def own_rows(corpus: Sequence[dict], questions: Sequence[dict]) -> np.ndarray:
    """int64 [len(questions)]: the corpus row of each question's own visible part (fed corpora), -1 where none."""
    row_of = {p["id"]: i for i, p in enumerate(corpus)}
    return np.array([row_of.get(q["id"], -1) for q in questions], dtype=np.int64)


def drop_own_rows(m: sp.csr_matrix, own: np.ndarray) -> sp.csr_matrix:
    """m [b, P] (questions x corpus playlists) without the entry of each question's own row (`own_rows`, -1: none):
    a question's neighbours are never itself."""
    rows = np.flatnonzero(own >= 0)
    if not len(rows):
        return m
    mask = sp.csr_matrix((np.ones(len(rows), m.dtype), (rows, own[rows])), shape=m.shape)
    out = (m - m.multiply(mask)).tocsr()
    out.eliminate_zeros()
    return out


def load_split(dataset_dir: str | Path, question_path: str | Path | None = None,
               song_meta: SongMeta = "optional", feed: bool = True,
               whole_train: bool = True) -> tuple[list[dict], list[dict], list[dict] | None]:
    """(the corpus, the questions, song_meta.json or None when absent or unused), validated.

    The corpus (module docstring): with `feed`, `fed_corpus` of {dataset_dir}/train.json (or, with whole_train
    False, of orig/train.json: the weight search's, which never holds a validation playlist) and the questions;
    without it, orig/train.json.
    """
    paths = split_paths(dataset_dir)
    train_path = Path(dataset_dir) / "train.json" if feed and whole_train else paths["orig_train"]
    question_path = Path(question_path or paths["val_questions"])
    if not paths["orig_train"].is_file():
        raise InputError(f"{paths['orig_train']}: not found; run step 1 (python data_loader/dump_datasets.py "
                         f"--dataset_dir={dataset_dir}) to make the split")
    train, questions = load_json(train_path), load_json(question_path)
    validate_playlists(train, str(train_path))
    validate_playlists(questions, str(question_path), require_nonempty=False)
    if feed:
        train = fed_corpus(train, questions)
    meta_path = Path(dataset_dir) / "song_meta.json"
    if song_meta == "unused" or (song_meta == "optional" and not meta_path.is_file()):
        return train, questions, None
    if not meta_path.is_file():
        raise InputError(f"{meta_path}: not found; this baseline needs song genres")
    meta = load_json(meta_path)
    validate_song_meta(meta, str(meta_path))
    return train, questions, meta


def run_baseline(recommend: Recommender, dataset_dir: str = "dataset", question_path: str | None = None,
                 out_path: str = "reco_result/results.json", song_meta: SongMeta = "optional",
                 name: str = "baseline", feed: bool = True) -> list[dict]:
    """Load the corpus and the questions (`load_split`), recommend, write results.json atomically; -> the results."""
    check_output_file("out_path", out_path, step_inputs(dataset_dir, question_path=question_path))
    start = time.perf_counter()
    train, questions, meta = load_split(dataset_dir, question_path, song_meta, feed)
    results = recommend(train, questions, meta)
    write_json(out_path, results)
    print(f"{name}: {len(results)} recommendations -> {out_path} "
          f"({time.perf_counter() - start:.1f}s)")
    return results


def cli(recommend: Recommender, name: str, song_meta: SongMeta = "optional") -> Callable[..., None]:
    """The fire entry of a baseline without options of its own (run it with common.cli.run_cli)."""

    def main(dataset_dir: str = "dataset", question_path: str | None = None,
             out_path: str = "reco_result/results.json", feed: bool = True) -> None:
        """Args:
            dataset_dir: folder with train.json, step 1's split and, optionally, song_meta.json.
            question_path: question file; default {dataset_dir}/questions/val.json.
            out_path: results file to write.
            feed: learn from train.json and the questions' visible parts (false: orig/train.json alone).
        """
        run_baseline(recommend, dataset_dir, question_path, out_path, song_meta, name, feed)

    return main
