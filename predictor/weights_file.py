"""The hybrid ensemble's weights file: its format, its JSON form, strict reading, and the held-out answers beside it.

`{output_dir}/ensemble_weights.json` (written by predictor/search_weights.py, read strictly by `load_weights`):

    format_version   2 (a file of another version is refused: run search_weights again)
    members          member names, in fusion order (ties between equal scores go to the earlier member)
    seeds            null, or the seeds of the BERT members' seed ensembles ({run}_seed{s})
    feed             whether the rankers learn from the questions' visible parts too (search: orig/train.json plus
                     the validation questions'; answering: train.json plus the new questions'), or orig/train.json
    fusion           {"kind", "songs": parameter, "tags": parameter} (T, k or p; null for calibrated)
    weights          {question type: {"songs": {member: w}, "tags": {member: w}}}, every type, 0 <= w <= float32's
                     largest, not all 0
    calibration      calibrated only: {target: {question type: {member: [hit rate per rank bin]}}}
    scale            score only: {target: {member: c}}
    tie_song_tag_weights, seed
    split            dataset_dir, question_path, answer_path, sha256 of the questions, answers and orig/train.json
                     (train_sha256), n_questions, vocab_hash (of the dumps, with BERT members; else null),
                     checkpoints_sha256 ({run folder: sha256 of its best.pt} of every BERT member and seed)
    heldout          the held-out score (music_ndcg, tag_ndcg, score, count, by_type) of `results` (hybrid_heldout.json
                     beside it, with its sha256): each half answered with the weights fitted on the other half
    folds            per half: fit_on, n_fit, n_heldout, heldout (its score), fusion, weights, calibration, scale
    ceiling          {target: {member, "all members", "+ fallback": {overall, question type: share of the answer
                     items among the candidates}}} (predictor/ceiling.py)
    seconds          members' candidates, search, total

fusion / weights / calibration / scale at the top are fitted on all the validation questions, for new questions.
Answering with them (predictor/hybrid.py) needs the same split (train_sha256), dumps (vocab_hash) and BERT
checkpoints (checkpoints_sha256): `check_split` and `check_models`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from common.arena import QUESTION_TYPES
from common.jsonio import InputError, load_json, sha256_file
from data_loader.split import split_paths
from models import RUNS
from predictor import fusion
from predictor.members import known_members, unknown_member
from trainer.run_dir import run_dir

FORMAT_VERSION = 2  # 2: split.checkpoints_sha256
FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT32_TINY = float(np.finfo(np.float32).smallest_subnormal)
WEIGHTS_FILE = "ensemble_weights.json"
HELDOUT_FILE = "hybrid_heldout.json"  # the held-out answers: each half answered with the other half's weights


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
    """A weight or parameter: the fusion computes in float32, so a value it cannot hold (above FLOAT32_MAX, or a
    positive one that float32 rounds to 0) would overflow or divide by zero there; NaN fails the range test."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and 0 <= value <= FLOAT32_MAX
    if not ok or (positive and np.float32(value) == 0):
        floor = f", at least {FLOAT32_TINY:.6g}" if positive else ""
        raise InputError(f"{where}: expected a finite number {'> 0' if positive else '>= 0'} that float32 holds "
                         f"(at most {FLOAT32_MAX:.6g}{floor}), got {value!r}")
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


def _sha256(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise InputError(f"{where}: expected a sha256 (64 hex digits), got {value!r}")
    return value


def _split(split: Any, where: str) -> None:
    """The record of what the weights were searched on, checked for form (`check_split` and `check_models` compare
    it with the data and checkpoints at hand)."""
    if not isinstance(split, dict):
        raise InputError(f"{where}: split: expected an object (what the weights were searched on)")
    for key in ("train_sha256", "vocab_hash", "checkpoints_sha256"):
        if key not in split:
            raise InputError(f"{where}: split: missing key {key!r}")
    _sha256(split["train_sha256"], f"{where}: split.train_sha256")
    if split["vocab_hash"] is not None and not isinstance(split["vocab_hash"], str):
        raise InputError(f"{where}: split.vocab_hash: expected null or a string, got {split['vocab_hash']!r}")
    if not isinstance(split["checkpoints_sha256"], dict):
        raise InputError(f"{where}: split.checkpoints_sha256: expected an object {{run folder: sha256}}")
    for run, digest in split["checkpoints_sha256"].items():
        _sha256(digest, f"{where}: split.checkpoints_sha256.{run}")


@dataclass
class Weights:
    """A validated weights file."""

    path: Path
    members: list[str]
    seeds: list[int] | None
    feed: bool  # the rankers learn from the questions' visible parts too
    fits: dict[str, fusion.TargetFit]  # fitted on all validation questions: for new questions
    raw: dict  # the whole file (split, folds, held-out scores, ...)


def load_weights(path: str | Path, output_dir: str | Path | None = None) -> Weights:
    """Read and check a weights file; with `output_dir`, also that every BERT member's checkpoint is there.

    Raises InputError naming the file and the key: wrong version, unknown or repeated member, a question type
    missing, a negative, NaN, non-number or beyond-float32 weight, all weights of a type zero, a split record
    without its hashes, a missing checkpoint.
    """
    path = Path(path)
    obj = load_json(path)
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a JSON object (a weights file from predictor/search_weights.py)")
    if obj.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{path}: format_version: expected {FORMAT_VERSION}, got {obj.get('format_version')!r}; "
                         f"this code reads only weights files of its own format: run python -m "
                         f"predictor.search_weights again")
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
    if not isinstance(obj.get("feed"), bool):
        raise InputError(f"{path}: feed: expected true or false, got {obj.get('feed')!r}")
    fits = parse_fit(obj, members, str(path))
    _split(obj.get("split"), str(path))
    folds = obj.get("folds", [])
    if not isinstance(folds, list) or not all(isinstance(f, dict) for f in folds):
        raise InputError(f"{path}: folds: expected a list of objects (one per half)")
    for i, fold in enumerate(folds):
        parse_fit(fold, members, f"{path}: folds[{i}]")
    if output_dir is not None:
        for m in members:
            if m in RUNS:
                for s in seeds or [None]:
                    ckpt = run_dir(output_dir, m, s) / "best.pt"
                    if not ckpt.is_file():
                        raise InputError(f"{path}: members: {m} needs {ckpt}, which does not exist (train it, or "
                                         f"search weights without it)")
    return Weights(path, list(members), seeds, obj["feed"], fits, obj)


def search_again(dataset_dir: str | Path, output_dir: str | Path) -> str:
    return f"search again: python -m predictor.search_weights --dataset_dir={dataset_dir} --output_dir={output_dir}"


def check_split(w: Weights, dataset_dir: str | Path, output_dir: str | Path) -> None:
    """Refuse to answer with weights searched on another split than {dataset_dir}/orig/train.json: the weights were
    fitted to the candidates the ranker members and the popularity fallback gave from it (fed, with the questions'
    visible parts)."""
    train = split_paths(dataset_dir)["orig_train"]
    if not train.is_file():
        raise InputError(f"{train}: not found; run step 1 (python data_loader/dump_datasets.py "
                         f"--dataset_dir={dataset_dir}) to make the split")
    searched, here = w.raw["split"]["train_sha256"], sha256_file(train)
    if searched != here:
        raise InputError(f"{w.path}: split.train_sha256: searched on another split (orig/train.json sha256 "
                         f"{searched[:12]}) than {train} (sha256 {here[:12]}); {search_again(dataset_dir, output_dir)}")


def check_models(w: Weights, vocab_hash: str | None, checkpoints_sha256: dict[str, str], dataset_dir: str | Path,
                 output_dir: str | Path) -> None:
    """Refuse to answer with weights searched with other dumps (another vocabulary) or other BERT checkpoints
    (retrained since: other candidates and scores) than these: `vocab_hash` of the dumps and the sha256 of every
    BERT member's best.pt by run folder (predictor/members.py BertMembers), both empty without BERT members."""
    split = w.raw["split"]
    if checkpoints_sha256 and split["vocab_hash"] != vocab_hash:
        raise InputError(f"{w.path}: split.vocab_hash: searched with dumps of vocabulary {split['vocab_hash']}, but "
                         f"{Path(output_dir) / 'dumps'} have vocabulary {vocab_hash}; "
                         f"{search_again(dataset_dir, output_dir)}")
    for run, digest in checkpoints_sha256.items():
        searched = split["checkpoints_sha256"].get(run)
        if searched is None:
            raise InputError(f"{w.path}: split.checkpoints_sha256: no record of run folder {run}; "
                             f"{search_again(dataset_dir, output_dir)}")
        if searched != digest:
            raise InputError(f"{w.path}: split.checkpoints_sha256.{run}: {Path(output_dir) / run / 'best.pt'} changed "
                             f"since the search (sha256 {searched[:12]} then, {digest[:12]} now: retrained?); "
                             f"{search_again(dataset_dir, output_dir)}")


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
        if split.get(key) != sha256_file(file):
            return f"{path} was searched on other {key.split('_')[0]} than {file}"
    results = path.parent / str(held.get("results", HELDOUT_FILE))
    if not results.is_file() or held.get("results_sha256") != sha256_file(results):
        return f"{results} is missing or changed since {path} was written; search again"
    return load_json(results)
