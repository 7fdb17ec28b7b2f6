"""Tests for common/cli.py: the command line is checked against the entry point's typed signature before
anything runs (unknown or repeated flags, values of the wrong type, booleans as words, strings kept as typed), and
usage errors exit 2 with one `error:` line each, bad input data 1, both without a traceback.
Run: python -m pytest tests/test_cli.py -q
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from common.cli import (UsageError, check_flags, check_output_dir, check_output_file, convert, parse_args,
                        run_cli, step_inputs)
from common.jsonio import InputError

REPO = Path(__file__).resolve().parent.parent


def entry(out: str = "output", bs: int = 128, minutes: float | None = None, resume: bool = False,
          gpu: int | None = None, seeds: list[int] | None = None, name: str | None = None) -> dict:
    return dict(out=out, bs=bs, minutes=minutes, resume=resume, gpu=gpu, seeds=seeds, name=name)


def test_values_converted_by_annotation():
    kwargs, problems = parse_args(entry, ["--out=2024", "--bs", "64", "--minutes=0.5", "--resume=false",
                                          "--gpu=-1", "--seeds=0,1,2", "--name=비 오는 날"])
    assert problems == []
    assert kwargs == dict(out="2024", bs=64, minutes=0.5, resume=False, gpu=-1, seeds=[0, 1, 2], name="비 오는 날")
    assert parse_args(entry, ["--resume"])[0] == {"resume": True}
    assert parse_args(entry, ["--noresume"])[0] == {"resume": False}
    assert parse_args(entry, ["--resume", "no"])[0] == {"resume": False}
    assert parse_args(entry, ["--gpu=None", "--minutes=none"])[0] == {"gpu": None, "minutes": None}
    assert parse_args(entry, ["--seeds", "0,1,2"])[0] == {"seeds": [0, 1, 2]}
    assert parse_args(entry, ["--max-minutes=1"])[1]  # hyphens read as underscores: still unknown here
    assert parse_args(entry, ["--out-put=x"])[1]


@pytest.mark.parametrize("argv, message", [
    (["--bss=3"], "unknown flag --bss (did you mean --bs?)"),
    (["--bs=3", "--bs=4"], "--bs is given twice"),
    (["--bs=three"], "--bs must be an integer"),
    (["--bs=1.5"], "--bs must be an integer"),
    (["--minutes=nan"], "--minutes must be a finite number or none"),
    (["--resume=maybe"], "--resume must be true or false"),
    (["--gpu=cpu"], "--gpu must be an integer or none"),
    (["--bs"], "--bs needs a value"),
    (["x"], "unexpected argument 'x': give every value as --flag=value; valid flags: --out, --bs"),
    (["--bs=3", "4"], "unexpected argument '4' after --bs=3: a flag takes one value (quote a value with spaces)"),
])
def test_problems_named(argv, message):
    _, problems = parse_args(entry, argv)
    assert any(message in p for p in problems), problems


def test_required_parameter():
    def needs(path: str, k: int = 1) -> None: ...

    assert parse_args(needs, ["--k=2"])[1] == ["--path is required"]


def test_nothing_runs_on_a_bad_command_line(capsys):
    called = []

    def main(bs: int = 1) -> None:
        called.append(bs)

    for argv in (["--bz=2"], ["--bs=x"]):
        with pytest.raises(SystemExit) as e:
            run_cli(main, argv=argv)
        assert e.value.code == 2 and not called
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ")
    run_cli(main, argv=["--bs=3"])
    assert called == [3]


def test_errors_raised_inside_the_function(capsys):
    def usage(bs: int = 1) -> None:
        check_flags(bs=(bs >= 1, "at least 1"), other=(False, "something"))

    def data(path: str = "x") -> None:
        raise InputError(f"{path}: record 3 (playlist id 7): broken")

    with pytest.raises(SystemExit) as e:
        run_cli(usage, argv=["--bs=0"])
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines() == ["error: --bs must be at least 1", "error: --other must be something"]
    with pytest.raises(SystemExit) as e:
        run_cli(data, argv=["--path=f.json"])
    assert e.value.code == 1 and capsys.readouterr().err == "error: f.json: record 3 (playlist id 7): broken\n"


def test_sub_commands(capsys):
    seen = []
    commands = {"evaluate": lambda gt: seen.append(gt)}
    run_cli(commands, argv=["evaluate", "--gt=a.json"])
    assert seen == ["a.json"]
    with pytest.raises(SystemExit) as e:
        run_cli(commands, argv=["evaluat", "--gt=a.json"])
    assert e.value.code == 2 and "must be a command: evaluate" in capsys.readouterr().err


def test_convert_keeps_text_for_str_and_json_options():
    assert convert("x", "007", str) == "007"
    assert convert("q", '{"songs": [1]}', str | dict | list | None) == '{"songs": [1]}'
    with pytest.raises(UsageError):
        convert("x", "1,a", list[int])


def test_output_file_checks(tmp_path):
    check_output_file("out_path", tmp_path / "new" / "deeper" / "r.json")  # creatable
    with pytest.raises(UsageError, match="is a folder"):
        check_output_file("out_path", tmp_path)
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError, match="not a folder"):
        check_output_file("out_path", tmp_path / "f" / "r.json")


def test_entry_point_refuses_unknown_flag_before_work(tmp_path):
    """Step 1 with a flag it does not have writes nothing (it used to write everything, then exit 2)."""
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    proc = subprocess.run([sys.executable, "data_loader/dump_datasets.py", f"--dataset_dir={dataset}",
                           f"--output_dir={tmp_path / 'out'}", "--gpu=-1"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown flag --gpu; valid flags: --dataset_dir")
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_a_bad_list_item_is_one_plain_line():
    assert parse_args(entry, ["--seeds=a"])[1] == [
        "--seeds must be a comma-separated list of integers (e.g. 0,1,2) or none, got 'a'"]
    assert parse_args(entry, ["--seeds=0,x"])[1] == [
        "--seeds must be a comma-separated list of integers (e.g. 0,1,2) or none, got '0,x'"]


def test_list_items_given_with_spaces_are_named():
    """`--members a b` (spaces, not commas): the stray words are named as such, not read as other parameters."""
    def search(members: list[str] | None = None, fusion: str = "score", seeds: list[int] | None = None) -> None: ...

    for argv in (["--members", "playlist_knn", "item_cf"], ["--members=playlist_knn", "item_cf"]):
        kwargs, problems = parse_args(search, argv)
        assert problems == [f"unexpected argument 'item_cf' after {' '.join(argv[:-1])}: give list items joined by "
                            f"commas without spaces (--members=playlist_knn,item_cf)"], problems
    assert parse_args(search, ["--seeds", "0", "1", "2", "--fusion=rrf"])[1] == [
        "unexpected arguments '1', '2' after --seeds 0: give list items joined by commas without spaces "
        "(--seeds=0,1,2)"]


def test_positional_values_only_for_required_parameters():
    """An entry point whose parameters all have defaults takes flags only; required ones (evaluate.py's file names,
    as the official fire command) may still be given in order."""
    def needs(path: str, k: int = 1) -> None: ...

    assert parse_args(entry, ["out_folder", "32"]) == ({}, [
        "unexpected arguments 'out_folder', '32': give every value as --flag=value; valid flags: --out, --bs, "
        "--minutes, --resume, --gpu, --seeds, --name"])
    assert parse_args(needs, ["f.json"]) == ({"path": "f.json"}, [])
    assert parse_args(needs, ["f.json", "--k=2"]) == ({"path": "f.json", "k": 2}, [])
    assert parse_args(needs, ["f.json", "2"])[1] == [
        "unexpected argument '2': give every value as --flag=value; valid flags: --path, --k"]


def test_output_problems_name_the_path_given(tmp_path, monkeypatch):
    """Not the path of a file inside it, nor only the existing folder the check walked up to."""
    (tmp_path / "f").write_text("x")
    given = tmp_path / "f" / "out"
    with pytest.raises(UsageError) as e:
        check_output_dir("output_dir", given)
    assert str(e.value) == f"--output_dir={given}: {tmp_path / 'f'} is a file, not a folder"
    monkeypatch.setattr("common.cli.os.access", lambda path, mode: False)  # as for a read-only folder
    for check, given in ((check_output_dir, tmp_path / "ro"), (check_output_dir, tmp_path / "ro" / "deeper"),
                         (check_output_file, tmp_path / "ro" / "r.json")):
        with pytest.raises(UsageError) as e:
            check("out", given)
        assert str(e.value) == f"--out={given}: cannot write there, {tmp_path} is not writable"


def test_output_file_must_not_be_an_input(tmp_path):
    """The dataset's files, step 1's split, the question and weights files, the dumps and checkpoints are refused as
    an output file, however the path is spelt (relative, `..`, through a symlinked folder); other files are not."""
    d, o = tmp_path / "D", tmp_path / "O"
    for f in ("train.json", "orig/train.json", "answers/val.json", "dumps/vocab.json"):
        (d / f if not f.startswith("dumps") else o / f).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "link").symlink_to(d / "answers", target_is_directory=True)
    inputs = step_inputs(d, o, question_path=tmp_path / "q.json", weights=o / "w.json")
    refused = {
        d / "train.json": "the dataset's train.json", d / "genre_gn_all.json": "the dataset's genre_gn_all.json",
        d / "orig" / "train.json": f"step 1's split, {d / 'orig'}",
        d / "orig" / "new" / "x.json": f"step 1's split, {d / 'orig'}",
        d / "questions" / "val.json": f"the split's questions, {d / 'questions'}",
        tmp_path / "link" / "val.json": f"the split's answers, {d / 'answers'}",
        d / "orig" / ".." / "answers" / "val.json": f"the split's answers, {d / 'answers'}",
        d / "sample_answers" / "val.json": f"step 0's sample answers, {d / 'sample_answers'}",
        tmp_path / "q.json": "the question file, --question_path", o / "w.json": "the weights file, --weights",
        o / "dumps" / "meta.json": f"step 1's dumps, {o / 'dumps'}",
        o / "plylst_title_seed1" / "best.pt": "a training checkpoint",
    }
    for path, what in refused.items():
        with pytest.raises(UsageError) as e:
            check_output_file("out_path", path, protected=inputs)
        assert str(e.value) == f"--out_path {path} would overwrite an input ({what}); choose another file"
    for path in (d / "results.json", d / "answers.json", o / "results.json", o / "plylst_title" / "results.json",
                 tmp_path / "reco" / "train.json"):
        check_output_file("out_path", path, protected=inputs)
