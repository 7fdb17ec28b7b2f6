"""What every baseline shares: reading the split, popularity rankings, topping lists up, writing results.json.

A baseline is a function `recommend(train, questions, song_meta) -> list of {"id", "songs", "tags"}` over the
raw JSON records; `cli` wraps it as the same CLI for all of them (python -m baselines.<name>), reading
{dataset_dir}/orig/train.json (the 90% split of step 1) and writing a results file the official evaluate.py accepts.

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


def load_split(dataset_dir: str | Path, question_path: str | Path | None = None,
               song_meta: SongMeta = "optional") -> tuple[list[dict], list[dict], list[dict] | None]:
    """(orig/train.json, the questions, song_meta.json or None when absent or unused), validated."""
    train_path = split_paths(dataset_dir)["orig_train"]
    question_path = Path(question_path or split_paths(dataset_dir)["val_questions"])
    if not train_path.is_file():
        raise InputError(f"{train_path}: not found; run step 1 (python data_loader/dump_datasets.py "
                         f"--dataset_dir={dataset_dir}) to make the split")
    train, questions = load_json(train_path), load_json(question_path)
    validate_playlists(train, str(train_path))
    validate_playlists(questions, str(question_path), require_nonempty=False)
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
                 name: str = "baseline") -> list[dict]:
    """Load the split, recommend, write results.json atomically; returns the results."""
    check_output_file("out_path", out_path, step_inputs(dataset_dir, question_path=question_path))
    start = time.perf_counter()
    train, questions, meta = load_split(dataset_dir, question_path, song_meta)
    results = recommend(train, questions, meta)
    write_json(out_path, results)
    print(f"{name}: {len(results)} recommendations -> {out_path} "
          f"({time.perf_counter() - start:.1f}s)")
    return results


def cli(recommend: Recommender, name: str, song_meta: SongMeta = "optional") -> Callable[..., None]:
    """The fire entry of a baseline without options of its own (run it with common.cli.run_cli)."""

    def main(dataset_dir: str = "dataset", question_path: str | None = None,
             out_path: str = "reco_result/results.json") -> None:
        """Args:
            dataset_dir: folder with orig/train.json (step 1's split) and, optionally, song_meta.json.
            question_path: question file; default {dataset_dir}/questions/val.json.
            out_path: results file to write.
        """
        run_baseline(recommend, dataset_dir, question_path, out_path, song_meta, name)

    return main
