"""Reliability of the data side: nothing a user made is overwritten, memory follows the data, bad input
is named, killed runs leave nothing behind, and what the tools print agrees with what they do.

Covers: step 0 refuses to replace files it did not write (or that were edited since) unless --force, and replaces
its own; run_demo.sh writes only under demo/; step 1 with song id 2**31-1 stays small in memory (peak RSS of a
child process under an address-space cap) and still gets the vocabulary, labels, artists and issue date right
(checked against references computed here from the written split); songs missing from song_meta.json get one
warning with their count; updt_date values that match the pattern but are not real dates or times are refused
naming the file and the record; temp files and folders of killed writers are removed by remove_stale_temps (and by
steps 0 and 1), those of live processes and other files kept; recommend.py reports unknown songs and tags; step 1
prints the question-type counts evaluate.py uses; the README's step 4 question file pairs with step 5's answers
and its recommend.py example ids are in the demo sample's vocabulary.
Run: python -m pytest tests/test_reliability_data.py -q
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from _fixtures import make_playlists, make_song_meta, write_json

from common.arena import QUESTION_TYPES, question_type
from common.cli import UsageError
from common.jsonio import InputError, remove_stale_temps, temp_owner
from data_loader import dump_datasets
from data_loader.dumps import load_dumps
from data_loader.make_sample_dataset import generate, main as make_sample
from data_loader.playlists import updt_to_int
from data_loader.schema import validate_playlists, validate_song_meta
from data_loader.split import group_sizes, seeded_split

ROOT = Path(__file__).resolve().parents[1]
STEP0 = ["data_loader/make_sample_dataset.py"]
STEP1 = ["data_loader/dump_datasets.py"]
SAMPLE_FILES = ["train.json", "val.json", "test.json", "song_meta.json", "genre_gn_all.json",
                "sample_answers/val.json", "sample_answers/test.json"]


def run_py(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)


def read_all(folder: Path) -> dict[str, bytes]:
    return {f: (folder / f).read_bytes() for f in SAMPLE_FILES}


# ----------------------------------------------------------------------------------------------------------------
# Step 0 never overwrites input data it did not write


def test_step0_refuses_to_replace_a_users_train_json(tmp_path):
    folder = tmp_path / "dataset"
    folder.mkdir()
    users = json.dumps(make_playlists(5)).encode()
    (folder / "train.json").write_bytes(users)
    proc = run_py(*STEP0, f"--out_dir={folder}", "--preset=tiny")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert "train.json" in lines[0] and "--force" in lines[0]
    assert (folder / "train.json").read_bytes() == users  # untouched, and nothing else written
    assert sorted(p.name for p in folder.iterdir()) == ["train.json"]


def test_step0_replaces_its_own_files_but_not_edited_ones(tmp_path):
    folder = tmp_path / "sample"
    make_sample(out_dir=str(folder), preset="tiny", seed=0)
    first = read_all(folder)
    make_sample(out_dir=str(folder), preset="tiny", seed=1)  # its own, unmodified files: replaced
    second = read_all(folder)
    assert second["train.json"] != first["train.json"]
    assert json.loads(second["train.json"]) == generate("tiny", 1)["train.json"]

    edited = second["val.json"][:-1] + b", {}]"  # the user edits a file step 0 wrote
    (folder / "val.json").write_bytes(edited)
    with pytest.raises(UsageError, match="val.json"):
        make_sample(out_dir=str(folder), preset="tiny", seed=0)
    assert (folder / "val.json").read_bytes() == edited and read_all(folder)["train.json"] == second["train.json"]

    (folder / "val.json").unlink()  # a file the marker lists but that is gone is not the user's: fine
    (folder / "sample_answers" / "test.json").write_bytes(b"[]")
    with pytest.raises(UsageError, match="sample_answers/test.json"):
        make_sample(out_dir=str(folder), preset="tiny", seed=0)

    make_sample(out_dir=str(folder), preset="tiny", seed=0, force=True)
    assert read_all(folder) == first


def test_run_demo_writes_only_under_demo(tmp_path):
    """run_demo.sh with a stand-in `python` that logs its arguments: every path it passes lies under demo/."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\n')
    (bin_dir / "python").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("DATA", "OUT", "RESULTS")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(["bash", str(ROOT / "run_demo.sh")], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    assert calls[0].startswith("data_loader/make_sample_dataset.py") and len(calls) >= 5
    flags = ("out_dir", "dataset_dir", "output_dir", "out_path", "question_path", "gt_fname", "rec_fname",
             "question_fname")
    paths = re.findall(rf"--(?:{'|'.join(flags)})=(\S+)", "\n".join(calls))
    assert len(paths) >= 10
    for p in paths:
        assert (ROOT / p).resolve().is_relative_to(ROOT / "demo"), p
    if shutil.which("git") and (ROOT / ".git").exists():  # the demo's outputs are not offered for commit
        wanted = ["demo/dataset/train.json", "demo/output/dumps/vocab.json", "demo/reco_result/results.json"]
        ignored = subprocess.run(["git", "check-ignore", *wanted], cwd=ROOT, capture_output=True, text=True)
        assert ignored.stdout.split() == wanted


# ----------------------------------------------------------------------------------------------------------------
# Memory follows the number of distinct ids; songs missing from song_meta get one warning

_MAXRSS_CHILD = """  # run a command under an address-space cap; print its peak resident memory
import resource, subprocess, sys
resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))  # a dense table over 2**31 ids would need 16 GiB
rc = subprocess.run(sys.argv[1:]).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)  # KiB, the step's own peak only
sys.exit(rc)
"""


def _cut(counts: Counter, recall: float) -> list:
    """The original's filter_low_freq_item: most frequent first (ties: first seen); stop before item k once the
    share of items[:k] exceeds the recall."""
    ranked = sorted(counts, key=lambda x: -counts[x])  # stable: Counter keeps first-seen order
    total, kept, acc = sum(counts.values()), [], 0
    for item in ranked:
        if acc / total > recall:
            break
        kept.append(item)
        acc += counts[item]
    return kept


def test_step1_memory_follows_distinct_ids_not_the_largest_id(tmp_path):
    big = 2**31 - 1
    playlists = make_playlists(300, seed=1)
    for p in playlists[:40]:
        p["songs"].append(big)
    meta = make_song_meta(300)
    meta.append(dict(meta[0], id=big, artist_id_basket=[big], issue_date="0"))
    dataset, out = tmp_path / "dataset", tmp_path / "out"
    write_json(dataset / "train.json", playlists)
    write_json(dataset / "song_meta.json", meta)
    one_thread = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}  # few stacks
    proc = run_py("-c", _MAXRSS_CHILD, sys.executable, *STEP1, f"--dataset_dir={dataset}", f"--output_dir={out}",
                  env_extra=one_thread)
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak_kib = int(proc.stdout.strip().splitlines()[-1])
    assert peak_kib < 1 << 20, f"step 1 peaked at {peak_kib / 2**20:.2f} GiB"

    dumps = load_dumps(out)
    vocab = dumps.vocab
    orig_train = json.loads((dataset / "orig" / "train.json").read_text(encoding="utf-8"))
    assert vocab.songs == _cut(Counter(s for p in orig_train for s in p["songs"]), 0.9)
    label = vocab.songs.index(big)
    for row, p in enumerate(orig_train):  # encoded rows hold the big id's label exactly where the playlist has it
        assert (label in dumps.train.songs.row(row).tolist()) == (big in p["songs"])
    assert big in vocab.artists
    assert vocab.song_artists.row(label).tolist() == [vocab.n_songs + vocab.n_tags + vocab.artists.index(big)]
    # its issue date is 0, so it gets the earliest updt_date of the train.json playlists holding it
    assert dumps.song_issue_dates[label] == min(updt_to_int(p["updt_date"]) for p in playlists if big in p["songs"])


def test_step1_warns_once_about_songs_missing_from_song_meta(tmp_path, capsys):
    playlists = make_playlists(200, seed=3)
    meta = make_song_meta(250)
    missing = {s for p in playlists for s in p["songs"]} - {r["id"] for r in meta}
    assert missing
    write_json(tmp_path / "dataset" / "train.json", playlists)
    write_json(tmp_path / "dataset" / "song_meta.json", meta)
    dump_datasets.main(dataset_dir=str(tmp_path / "dataset"), output_dir=str(tmp_path / "out"))
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.lower().startswith("warning")]
    warnings = [line for line in warnings if "song_meta" in line]
    assert len(warnings) == 1
    assert re.search(rf"\b{len(missing)} of the {len({s for p in playlists for s in p['songs']})} distinct songs",
                     warnings[0]), warnings[0]


# ----------------------------------------------------------------------------------------------------------------
# updt_date values that are not real dates or times


@pytest.mark.parametrize("bad", ["2020-13-45 25:61:61.000", "2019-02-30 10:00:00.000", "2019-02-29 10:00:00.000",
                                 "2020-04-31 00:00:00.000", "2020-00-10 00:00:00.000", "0000-01-01 00:00:00.000",
                                 "2020-01-01 24:00:00.000", "2020-01-01 23:60:00.000", "2020-01-01 23:59:60.000"])
def test_updt_dates_that_are_not_dates_are_refused(bad):
    records = make_playlists(80)
    records[57]["updt_date"] = bad
    with pytest.raises(InputError) as e:
        validate_playlists(records, "train.json")
    assert str(e.value).startswith("train.json: record 57 (playlist id 57): 'updt_date'") and bad in str(e.value)


def test_real_dates_pass_and_song_meta_keeps_zero_month_and_day():
    records = make_playlists(20)
    for r, d in zip(records, ["2020-02-29 23:59:59.999", "2019-12-31 00:00:00.0", "2005-01-01 00:00:00.123456"]):
        r["updt_date"] = d
    assert validate_playlists(records, "train.json") == []
    meta = make_song_meta(5)
    for r, d in zip(meta, ["20190000", "20190100", "0", "00000000", "19991231"]):
        r["issue_date"] = d
    validate_song_meta(meta, "song_meta.json")  # docs/original.md 1.1: 00 month / day are legal there


def test_step1_refuses_a_bad_date_in_one_line(tmp_path):
    records = make_playlists(50)
    records[31]["updt_date"] = "2020-13-45 25:61:61.000"
    write_json(tmp_path / "dataset" / "train.json", records)
    proc = run_py(*STEP1, f"--dataset_dir={tmp_path / 'dataset'}", f"--output_dir={tmp_path / 'out'}")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "train.json: record 31 (playlist id 31)" in lines[0] and "2020-13-45 25:61:61.000" in lines[0]
    assert not (tmp_path / "out").exists() and not (tmp_path / "dataset" / "orig").exists()


# ----------------------------------------------------------------------------------------------------------------
# Temp files of killed runs

_KILLED_WRITER = """
import sys, time
from pathlib import Path
from common import jsonio
from data_loader import title
folder = Path(sys.argv[1])
def hang(*args, **kwargs):
    print("ready", flush=True)
    time.sleep(120)
title._train = hang
with jsonio.atomic_path(folder / "train.npz") as tmp:
    tmp.write_bytes(b"half written")
    title.train_sentencepiece(["a title", "another title"], folder)
"""


def _writer_with_temps(folder: Path) -> subprocess.Popen:
    """A process that holds a temp file (atomic_path) and a SentencePiece temp folder in `folder`, as a step-1 run
    does when it is killed; returns once both exist."""
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(folder)], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _killed(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_remove_stale_temps_removes_dead_writers_only(tmp_path):
    dead_dir, live_dir = tmp_path / "dead", tmp_path / "live"
    dead, live = _writer_with_temps(dead_dir), _writer_with_temps(live_dir)
    try:
        _killed(dead)
        dead_temps, live_temps = sorted(dead_dir.iterdir()), sorted(live_dir.iterdir())
        assert len(dead_temps) == len(live_temps) == 2  # a file and a folder each
        assert {temp_owner(p.name) for p in dead_temps} == {dead.pid}
        assert {temp_owner(p.name) for p in live_temps} == {live.pid}
        others = [".notes.txt", "train.json", ".train.npz.tmp", f".train.{dead.pid}.tmp", f"x.{dead.pid}.abcd1234.tmp"]
        for name in others:  # files that are not temps of this scheme stay, whatever they look like
            (dead_dir / name).write_text("keep")
        shutil.copytree(live_dir, tmp_path / "copy")
        assert sorted(remove_stale_temps(dead_dir)) == dead_temps
        assert sorted(p.name for p in dead_dir.iterdir()) == sorted(others)
        assert remove_stale_temps(live_dir) == [] and sorted(live_dir.iterdir()) == live_temps
        assert remove_stale_temps(tmp_path / "missing") == []
    finally:
        _killed(live)
    assert sorted(remove_stale_temps(live_dir)) == live_temps and not list(live_dir.iterdir())


def dead_pid() -> int:
    """The pid of a process that has exited."""
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)


def test_remove_stale_temps_knows_step0s_older_naming(tmp_path):
    """Step 0 once wrote its JSON files through `.{name}.{pid}.tmp`: those of a dead writer go too, nothing else."""
    pid = dead_pid()
    stale = [f".train.json.{pid}.tmp", f".val.json.{pid}.tmp"]
    kept = [f".train.json.{os.getpid()}.tmp", ".train.json.tmp", f"train.json.{pid}.tmp", f".notes.txt.{pid}.tmp",
            f".train.json.{pid}.tmp.bak", f".json.{pid}.tmp"]
    for name in stale + kept:
        (tmp_path / name).write_text("x")
    assert {temp_owner(n) for n in stale} == {pid}
    assert sorted(p.name for p in remove_stale_temps(tmp_path)) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)


def test_steps_0_and_1_clean_up_after_killed_runs(tmp_path):
    dataset, dumps = tmp_path / "dataset", tmp_path / "out" / "dumps"
    for folder in (dataset, dumps, dataset / "orig"):
        _killed(_writer_with_temps(folder))
        assert any(temp_owner(p.name) for p in folder.iterdir())
    make_sample(out_dir=str(dataset), preset="tiny", seed=0)
    write_json(dataset / "train.json", make_playlists(120))  # a user's file now: step 1 only reads it
    dump_datasets.main(dataset_dir=str(dataset), output_dir=str(tmp_path / "out"))
    leftovers = [p for p in tmp_path.rglob("*") if temp_owner(p.name) is not None]
    assert leftovers == []


def test_sentencepiece_temp_folder_is_a_recognisable_temp(tmp_path, monkeypatch):
    from data_loader import title

    seen = []

    def fake_train(corpus: Path, model_prefix: Path, vocab_size: int) -> None:
        seen.append(model_prefix.parent)
        for ext in (".model", ".vocab"):
            model_prefix.with_name(model_prefix.name + ext).write_text("")

    monkeypatch.setattr(title, "_train", fake_train)
    title.train_sentencepiece(["a b"], tmp_path)
    assert seen[0].parent == tmp_path and temp_owner(seen[0].name) == os.getpid()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plylst_title_bpe.model", "plylst_title_bpe.vocab",
                                                         "plylst_titles.txt"]


# ----------------------------------------------------------------------------------------------------------------
# recommend.py reports unknown ids; step 1's counts are evaluate.py's; the README's examples work


def test_recommend_reports_unknown_songs_and_tags(small_dataset, monkeypatch, capsys):
    import predictor.recommend as recommend

    monkeypatch.setattr(recommend, "load_members", lambda *args, **kwargs: [])  # cold start: no checkpoints needed
    out = small_dataset / "output"
    vocab = load_dumps(out).vocab
    known_song, known_tag = vocab.songs[0], vocab.tags[0]
    question = {"songs": [known_song, 10**9 + 7, 2**31 - 1], "tags": [known_tag, "없는태그"], "plylst_title": "밤"}
    recommend.main(question=json.dumps(question, ensure_ascii=False), gpu=-1, output_dir=str(out))
    printed, err = capsys.readouterr()
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, err
    assert re.search(r"\b2 songs?\b", warnings[0]) and "1000000007" in warnings[0] and "2147483647" in warnings[0]
    assert re.search(r"\b1 tags?\b", warnings[0]) and "없는태그" in warnings[0]
    assert str(known_song) not in re.findall(r"\d+", warnings[0]) and known_tag not in warnings[0]
    assert len(json.loads(printed.strip().splitlines()[-1])["songs"]) == 100

    recommend.main(question=json.dumps({"songs": [known_song], "tags": [known_tag]}), gpu=-1, output_dir=str(out))
    assert "warning" not in capsys.readouterr().err


def test_step1_prints_the_question_type_counts_evaluate_uses(tmp_path, capsys):
    write_json(tmp_path / "dataset" / "train.json", make_playlists(400, seed=11, first_id=1000))
    write_json(tmp_path / "dataset" / "song_meta.json", make_song_meta(300, seed=11))
    dump_datasets.main(dataset_dir=str(tmp_path / "dataset"), output_dir=str(tmp_path / "out"))
    printed = capsys.readouterr().out
    questions = json.loads((tmp_path / "dataset" / "questions" / "val.json").read_text(encoding="utf-8"))
    expected = {t: n for t, n in Counter(map(question_type, questions)).items()}
    assert expected != {k: v for k, v in group_sizes(len(questions)).items() if v}  # the two counts differ here
    line = next(line for line in printed.splitlines() if "evaluate.py" in line)
    shown = {t: int(m.group(1)) for t in QUESTION_TYPES for m in [re.search(rf"{re.escape(t)} (\d+)", line)] if m}
    assert {t: n for t, n in shown.items() if n} == expected
    assert load_dumps(tmp_path / "out").meta["val_question_types"] == {t: expected.get(t, 0) for t in QUESTION_TYPES}


def _readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_step4_questions_pair_with_step5_answers():
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| (\d) \| (.*)$", _readme(), re.M)}
    question_path = re.search(r"--question_path=([^\]\s`]+)", rows["4"]).group(1)
    gt = re.search(r"--gt_fname=([^\]\s`]+)", rows["5"]).group(1)
    question_fname = re.search(r"--question_fname=([^\]\s`]+)", rows["5"]).group(1)
    assert Path(question_path) == Path(question_fname)
    assert Path(gt) == Path(question_fname).parent.parent / "answers" / Path(question_fname).name


def test_readme_recommend_example_ids_are_in_the_demo_vocabulary():
    example = re.search(r"predictor/recommend\.py [^`]*--question='([^']+)'", _readme()).group(1)
    question = json.loads(example)
    train = generate("demo", seed=0)["train.json"]
    orig_train = seeded_split(train)[0]
    songs = _cut(Counter(s for p in orig_train for s in p["songs"]), 0.9)
    tags = _cut(Counter(t for p in orig_train for t in p["tags"]), 0.95)
    assert question["songs"] and set(question["songs"]) <= set(songs)
    assert question["tags"] and set(question["tags"]) <= set(tags)
