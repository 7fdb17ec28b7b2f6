"""Score every method that can run on the same questions and answers, overall and by question type.

Methods: the official baselines most_popular and genre_most_popular (needs song_meta.json), playlist_knn, the
competition's peers item_cf (and item_cf_svm: the 2nd place's settings and SVM), als and bm25 (baselines/rankers.py),
and, when both best checkpoints exist, the BERT ensemble and each of its two models alone (through the same ensemble
code with only that member; the questions it does not accept get the cold-start answer; dumps made from another
train.json than {dataset_dir}/train.json are an error, before any method runs). The hybrid ensemble's row
is its held-out score: the answers predictor/search_weights.py wrote beside {output_dir}/ensemble_weights.json, each
half of the questions answered with the weights fitted on the other half (never on the answers it is scored on);
used only when that search ran on these same question and answer files.

    python -m reports.leaderboard [--dataset_dir=dataset] [--output_dir=output] \\
        [--question_path=dataset/questions/val.json] [--answer_path=dataset/answers/val.json] [--gpu=-1]

Writes {output_dir}/leaderboard/<method>/results.json, the tables to {output_dir}/leaderboard.md, a bar chart of
the scores, overall and per question type, to {output_dir}/leaderboard.png, and the validation curve of each trained
run to {output_dir}/curves/<run>.png (reports/curves.py).
"""
from __future__ import annotations

import functools
import importlib.util
import time
from pathlib import Path
from typing import Callable, Iterator

from baselines.common import load_split
from baselines.rankers import BASELINES
from common.arena import QUESTION_TYPES
from common.cli import check_flags, check_gpu, check_output_dir, run_cli
from common.jsonio import InputError, atomic_path, atomic_write, load_json, write_json
from common.metric import ResultsError, evaluate_from_data
from data_loader.dumps import open_dumps
from data_loader.split import split_paths
from models import RUNS
from predictor.ensembling import encode_questions, ensemble_recommend, load_members, to_records
from predictor.weights_file import heldout_results
from reports.curves import plot_runs
from trainer.device import pick_device
from trainer.run_dir import run_dir

Method = Callable[[], list[dict]]


def baseline_methods(dataset_dir: str, question_path: Path, feed: bool = True) -> Iterator[tuple[str, Method | str]]:
    """(name, method or the reason it is skipped) for every baseline of baselines/rankers.py, learning from the fed
    corpus or orig/train.json alone (baselines/common.py load_split)."""
    train, questions, song_meta = load_split(dataset_dir, question_path, feed=feed)
    for name, b in BASELINES.items():
        if b.needs_song_meta and song_meta is None:
            yield name, f"skipped: no {Path(dataset_dir) / 'song_meta.json'}"
        elif b.needs_package is not None and importlib.util.find_spec(b.needs_package) is None:
            yield name, f"skipped: the {b.needs_package} library is not installed (pip install {b.needs_package})"
        else:
            yield name, functools.partial(b.recommend, train, questions, song_meta)


def bert_methods(dataset_dir: str, output_dir: str, question_path: Path, gpu: int | None,
                 bs: int) -> Iterator[tuple[str, Method | str]]:
    """The ensemble (needs both best checkpoints) and each model alone (needs its own); dumps made from another
    train.json than {dataset_dir}/train.json are an error (their models would be scored beside baselines of
    another dataset)."""
    ckpts = {run: run_dir(output_dir, run) / "best.pt" for run in RUNS}
    unusable = {run: f"no {ckpts[run]}" for run in RUNS if not ckpts[run].is_file()}
    members = {}
    if len(unusable) < len(RUNS):
        device = pick_device(gpu)
        dumps = open_dumps(dataset_dir, output_dir)
        for run in RUNS:
            if run not in unusable:
                try:
                    members[run] = load_members(output_dir, dumps, device, (run,))[0]
                except InputError as e:  # another vocabulary, an unfinished model 2: skipped, with the reason
                    unusable[run] = str(e)
        q = encode_questions(load_json(question_path), str(question_path), dumps)

    def method(runs: tuple[str, ...]) -> Method | str:
        if any(run in unusable for run in runs):
            return f"skipped: {next(unusable[run] for run in runs if run in unusable)}"
        subset = [members[run] for run in runs]
        return lambda: to_records(q, ensemble_recommend(subset, q, dumps.vocab, dumps.song_issue_dates, device, bs),
                                  dumps.vocab)

    yield "bert_ensemble", method(RUNS)
    for run in RUNS:
        yield f"bert_{run}", method((run,))


def hybrid_method(output_dir: str, question_path: Path, answer_path: Path) -> Iterator[tuple[str, Method | str]]:
    """The hybrid ensemble's held-out answers (predictor/weights_file.py: heldout_results), when they fit this split."""
    found = heldout_results(output_dir, question_path, answer_path)
    yield "hybrid_heldout", (f"skipped: {found}" if isinstance(found, str) else lambda: found)


def chart(rows: list[tuple[str, dict, float]], path: Path, title: str) -> None:
    """A grouped bar chart (PNG) of every method's score, overall and per question type."""
    import matplotlib  # lazily: only the leaderboard draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = ["overall", *QUESTION_TYPES]
    fig, ax = plt.subplots(figsize=(10, 5))
    width = 0.8 / max(len(rows), 1)
    colours = plt.get_cmap("tab20" if len(rows) > 10 else "tab10")  # one colour per method, none repeated
    for i, (name, r, _) in enumerate(rows):
        values = [r["score"]] + [r.get("by_type", {}).get(t, {}).get("score", 0.0) for t in QUESTION_TYPES]
        ax.bar([g + (i - (len(rows) - 1) / 2) * width for g in range(len(groups))], values, width, label=name,
               color=colours(i))
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel("score (0.85 song nDCG@100 + 0.15 tag nDCG@10)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.08), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)


def markdown(rows: list[tuple[str, dict, float]], skipped: list[tuple[str, str]], question_path: Path) -> str:
    """The overall table, then one row per method and question type."""
    lines = [f"# Leaderboard: {question_path}", "",
             "| method | questions | music nDCG | tag nDCG | score | seconds |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {name} | {r['count']} | {r['music_ndcg']:.6f} | {r['tag_ndcg']:.6f} | {r['score']:.6f} | {sec:.1f} |"
              for name, r, sec in rows]
    if any(name.startswith("bert_") and name != "bert_ensemble" for name, _, _ in rows):
        lines += ["", "bert_<model>: that model alone through the ensemble code; the questions it does not accept "
                  "get the cold-start answer (the most popular songs and tags)."]
    if any(name == "hybrid_heldout" for name, _, _ in rows):
        lines += ["", "hybrid_heldout: the hybrid ensemble's held-out score: each half of the questions answered with "
                  "the weights predictor/search_weights.py fitted on the other half (its seconds: reading them)."]
    lines += ["", "## By question type", "", "| method | question type | count | music nDCG | tag nDCG | score |",
              "|---|---|---:|---:|---:|---:|"]
    for name, r, _ in rows:
        for qtype in QUESTION_TYPES:
            if qtype in r["by_type"]:
                t = r["by_type"][qtype]
                lines.append(f"| {name} | {qtype} | {t['count']} | {t['music_ndcg']:.6f} | {t['tag_ndcg']:.6f} | "
                             f"{t['score']:.6f} |")
    if skipped:
        lines += ["", "Not run: " + "; ".join(f"{name} ({why})" for name, why in skipped)]
    return "\n".join(lines) + "\n"


def main(dataset_dir: str = "dataset", output_dir: str = "output", question_path: str | None = None,
         answer_path: str | None = None, gpu: int | None = None, bs: int = 128, feed: bool = True) -> None:
    """Run, score and tabulate every method that has what it needs.

    Args:
        dataset_dir: folder with step 1's split (orig/train.json, questions/, answers/) and optionally song_meta.json.
        output_dir: dumps and checkpoints come from here; leaderboard.md and leaderboard/ go here.
        question_path: default {dataset_dir}/questions/val.json.
        answer_path: default {dataset_dir}/answers/val.json.
        gpu: device for the BERT models (-1 = CPU; unset = cuda:0 when there is one).
        bs: question batch size for the BERT models.
        feed: the baselines learn from train.json less the questions' full playlists plus their visible parts
            (false: from orig/train.json alone); the BERT models are as trained.
    """
    check_flags(bs=(bs >= 1, "at least 1"))
    check_gpu(gpu)
    check_output_dir("output_dir", output_dir)
    paths = split_paths(dataset_dir)
    question_path = Path(question_path or paths["val_questions"])
    answer_path = Path(answer_path or paths["val_answers"])
    answers = load_json(answer_path)
    questions = load_json(question_path)
    rows, skipped = [], []
    bert = list(bert_methods(dataset_dir, output_dir, question_path, gpu, bs))  # its checks before any work
    for name, method in [*baseline_methods(dataset_dir, question_path, feed), *bert,
                         *hybrid_method(output_dir, question_path, answer_path)]:
        if isinstance(method, str):
            print(f"{name}: {method}")
            skipped.append((name, method.removeprefix("skipped: ")))
            continue
        start = time.perf_counter()
        results = method()
        seconds = time.perf_counter() - start
        write_json(Path(output_dir) / "leaderboard" / name / "results.json", results)
        r = evaluate_from_data(answers, results, questions, rec_name=name)
        print(f"{name}: score {r['score']:.6f} (music {r['music_ndcg']:.6f}, tag {r['tag_ndcg']:.6f}) "
              f"in {seconds:.1f}s")
        rows.append((name, r, seconds))
    table = markdown(rows, skipped, question_path)
    with atomic_write(Path(output_dir) / "leaderboard.md") as f:
        f.write(table)
    chart(rows, Path(output_dir) / "leaderboard.png", f"{question_path} ({len(questions)} questions)")
    curves = plot_runs(output_dir)  # the validation score per epoch of each trained run
    print("\n" + table)
    print(f"chart: {Path(output_dir) / 'leaderboard.png'}"
          + (f"; validation curves: {', '.join(str(p) for p in curves)}" if curves else ""))


if __name__ == "__main__":
    run_cli(main, (ResultsError,))
