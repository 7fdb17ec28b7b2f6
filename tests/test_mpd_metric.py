"""Tests for common/mpd_metric.py and evaluate.py --metric=mpd, the RecSys Challenge 2018 metrics.

Covers: hand computations written as expressions (R-precision with and without the artist credit, NDCG, clicks and
their edge cases); agreement of the vectorised scores with a plain per-playlist reading of the formulas on random
cases; the averages, the table by question shape and the "left out" lines; the CLI's output, its errors and that
--metric=arena (the default) is unchanged. Run: python -m pytest tests/test_mpd_metric.py -q
"""
from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.metric import ResultsError
from common.mpd_metric import (artist_table, clicks, evaluate_mpd, mpd_scores, ndcg, primary_artists, r_precision,
                               rec_matrix)
from evaluate import evaluate, evaluate_files, format_result

SCRIPT = Path(__file__).resolve().parents[1] / "evaluate.py"


def d(i: int) -> float:
    """The discount of 1-based position i."""
    return 1 / math.log2(i + 1)


# ----------------------------------------------------------------------------------------------------------------
# Hand computations


def test_r_precision_counts_the_first_len_g_only():
    assert r_precision([1, 2, 3, 4], [9, 2, 8, 1, 3]) == 2 / 4  # 3 is at position 5 > |G|
    assert r_precision([1, 2], [1, 2, 3]) == 1.0
    assert r_precision([1, 1, 2], [2, 5]) == 1 / 2  # a repeated answer song counts once in |G|
    assert r_precision([7], [1, 2, 3]) == 0.0


def test_r_precision_artist_credit():
    table = artist_table([1, 2, 3, 7, 8, 9, 10], [100, 200, 300, 300, 100, 100, 400])
    # no track in the first 3; 9 and 8 share artist 100 (one credit), 7 has artist 300 of song 3
    assert r_precision([1, 2, 3], [9, 8, 7, 1], table) == (0 + 0.25 * 2) / 3
    # a hit (1) and a near miss (9: artist 100, the hit's own artist, still credits once), 10's artist is not in G
    assert r_precision([1, 2, 3], [1, 9, 10], table) == (1 + 0.25 * 1) / 3
    assert r_precision([1, 2, 3], [9, 8, 7, 1]) == 0.0  # without a table: tracks only
    assert r_precision([1, 2, 3], [11, 12, 13], table) == 0.0  # songs the table lacks earn nothing


def test_ndcg():
    assert ndcg([1, 2, 3, 4], [9, 2, 8, 1]) == pytest.approx((d(2) + d(4)) / (d(1) + d(2) + d(3) + d(4)))
    assert ndcg([5, 6], [5, 6, 7]) == pytest.approx(1.0)
    assert ndcg([5, 6], [7, 5]) == pytest.approx(d(2) / (d(1) + d(2)))
    assert ndcg([5, 6], [1, 2]) == 0.0
    # IDCG stops at 500 songs: a 600-song answer whose first 500 are recommended scores 1
    assert ndcg(list(range(600)), list(range(500))) == pytest.approx(1.0)
    # only the first 500 recommended songs count
    assert ndcg([999], [*range(1000, 1500), 999]) == 0.0


def test_clicks():
    assert clicks([1], [1, 2]) == 0
    assert clicks([1], [*range(100, 109), 1]) == 0  # position 10: still the first page
    assert clicks([1], [*range(100, 110), 1]) == 1  # position 11
    assert clicks([1], [*range(100, 124), 1]) == (25 - 1) // 10
    assert clicks([1], [2, 3]) == 51
    assert clicks([1], [*range(100, 600), 1]) == 51  # position 501 is past the 500 scored


def test_empty_answer_has_no_score():
    scores = mpd_scores([[], [1]], rec_matrix([[1], [1]]))
    assert np.isnan(scores["r_precision"][0]) and np.isnan(scores["ndcg"][0]) and np.isnan(scores["clicks"][0])
    assert scores["ndcg"][1] == 1.0


# ----------------------------------------------------------------------------------------------------------------
# The vectorised scores against a plain reading of the formulas


def reference(gt: list[int], rec: list[int], artist: dict[int, int] | None) -> tuple[float, float, float]:
    g, r = set(gt), rec[:500]
    top = r[: len(g)]
    credit = 0.0
    if artist is not None:
        g_artists = {artist[s] for s in g if s in artist}
        credit = 0.25 * len({artist[s] for s in top if s not in g and s in artist and artist[s] in g_artists})
    rp = (sum(s in g for s in top) + credit) / len(g)
    dcg = sum(d(i) for i, s in enumerate(r, 1) if s in g)
    idcg = sum(d(i) for i in range(1, min(len(g), 500) + 1))
    first = next((i for i, s in enumerate(r, 1) if s in g), None)
    return rp, dcg / idcg, (first - 1) // 10 if first else 51


@pytest.mark.parametrize("seed", [0, 1])
def test_vectorised_matches_the_reference(seed):
    rng = random.Random(seed)
    songs = range(3000)
    artist = {s: rng.randrange(40) for s in songs if rng.random() < 0.9}
    answers, recs = [], []
    for _ in range(200):
        gt = rng.sample(songs, rng.randint(1, 60))
        rec = rng.sample(songs, rng.randint(1, 600))
        rec[: rng.randint(0, 5)] = []  # some start without the shuffle's luck
        answers.append(gt)
        recs.append(rec or [gt[0]])
    table = artist_table(list(artist), list(artist.values()))
    for t, a in ((table, artist), (None, None)):
        scores = mpd_scores(answers, rec_matrix(recs), t)
        expected = np.array([reference(g, r, a) for g, r in zip(answers, recs)])
        np.testing.assert_allclose(scores["r_precision"], expected[:, 0], rtol=1e-12)
        np.testing.assert_allclose(scores["ndcg"], expected[:, 1], rtol=1e-12)
        np.testing.assert_array_equal(scores["clicks"], expected[:, 2])
    assert (mpd_scores(answers, rec_matrix(recs), table)["r_precision"]
            > mpd_scores(answers, rec_matrix(recs))["r_precision"]).any()  # the credit shows on random data


# ----------------------------------------------------------------------------------------------------------------
# Averages over files


def case() -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    gt = [{"id": 10, "songs": [1, 2], "tags": []}, {"id": 11, "songs": [3], "tags": []},
          {"id": 12, "songs": [], "tags": []}]
    rec = [{"id": 11, "songs": [5, 3]}, {"id": 10, "songs": [2, 9]}, {"id": 12, "songs": [1]}]
    question = [{"id": 10, "songs": [7], "plylst_title": "a"}, {"id": 11, "songs": [], "plylst_title": "b"},
                {"id": 12, "songs": [8, 9], "plylst_title": ""}]
    meta = [{"id": s, "artist_id_basket": [s % 2]} for s in range(10)]
    return gt, rec, question, meta


def test_evaluate_mpd_averages_and_left_out():
    gt, rec, question, meta = case()
    result = evaluate_mpd(gt, rec, primary_artists(meta), question)
    # playlist 10: first 2 = [2, 9]: a hit, and 9 has artist 1 as song 1 does; playlist 11: [5] has artist 1 = 3's
    assert result["r_precision"] == pytest.approx(((1 + 0.25) / 2 + (0 + 0.25) / 1) / 2)
    assert result["ndcg"] == pytest.approx((d(1) / (d(1) + d(2)) + d(2) / d(1)) / 2)
    assert result["clicks"] == 0 and result["count"] == 2
    assert result["left_out"] == ["1 answer playlist(s) with no songs (no score defined)",
                                  "3 recommendation(s) shorter than 500 songs (shortest 1): a song they lack counts "
                                  "as a miss, clicks 51 when none hits"]
    assert list(result["by_type"]) == ["title only", "title + 1 song"]  # 12 (2 songs, no title) has no answer
    assert result["by_type"]["title only"]["r_precision"] == pytest.approx(0.25)
    no_meta = evaluate_mpd(gt, rec)
    assert no_meta["r_precision"] == pytest.approx((1 / 2 + 0) / 2)
    assert "R-precision's artist credit (no song_meta given)" in no_meta["left_out"]
    gt[0]["tags"] = ["x"]
    assert "tags: the challenge scores songs only" in evaluate_mpd(gt, rec)["left_out"]


@pytest.mark.parametrize("change, message", [
    (lambda gt, rec: rec[0]["songs"].append(5), "results: record 0 (playlist id 11): song 5 appears more than once"),
    (lambda gt, rec: rec.pop(), "results: no recommendation for playlist id 12 of answers (1 missing in all)"),
    (lambda gt, rec: rec.append({"id": 99, "songs": []}), "results: playlist id 99 is not in answers"),
    (lambda gt, rec: rec[1]["songs"].append("x"), "results: record 1 (playlist id 10): songs item 'x' is not"),
    (lambda gt, rec: rec[1]["songs"].append(-3), "results: record 1 (playlist id 10): song id -3 is negative"),
    (lambda gt, rec: gt[0].pop("songs"), "answers: record 0 (playlist id 10): 'songs' must be a list"),
])
def test_evaluate_mpd_errors(change, message):
    gt, rec, _, _ = case()
    change(gt, rec)
    with pytest.raises(ResultsError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        evaluate_mpd(gt, rec)


def test_primary_artists_names_the_bad_record():
    with pytest.raises(ResultsError, match=r"^meta.json: record 1: expected an object with an integer 'id'"):
        primary_artists([{"id": 0, "artist_id_basket": [1]}, {"id": "1", "artist_id_basket": []}], "meta.json")


# ----------------------------------------------------------------------------------------------------------------
# The command line


def write(path: Path, obj: object) -> str:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return str(path)


def test_cli_prints_the_three_metrics(tmp_path):
    gt, rec, question, meta = case()
    args = [sys.executable, str(SCRIPT), "evaluate", f"--gt_fname={write(tmp_path / 'gt.json', gt)}",
            f"--rec_fname={write(tmp_path / 'rec.json', rec)}", "--metric=mpd"]
    run = subprocess.run(args + [f"--song_meta={write(tmp_path / 'meta.json', meta)}"], capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    r = evaluate_mpd(gt, rec, primary_artists(meta))
    assert run.stdout.splitlines() == [
        f"R-precision: {r['r_precision']:.6f}", f"NDCG: {r['ndcg']:.6f}", "clicks: 0.000000", "playlists scored: 2",
        "left out: 1 answer playlist(s) with no songs (no score defined)",
        "left out: 3 recommendation(s) shorter than 500 songs (shortest 1): a song they lack counts as a miss, "
        "clicks 51 when none hits"]
    bad = subprocess.run(args + ["--question_fname=" + write(tmp_path / "q.json", question[:1])], capture_output=True,
                         text=True)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'q.json'}: no question for playlist id 11 of {tmp_path / 'gt.json'}"]


@pytest.mark.parametrize("flags, message", [
    (["--metric=ndcg"], "error: --metric must be one of arena, mpd, got 'ndcg'"),
    (["--song_meta=m.json"], "error: --song_meta is only read with --metric=mpd"),
])
def test_cli_flag_errors(tmp_path, flags, message):
    gt, rec, _, _ = case()
    run = subprocess.run([sys.executable, str(SCRIPT), "evaluate", f"--gt_fname={write(tmp_path / 'g.json', gt)}",
                          f"--rec_fname={write(tmp_path / 'r.json', rec)}", *flags], capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.strip() == message


def test_arena_is_the_default_and_unchanged(tmp_path, capsys):
    gt = [{"id": 1, "songs": [1, 2], "tags": ["a"]}]
    rec = [{"id": 1, "songs": list(range(100)), "tags": [f"t{i}" for i in range(9)] + ["a"]}]
    g, r = write(tmp_path / "g.json", gt), write(tmp_path / "r.json", rec)
    evaluate(g, r)
    assert capsys.readouterr().out == format_result(evaluate_files(g, r)) + "\n"
