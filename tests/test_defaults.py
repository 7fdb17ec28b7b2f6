"""Every default the README, docs/ or a docstring states, asserted where the code keeps it: the task's sizes, the
entry points' flags, the rankers' parameters and the hybrid's search settings. A changed default fails here first;
change the documentation with it.

Run: python -m pytest tests/test_defaults.py -q
"""
from __future__ import annotations

import inspect

import pytest

from baselines import implicit_als, implicit_bm25, item_cf, most_popular, playlist_knn
from baselines.rankers import BASELINES, RANKERS
from common import arena
from data_loader import make_sample_dataset
import evaluate
import inference
from models import MODELS, RUNS
from predictor import Ensemble, fusion, fusion_fit, recommend, search_weights
import train
from trainer import plylst_title_model_trainer, songs_tags_artists_model_trainer


def defaults(fn) -> dict:
    return {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.default is not inspect.Parameter.empty}


def test_the_task_sizes():
    assert (arena.N_SONGS, arena.N_TAGS) == (100, 10)  # an answer
    assert (arena.SONG_WEIGHT, arena.TAG_WEIGHT) == (0.85, 0.15)  # the score
    assert (arena.SONG_CANDIDATES, arena.TAG_CANDIDATES) == (500, 50)  # a member's candidates
    assert arena.QUESTION_TYPES == ("songs only", "songs+tags", "tags only", "title only")
    assert RUNS == ("songs_tags_artists", "plylst_title") == tuple(MODELS)


@pytest.mark.parametrize("main", [songs_tags_artists_model_trainer.main, plylst_title_model_trainer.main])
def test_trainer_flags_are_the_originals(main):
    d = defaults(main)
    assert (d["bs"], d["warmup_steps"], d["epochs"], d["valid_every"], d["patience"], d["tags_loss_weight"]) == \
        (128, 4000, 300, 5, 50, 0.15)
    assert (d["seed"], d["amp"], d["max_minutes"], d["save_every_minutes"], d["log_every"]) == (0, False, None, 30.0, 100)
    assert (d["dataset_dir"], d["output_dir"], d["gpu"], d["run_name"]) == ("dataset", "output", None, None)


def test_model_specific_trainer_flags():
    assert defaults(songs_tags_artists_model_trainer.main)["artists_loss_weight"] == 0.15
    assert defaults(plylst_title_model_trainer.main)["mlm_epochs"] == 100


def test_step_flags():
    assert defaults(make_sample_dataset.main) == {"out_dir": "dataset", "preset": "demo", "seed": 0, "force": False,
                                                  "format": "melon"}
    assert defaults(evaluate.evaluate) == {"question_fname": None, "metric": "arena", "song_meta": None}
    e = defaults(Ensemble.main)
    assert (e["bs"], e["title_importance"], e["title_tag_weight"], e["out_path"]) == \
        (128, 0.85, 0.8, "./reco_result/results.json")
    assert (e["question_path"], e["weights"], e["seeds"], e["amp"]) == (None, None, None, False)
    r = defaults(recommend.main)
    assert (r["title_importance"], r["title_tag_weight"], r["output_dir"]) == (0.85, 0.8, "output")
    i = defaults(inference.main)
    assert (i["out_path"], i["bs"], i["weights"], i["seeds"]) == ("reco_result/results.json", 128, None, None)
    t = defaults(train.main)  # None: each trainer's own default (the original's)
    assert all(t[k] is None for k in ("max_minutes", "epochs", "mlm_epochs", "warmup_steps", "nproc_per_node", "seeds"))


def test_search_weights_flags_and_default_members(tmp_path):
    s = defaults(search_weights.main)
    assert (s["fusion"], s["seed"], s["separate_tag_weights"], s["members"], s["bs"]) == ("score", 0, False, None, 128)
    # without checkpoints: every ranker but most_popular (the popularity fallback already tops lists up)
    assert search_weights.default_members(str(tmp_path), None) == ["playlist_knn", "item_cf", "item_cf_svm", "als",
                                                                   "bm25"]


def test_fusion_search_settings():
    assert fusion.FUSIONS == ("exp", "rrf", "calibrated", "score") and fusion.K_OUT == {"songs": 100, "tags": 10}
    assert fusion_fit.WEIGHT_GRID == (0.0, 0.1, 0.2, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 3.0, 5.0)
    assert (fusion_fit.ROUNDS, fusion_fit.START, fusion_fit.MIN_GAIN) == (3, "equal", 0.0)
    assert fusion_fit.PARAM_GRID["score", "songs"] == fusion_fit.PARAM_GRID["score", "tags"] == (0.25, 0.5, 1.0, 2.0, 4.0)
    assert fusion.SCORE_FLOOR == fusion_fit.CAL_FLOOR == 1e-6


def test_the_baseline_registry():
    assert list(BASELINES) == ["most_popular", "genre_most_popular", "playlist_knn", "item_cf", "item_cf_svm", "als",
                              "bm25"]
    assert list(RANKERS) == ["most_popular", "playlist_knn", "item_cf", "item_cf_svm", "als", "bm25"]
    assert item_cf.SECOND_PLACE == {"alpha": 0.9, "beta": 0.7, "theta": 0.99, "svm": True}
    assert BASELINES["genre_most_popular"].needs_song_meta and BASELINES["als"].needs_package == "implicit"


@pytest.mark.parametrize("module, expected", [
    (playlist_knn, {"k": 200, "power": 1.0, "date_filter": True}),
    (item_cf, {"alpha": 1.0, "beta": 0.3, "theta": 0.8, "svm": False, "svm_c": None, "svm_negatives": None,
               "date_filter": True}),
    (implicit_als, {"factors": 128, "regularization": 0.01, "alpha": 50.0, "iterations": 15, "date_filter": True}),
    (implicit_bm25, {"k": 300, "k1": 1.2, "b": 0.05, "date_filter": True}),
    (most_popular, {}),
])
def test_ranker_parameters(module, expected):
    d = defaults(module.rank)
    assert (d["n_songs"], d["n_tags"]) == (500, 50)  # the hybrid's candidate depth
    assert {k: d[k] for k in expected} == expected
    # the command line of a ranker (python -m baselines.<name>) has the same defaults as its rank()
    if hasattr(module, "main"):
        cli = defaults(module.main)
        assert {k: cli[k] for k in expected if k in cli} == {k: v for k, v in expected.items() if k in cli}
