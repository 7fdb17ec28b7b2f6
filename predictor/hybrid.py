"""The hybrid ensemble: any members, their candidate lists fused with weights per question type that
predictor/search_weights.py searches on the local validation questions (and reports on the half it did not fit on).

Members: the BERT models by run folder (songs_tags_artists, plylst_title; with `seeds`, the soft vote of their
`{run}_seed{s}` folders) and the ranking baselines of baselines/rankers.py (playlist_knn, ...). A BERT member
proposes what the faithful blend takes from it (predictor/ensembling.batch_candidates: the first 500 songs and 50
tags that survive the seen and date filters, none for the questions the model does not accept), turned into raw
song ids and tag strings; a baseline proposes its first 500 songs / 50 tags from {dataset_dir}/orig/train.json
(and song_meta.json when present). Songs are fused by raw song id, so members with different vocabularies mix.

Fusion (predictor/fusion.py): each candidate gets a value f, and an item's score for a question of type t
(evaluate.QUESTION_TYPES) is the sum over the members proposing it of w[t, member] * f. The answer is the 100 songs /
10 tags of highest score, topped up from popularity over orig/train.json, skipping the question's own items and
(with song_meta.json) songs issued after its updt_date. Fusions, each with its parameter searched per target:

- score (default): f = max(s / c, 1e-6) ** p, the member's own score s of the candidate (a sigmoid probability, a sum
  of neighbour similarities, an ALS dot product, ...) over c, the median of the member's best score on the fit
  questions, so that members of unrelated scales mix; p in 0.25..4;
- exp: f = exp(-r / T) of the 0-based rank r; rrf: f = 1 / (k + r + 1), reciprocal rank fusion;
- calibrated: f = the rate at which the member's candidates of that rank were answer items on the fit questions of
  the same type (binned ranks, shrunk towards the member's overall rate, non-increasing): a probability on one scale
  for every member.

Why score, with one weight vector per question type for songs and tags ("tied"): held-out score (each half scored
with the weights fitted on the other half), mean of the splits seeded 0 and 1 (`search_weights --compare --seed=S`);
members "3" = songs_tags_artists, plylst_title, playlist_knn; "6" = those and item_cf, als, bm25 (the peers, measured
from their branch before the merge); demo: BERT models trained 15 + 16 epochs (scores 0.3316 / 0.3718); real1: the
real split of test.json, BERT models time-boxed to 8 minutes (popularity level):

| split, members | best single | exp | rrf | calibrated | score | score, song/tag weights apart |
|---|---:|---:|---:|---:|---:|---:|
| demo, 3 | 0.401468 (kNN) | 0.401999 | 0.402435 | 0.401928 | **0.402987** | 0.402259 |
| demo, 6 | 0.401468 (kNN) | 0.402506 | 0.404371 | 0.404226 | **0.404871** | 0.404197 |
| real1, 3 | 0.070450 (kNN) | 0.069820 | 0.069828 | 0.070067 | 0.069915 | 0.069625 |
| real1, 6 | 0.075281 (ALS) | 0.077096 | 0.076824 | 0.076961 | 0.077819 | **0.077895** |

score is the best fusion in three of the four (and 0.00015 from calibrated in the fourth, where no fusion beats the
kNN: there the BERT members add nothing); tied weights beat separate ones in 14 of the 16 pairs (not shown: the
other fusions), by fewer parameters to fit on a half (title-only questions: 25 per half on the demo).

The weights file `{output_dir}/ensemble_weights.json` (written by search_weights, read strictly by `load_weights`):

    format_version   1
    members          member names, in fusion order (ties between equal scores go to the earlier member)
    seeds            null, or the seeds of the BERT members' seed ensembles ({run}_seed{s})
    fusion           {"kind", "songs": parameter, "tags": parameter} (T, k or p; null for calibrated)
    weights          {question type: {"songs": {member: w}, "tags": {member: w}}}, every type, w >= 0, not all 0
    calibration      calibrated only: {target: {question type: {member: [hit rate per rank bin]}}}
    scale            score only: {target: {member: c}}
    tie_song_tag_weights, seed
    split            dataset_dir, question_path, answer_path, sha256 of the questions, answers and orig/train.json,
                     n_questions, vocab_hash (of the dumps, with BERT members)
    heldout          the held-out score (music_ndcg, tag_ndcg, score, count, by_type) of `results` (hybrid_heldout.json
                     beside it, with its sha256): each half answered with the weights fitted on the other half
    folds            per half: fit_on, n_fit, n_heldout, heldout (its score), fusion, weights, calibration, scale
    seconds          members' candidates, search, total

fusion / weights / calibration / scale at the top are fitted on all the validation questions, for new questions.
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from baselines.common import Ranked, load_split, popularity
from baselines.playlist_knn import _issue_dates
from baselines.rankers import RANKERS
from data_loader.cli import check_gpu, check_output_file
from data_loader.dumps import Dumps, load_dumps
from data_loader.jsonio import InputError, load_json, write_json
from data_loader.playlists import Playlists, updt_to_int
from evaluate import QUESTION_TYPES, question_type
from predictor import fusion
from predictor.ensembling import (RUNS, SONG_KEEP, TAG_KEEP, StepTimer, batch_candidates, encode_questions,
                                  load_run, run_folder)
from trainer.device import pick_device

FORMAT_VERSION = 1
WEIGHTS_FILE = "ensemble_weights.json"
HELDOUT_FILE = "hybrid_heldout.json"  # the held-out answers: each half answered with the other half's weights
DEFAULT_FUSION = "score"


def known_members() -> tuple[str, ...]:
    """Every member name: the BERT run folders, then the rankers (baselines/rankers.py)."""
    return (*RUNS, *RANKERS)


def unknown_member(name: str) -> str:
    return f"unknown member {name!r}; known members: {', '.join(known_members())}"


# ----------------------------------------------------------------------------------------------------------------
# Members' candidates


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
    song_idx = np.full((N, SONG_KEEP), -1, dtype=np.int64)
    song_p = np.zeros((N, SONG_KEEP), dtype=np.float32)
    tag_idx = np.full((N, TAG_KEEP), -1, dtype=np.int64)
    tag_p = np.zeros((N, TAG_KEEP), dtype=np.float32)
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
class Questions:
    """A question file with what every member and the fallback need."""

    records: list[dict]
    train: list[dict]  # orig/train.json
    song_meta: list[dict] | None
    types: np.ndarray  # int [N] index into QUESTION_TYPES


def read_questions(dataset_dir: str | Path, question_path: str | Path) -> Questions:
    """The questions, orig/train.json and song_meta.json (when present), validated."""
    train, records, song_meta = load_split(dataset_dir, question_path)
    types = np.array([QUESTION_TYPES.index(question_type(q)) for q in records], dtype=np.int64)
    return Questions(records, train, song_meta, types)


def member_rankings(members: Sequence[str], qs: Questions, question_path: str | Path, output_dir: str | Path,
                    seeds: Sequence[int] | None = None, gpu: int | None = None, bs: int = 128,
                    amp: bool = False) -> tuple[dict[str, Ranked], dict[str, float]]:
    """Each member's Ranked for the questions (computed once), and the seconds each took."""
    rankings, seconds = {}, {}
    bert = [m for m in members if m in RUNS]
    if bert:
        device = pick_device(gpu)
        dumps = load_dumps(output_dir)
        q = encode_questions(qs.records, str(question_path), dumps)
    for name in members:
        start = time.perf_counter()
        if name in RUNS:
            model = load_run(output_dir, name, dumps, device, seeds)
            rankings[name] = bert_ranked(model, q, dumps, device, bs, amp)
        elif name in RANKERS:
            rankings[name] = RANKERS[name](qs.train, qs.records, qs.song_meta, n_songs=SONG_KEEP, n_tags=TAG_KEEP)
        else:
            raise InputError(unknown_member(name))
        seconds[name] = time.perf_counter() - start
        if not np.array_equal(rankings[name].ids, [r["id"] for r in qs.records]):
            raise RuntimeError(f"member {name}: its candidates are not in question order")
        print(f"  {name}: candidates in {seconds[name]:.1f}s")
    return rankings, seconds


def fallback_lists(qs: Questions) -> tuple[np.ndarray, np.ndarray]:
    """Per question the first 100 songs (raw ids, int64 [N, 100]) and 10 tags (object [N, 10]) by popularity over
    orig/train.json that it may get: not its own, and (with song_meta.json) not issued after its updt_date.
    Raises InputError when even the whole popularity list is too short."""
    song_pop = np.asarray(popularity(p["songs"] for p in qs.train), dtype=np.int64)
    tag_pop = np.asarray(popularity(p["tags"] for p in qs.train), dtype=object)
    out = []
    for pop, key, k in ((song_pop, "songs", fusion.K_OUT["songs"]), (tag_pop, "tags", fusion.K_OUT["tags"])):
        where = {item: i for i, item in enumerate(pop.tolist())}
        seen = [np.array([where[x] for x in q[key] if x in where], dtype=np.int64) for q in qs.records]
        dates = limit = None
        if key == "songs" and qs.song_meta is not None:
            dates = _issue_dates(song_pop, qs.train, qs.song_meta)
            limit = np.array([updt_to_int(q["updt_date"]) for q in qs.records], dtype=np.int64)
        pos, _ = fusion.first_allowed(len(pop), seen, k, dates, limit)
        if (pos < 0).any():
            pid = qs.records[int(np.flatnonzero((pos < 0).any(1))[0])]["id"]
            raise InputError(f"playlist id {pid}: orig/train.json holds too few {key} to recommend {k} unseen ones")
        out.append(pop[pos])
    return out[0], out[1]


@dataclass
class Encoded:
    """The pools of both targets, and the tag strings behind the tag codes."""

    pools: dict[str, fusion.Pool]
    tag_names: np.ndarray  # object [n_codes]
    tag_code: dict[str, int]


def encode(rankings: Sequence[Ranked], fallback: tuple[np.ndarray, np.ndarray]) -> Encoded:
    """Pools over the members' candidates (in member order) and the fallback lists; tags become integer codes."""
    tag_lists = [r.tags for r in rankings] + [fallback[1]]
    flat = np.concatenate([t.ravel() for t in tag_lists]).astype(object)
    present = np.not_equal(flat, None)
    names, inverse = np.unique(flat[present].astype(str), return_inverse=True)
    codes = np.full(len(flat), -1, dtype=np.int64)
    codes[present] = inverse
    parts = np.split(codes, np.cumsum([t.size for t in tag_lists])[:-1])
    tags = [c.reshape(t.shape) for c, t in zip(parts, tag_lists)]
    pools = {"songs": fusion.Pool.build([r.songs for r in rankings], fallback[0], [r.song_scores for r in rankings]),
             "tags": fusion.Pool.build(tags[:-1], tags[-1], [r.tag_scores for r in rankings])}
    return Encoded(pools, names.astype(object), {t: i for i, t in enumerate(names.tolist())})


def answer_codes(answers: Sequence[dict], enc: Encoded) -> list[dict[str, list[int]]]:
    """Answers as item codes (a tag no member proposes gets -2, which matches nothing but counts in the IDCG)."""
    return [{"songs": list(a["songs"]), "tags": [enc.tag_code.get(t, -2) for t in a["tags"]]} for a in answers]


def to_records(ids: Sequence[int], answered: dict[str, np.ndarray], enc: Encoded) -> list[dict]:
    """results.json records from `fusion.fuse` output, in the given order."""
    return [{"id": int(pid), "songs": s, "tags": t} for pid, s, t in
            zip(ids, answered["songs"].tolist(), enc.tag_names[answered["tags"]].tolist())]


# ----------------------------------------------------------------------------------------------------------------
# The weights file


def fit_json(fits: dict[str, fusion.TargetFit], members: Sequence[str]) -> dict:
    """{"fusion", "weights", "calibration"} of a fit: weights[type][target][member]."""
    out = {"fusion": {"kind": fits["songs"].kind, **{t: fits[t].param for t in fusion.TARGETS}},
           "weights": {qt: {t: {m: round(float(fits[t].weights[i, j]), 6) for j, m in enumerate(members)}
                            for t in fusion.TARGETS} for i, qt in enumerate(QUESTION_TYPES)},
           "calibration": None, "scale": None}
    if fits["songs"].kind == "calibrated":
        out["calibration"] = {t: {qt: {m: [float(x) for x in fits[t].calibration[i, j]] for j, m in enumerate(members)}
                                  for i, qt in enumerate(QUESTION_TYPES)} for t in fusion.TARGETS}
    if fits["songs"].kind == "score":
        out["scale"] = {t: {m: float(fits[t].scale[j]) for j, m in enumerate(members)} for t in fusion.TARGETS}
    return out


def _number(value: Any, where: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 \
            or (positive and value == 0):
        raise InputError(f"{where}: expected a finite number {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def _mapping(obj: Any, where: str, keys: Sequence[str]) -> dict:
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected an object with keys {', '.join(keys)}, got {type(obj).__name__}")
    for k in keys:
        if k not in obj:
            raise InputError(f"{where}: missing key {k!r}")
    extra = sorted(set(obj) - set(keys))
    if extra:
        raise InputError(f"{where}: unknown key {extra[0]!r} (expected {', '.join(keys)})")
    return obj


def parse_fit(obj: dict, members: Sequence[str], where: str) -> dict[str, fusion.TargetFit]:
    """A fit from its JSON (`fit_json`), checked key by key; `where` names the file (and the fold) in errors."""
    spec = _mapping(obj.get("fusion"), f"{where}: fusion", ("kind", *fusion.TARGETS))
    kind = spec["kind"]
    if kind not in fusion.FUSIONS:
        raise InputError(f"{where}: fusion.kind: unknown fusion {kind!r}; known: {', '.join(fusion.FUSIONS)}")
    params = {}
    for t in fusion.TARGETS:
        if kind == "calibrated":
            if spec[t] is not None:
                raise InputError(f"{where}: fusion.{t}: the calibrated fusion has no parameter (null), got {spec[t]!r}")
            params[t] = None
        else:
            params[t] = _number(spec[t], f"{where}: fusion.{t}", positive=kind in ("exp", "score"))
    weights = _mapping(obj.get("weights"), f"{where}: weights", QUESTION_TYPES)
    arrays = {t: np.zeros((fusion.N_TYPES, len(members))) for t in fusion.TARGETS}
    for i, qt in enumerate(QUESTION_TYPES):
        per_target = _mapping(weights[qt], f"{where}: weights.{qt}", fusion.TARGETS)
        for t in fusion.TARGETS:
            w = _mapping(per_target[t], f"{where}: weights.{qt}.{t}", members)
            arrays[t][i] = [_number(w[m], f"{where}: weights.{qt}.{t}.{m}") for m in members]
            if not arrays[t][i].any():
                raise InputError(f"{where}: weights.{qt}.{t}: every weight is 0; at least one member needs a weight")
    cal = {t: None for t in fusion.TARGETS}
    if kind == "calibrated":
        tables = _mapping(obj.get("calibration"), f"{where}: calibration", fusion.TARGETS)
        for t in fusion.TARGETS:
            n_bins = len(fusion.CAL_EDGES[t]) - 1
            cal[t] = np.zeros((fusion.N_TYPES, len(members), n_bins))
            per_type = _mapping(tables[t], f"{where}: calibration.{t}", QUESTION_TYPES)
            for i, qt in enumerate(QUESTION_TYPES):
                per_member = _mapping(per_type[qt], f"{where}: calibration.{t}.{qt}", members)
                for j, m in enumerate(members):
                    values = per_member[m]
                    key = f"{where}: calibration.{t}.{qt}.{m}"
                    if not isinstance(values, list) or len(values) != n_bins:
                        raise InputError(f"{key}: expected a list of {n_bins} numbers")
                    cal[t][i, j] = [_number(v, key, positive=True) for v in values]
    elif obj.get("calibration") is not None:
        raise InputError(f"{where}: calibration: only the calibrated fusion has one (null), got a value")
    scale = {t: None for t in fusion.TARGETS}
    if kind == "score":
        per_target = _mapping(obj.get("scale"), f"{where}: scale", fusion.TARGETS)
        for t in fusion.TARGETS:
            per_member = _mapping(per_target[t], f"{where}: scale.{t}", members)
            scale[t] = np.array([_number(per_member[m], f"{where}: scale.{t}.{m}", positive=True) for m in members])
    elif obj.get("scale") is not None:
        raise InputError(f"{where}: scale: only the score fusion has one (null), got a value")
    return {t: fusion.TargetFit(kind, params[t], arrays[t], cal[t], scale[t]) for t in fusion.TARGETS}


@dataclass
class Weights:
    """A validated weights file."""

    path: Path
    members: list[str]
    seeds: list[int] | None
    fits: dict[str, fusion.TargetFit]  # fitted on all validation questions: for new questions
    raw: dict  # the whole file (split, folds, held-out scores, ...)


def load_weights(path: str | Path, output_dir: str | Path | None = None) -> Weights:
    """Read and check a weights file; with `output_dir`, also that every BERT member's checkpoint is there.

    Raises InputError naming the file and the key: wrong version, unknown or repeated member, a question type
    missing, a negative, NaN or non-number weight, all weights of a type zero, a missing checkpoint.
    """
    path = Path(path)
    obj = load_json(path)
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a JSON object (a weights file from predictor/search_weights.py)")
    if obj.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{path}: format_version: expected {FORMAT_VERSION}, got {obj.get('format_version')!r}")
    members = obj.get("members")
    if not isinstance(members, list) or not members:
        raise InputError(f"{path}: members: expected a non-empty list of member names")
    for i, m in enumerate(members):
        if m not in known_members():
            raise InputError(f"{path}: members[{i}]: {unknown_member(m)}")
        if members.index(m) != i:
            raise InputError(f"{path}: members[{i}]: {m!r} is listed twice")
    seeds = obj.get("seeds")
    if seeds is not None and (not isinstance(seeds, list) or not seeds
                              or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
                              or len(set(seeds)) != len(seeds)):
        raise InputError(f"{path}: seeds: expected null or a list of distinct seeds (integers >= 0), got {seeds!r}")
    fits = parse_fit(obj, members, str(path))
    folds = obj.get("folds", [])
    if not isinstance(folds, list) or not all(isinstance(f, dict) for f in folds):
        raise InputError(f"{path}: folds: expected a list of objects (one per half)")
    for i, fold in enumerate(folds):
        parse_fit(fold, members, f"{path}: folds[{i}]")
    if output_dir is not None:
        for m in members:
            if m in RUNS:
                for s in seeds or [None]:
                    ckpt = Path(output_dir) / run_folder(m, s) / "best.pt"
                    if not ckpt.is_file():
                        raise InputError(f"{path}: members: {m} needs {ckpt}, which does not exist (train it, or "
                                         f"search weights without it)")
    return Weights(path, list(members), seeds, fits, obj)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------------------------
# Entry point (predictor/Ensemble.py --weights)


def run(weights: str, question_path: str, out_path: str, dataset_dir: str = "dataset", output_dir: str = "output",
        gpu: int | None = None, bs: int = 128, amp: bool = False) -> list[dict]:
    """Answer a question file with the hybrid of a weights file (its weights fitted on all validation questions).

    The baseline members read {dataset_dir}/orig/train.json (step 1's split) and song_meta.json if present; the BERT
    members their best checkpoints under output_dir (per the file's seeds). Writes results.json in question order.
    """
    check_gpu(gpu)
    check_output_file("out_path", out_path)
    if not Path(question_path).is_file():
        raise InputError(f"{question_path}: question file not found")
    start = time.perf_counter()
    w = load_weights(weights, output_dir)
    print(f"hybrid ensemble of {', '.join(w.members)} ({w.fits['songs'].kind} fusion) from {weights}")
    qs = read_questions(dataset_dir, question_path)
    rankings, _ = member_rankings(w.members, qs, question_path, output_dir, w.seeds, gpu, bs, amp)
    enc = encode([rankings[m] for m in w.members], fallback_lists(qs))
    answered = fusion.fuse(enc.pools, qs.types, np.arange(len(qs.records)), w.fits)
    results = to_records([r["id"] for r in qs.records], answered, enc)
    write_json(out_path, results)
    print(f"wrote {len(results)} recommendations to {out_path} ({time.perf_counter() - start:.1f}s)")
    return results


# ----------------------------------------------------------------------------------------------------------------
# The held-out answers, for the leaderboard


def heldout_results(output_dir: str | Path, question_path: str | Path, answer_path: str | Path) -> list[dict] | str:
    """The held-out answers that search_weights wrote beside {output_dir}/ensemble_weights.json (each half of the
    questions answered with the weights fitted on the other half), or why they cannot be used here: no weights
    file, or one searched on other questions or answers, or a held-out file changed since."""
    path = Path(output_dir) / WEIGHTS_FILE
    if not path.is_file():
        return f"no {path}; run python -m predictor.search_weights --output_dir={output_dir} first"
    w = load_weights(path)
    split, held = w.raw.get("split"), w.raw.get("heldout")
    if not isinstance(split, dict) or not isinstance(held, dict):
        return f"{path} has no split or heldout record; search again"
    for key, file in (("questions_sha256", question_path), ("answers_sha256", answer_path)):
        if split.get(key) != file_sha256(file):
            return f"{path} was searched on other {key.split('_')[0]} than {file}"
    results = path.parent / str(held.get("results", HELDOUT_FILE))
    if not results.is_file() or held.get("results_sha256") != file_sha256(results):
        return f"{results} is missing or changed since {path} was written; search again"
    return load_json(results)
