"""Answer a question file with the hybrid ensemble of a weights file (predictor/Ensemble.py --weights).

Every member of the file (predictor/members.py) proposes its candidates; they are pooled with the popularity fallback
(predictor/pool.py) and fused with the file's weights for each question's type (predictor/fusion.py). With a file
searched fed (the default), the rankers and the fallback learn from {dataset_dir}/train.json less the questions' own
full playlists plus every question's visible part; otherwise from orig/train.json. The weights
come from predictor/search_weights.py; docs/hybrid.md explains the method and the choices behind it.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from common.cli import check_gpu, check_output_file, step_inputs
from common.jsonio import InputError, write_json
from predictor import fusion
from predictor.members import load_bert_members, member_rankings, read_question_set
from predictor.pool import encode, fallback_lists, fused_records
from predictor.weights_file import check_models, check_split, load_weights


def run_hybrid(weights: str, question_path: str, out_path: str, dataset_dir: str = "dataset",
               output_dir: str = "output", gpu: int | None = None, bs: int = 128, amp: bool = False) -> list[dict]:
    """Answer a question file with the hybrid of a weights file (its weights fitted on all validation questions).

    The baseline members read {dataset_dir}/orig/train.json (step 1's split) and song_meta.json if present; the BERT
    members their best checkpoints under output_dir (per the file's seeds). Writes results.json in question order.
    Refused before any member runs: weights searched on another split, with other dumps or other checkpoints
    (predictor/weights_file.py check_split, check_models), and dumps made from another {dataset_dir}/train.json.
    """
    check_gpu(gpu)
    check_output_file("out_path", out_path, step_inputs(dataset_dir, output_dir, question_path, weights))
    if not Path(question_path).is_file():
        raise InputError(f"{question_path}: question file not found")
    start = time.perf_counter()
    w = load_weights(weights, output_dir)
    check_split(w, dataset_dir, output_dir)
    bert = load_bert_members(w.members, dataset_dir, output_dir, w.seeds, gpu)
    check_models(w, bert.dumps.vocab.hash if bert else None, bert.checkpoints_sha256 if bert else {}, dataset_dir,
                 output_dir)
    print(f"hybrid ensemble of {', '.join(w.members)} ({w.fits['songs'].kind} fusion) from {weights}")
    qs = read_question_set(dataset_dir, question_path, feed=w.feed)  # fed: train.json and the questions' parts
    rankings, _ = member_rankings(w.members, qs, question_path, bert, bs, amp)
    enc = encode([rankings[m] for m in w.members], fallback_lists(qs))
    answered = fusion.fuse(enc.pools, qs.types, np.arange(len(qs.records)), w.fits)
    results = fused_records([r["id"] for r in qs.records], answered, enc)
    write_json(out_path, results)
    print(f"wrote {len(results)} recommendations to {out_path} ({time.perf_counter() - start:.1f}s)")
    return results
