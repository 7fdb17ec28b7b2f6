"""Search the hybrid ensemble's weights per question type on the local validation questions, and score them only on
questions they were not fitted to (docs/hybrid.md describes the method).

    python -m predictor.search_weights [--dataset_dir=dataset] [--output_dir=output] \\
        [--members=songs_tags_artists,plylst_title,playlist_knn] [--fusion=exp] [--seed=0] [--seeds=0,1,2] \\
        [--separate_tag_weights] [--compare] [--feed=false] [--gpu=-1] [--bs=128]

1. Every member's candidates for {dataset_dir}/questions/val.json, computed once (the rankers learning from
   orig/train.json and the questions' visible parts; --feed=false: orig/train.json alone), each member's score
   alone, and the share of the answer items within the members' reach (predictor/ceiling.py).
2. The questions are split into two halves within each question type (numpy generator seeded --seed). The fusion is
   fitted on each half alone (the search is handed that half's answers and nothing else) and answers the other
   half; the two answered halves are written to {output_dir}/hybrid_heldout.json and scored by evaluate.py against
   answers/val.json: the held-out score, overall and per question type.
3. The fusion fitted on all the validation questions, for new questions (Ensemble.py --weights), goes with the
   folds' weights and held-out scores into {output_dir}/ensemble_weights.json (predictor/weights_file.py).

--compare first prints the held-out score of every fusion, with the song and tag weights tied and searched apart.

Refused before any member runs: a BERT member's missing checkpoint (every seed's with --seeds, default members
included), one holding another model or no recommender yet, dumps made from another {dataset_dir}/train.json, and
a question type present with a single question (no half to score it on). Both files are replaced together or not
at all, Ctrl-C included.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from baselines.rankers import RANKERS
from common.arena import QUESTION_TYPES
from common.cli import UsageError, check_flags, check_gpu, check_output_dir, run_cli
from common.jsonio import InputError, atomic_paths, load_json, sha256_file, write_json
from common.metric import ResultsError, evaluate_from_data
from data_loader.split import split_paths
from models import RUNS
from predictor import fusion as fu, fusion_fit, weights_file as wf
from predictor.ceiling import pool_reach, reach_table
from predictor.ensembling import run_checkpoints
from predictor.members import (QuestionSet, known_members, load_bert_members, member_rankings, read_question_set,
                               unknown_member)
from predictor.pool import Encoded, answer_codes, encode, fallback_lists, fused_records
from trainer.checkpoint import load_checkpoint, not_a_recommender
from trainer.run_dir import run_dir

DEFAULT_FUSION = "score"  # the fusion that scored best held out (docs/hybrid.md)
DEFAULT_EXCLUDED = ("most_popular",)  # members left out unless named: the popularity fallback already tops lists up


def default_members(output_dir: str, seeds: list[int] | None) -> list[str]:
    """The BERT runs, then every ranker but DEFAULT_EXCLUDED. Without seeds, the runs whose best.pt exists; with
    seeds, both runs: asking for seed ensembles asks for them, and a missing seed's checkpoint is the error it is
    when the members are named. A run whose checkpoint is no recommender yet (a model 2 stopped during its MLM
    pre-training) is left out, with one line saying so."""
    runs = list(RUNS) if seeds else [run for run in RUNS if (run_dir(output_dir, run) / "best.pt").is_file()]
    bert = []
    for run in runs:
        why = next(filter(None, (not_a_recommender(load_checkpoint(path, mmap=True), path)
                                 for path in run_checkpoints(output_dir, run, seeds))), None)
        if why:
            print(f"{run}: left out of the default members: {why}")
        else:
            bert.append(run)
    return bert + [name for name in RANKERS if name not in DEFAULT_EXCLUDED]


def check_halves(qs: QuestionSet, question_path: str) -> None:
    """Each question type present needs 2 questions at least: one per half, to fit on one and score the other."""
    for t, n in zip(QUESTION_TYPES, np.bincount(qs.types, minlength=len(QUESTION_TYPES))):
        if n == 1:
            raise InputError(f"{question_path}: question type {t!r} has 1 question; holding half of each question "
                             f"type out needs at least 2 of each type present")


def aligned_answers(answers: list[dict], qs: QuestionSet, answer_path: str) -> list[dict]:
    """The answer of each question, in question order."""
    by_id = {a["id"]: a for a in answers if isinstance(a, dict) and "id" in a}
    missing = [q["id"] for q in qs.records if q["id"] not in by_id]
    if missing:
        raise InputError(f"{answer_path}: no answer for playlist id {missing[0]} ({len(missing)} missing in all)")
    return [by_id[q["id"]] for q in qs.records]


def heldout(enc: Encoded, qs: QuestionSet, answers: list[dict], codes: list[dict], seed: int, kind: str,
            tie: bool) -> tuple[list[dict], list[dict], list[dict]]:
    """Cross-fit both halves: (held-out results in question order, per-fold summaries, per-fold fit JSON)."""
    ids = np.array([q["id"] for q in qs.records])
    folds = fusion_fit.cross_fit(enc.pools, qs.types, codes, seed, kind, tie)
    results: list[dict | None] = [None] * len(ids)
    summaries, fits = [], []
    for (fit_rows, held, fits_f), name in zip(folds, ("A", "B")):
        answered = fu.fuse(enc.pools, qs.types, held, fits_f)
        records = fused_records(ids[held], answered, enc)
        for i, r in zip(held, records):
            results[i] = r
        score = evaluate_from_data([answers[i] for i in held], records, [qs.records[i] for i in held])
        summaries.append({"fit_on": f"half {name}", "n_fit": len(fit_rows), "n_heldout": len(held), "heldout": score})
        fits.append(fits_f)
    return results, summaries, fits


def score_line(label: str, r: dict) -> str:
    by = r.get("by_type", {})
    return f"{label:<40} {r['score']:.6f} " + " ".join(
        f"{by[t]['score']:.6f}" if t in by else f"{'-':>8}" for t in QUESTION_TYPES)


def header() -> str:
    return f"{'':<40} {'overall':>8} " + " ".join(f"{t[:8]:>8}" for t in QUESTION_TYPES)


def main(dataset_dir: str = "dataset", output_dir: str = "output", members: list[str] | None = None,
         fusion: str = DEFAULT_FUSION, seed: int = 0, seeds: list[int] | None = None,
         separate_tag_weights: bool = False, compare: bool = False, question_path: str | None = None,
         answer_path: str | None = None, gpu: int | None = None, bs: int = 128, amp: bool = False,
         feed: bool = True) -> None:
    """Search, report and write the hybrid's weights.

    Args:
        dataset_dir: step 1's split (orig/train.json, questions/val.json, answers/val.json), song_meta.json if any.
        output_dir: dumps and BERT run folders come from here; ensemble_weights.json and hybrid_heldout.json go here.
        members: comma-separated member names (BERT run folders and baselines/rankers.py names); default every BERT
            run with a checkpoint (both, with --seeds) that is a recommender, and every ranker but most_popular.
        fusion: score (default), exp, rrf or calibrated (docs/hybrid.md explains them and the choice).
        seed: seeds the split of the questions into halves.
        seeds: BERT seed ensembles: the soft vote of the run folders {model}_seed{s} (train.py --seeds).
        separate_tag_weights: search the tag weights apart from the song weights (default: one weight per member and
            question type for both, which did as well or better on the held-out halves: docs/hybrid.md).
        compare: first print the held-out score of every fusion, song and tag weights tied and apart.
        question_path: default {dataset_dir}/questions/val.json.
        answer_path: default {dataset_dir}/answers/val.json.
        gpu: device for the BERT members (-1 = CPU; unset = cuda:0 when there is one).
        bs: question batch size for the BERT members.
        amp: bf16 autocast for the BERT members on CUDA.
        feed: the rankers learn from orig/train.json plus the visible part of every validation question (never a
            hidden answer), and answer new questions (Ensemble.py --weights) from train.json plus theirs; false:
            orig/train.json alone, both times. The BERT members are as trained.
    """
    search(dataset_dir, output_dir, members, fusion, seed, seeds, separate_tag_weights, compare, question_path,
           answer_path, gpu, bs, amp, feed)


def search(dataset_dir: str = "dataset", output_dir: str = "output", members: list[str] | None = None,
           fusion: str = DEFAULT_FUSION, seed: int = 0, seeds: list[int] | None = None,
           separate_tag_weights: bool = False, compare: bool = False, question_path: str | None = None,
           answer_path: str | None = None, gpu: int | None = None, bs: int = 128, amp: bool = False,
           feed: bool = True) -> dict:
    """`main` (see its arguments), returning the weights file's content."""
    check_flags(fusion=(fusion in fu.FUSIONS, " or ".join(fu.FUSIONS)),
                seed=(seed >= 0, "at least 0"), bs=(bs >= 1, "at least 1"),
                seeds=(seeds is None or (len(seeds) > 0 and len(set(seeds)) == len(seeds) and min(seeds) >= 0),
                       "distinct seeds >= 0, e.g. 0,1,2"))
    check_gpu(gpu)
    check_output_dir("output_dir", output_dir)
    if members is not None:
        bad = [m for m in members if m not in known_members()]
        if bad:
            raise UsageError(f"--members: {unknown_member(bad[0])}")
        if len(set(members)) != len(members) or not members:
            raise UsageError("--members must name each member once (at least one)")
    members = list(members) if members is not None else default_members(output_dir, seeds)
    paths = split_paths(dataset_dir)
    question_path = str(question_path or paths["val_questions"])
    answer_path = str(answer_path or paths["val_answers"])
    start = time.perf_counter()
    print(f"hybrid weight search: members {', '.join(members)}; questions {question_path}; rankers learn from "
          + ("orig/train.json and the questions' visible parts" if feed else "orig/train.json"))
    bert = load_bert_members(members, dataset_dir, output_dir, seeds, gpu)  # every checkpoint checked first
    qs = read_question_set(dataset_dir, question_path, feed=feed, whole_train=False)
    check_halves(qs, question_path)
    answers = aligned_answers(load_json(answer_path), qs, answer_path)
    rankings, member_seconds = member_rankings(members, qs, question_path, bert, bs, amp)
    enc = encode([rankings[m] for m in members], fallback_lists(qs))
    codes = answer_codes(answers, enc)
    every = np.arange(len(qs.records))
    ids = [q["id"] for q in qs.records]
    ceiling = pool_reach(enc.pools, codes, qs.types, members)  # what limits any fusion of these members
    print("\n" + reach_table(ceiling))

    print("\n" + header())
    for j, m in enumerate(members):  # each member alone, through the same top-up: the scores to beat
        alone = {t: fu.TargetFit("rrf", 1.0, np.eye(len(members))[[j] * fu.N_TYPES]) for t in fu.TARGETS}
        r = evaluate_from_data(answers, fused_records(ids, fu.fuse(enc.pools, qs.types, every, alone), enc),
                               qs.records)
        print(score_line(f"{m} alone", r))
    configs = [(k, tie) for k in fu.FUSIONS for tie in (True, False)] if compare else []
    configs.append((fusion, not separate_tag_weights))
    for kind, tie in configs:  # the chosen configuration last: its held-out answers are the ones written
        search_start = time.perf_counter()
        results, folds, fold_fits = heldout(enc, qs, answers, codes, seed, kind, tie)
        total = evaluate_from_data(answers, results, qs.records)
        label = f"hybrid {kind}{'' if tie else ' separate'} (held-out)"
        print(score_line(label, total) + f"  [{time.perf_counter() - search_start:.1f}s]")
    fits = fusion_fit.fit_fusion(enc.pools, qs.types, every, codes, fusion, not separate_tag_weights)
    search_seconds = time.perf_counter() - search_start  # both halves and the fit on all
    in_sample = evaluate_from_data(answers, fused_records(ids, fu.fuse(enc.pools, qs.types, every, fits), enc),
                                   qs.records)
    print(score_line("hybrid fitted on all (in-sample)", in_sample) + "  (optimistic: scored on its own fit)")

    split = {"dataset_dir": str(Path(dataset_dir).resolve()), "question_path": str(Path(question_path).resolve()),
             "answer_path": str(Path(answer_path).resolve()), "questions_sha256": sha256_file(question_path),
             "answers_sha256": sha256_file(answer_path),
             "train_sha256": sha256_file(paths["orig_train"]), "n_questions": len(ids),
             "vocab_hash": bert.dumps.vocab.hash if bert else None,
             "checkpoints_sha256": bert.checkpoints_sha256 if bert else {}}
    weights_path, heldout_path = Path(output_dir) / wf.WEIGHTS_FILE, Path(output_dir) / wf.HELDOUT_FILE
    if weights_path.exists():
        print(f"replacing {weights_path} and {heldout_path}")
    # both written aside first, then renamed together: never the new held-out answers beside the old weights
    with atomic_paths(weights_path, heldout_path) as (weights_tmp, heldout_tmp):
        write_json(heldout_tmp, results)
        obj = {"format_version": wf.FORMAT_VERSION, "members": members, "seeds": seeds, "feed": feed,
               **wf.fit_json(fits, members), "tie_song_tag_weights": not separate_tag_weights, "seed": seed,
               "split": split,
               "heldout": {**total, "results": wf.HELDOUT_FILE, "results_sha256": sha256_file(heldout_tmp),
                           "how": "each half of the questions answered with the weights fitted on the other half"},
               "folds": [{**summary, **wf.fit_json(f, members)} for summary, f in zip(folds, fold_fits)],
               "ceiling": ceiling,
               "seconds": {"members": member_seconds, "search": round(search_seconds, 2),
                           "total": round(time.perf_counter() - start, 2)}}
        write_json(weights_tmp, obj, indent=1)
        wf.load_weights(weights_tmp)  # what we write must read back
    print(f"\nheld-out score {total['score']:.6f} (music {total['music_ndcg']:.6f}, tag {total['tag_ndcg']:.6f}); "
          f"wrote {weights_path} and {heldout_path} in {time.perf_counter() - start:.1f}s "
          f"(members {sum(member_seconds.values()):.1f}s, search {search_seconds:.1f}s)")
    return obj


if __name__ == "__main__":
    run_cli(main, (ResultsError,))
