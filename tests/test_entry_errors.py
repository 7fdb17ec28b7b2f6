"""The entry points' error paths, through real processes: a bad flag value exits 2 and bad input data exits 1, each
with exactly one `error:` line naming the problem, no traceback, and nothing written (README "The pipeline").

The processes run side by side (each mostly imports torch); no wall-clock limit, so that a loaded machine is slow,
not failing. Step 1's and evaluate.py's bad inputs: tests/test_dump_datasets.py, tests/test_evaluate.py.
Run: python -m pytest tests/test_entry_errors.py -q
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# (command after `python`, exit status, what the error line says); {tmp} is the test's temporary folder
CASES = [
    (["predictor/Ensemble.py", "--title_importance=0", "--out_path={tmp}/out/results.json"], 2,
     "--title_importance must be > 0"),
    (["data_loader/make_sample_dataset.py", "--preset=huge", "--out_dir={tmp}/out"], 2,
     "--preset must be one of tiny, demo, full, got 'huge'"),
    (["train.py", "--epochs=0", "--output_dir={tmp}/out"], 2, "--epochs must be at least 1"),
    (["trainer/plylst_title_model_trainer.py", "--gpu=-1", "--output_dir={tmp}/out"], 1, "run step 1 first"),
    (["predictor/recommend.py", "--question={", "--output_dir={tmp}/out"], 1, "--question: malformed JSON"),
    (["-m", "baselines.playlist_knn", "--k=0", "--out_path={tmp}/out/knn.json"], 2, "--k must be at least 1"),
    (["predictor/Ensemble.py", "--seeds=a", "--out_path={tmp}/out/results.json"], 2,
     "error: --seeds must be a comma-separated list of integers (e.g. 0,1,2) or none, got 'a'"),
    (["-m", "predictor.search_weights", "--members", "playlist_knn", "item_cf", "--output_dir={tmp}/out"], 2,
     "error: unexpected argument 'item_cf' after --members playlist_knn: give list items joined by commas without "
     "spaces (--members=playlist_knn,item_cf)"),
    (["predictor/recommend.py", '--question={"song": [3134, 527], "tag": ["추억"], "title": "비 오는 날"}',
      "--output_dir={tmp}/out"], 1,
     "error: --question: question 0: unknown keys 'song', 'tag', 'title'; the keys are id, songs, tags, "
     "plylst_title, updt_date, like_cnt"),
    (["predictor/Ensemble.py", "--dataset_dir={tmp}/D", "--question_path={tmp}/D/questions/val.json",
      "--out_path={tmp}/D/answers/val.json", "--output_dir={tmp}/out"], 2,
     "error: --out_path {tmp}/D/answers/val.json would overwrite an input (the split's answers, {tmp}/D/answers); "
     "choose another file"),
    (["inference.py", "--dataset_dir={tmp}/D", "--out_path={tmp}/D/test.json", "--output_dir={tmp}/out"], 2,
     "error: --out_path {tmp}/D/test.json would overwrite an input (the dataset's test.json)"),
    (["-m", "baselines.item_cf", "--dataset_dir={tmp}/D", "--out_path={tmp}/D/orig/train.json"], 2,
     "error: --out_path {tmp}/D/orig/train.json would overwrite an input (step 1's split, {tmp}/D/orig)"),
]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> list[tuple[list[str], int, str, subprocess.CompletedProcess, Path]]:
    """Every case run at once in its own temporary folder."""
    running = []
    for i, (args, status, message) in enumerate(CASES):
        tmp = tmp_path_factory.mktemp(f"case{i}")
        cmd = [sys.executable, *(a.replace("{tmp}", str(tmp)) for a in args)]
        running.append((args, status, message, tmp,
                        subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    done = []
    for args, status, message, tmp, proc in running:
        out, err = proc.communicate()
        done.append((args, status, message.replace("{tmp}", str(tmp)),
                     subprocess.CompletedProcess(proc.args, proc.returncode, out, err), tmp))
    return done


@pytest.mark.parametrize("case", range(len(CASES)), ids=[" ".join(c[0][:2]) for c in CASES])
def test_one_error_line_no_traceback_nothing_written(finished, case):
    args, status, message, proc, tmp = finished[case]
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == status, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp / "out").exists()  # refused before any work: no output folder made
