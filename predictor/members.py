"""The hybrid ensemble's members and their candidates for a question file.

A member is a BERT model by run folder (songs_tags_artists, plylst_title; with `seeds`, the soft vote of their
`{run}_seed{s}` folders) or a ranker of baselines/rankers.py (playlist_knn, item_cf, item_cf_svm, als, bm25,
most_popular). Each proposes SONG_CANDIDATES songs and TAG_CANDIDATES tags per question with its own scores
(common/arena.py):

- a BERT member what the faithful blend takes from it (predictor/ensembling.batch_candidates: the first 500 songs
  and 50 tags that survive the seen and date filters; none for the questions the model does not accept), turned
  into raw song ids and tag strings;
- a ranker its first 500 songs / 50 tags from its corpus (`read_question_set`: fed or orig/train.json) and
  song_meta.json when present.

Songs are raw song ids, so members with different vocabularies mix.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from baselines.common import Ranked, load_split
from baselines.rankers import RANKERS
from common.arena import QUESTION_TYPES, SONG_CANDIDATES, TAG_CANDIDATES, question_type
from common.jsonio import InputError, sha256_file
from data_loader.dumps import Dumps, open_dumps
from data_loader.playlists import Playlists
from models import RUNS
from models.base import PlaylistModel
from predictor.ensembling import StepTimer, batch_candidates, encode_questions, load_run, run_checkpoints
from trainer.device import pick_device


def known_members() -> tuple[str, ...]:
    """Every member name: the BERT run folders, then the rankers (baselines/rankers.py)."""
    return (*RUNS, *RANKERS)


def unknown_member(name: str) -> str:
    return f"unknown member {name!r}; known members: {', '.join(known_members())}"


@torch.inference_mode()
def bert_ranked(model: torch.nn.Module, q: Playlists, dumps: Dumps, device: torch.device, bs: int = 128,
                amp: bool = False) -> Ranked:
    """A BERT model's candidates (those the faithful blend takes from it) as raw song ids and tag strings;
    questions the model does not accept get empty rows."""
    model.eval()
    vocab = dumps.vocab
    routes = model.accepts(q)[None]  # [1, N]
    dates = torch.from_numpy(np.asarray(dumps.song_issue_dates, dtype=np.int64)).to(device)
    timer = StepTimer(device)
    N = len(q)
    song_idx = np.full((N, SONG_CANDIDATES), -1, dtype=np.int64)
    song_p = np.zeros((N, SONG_CANDIDATES), dtype=np.float32)
    tag_idx = np.full((N, TAG_CANDIDATES), -1, dtype=np.int64)
    tag_p = np.zeros((N, TAG_CANDIDATES), dtype=np.float32)
    for start in range(0, N, bs):
        rows = np.arange(start, min(start + bs, N))
        c = batch_candidates([model], routes, q, rows, vocab, dates, device, amp, timer).members[0]
        if c is not None:
            song_idx[rows], song_p[rows] = c.song_idx.cpu().numpy(), c.song_p.float().cpu().numpy()
            tag_idx[rows], tag_p[rows] = c.tag_idx.cpu().numpy(), c.tag_p.float().cpu().numpy()
    song_ids = np.asarray(vocab.songs, dtype=np.int64)
    tag_names = np.asarray(vocab.tags, dtype=object)
    return Ranked(q.ids.astype(np.int64), np.where(song_idx >= 0, song_ids[np.maximum(song_idx, 0)], -1), song_p,
                  np.where(tag_idx >= 0, tag_names[np.maximum(tag_idx, 0)], None), tag_p)


@dataclass
class QuestionSet:
    """A question file with what every member and the fallback need."""

    records: list[dict]
    train: list[dict]  # the rankers' corpus: orig/train.json, or fed (read_question_set)
    song_meta: list[dict] | None
    types: np.ndarray  # int [N] index into QUESTION_TYPES


def read_question_set(dataset_dir: str | Path, question_path: str | Path, feed: bool = True,
                      whole_train: bool = True) -> QuestionSet:
    """The questions, the rankers' corpus and song_meta.json (when present), validated. The corpus
    (baselines/common.py load_split): fed, train.json (whole_train; else orig/train.json) less the questions' full
    playlists plus their visible parts; not fed, orig/train.json."""
    train, records, song_meta = load_split(dataset_dir, question_path, feed=feed, whole_train=whole_train)
    types = np.array([QUESTION_TYPES.index(question_type(q)) for q in records], dtype=np.int64)
    return QuestionSet(records, train, song_meta, types)


@dataclass
class BertMembers:
    """The BERT members' models, loaded (and so checked) before any member runs, with their dumps and device."""

    models: dict[str, PlaylistModel]  # member name -> its model (a SeedAverage with seeds)
    dumps: Dumps
    device: torch.device
    checkpoints_sha256: dict[str, str]  # run folder name ({run} or {run}_seed{s}) -> sha256 of its best.pt


def load_bert_members(members: Sequence[str], dataset_dir: str | Path, output_dir: str | Path,
                      seeds: Sequence[int] | None = None, gpu: int | None = None) -> BertMembers | None:
    """Every BERT member's model (None without one), refused before any member runs when a checkpoint is missing
    (every seed's, with seeds), holds another model, is no recommender yet, or was trained on other dumps, and when
    the dumps were made from another train.json than {dataset_dir}/train.json."""
    runs = [m for m in members if m in RUNS]
    if not runs:
        return None
    paths = [path for run in runs for path in run_checkpoints(output_dir, run, seeds)]  # every one there
    dumps = open_dumps(dataset_dir, output_dir)
    device = pick_device(gpu)
    digests = {path.parent.name: sha256_file(path) for path in paths}  # of the files about to be loaded
    return BertMembers({run: load_run(output_dir, run, dumps, device, seeds) for run in runs}, dumps, device, digests)


def member_rankings(members: Sequence[str], qs: QuestionSet, question_path: str | Path, bert: BertMembers | None,
                    bs: int = 128, amp: bool = False) -> tuple[dict[str, Ranked], dict[str, float]]:
    """Each member's Ranked for the questions (computed once), and the seconds each took; the BERT members' models
    come from `load_bert_members`."""
    rankings, seconds = {}, {}
    if bert is not None:
        q = encode_questions(qs.records, str(question_path), bert.dumps)
    for name in members:
        start = time.perf_counter()
        if name in RUNS:
            rankings[name] = bert_ranked(bert.models[name], q, bert.dumps, bert.device, bs, amp)
        elif name in RANKERS:
            rankings[name] = RANKERS[name](qs.train, qs.records, qs.song_meta, n_songs=SONG_CANDIDATES,
                                           n_tags=TAG_CANDIDATES)
        else:
            raise InputError(unknown_member(name))
        seconds[name] = time.perf_counter() - start
        if not np.array_equal(rankings[name].ids, [r["id"] for r in qs.records]):
            raise RuntimeError(f"member {name}: its candidates are not in question order")
        print(f"  {name}: candidates in {seconds[name]:.1f}s")
    return rankings, seconds
