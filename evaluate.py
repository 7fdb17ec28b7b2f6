"""Step 5: score a results file with the Kakao Arena 2020 metric (common/metric.py), as the official evaluate.py.

Usage:
    python evaluate.py evaluate --gt_fname=dataset/answers/val.json --rec_fname=reco_result/results.json \\
        [--question_fname=dataset/questions/val.json]

Files may be gzipped (``.json.gz``). Prints song nDCG, tag nDCG and the score (and a table by question type with
--question_fname); an invalid file is one ``error:`` line naming the file and the record, and exit status 1.
"""
import gzip
import json
import os
import sys
from typing import Any

from common.metric import ResultsError, evaluate_from_data


# ----------------------------------------------------------------------------------------------------------------
# Files and CLI


def read_json(fname: str | os.PathLike) -> Any:
    """Read a UTF-8 JSON file, gunzipping a ``.gz`` one; any failure is a ResultsError naming the file."""
    fname = str(fname)  # also a Path
    opener = gzip.open if fname.endswith(".gz") else open
    try:
        with opener(fname, "rt", encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError as e:
        raise ResultsError(f"{fname}: no such file") from e
    except json.JSONDecodeError as e:
        raise ResultsError(f"{fname}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from e
    except UnicodeDecodeError as e:
        raise ResultsError(f"{fname}: not UTF-8 text (bad byte at offset {e.start})") from e
    except (OSError, EOFError) as e:  # a directory, no permission, a broken or truncated gzip file
        raise ResultsError(f"{fname}: cannot read: {e}") from e


def evaluate_files(
    gt_fname: str | os.PathLike, rec_fname: str | os.PathLike, question_fname: str | os.PathLike | None = None
) -> dict:
    """evaluate_from_data on JSON files; error messages name the files."""
    gt_fname, rec_fname = str(gt_fname), str(rec_fname)
    question = None
    if question_fname is not None:
        question_fname = str(question_fname)
        question = read_json(question_fname)
    return evaluate_from_data(
        read_json(gt_fname),
        read_json(rec_fname),
        question,
        gt_name=gt_fname,
        rec_name=rec_fname,
        question_name=question_fname or "questions",
    )


def format_result(result: dict) -> str:
    """The three official lines, then a per-question-type table when the result has one."""
    lines = [
        f"music nDCG: {result['music_ndcg']:.6f}",
        f"Tag nDCG: {result['tag_ndcg']:.6f}",
        f"Score: {result['score']:.6f}",
    ]
    if "by_type" in result:
        lines += ["", f"{'question type':<13}  {'count':>7}  {'music nDCG':>10}  {'Tag nDCG':>10}  {'Score':>10}"]
        for name, r in result["by_type"].items():
            lines.append(
                f"{name:<13}  {r['count']:>7}  {r['music_ndcg']:>10.6f}  {r['tag_ndcg']:>10.6f}  {r['score']:>10.6f}"
            )
    return "\n".join(lines)


def evaluate(gt_fname: str, rec_fname: str, question_fname: str | None = None) -> None:
    """Print song nDCG, tag nDCG and score of a results file; exit with status 1 on invalid input.

    Args:
        gt_fname: answers, e.g. dataset/answers/val.json (.json or .json.gz).
        rec_fname: results, e.g. reco_result/results.json: 100 songs and 10 tags for every answer playlist.
        question_fname: the questions, e.g. dataset/questions/val.json; adds a table by question type.
    """
    try:
        result = evaluate_files(gt_fname, rec_fname, question_fname)
    except ResultsError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    print(format_result(result))  # returns None so that fire prints nothing more


if __name__ == "__main__":
    from common.cli import run_cli  # the strict flag check: unknown flags are refused before any file is read

    run_cli({"evaluate": evaluate})
