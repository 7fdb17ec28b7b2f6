"""Step 4: the two-model ensemble of docs/original.md 4, batched and vectorised on the device.

Each member is a model plus its weight rule. A member answers the questions its `accepts` selects; for those it
proposes the first 500 of its top-20000 songs that are neither seen nor issued after the playlist's updt_date,
and the first 50 of its top-300 tags that are not seen (sigmoid probabilities). The union is ranked by

    song score = sum over members of song_weight(n) * p      tag score = sum over members of tag_weight * q

with n = #in-vocab songs + #in-vocab tags. The default rules are the original's: model 1 weighs its songs by
n / (0.85 + n) and its tags by 1, model 2 by 0.85 / (0.85 + n) and 0.8, so a title-only question (n = 0) gets
model 2's scores times 1 and a question without title gets model 1's alone. Questions no member accepts are the
cold start: the 10 most frequent tags and the 100 most frequent songs that pass the date filter. Lists that come
out short of 100 songs / 10 tags (never in the original's setting) are filled the same way and counted in the log.

The ensemble loops over members and never branches on model type; which rule goes with which checkpoint is fixed
by the run folder name in `WEIGHT_RULES`.

(This module is not called predictor/ensemble.py because predictor/Ensemble.py, the original's entry-point name,
would collide with it on case-insensitive file systems.)
"""
from __future__ import annotations

import contextlib
import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from common.arena import N_SONGS, N_TAGS, SONG_CANDIDATES, TAG_CANDIDATES
from common.cli import check_flags, check_gpu, check_output_file, step_inputs
from common.jsonio import InputError, load_json, write_json
from data_loader.dumps import Dumps, load_dumps, open_dumps
from data_loader.encode import encode_playlists
from data_loader.playlists import CSR, Playlists
from data_loader.schema import validate_playlists
from data_loader.vocab import Vocab
from models import RUNS
from models.base import PlaylistModel
from predictor.blend import blend, fill_first_allowed
from trainer.candidates import first_survivors, issue_date_banned
from trainer.checkpoint import load_model
from trainer.device import pick_device
from trainer.run_dir import run_dir

TITLE_IMPORTANCE = 0.85  # model 2's song share is 0.85 / (0.85 + n)
TITLE_TAG_WEIGHT = 0.8  # model 2's tag scores are multiplied by 0.8
# per member: walk the top 20000 songs / 300 tags, keep the first SONG_CANDIDATES / TAG_CANDIDATES (500 / 50) survivors
SONG_SEARCH, TAG_SEARCH = 20000, 300


# ----------------------------------------------------------------------------------------------------------------
# Members and weight rules


def items_share(n: torch.Tensor, title_importance: float) -> torch.Tensor:
    """Song weight of the items model: n / (ti + n). n float64 [B] -> [B]."""
    return n / (title_importance + n)


def title_share(n: torch.Tensor, title_importance: float) -> torch.Tensor:
    """Song weight of the title model: ti / (ti + n). n float64 [B] -> [B]."""
    return title_importance / (title_importance + n)


@dataclass
class Member:
    """One model of the ensemble and the weights of its song and tag scores."""

    model: PlaylistModel
    song_weight: Callable[[torch.Tensor], torch.Tensor]  # n float64 [B] (in-vocab songs + tags) -> weight [B]
    tag_weight: float
    name: str = ""


def weight_rules(title_importance: float = TITLE_IMPORTANCE,
                 title_tag_weight: float = TITLE_TAG_WEIGHT) -> dict[str, tuple[Callable, float]]:
    """Run folder name -> (song weight rule, tag weight): the original's blend."""
    if title_importance <= 0:
        raise ValueError(f"title_importance must be > 0 (got {title_importance}): a title-only question has n = 0")
    return {
        "songs_tags_artists": (functools.partial(items_share, title_importance=title_importance), 1.0),
        "plylst_title": (functools.partial(title_share, title_importance=title_importance), title_tag_weight),
    }


class SeedAverage(PlaylistModel):
    """Soft voting over one model trained with several seeds: its scores are the logits of the mean sigmoid
    probability of its seed models, so that the candidates are ranked, and scored, by the averaged probability."""

    def __init__(self, models: Sequence[PlaylistModel], sources: Sequence[str | Path]):
        super().__init__()
        first = models[0]
        for model, source in zip(models, sources):
            if type(model) is not type(first) or model.config != first.config:
                raise InputError(f"{source}: another model or configuration than {sources[0]}; the seeds of a seed "
                                 f"ensemble must differ only in their seed")
        self.models = nn.ModuleList(models)
        self.name, self.config = first.name, first.config

    def accepts(self, q: Playlists) -> np.ndarray:
        return self.models[0].accepts(q)

    def question_batch(self, q: Playlists, rows: np.ndarray) -> dict[str, torch.Tensor]:
        return self.models[0].question_batch(q, rows)

    def scores(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """logit(mean over seeds of sigmoid(logits)), in float64: songs [B, S], tags [B, T]."""
        sums = [None, None]
        for model in self.models:
            for i, logits in enumerate(model.scores(batch)):
                p = torch.sigmoid(logits.double())
                sums[i] = p if sums[i] is None else sums[i].add_(p)
        return tuple(torch.logit(total / len(self.models)) for total in sums)


def run_checkpoints(output_dir: str | Path, run: str, seeds: Sequence[int] | None = None) -> list[Path]:
    """best.pt of run folder `run`, or of each `{run}_seed{s}`; InputError naming the first one missing."""
    paths = [run_dir(output_dir, run, s) / "best.pt" for s in (seeds or [None])]
    for path in paths:
        if not path.is_file():
            raise InputError(f"{path}: checkpoint not found; train the model first (python train.py"
                             f"{' --seeds=' + ','.join(map(str, seeds)) if seeds else ''})")
    return paths


def load_run(output_dir: str | Path, run: str, dumps: Dumps, device: torch.device,
             seeds: Sequence[int] | None = None) -> PlaylistModel:
    """The best checkpoint of run folder `run`, or the soft vote of `{run}_seed{s}` for every seed, in eval mode
    (no table dropout at inference); refuses a checkpoint of another model than `run` (a run trained with
    --run_name=<the other model>: its weight rule and routing would be the wrong model's), one trained on other
    dumps (vocabulary, title model) or never validated as a recommender (a model 2 stopped during MLM pre-training)."""
    paths = run_checkpoints(output_dir, run, seeds)
    models = [load_model(path, device, dumps, recommender=True) for path in paths]
    for path, model in zip(paths, models):
        if model.name != run:
            raise InputError(f"{path}: holds a {model.name} model, but member {run} needs a {run} model (a "
                             f"{model.name} run trained with --run_name={path.parent.name}?); train {run} there or "
                             f"rename that run folder")
    return models[0] if len(models) == 1 else SeedAverage(models, paths).eval()


def load_members(output_dir: str | Path, dumps: Dumps, device: torch.device, runs: Sequence[str] = RUNS,
                 title_importance: float = TITLE_IMPORTANCE, title_tag_weight: float = TITLE_TAG_WEIGHT,
                 seeds: Sequence[int] | None = None) -> list[Member]:
    """The best checkpoint of each run folder (or each run's seed ensemble), in `runs` order, with its weight rule."""
    rules = weight_rules(title_importance, title_tag_weight)
    return [Member(load_run(output_dir, run, dumps, device, seeds), *rules[run], run) for run in runs]


# ----------------------------------------------------------------------------------------------------------------
# Recommending


class StepTimer:
    """Wall time per named step; synchronises CUDA so that asynchronous kernels are charged to their step."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - start


@dataclass
class Recommendations:
    """Vocabulary indices per question (row i answers question i) and how the answers came about."""

    songs: np.ndarray  # int64 [N, 100] song index in [0, S)
    tags: np.ndarray  # int64 [N, 10] tag index in [0, T)
    order: np.ndarray  # int64 [N] output order: by first accepting member (question order within), cold start last
    counts: dict[str, int] = field(default_factory=dict)


def output_order(routes: np.ndarray) -> np.ndarray:
    """The original's results order from routes bool [M, N]: questions of the first member, then those only a later
    member accepts, then the cold start; question order within each group. Returns int64 [N]."""
    M, N = routes.shape
    first = np.full(N, M)
    for m in reversed(range(M)):
        first[routes[m]] = m
    return np.argsort(first, kind="stable")


def _mask(csr: CSR, offset: int, width: int, device: torch.device) -> torch.Tensor:
    """bool [B, width]: True at each row's items (label id - offset)."""
    mask = torch.zeros(len(csr), width, dtype=torch.bool, device=device)
    rows = torch.from_numpy(csr.row_ids()).to(device)
    cols = torch.from_numpy(csr.values.astype(np.int64) - offset).to(device)
    mask[rows, cols] = True
    return mask


@dataclass
class Candidates:
    """One member's candidates for a batch of b questions, best first (docs/original.md 4: the first SONG_CANDIDATES
    surviving songs of its top SONG_SEARCH, the first TAG_CANDIDATES tags of its top TAG_SEARCH). Rows the member does
    not answer, and the tail past the survivors, hold index -1 and probability 0."""

    song_p: torch.Tensor  # float [b, SONG_CANDIDATES] sigmoid probabilities
    song_idx: torch.Tensor  # long [b, SONG_CANDIDATES] song index in [0, S)
    tag_p: torch.Tensor  # float [b, TAG_CANDIDATES]
    tag_idx: torch.Tensor  # long [b, TAG_CANDIDATES] tag index in [0, T)


@dataclass
class BatchCandidates:
    """Every member's candidates for a batch of questions, and the masks that filtered them."""

    seen_songs: torch.Tensor  # bool [b, S] the question's own in-vocab songs
    seen_tags: torch.Tensor  # bool [b, T]
    banned: torch.Tensor  # bool [b, S] seen, or issued after the question's updt_date
    n: torch.Tensor  # float64 [b] in-vocab songs + tags of the question
    members: list[Candidates | None]  # per model, None where it answers none of the batch's questions


def batch_candidates(models: Sequence[PlaylistModel], routes: np.ndarray, q: Playlists, rows: np.ndarray,
                     vocab: Vocab, dates: torch.Tensor, device: torch.device, amp: bool,
                     timer: StepTimer) -> BatchCandidates:
    """Each model's candidates for questions `rows` of `q` (routes bool [M, N]: which model answers which question).

    The one per-model candidate extraction: the faithful blend (`recommend`) and the hybrid ensemble
    (predictor/hybrid.py) both take their members' candidates from here.
    """
    b, S, T = len(rows), vocab.n_songs, vocab.n_tags
    with timer("candidates/blend"):
        sub = q.take(rows)
        seen_songs = _mask(sub.songs, 0, S, device)  # [b, S]
        seen_tags = _mask(sub.tags, S, T, device)  # [b, T]
        banned = seen_songs | issue_date_banned(dates, torch.from_numpy(sub.updt).to(device))  # [b, S]
        n = torch.from_numpy(sub.songs.lengths() + sub.tags.lengths()).to(device, torch.float64)  # [b]
    out = BatchCandidates(seen_songs, seen_tags, banned, n, [])
    for model, accepts in zip(models, routes):
        local = np.flatnonzero(accepts[rows])
        if not len(local):
            out.members.append(None)
            continue
        with timer("forward"):
            batch = {k: v.to(device, non_blocking=True) for k, v in model.question_batch(q, rows[local]).items()}
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
                song_logits, tag_logits = model.scores(batch)  # [l, S], [l, T]
        with timer("candidates/blend"):
            at = torch.from_numpy(local).to(device)
            every = len(local) == b  # skip the row gathers in the common case
            found = []
            for logits, blocked, k_search, k_keep in ((song_logits, banned, SONG_SEARCH, SONG_CANDIDATES),
                                                      (tag_logits, seen_tags, TAG_SEARCH, TAG_CANDIDATES)):
                p, i = first_survivors(logits, blocked if every else blocked[at], k_search, k_keep)
                idx = torch.full((b, k_keep), -1, dtype=torch.long, device=device)
                prob = torch.zeros(b, k_keep, dtype=p.dtype, device=device)
                idx[at], prob[at] = i, p
                found += [prob, idx]
            out.members.append(Candidates(*found))
    return out


def _recommend_batch(members: list[Member], routes: np.ndarray, q: Playlists, rows: np.ndarray, vocab: Vocab,
                     dates: torch.Tensor, device: torch.device, amp: bool, timer: StepTimer,
                     counts: dict[str, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Answer questions `rows` of `q`: song indices long [b, 100], tag indices long [b, 10]."""
    b, S, T = len(rows), vocab.n_songs, vocab.n_tags
    c = batch_candidates([m.model for m in members], routes, q, rows, vocab, dates, device, amp, timer)
    seen_songs, seen_tags, banned = c.seen_songs, c.seen_tags, c.banned
    # each member's weighted candidates (0 in the rows it does not answer); the empty pair stands for "no member"
    song_idx = [torch.empty(b, 0, dtype=torch.long, device=device)]
    song_score = [torch.empty(b, 0, dtype=torch.float64, device=device)]
    tag_idx, tag_score = song_idx[:], song_score[:]
    with timer("candidates/blend"):
        for member, cand in zip(members, c.members):
            if cand is None:
                continue
            song_idx.append(cand.song_idx)
            song_score.append(cand.song_p.double() * member.song_weight(c.n)[:, None])
            tag_idx.append(cand.tag_idx)
            tag_score.append(cand.tag_p.double() * member.tag_weight)
        songs = blend(torch.cat(song_idx, 1), torch.cat(song_score, 1), N_SONGS)
        tags = blend(torch.cat(tag_idx, 1), torch.cat(tag_score, 1), N_TAGS)
        cold = torch.from_numpy(~routes[:, rows].any(0)).to(device)
        songs, short_songs = fill_first_allowed(songs, banned)
        songs, relaxed = fill_first_allowed(songs, seen_songs)  # only if the date filter left too few songs
        tags, short_tags = fill_first_allowed(tags, seen_tags)
        counts["cold start"] += int(cold.sum())
        counts["songs filled from popularity"] += int((short_songs & ~cold).sum())
        counts["tags filled from popularity"] += int((short_tags & ~cold).sum())
        counts["date filter relaxed"] += int(relaxed.sum())
        for what, out, k in (("songs", songs, N_SONGS), ("tags", tags, N_TAGS)):
            if (out < 0).any():
                pid = int(q.ids[rows[int((out < 0).any(1).nonzero()[0, 0])]])
                raise InputError(f"playlist id {pid}: the vocabulary has too few {what} to recommend {k} "
                                 f"unseen ones ({S} songs, {T} tags)")
    return songs, tags


@torch.inference_mode()
def ensemble_recommend(members: list[Member], q: Playlists, vocab: Vocab, song_issue_dates: np.ndarray,
                       device: torch.device, bs: int = 128, amp: bool = False,
                       timer: StepTimer | None = None) -> Recommendations:
    """Recommend 100 songs and 10 tags for every question of `q` (encoded with `vocab`)."""
    timer = timer or StepTimer(device)
    for member in members:
        member.model.eval()
    routes = np.stack([m.model.accepts(q) for m in members]) if members else np.zeros((0, len(q)), bool)  # [M, N]
    counts = {f"routed to {m.name or i}": int(r.sum()) for i, (m, r) in enumerate(zip(members, routes))}
    counts |= dict.fromkeys(("cold start", "songs filled from popularity", "tags filled from popularity",
                             "date filter relaxed"), 0)
    dates = torch.from_numpy(np.asarray(song_issue_dates, dtype=np.int64)).to(device)
    songs = np.zeros((len(q), N_SONGS), dtype=np.int64)
    tags = np.zeros((len(q), N_TAGS), dtype=np.int64)
    for start in tqdm(range(0, len(q), bs), desc="ensemble", unit="batch", disable=None, leave=False):
        rows = np.arange(start, min(start + bs, len(q)))
        s, t = _recommend_batch(members, routes, q, rows, vocab, dates, device, amp, timer, counts)
        songs[rows], tags[rows] = s.cpu().numpy(), t.cpu().numpy()
    return Recommendations(songs, tags, output_order(routes), counts)


def to_records(q: Playlists, rec: Recommendations, vocab: Vocab, order: np.ndarray | None = None) -> list[dict]:
    """results.json records {"id", "songs", "tags"} with raw ids and tag strings, in `order` (default rec.order)."""
    song_ids = np.asarray(vocab.songs, dtype=np.int64)
    tag_names = np.asarray(vocab.tags, dtype=object)
    o = rec.order if order is None else order
    return [{"id": pid, "songs": s, "tags": t}
            for pid, s, t in zip(q.ids[o].tolist(), song_ids[rec.songs[o]].tolist(), tag_names[rec.tags[o]].tolist())]


def encode_questions(records: list[dict], source: str, dumps: Dumps) -> Playlists:
    """Validate and encode question records (songs, tags and title may be empty); `source` names them in errors."""
    for warning in validate_playlists(records, source, require_nonempty=False):
        print(f"warning: {warning}")
    return encode_playlists(records, dumps.vocab, dumps.sp)


def read_questions(path: str | Path, dumps: Dumps) -> tuple[list[dict], Playlists]:
    """Load, validate and encode a question file."""
    records = load_json(path)
    return records, encode_questions(records, str(path), dumps)


# ----------------------------------------------------------------------------------------------------------------
# Entry point (predictor/Ensemble.py)


def run_ensemble(bs: int = 128, gpu: int | None = None, title_importance: float = TITLE_IMPORTANCE,
                 title_tag_weight: float = TITLE_TAG_WEIGHT, question_path: str = "./dataset/val.json",
                 out_path: str = "./reco_result/results.json", dataset_dir: str = "dataset",
                 output_dir: str = "output", amp: bool = False, runs: Sequence[str] = RUNS,
                 seeds: Sequence[int] | None = None) -> dict:
    """Recommend for a question file with the ensemble of the best checkpoints and write results.json.

    Args:
        bs: questions per batch.
        gpu: CUDA device; -1 = CPU; unset = cuda:0 when there is one, else the CPU.
        title_importance: model 2's song share is title_importance / (title_importance + n).
        title_tag_weight: weight of model 2's tag scores (model 1's are weighted 1).
        question_path: the question file (official schema).
        out_path: where results.json goes (written atomically).
        dataset_dir: the dataset folder, for messages and for the files out_path must not replace; when it holds
            train.json, the dumps must have been made from it (a folder of questions alone is not checked).
        output_dir: the folder holding dumps/ and the run folders with best.pt.
        amp: bf16 autocast for the forward passes on CUDA.
        runs: the members, by run folder name (a subset gives one model alone; the rest is cold start).
        seeds: each member is the soft vote of its run folders {run}_seed{s} (default: the run folder itself).
    Returns:
        the counts and the seconds per step (also printed).
    """
    check_flags(bs=(bs >= 1, "at least 1"),
                title_importance=(title_importance > 0, "> 0 (a title-only question has n = 0)"),
                title_tag_weight=(title_tag_weight >= 0, "at least 0"))
    check_gpu(gpu)
    check_output_file("out_path", out_path, step_inputs(dataset_dir, output_dir, question_path))
    if not Path(question_path).is_file():
        raise InputError(f"{question_path}: question file not found")
    device = pick_device(gpu)
    timer = StepTimer(device)
    print(f"ensemble on {device}; dataset {dataset_dir}, models and dumps from {output_dir}")
    with timer("load"):
        has_train = (Path(dataset_dir) / "train.json").is_file()
        dumps = open_dumps(dataset_dir, output_dir) if has_train else load_dumps(output_dir)
        members = load_members(output_dir, dumps, device, tuple(runs), title_importance, title_tag_weight, seeds)
    with timer("read+encode"):
        _, q = read_questions(question_path, dumps)
    rec = ensemble_recommend(members, q, dumps.vocab, dumps.song_issue_dates, device, bs, amp, timer)
    with timer("write"):
        write_json(out_path, to_records(q, rec, dumps.vocab))
    total = sum(timer.seconds.values())
    work = sum(timer.seconds.get(k, 0.0) for k in ("forward", "candidates/blend"))
    print(f"wrote {len(q)} recommendations to {out_path}")
    print("  " + ", ".join(f"{k}: {v}" for k, v in rec.counts.items()))
    print(f"  {len(q) / max(work, 1e-9):.1f} playlists/s (forward + candidates/blend), "
          f"{len(q) / max(total, 1e-9):.1f} playlists/s end to end")
    print("  time: " + ", ".join(f"{k} {v:.2f}s" for k, v in timer.seconds.items()) + f", total {total:.2f}s")
    return {"counts": rec.counts, "seconds": timer.seconds, "n": len(q)}
