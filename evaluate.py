"""Step 5: score a results file with the Kakao Arena 2020 metric (common/metric.py), as the official evaluate.py.

Usage:
    python evaluate.py evaluate --gt_fname=dataset/answers/val.json --rec_fname=reco_result/results.json \\
        [--question_fname=dataset/questions/val.json] [--metric=arena|mpd] [--song_meta=dataset/song_meta.json]

Files may be gzipped (``.json.gz``). Prints song nDCG, tag nDCG and the score (and a table by question type with
--question_fname); an invalid file is one ``error:`` line naming the file and the record, and exit status 1.
With --metric=mpd it prints the RecSys Challenge 2018 metrics instead (common/mpd_metric.py: R-precision, NDCG,
clicks over the first 500 songs; --song_meta adds R-precision's artist credit) and what they left out.
"""
import gzip
import json
import os
import sys
from typing import Any

from common.cli import UsageError
from common.metric import ResultsError, evaluate_from_data
from common.mpd_metric import evaluate_mpd, primary_artists

METRICS = ("arena", "mpd")


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


def evaluate_mpd_files(gt_fname: str | os.PathLike, rec_fname: str | os.PathLike,
                       question_fname: str | os.PathLike | None = None,
                       song_meta: str | os.PathLike | None = None) -> dict:
    """evaluate_mpd on JSON files; error messages name the files."""
    table = None if song_meta is None else primary_artists(read_json(song_meta), str(song_meta))
    question = None if question_fname is None else read_json(question_fname)
    return evaluate_mpd(read_json(gt_fname), read_json(rec_fname), table, question, gt_name=str(gt_fname),
                        rec_name=str(rec_fname), question_name=str(question_fname or "questions"))


def format_mpd_result(result: dict) -> str:
    """The three challenge metrics, a table by question shape when there is one, then what was left out."""
    lines = [f"R-precision: {result['r_precision']:.6f}", f"NDCG: {result['ndcg']:.6f}",
             f"clicks: {result['clicks']:.6f}", f"playlists scored: {result['count']}"]
    if "by_type" in result:
        lines += ["", f"{'question':<19}  {'count':>7}  {'R-precision':>11}  {'NDCG':>10}  {'clicks':>10}"]
        for name, r in result["by_type"].items():
            lines.append(f"{name:<19}  {r['count']:>7}  {r['r_precision']:>11.6f}  {r['ndcg']:>10.6f}  "
                         f"{r['clicks']:>10.6f}")
    lines += [f"left out: {line}" for line in result["left_out"] or ["nothing"]]
    return "\n".join(lines)


def evaluate(gt_fname: str, rec_fname: str, question_fname: str | None = None, metric: str = "arena",
             song_meta: str | None = None) -> None:
    """Print song nDCG, tag nDCG and score of a results file; exit with status 1 on invalid input.

    Args:
        gt_fname: answers, e.g. dataset/answers/val.json (.json or .json.gz).
        rec_fname: results, e.g. reco_result/results.json: 100 songs and 10 tags for every answer playlist.
        question_fname: the questions, e.g. dataset/questions/val.json; adds a table by question type.
        metric: "arena" (the Kakao Arena score) or "mpd" (the RecSys Challenge 2018 metrics over songs only:
            R-precision, NDCG, clicks; results may hold up to 500 songs and no tags).
        song_meta: with --metric=mpd, song_meta.json, whose first artist of each song gives R-precision's artist
            credit.
    """
    if metric not in METRICS:
        raise UsageError(f"--metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if song_meta is not None and metric != "mpd":
        raise UsageError("--song_meta is only read with --metric=mpd")
    try:
        if metric == "mpd":
            text = format_mpd_result(evaluate_mpd_files(gt_fname, rec_fname, question_fname, song_meta))
        else:
            text = format_result(evaluate_files(gt_fname, rec_fname, question_fname))
    except ResultsError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    print(text)  # returns None so that fire prints nothing more


if __name__ == "__main__":
    from common.cli import run_cli  # the strict flag check: unknown flags are refused before any file is read

    run_cli({"evaluate": evaluate})
