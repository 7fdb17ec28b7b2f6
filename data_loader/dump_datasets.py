"""Step 1: split train.json, build the vocabularies and the title model, and dump everything the trainers read.

    python data_loader/dump_datasets.py [--dataset_dir=dataset] [--output_dir=output]

Reads {dataset_dir}/train.json and, if present, {dataset_dir}/song_meta.json; writes the layout described in
data_loader/dumps.py (docs/original.md 1.2-1.6). Every input is validated before anything is written, every file is
written atomically, and dumps/meta.json is removed first and written last, so a folder whose meta.json exists
always holds one complete, consistent run.
"""
from __future__ import annotations

import contextlib
import gc
import importlib.metadata
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np

from common.arena import QUESTION_TYPES, question_type
from common.cli import check_output_dir, run_cli
from common.jsonio import InputError, atomic_path, load_json, remove_stale_temps, sha256_file, write_json
from data_loader.build_vocab import RECALL, build_vocab, flat_songs, sorted_unique
from data_loader.dumps import DUMP_FORMAT_VERSION, dumps_dir
from data_loader.encode import encode_playlists
from data_loader.issue_dates import song_issue_dates
from data_loader.schema import validate_playlists, validate_song_meta
from data_loader.split import SPLIT_RATIO, SPLIT_SEED, group_sizes, seeded_split, split_paths, write_split
from data_loader.title import SP_VOCAB_SIZE, load_sentencepiece, normalise_title, train_sentencepiece
from data_loader.vocab import sorted_lookup


@contextlib.contextmanager
def _phase(name: str, timings: dict[str, float]) -> Iterator[None]:
    start, cpu = time.perf_counter(), time.process_time()
    yield
    timings[name] = time.perf_counter() - start
    print(f"  {name}: {timings[name]:.1f}s (cpu {time.process_time() - cpu:.1f}s)", flush=True)


def _code_version() -> str:
    try:
        return importlib.metadata.version("melon-playlist-bert")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: parsing millions of JSON objects triggers it over and over (half of
    json.load's time at full scale), and these records hold no reference cycles; refcounting still frees them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _songs_without_meta(songs: np.ndarray, issue: dict[int, int], train_path: Path, meta_path: Path) -> str | None:
    """A warning counting the distinct songs of train.json that song_meta.json lacks (None when there are none):
    they get no artist tokens, and their issue date comes from the playlists that hold them (issue_dates.py)."""
    distinct = sorted_unique(songs)
    known = np.sort(np.fromiter(issue, dtype=np.int64, count=len(issue)))
    missing = distinct[sorted_lookup(known, np.arange(len(known)), distinct) < 0]
    if not len(missing):
        return None
    examples = ", ".join(map(str, missing[:5].tolist())) + (", ..." if len(missing) > 5 else "")
    return (f"{len(missing)} of the {len(distinct)} distinct songs of {train_path} are not in {meta_path} "
            f"({examples}): they have no artist tokens")


def main(dataset_dir: str = "dataset", output_dir: str = "output") -> None:
    """Run step 1.

    Args:
        dataset_dir: holds train.json (required) and song_meta.json (optional); the split is written here.
        output_dir: the dumps go to {output_dir}/dumps.
    """
    check_output_dir("output_dir", output_dir)
    with _no_cyclic_gc():
        _run(Path(dataset_dir).resolve(), dumps_dir(output_dir).resolve())


def _run(dataset: Path, out: Path) -> None:
    train_path, meta_path = dataset / "train.json", dataset / "song_meta.json"
    timings: dict[str, float] = {}

    with _phase("load and validate train.json", timings):
        playlists = load_json(train_path)
        for warning in validate_playlists(playlists, str(train_path)):
            print(f"warning: {warning}")
        sources = {"train.json": {"path": str(train_path), "sha256": sha256_file(train_path), "n": len(playlists)}}

    artists, issue = None, None
    if meta_path.is_file():
        with _phase("load and validate song_meta.json", timings):
            song_meta = load_json(meta_path)
            validate_song_meta(song_meta, str(meta_path))
            artists = {r["id"]: r["artist_id_basket"] for r in song_meta}
            issue = {r["id"]: int(r["issue_date"]) for r in song_meta}
            sources["song_meta.json"] = {"path": str(meta_path), "sha256": sha256_file(meta_path), "n": len(song_meta)}
            del song_meta
    else:
        sources["song_meta.json"] = None
        print(f"WARNING: {meta_path} not found: the vocabulary has no artist tokens and predictions use no "
              f"release-date filter")

    with _phase("split", timings):
        parts = seeded_split(playlists, SPLIT_RATIO, SPLIT_SEED)
        orig_train, orig_val, questions, answers = parts
        sizes = group_sizes(len(orig_val))
        # a group's question can lose its songs or tags (a 1-item list keeps floor(1/2) = 0): count the questions
        # by what they show, as evaluate.py does, and the groups they were cut from separately
        types = Counter(map(question_type, questions))
        types = {t: types[t] for t in QUESTION_TYPES}
        print(f"  {len(playlists)} playlists -> train {len(orig_train)}, val {len(orig_val)}")
        print(f"  val questions by type, as evaluate.py counts them: {', '.join(f'{k} {v}' for k, v in types.items())}"
              f"\n  (split groups before masking: {', '.join(f'{k} {v}' for k, v in sizes.items())})")
        empty = sum(not a["songs"] for a in answers), sum(not a["tags"] for a in answers)
        if any(empty):
            print(f"warning: {empty[0]} validation answers have no songs and {empty[1]} no tags "
                  f"(playlists with fewer than 2 songs / tags); they score 0 on that part")
        if not orig_train:
            raise InputError(f"{train_path}: {len(playlists)} playlist(s) leave the training split empty "
                             f"(it takes int(N * {SPLIT_RATIO}))")
        if not any(normalise_title(r["plylst_title"]) for r in orig_train):
            raise InputError(f"{train_path}: no title in the training split keeps a letter or digit after "
                             f"normalisation; the title model needs some")

    # From here on files change: first make sure no older meta.json vouches for a half-rewritten folder, and
    # remove what killed runs left (temp files and SentencePiece folders of processes that no longer exist).
    (out / "meta.json").unlink(missing_ok=True)
    for folder in {out, *(path.parent for path in split_paths(dataset).values())}:
        for path in remove_stale_temps(folder):
            print(f"  removed {path}, left by a killed run")
    with _phase("write split", timings):
        split_files = write_split(dataset, parts)

    with _phase("vocabulary", timings):
        vocab, distinct = build_vocab(orig_train, artists)
        print(f"  num(before filtering): songs {distinct['songs']}, tags {distinct['tags']}, "
              f"artists {distinct['artists']}")
        print(f"  num(after filtering): songs {vocab.n_songs}, tags {vocab.n_tags}, artists {vocab.n_artists}")
        vocab.save(out / "vocab.json")

    with _phase("song issue dates", timings):
        all_songs = None
        if issue is not None:
            all_songs = flat_songs(playlists)  # (ids, lengths) over the whole of train.json
            warning = _songs_without_meta(all_songs[0], issue, train_path, meta_path)
            if warning:
                print(f"warning: {warning}")
        dates = song_issue_dates(vocab, playlists, issue, flat=all_songs)
        del all_songs
        with atomic_path(out / "song_issue_dates.npy") as tmp:
            with open(tmp, "wb") as f:
                np.save(f, dates)

    with _phase("sentencepiece", timings):
        sp_path, sp_size, sp_warning = train_sentencepiece((r["plylst_title"] for r in orig_train), out)
        if sp_warning:
            print(f"warning: {sp_warning}")
        sp = load_sentencepiece(sp_path)

    with _phase("encode", timings):
        encode_playlists(orig_train, vocab, sp).save(out / "train.npz")
        encode_playlists(questions, vocab, sp).save(out / "val_questions.npz")

    meta = {
        "format_version": DUMP_FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "code_version": _code_version(),
        "sources": sources,
        "has_song_meta": issue is not None,
        "split": {"ratio": SPLIT_RATIO, "seed": SPLIT_SEED, "n_train": len(orig_train), "n_val": len(orig_val),
                  "by_type": sizes},
        "val_question_types": types,  # as evaluate.py classifies questions/val.json (by_type: the split's groups)
        "vocab": {"n_songs": vocab.n_songs, "n_tags": vocab.n_tags, "n_artists": vocab.n_artists,
                  "size": vocab.size, "hash": vocab.hash, "recall": dict(RECALL)},
        "sentencepiece": {"vocab_size": sp_size, "requested": SP_VOCAB_SIZE, "warning": sp_warning},
        "paths": {"dataset_dir": str(dataset), **{k: str(p) for k, p in split_files.items()}},
    }
    write_json(out / "meta.json", meta, indent=2)
    print(f"done in {sum(timings.values()):.1f}s: {out}")


if __name__ == "__main__":
    run_cli(main)
