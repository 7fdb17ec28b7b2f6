"""Where step 1 puts its outputs, and the one loader every later step uses.

Layout (the split files sit next to the input, as in the original; the rest under the output folder):

    {dataset_dir}/orig/train.json, orig/val.json       the 90/10 split of train.json
    {dataset_dir}/questions/val.json, answers/val.json  the masked local validation questions and their answers
    {output_dir}/dumps/meta.json                        sizes, thresholds, source hashes, format version
    {output_dir}/dumps/vocab.json                       model-1 label vocabulary (data_loader/vocab.py)
    {output_dir}/dumps/plylst_title_bpe.model|.vocab    SentencePiece BPE model (+ plylst_titles.txt)
    {output_dir}/dumps/song_issue_dates.npy             int32 [S] corrected issue date of every vocab song (YYYYMMDD)
    {output_dir}/dumps/train.npz                        orig/train.json as Playlists
    {output_dir}/dumps/val_questions.npz                questions/val.json as Playlists
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import hashlib

import numpy as np
import sentencepiece as spm

from common.jsonio import InputError, load_json, sha256_file
from data_loader.playlists import Playlists
from data_loader.title import load_sentencepiece
from data_loader.vocab import Vocab

DUMP_FORMAT_VERSION = 1


def dumps_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / "dumps"


@dataclass
class Dumps:
    """Lazy view of a dumps folder; each artefact is read on first use."""

    dir: Path
    meta: dict

    @cached_property
    def vocab(self) -> Vocab:
        return Vocab.load(self.dir / "vocab.json")

    @cached_property
    def sp(self) -> spm.SentencePieceProcessor:
        return load_sentencepiece(self.dir / "plylst_title_bpe.model")

    @cached_property
    def sp_hash(self) -> str:
        """Fingerprint of the SentencePiece model: title piece ids mean other pieces under another model."""
        return hashlib.sha256((self.dir / "plylst_title_bpe.model").read_bytes()).hexdigest()[:16]

    @property
    def fingerprint(self) -> dict[str, str]:
        """What a checkpoint records of the data it was trained on (trainer/checkpoint.py check_data)."""
        return {"vocab_hash": self.vocab.hash, "sp_hash": self.sp_hash}

    @cached_property
    def song_issue_dates(self) -> np.ndarray:
        """int32 [S]: a song is filtered out of a playlist's candidates when its date > the playlist's updt."""
        return np.load(self.dir / "song_issue_dates.npy")

    @cached_property
    def train(self) -> Playlists:
        return Playlists.load(self.dir / "train.npz")

    @cached_property
    def val_questions(self) -> Playlists:
        return Playlists.load(self.dir / "val_questions.npz")

    @property
    def val_answers_path(self) -> Path:
        return Path(self.meta["paths"]["val_answers"])

    @property
    def val_questions_path(self) -> Path:
        return Path(self.meta["paths"]["val_questions"])


def load_dumps(output_dir: str | Path) -> Dumps:
    """Open the dumps of a step-1 run, refusing ones written by another format version."""
    d = dumps_dir(output_dir)
    meta_path = d / "meta.json"
    if not meta_path.is_file():
        raise InputError(f"{meta_path}: not found; run step 1 first: python data_loader/dump_datasets.py "
                         f"--output_dir={output_dir}")
    meta = load_json(meta_path)
    if meta.get("format_version") != DUMP_FORMAT_VERSION:
        raise InputError(f"{meta_path}: dump format {meta.get('format_version')} but this code reads "
                         f"{DUMP_FORMAT_VERSION}; rerun step 1")
    return Dumps(d, meta)


def open_dumps(dataset_dir: str | Path, output_dir: str | Path) -> Dumps:
    """`load_dumps`, checked to have been made from {dataset_dir}/train.json (the sha256 step 1 recorded): models,
    baselines and answers read together must come from one dataset, or scores and candidates mix two of them."""
    dumps = load_dumps(output_dir)
    meta_path = dumps.dir / "meta.json"
    source = (dumps.meta.get("sources") or {}).get("train.json")
    if not isinstance(source, dict) or not isinstance(source.get("sha256"), str):
        raise InputError(f"{meta_path}: sources.train.json: no record of the train.json these dumps were made from; "
                         f"rerun step 1")
    made_from = f"{source.get('path')} (sha256 {source['sha256'][:12]})"
    train = Path(dataset_dir) / "train.json"
    if not train.is_file():
        raise InputError(f"{meta_path}: these dumps were made from {made_from}, but {train} does not exist; pass "
                         f"the matching --dataset_dir")
    digest = sha256_file(train)
    if digest != source["sha256"]:
        raise InputError(f"{meta_path}: these dumps were made from {made_from}, not {train} (sha256 {digest[:12]}); "
                         f"rerun step 1 or pass the matching --dataset_dir")
    return dumps
