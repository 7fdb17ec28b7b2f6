"""Reliability of the hybrid ensemble, the faithful blend's inputs and the reports (predictor/, reports/).

Covers: search_weights --seeds with the default members needs every seed's BERT checkpoint and says so before any
work, keeping the old weights; dumps made from another train.json than {dataset_dir}/train.json are refused by the
leaderboard, the weight search, Ensemble.py (with and without --weights) and the trainers, before any work; a weights
file is refused for answering on another split, other dumps or retrained checkpoints, and an older format names the
command to run again; ensemble_weights.json and hybrid_heldout.json are replaced together even when SIGINT arrives
between the two renames, and a failure before the renames keeps both old files; a question type with a single
question is refused before any member runs; a run folder holding another model than its member's is refused; weights
that float32 cannot hold are refused; a model 2 that is no recommender yet is left out of the default members (and
refused when named); reports.curves refuses a missing folder. Tiny generated data, CPU, seconds.
Run: python -m pytest tests/test_reliability_predictor.py -q
"""
from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest
import torch

from common.arena import QUESTION_TYPES
from common.cli import UsageError
from common.jsonio import InputError, sha256_file
from data_loader import dump_datasets
from data_loader.dumps import load_dumps
from models import PlylstTitleConfig, PlylstTitleModel
from predictor import Ensemble, ensembling, search_weights, weights_file
from reports import curves, leaderboard
from test_baselines import planted, write_dataset
from test_seed_ensemble import save_tiny_run
from trainer.checkpoint import save_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

CPU = torch.device("cpu")
RANKER_MEMBERS = ["playlist_knn", "most_popular"]
BERT_MEMBERS = ["songs_tags_artists", "playlist_knn"]


def fail_if_called(*args, **kwargs):
    raise AssertionError("work started before the inputs were checked")


def other_dataset(dataset: Path, dest: Path, changed: str = "train.json") -> Path:
    """A copy of `dataset` whose file `changed` has other bytes (a trailing newline: same records, another sha256)."""
    shutil.copytree(dataset, dest)
    with open(dest / changed, "a", encoding="utf-8") as f:
        f.write("\n")
    return dest


def save_title_run(path: Path, dumps, recommender: bool) -> None:
    """A tiny model 2 checkpoint; recommender=False marks it as stopped during MLM pre-training."""
    torch.manual_seed(0)
    model = PlylstTitleModel(PlylstTitleConfig.from_dumps(dumps, d_model=8, d_ff=16, max_pieces=10))
    save_checkpoint(path, {"model_name": model.name, "model_config": model.config_dict(), "model": model.state_dict(),
                           "vocab_hash": dumps.vocab.hash, "sp_hash": dumps.sp_hash, "stage": "mlm", "step": 3,
                           "best_score": None, "recommender": recommender})


@pytest.fixture(scope="module")
def planted_set(tmp_path_factory) -> Path:
    """Planted playlists (tests/test_baselines.py) with questions of all four types, step 1's layout on disk."""
    d = planted(seed=4, n_train=300, n_questions=48)
    for i, q in enumerate(d["questions"][:48]):
        kind = QUESTION_TYPES[i % 4]
        if kind in ("tags only", "title only"):
            q["songs"] = []
        if kind in ("songs only", "title only"):
            q["tags"] = []
    return write_dataset(tmp_path_factory.mktemp("planted") / "ds", d)


@pytest.fixture(scope="module")
def bert_search(small_dataset, tmp_path_factory) -> dict:
    """A weight search with a (randomly initialised) model 1 member, on the session's small dataset."""
    out = tmp_path_factory.mktemp("bert") / "output"
    shutil.copytree(small_dataset / "output" / "dumps", out / "dumps")
    save_tiny_run(out / "songs_tags_artists" / "best.pt", load_dumps(out), 0)
    dataset = small_dataset / "dataset"
    obj = search_weights.search(dataset_dir=str(dataset), output_dir=str(out), members=BERT_MEMBERS, gpu=-1)
    return {"dataset": dataset, "out": out, "obj": obj, "weights": out / weights_file.WEIGHTS_FILE}


# ----------------------------------------------------------------------------------------------------------------
# search_weights --seeds with the default members


def test_seeds_default_members_need_every_seed_checkpoint(small_dataset, run_root, monkeypatch):
    dataset, out = small_dataset / "dataset", run_root / "output"
    dumps = load_dumps(out)
    save_tiny_run(out / "songs_tags_artists" / "best.pt", dumps, 0)
    old = {name: out / name for name in (weights_file.WEIGHTS_FILE, weights_file.HELDOUT_FILE)}
    for path in old.values():
        path.write_text("old", encoding="utf-8")
    monkeypatch.setattr(search_weights, "read_question_set", fail_if_called)
    with pytest.raises(InputError, match=r"songs_tags_artists_seed5[/\\]best.pt: checkpoint not found; .*--seeds=5,6"):
        search_weights.search(dataset_dir=str(dataset), output_dir=str(out), seeds=[5, 6], gpu=-1)
    # model 1's seeds there, model 2's not: model 2 is a default member all the same
    for s in (5, 6):
        save_tiny_run(out / f"songs_tags_artists_seed{s}" / "best.pt", dumps, s)
    with pytest.raises(InputError, match=r"plylst_title_seed5[/\\]best.pt: checkpoint not found"):
        search_weights.search(dataset_dir=str(dataset), output_dir=str(out), seeds=[5, 6], gpu=-1)
    assert all(path.read_text(encoding="utf-8") == "old" for path in old.values())


# ----------------------------------------------------------------------------------------------------------------
# Dumps made from another dataset


def test_leaderboard_refuses_dumps_of_another_dataset(small_dataset, run_root, tmp_path, monkeypatch):
    out = run_root / "output"
    save_tiny_run(out / "songs_tags_artists" / "best.pt", load_dumps(out), 0)
    other = other_dataset(small_dataset / "dataset", tmp_path / "other")
    monkeypatch.setattr(leaderboard, "baseline_methods", fail_if_called)
    with pytest.raises(InputError) as e:
        leaderboard.main(dataset_dir=str(other), output_dir=str(out), gpu=-1)
    message = str(e.value)
    assert message.startswith(str(out / "dumps" / "meta.json")) and "these dumps were made from" in message
    assert str(small_dataset / "dataset" / "train.json") in message and str(other / "train.json") in message
    assert sha256_file(other / "train.json")[:12] in message and "--dataset_dir" in message
    assert not (out / "leaderboard.md").exists()


def test_search_weights_refuses_dumps_of_another_dataset(small_dataset, run_root, tmp_path, monkeypatch):
    out = run_root / "output"
    save_tiny_run(out / "songs_tags_artists" / "best.pt", load_dumps(out), 0)
    other = other_dataset(small_dataset / "dataset", tmp_path / "other")
    monkeypatch.setattr(search_weights, "read_question_set", fail_if_called)
    with pytest.raises(InputError, match="these dumps were made from"):
        search_weights.search(dataset_dir=str(other), output_dir=str(out), members=BERT_MEMBERS, gpu=-1)
    assert not (out / weights_file.WEIGHTS_FILE).exists()


def test_ensemble_refuses_dumps_of_another_dataset(bert_search, tmp_path):
    out = bert_search["out"]
    other = other_dataset(bert_search["dataset"], tmp_path / "other")  # orig/train.json unchanged: the same split
    questions = str(bert_search["dataset"] / "questions" / "val.json")
    with pytest.raises(InputError, match="these dumps were made from"):
        Ensemble.main(gpu=-1, dataset_dir=str(other), output_dir=str(out), question_path=questions,
                      out_path=str(tmp_path / "r.json"), weights=str(bert_search["weights"]))
    with pytest.raises(InputError, match="these dumps were made from"):
        ensembling.run_ensemble(gpu=-1, dataset_dir=str(other), output_dir=str(out), question_path=questions,
                                out_path=str(tmp_path / "r.json"), runs=("songs_tags_artists",))
    assert not (tmp_path / "r.json").exists()
    # a question folder without train.json (inference.py on a test set): nothing to compare, as before
    (tmp_path / "questions_only").mkdir()
    ensembling.run_ensemble(gpu=-1, dataset_dir=str(tmp_path / "questions_only"), output_dir=str(out),
                            question_path=questions, out_path=str(tmp_path / "r.json"), runs=("songs_tags_artists",))


def test_trainer_refuses_a_train_json_changed_since_step_1(small_dataset, tmp_path):
    from trainer.songs_tags_artists_model_trainer import main

    dataset = tmp_path / "dataset"
    dataset.mkdir()
    for name in ("train.json", "song_meta.json"):
        shutil.copy(small_dataset / "dataset" / name, dataset / name)
    dump_datasets.main(dataset_dir=str(dataset), output_dir=str(tmp_path / "output"))
    with open(dataset / "train.json", "a", encoding="utf-8") as f:  # the same folder, another train.json
        f.write("\n")
    with pytest.raises(InputError, match=r"these dumps were made from .*train.json \(sha256 [0-9a-f]{12}"):
        main(gpu=-1, dataset_dir=str(dataset), output_dir=str(tmp_path / "output"), epochs=1, progress=False)
    assert not (tmp_path / "output" / "songs_tags_artists").exists()


# ----------------------------------------------------------------------------------------------------------------
# A weights file answering on another split, other dumps, other checkpoints


def test_weights_record_the_checkpoints(bert_search):
    split = bert_search["obj"]["split"]
    best = bert_search["out"] / "songs_tags_artists" / "best.pt"
    assert split["checkpoints_sha256"] == {"songs_tags_artists": sha256_file(best)}
    assert bert_search["obj"]["format_version"] == weights_file.FORMAT_VERSION == 2


def _answer(bert_search, tmp_path, dataset: Path | None = None, out: Path | None = None,
            weights: Path | None = None) -> None:
    Ensemble.main(gpu=-1, dataset_dir=str(dataset or bert_search["dataset"]), output_dir=str(out or bert_search["out"]),
                  question_path=str(bert_search["dataset"] / "questions" / "val.json"),
                  out_path=str(tmp_path / "r.json"), weights=str(weights or bert_search["weights"]))


def test_weights_of_another_split_are_refused(bert_search, tmp_path):
    other = other_dataset(bert_search["dataset"], tmp_path / "other", changed="orig/train.json")
    shutil.copy(bert_search["dataset"] / "train.json", other / "train.json")  # the same dumps' source
    with pytest.raises(InputError) as e:
        _answer(bert_search, tmp_path, dataset=other)
    message = str(e.value)
    assert message.startswith(str(bert_search["weights"])) and "split.train_sha256" in message
    assert "another split" in message and str(other / "orig" / "train.json") in message
    assert "python -m predictor.search_weights" in message and not (tmp_path / "r.json").exists()


def test_weights_of_other_dumps_are_refused(bert_search, tmp_path):
    obj = json.loads(bert_search["weights"].read_text(encoding="utf-8"))
    obj["split"]["vocab_hash"] = "0" * 16
    path = tmp_path / "w.json"
    path.write_text(json.dumps(obj), encoding="utf-8")
    with pytest.raises(InputError, match=r"w.json: split.vocab_hash: searched with dumps of vocabulary 0{16}"):
        _answer(bert_search, tmp_path, weights=path)


def test_weights_of_retrained_checkpoints_are_refused(bert_search, tmp_path):
    out = tmp_path / "output"
    shutil.copytree(bert_search["out"], out)
    save_tiny_run(out / "songs_tags_artists" / "best.pt", load_dumps(out), 1)  # retrained
    with pytest.raises(InputError) as e:
        _answer(bert_search, tmp_path, out=out, weights=out / weights_file.WEIGHTS_FILE)
    message = str(e.value)
    assert "split.checkpoints_sha256.songs_tags_artists" in message
    assert str(out / "songs_tags_artists" / "best.pt") in message and "changed since" in message
    _answer(bert_search, tmp_path)  # the file and checkpoints it was searched with: answered


@pytest.mark.parametrize("version", [1, 3, "2"])
def test_weights_of_another_format_name_the_fix(bert_search, tmp_path, version):
    obj = json.loads(bert_search["weights"].read_text(encoding="utf-8"))
    obj["format_version"] = version
    path = tmp_path / "w.json"
    path.write_text(json.dumps(obj), encoding="utf-8")
    with pytest.raises(InputError, match=rf"w.json: format_version: expected 2, got {version!r}; .*"
                                         r"python -m predictor.search_weights"):
        weights_file.load_weights(path)


# ----------------------------------------------------------------------------------------------------------------
# Writing the pair of files


def _search_planted(planted_set: Path, out: Path, seed: int = 0) -> dict:
    return search_weights.search(dataset_dir=str(planted_set), output_dir=str(out), members=RANKER_MEMBERS, seed=seed)


def test_weights_and_heldout_are_replaced_together_across_sigint(planted_set, tmp_path, monkeypatch):
    out = tmp_path / "out"
    _search_planted(planted_set, out)
    real_replace, sent = os.replace, []

    def replace_then_interrupt(src, dst):
        real_replace(src, dst)
        if Path(dst).name in (weights_file.WEIGHTS_FILE, weights_file.HELDOUT_FILE) and not sent:
            sent.append(Path(dst).name)
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C between the two renames

    monkeypatch.setattr(os, "replace", replace_then_interrupt)
    with pytest.raises(KeyboardInterrupt):  # still delivered, once both files are in place
        _search_planted(planted_set, out, seed=1)
    monkeypatch.undo()
    assert sent
    obj = json.loads((out / weights_file.WEIGHTS_FILE).read_text(encoding="utf-8"))
    assert obj["seed"] == 1 and obj["heldout"]["results_sha256"] == sha256_file(out / weights_file.HELDOUT_FILE)
    assert sorted(p.name for p in out.iterdir()) == sorted([weights_file.WEIGHTS_FILE, weights_file.HELDOUT_FILE])


def test_a_failure_before_the_renames_keeps_both_old_files(planted_set, tmp_path, monkeypatch):
    out = tmp_path / "out"
    _search_planted(planted_set, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(weights_file, "load_weights", lambda *a, **k: (_ for _ in ()).throw(InputError("boom")))
    with pytest.raises(InputError, match="boom"):
        _search_planted(planted_set, out, seed=1)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no temporary file left either


# ----------------------------------------------------------------------------------------------------------------
# Question types, members, weights


def test_a_question_type_with_one_question_is_refused_up_front(planted_set, tmp_path, monkeypatch):
    questions = json.loads((planted_set / "questions" / "val.json").read_text(encoding="utf-8"))
    answers = json.loads((planted_set / "answers" / "val.json").read_text(encoding="utf-8"))
    few = questions[:6]  # types in turn: songs only and songs+tags twice, tags only and title only once
    (tmp_path / "q.json").write_text(json.dumps(few), encoding="utf-8")
    (tmp_path / "a.json").write_text(json.dumps(answers[:6]), encoding="utf-8")
    monkeypatch.setattr(search_weights, "member_rankings", fail_if_called)
    with pytest.raises(InputError) as e:
        search_weights.search(dataset_dir=str(planted_set), output_dir=str(tmp_path / "out"), members=RANKER_MEMBERS,
                              question_path=str(tmp_path / "q.json"), answer_path=str(tmp_path / "a.json"))
    message = str(e.value)
    assert message.startswith(str(tmp_path / "q.json")) and "'tags only' has 1 question" in message
    assert "at least 2" in message and not (tmp_path / "out" / weights_file.WEIGHTS_FILE).exists()


def test_a_run_folder_holding_another_model_is_refused(small_dataset, run_root):
    out = run_root / "output"
    dumps = load_dumps(out)
    save_tiny_run(out / "plylst_title" / "best.pt", dumps, 0)  # model 1 trained with --run_name=plylst_title
    with pytest.raises(InputError) as e:
        ensembling.load_run(out, "plylst_title", dumps, CPU)
    message = str(e.value)
    assert message.startswith(str(out / "plylst_title" / "best.pt"))
    assert "holds a songs_tags_artists model" in message and "member plylst_title" in message
    with pytest.raises(InputError, match="holds a songs_tags_artists model"):
        search_weights.search(dataset_dir=str(small_dataset / "dataset"), output_dir=str(out),
                              members=["plylst_title", "playlist_knn"], gpu=-1)


@pytest.mark.parametrize("value", [1e308, 10**400, 3.5e38])
def test_weights_float32_cannot_hold_are_refused(planted_set, tmp_path, value):
    obj = _search_planted(planted_set, tmp_path / "out")
    obj["weights"]["songs only"]["songs"]["playlist_knn"] = value
    path = tmp_path / "w.json"
    path.write_text(json.dumps(obj), encoding="utf-8")
    with pytest.raises(InputError, match=r"w.json: weights.songs only.songs.playlist_knn: expected a finite number "
                                         r">= 0 .*float32"):
        weights_file.load_weights(path)


def test_a_model_2_that_is_no_recommender_is_left_out_of_the_default_members(small_dataset, run_root, capsys,
                                                                             monkeypatch):
    out = run_root / "output"
    dumps = load_dumps(out)
    save_tiny_run(out / "songs_tags_artists" / "best.pt", dumps, 0)
    save_title_run(out / "plylst_title" / "best.pt", dumps, recommender=False)
    got = search_weights.default_members(str(out), None)
    assert got[0] == "songs_tags_artists" and "plylst_title" not in got
    lines = [line for line in capsys.readouterr().out.splitlines() if "plylst_title" in line]
    assert len(lines) == 1 and "left out of the default members" in lines[0] and "not a recommender" in lines[0]
    monkeypatch.setattr(search_weights, "read_question_set", fail_if_called)
    with pytest.raises(InputError, match=r"plylst_title[/\\]best.pt: not a recommender yet"):
        search_weights.search(dataset_dir=str(small_dataset / "dataset"), output_dir=str(out),
                              members=["songs_tags_artists", "plylst_title"], gpu=-1)


def test_curves_refuse_a_missing_folder(tmp_path):
    with pytest.raises(UsageError, match=r"--output_dir=.*missing: no such folder"):
        curves.main(output_dir=str(tmp_path / "missing"))
    assert not (tmp_path / "missing").exists()
