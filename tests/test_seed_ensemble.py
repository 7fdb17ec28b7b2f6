"""Tests for the faithful ensemble's default output (pinned) and for seed ensembles (soft voting).

Covers: Ensemble.py with its defaults writes, byte for byte, the results.json that the code before the hybrid
ensemble wrote on a fixed stand-in fixture (SHA-256 recorded from commit af6b3ec), and the same lists as the literal
re-implementation of docs/original.md 4 in tests/test_ensemble.py; SeedAverage scores the mean of its seeds' sigmoid
probabilities and ranks candidates by it; load_run reads the {model}_seed{s} run folders, refuses seeds of another
configuration and names a missing seed's checkpoint; Ensemble.py --seeds averages the seed checkpoints before the
blend; train.py --seeds trains each model once per seed into its own run folder (and without it, as before).
Run: python -m pytest tests/test_seed_ensemble.py -q
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from common.cli import UsageError
from common.jsonio import InputError
from data_loader.dumps import load_dumps
from models import SongsTagsArtistsConfig, SongsTagsArtistsModel
from predictor import Ensemble
import predictor.ensembling as ens
import train
from test_ensemble import CPU, S, T, FixedItems, make_questions, make_vocab, members, random_case, reference
from trainer.checkpoint import save_checkpoint

# sha256 of Ensemble.py's results.json on random_case(20240611, ...), written by the code of commit af6b3ec (before this change)
PINNED = {((20000, 300), (500, 50)): "394b3400f979346b9930dfb6d9926edda39ae4e800614e35eae3b19f5b9cdb3e",
          ((60, 12), (40, 4)): "75eaa26b3107f307edb39026457848fe47653f47a92115d12033208d90a5ab81"}


@pytest.mark.parametrize("search,keep", list(PINNED))
def test_faithful_default_is_pinned(monkeypatch, tmp_path, search, keep):
    for name, value in zip(("SONG_SEARCH", "TAG_SEARCH", "SONG_CANDIDATES", "TAG_CANDIDATES"), (*search, *keep)):
        monkeypatch.setattr(ens, name, value)
    q, dates, l1, l2 = random_case(20240611, 37, 7, 4, 5, 0.7)  # 37 questions, cold starts among them
    vocab = make_vocab()
    # Ensemble.py's default path with the stand-ins in place of the checkpoints and the encoded question file
    monkeypatch.setattr(ens, "load_dumps", lambda output_dir: SimpleNamespace(vocab=vocab, song_issue_dates=dates))
    monkeypatch.setattr(ens, "load_members", lambda *args, **kwargs: members(l1, l2))
    monkeypatch.setattr(ens, "read_questions", lambda path, dumps: (None, q))
    question_file = tmp_path / "q.json"
    question_file.write_text("[]", encoding="utf-8")
    out = tmp_path / "results.json"
    monkeypatch.chdir(tmp_path)  # the default --dataset_dir=dataset: none here, whatever the working folder holds
    Ensemble.main(gpu=-1, bs=8, question_path=str(question_file), out_path=str(out))
    assert hashlib.sha256(out.read_bytes()).hexdigest() == PINNED[search, keep]
    results = json.loads(out.read_text(encoding="utf-8"))
    want_songs, want_tags = reference(q, l1, l2, dates, 0.85, 0.8, search, keep)
    by_id = {r["id"]: r for r in results}
    assert [by_id[pid]["songs"] for pid in q.ids.tolist()] == [[1000 + s for s in row] for row in want_songs]
    assert [by_id[pid]["tags"] for pid in q.ids.tolist()] == [[f"tag{t}" for t in row] for row in want_tags]


def test_seed_average_ranks_by_mean_probability():
    rng = np.random.default_rng(5)
    N = 6
    q = make_questions([[1, 2]] * N, [[0]] * N, [True] * N, [20200101] * N)
    logits = [(rng.normal(size=(N, S)) * 4, rng.normal(size=(N, T)) * 4) for _ in range(2)]
    stand_ins = [FixedItems(*ls) for ls in logits]
    for m in stand_ins:
        m.config = "fixed"  # the seeds of one model share its configuration
    avg = ens.SeedAverage(stand_ins, ["seed0", "seed1"])
    song_logits, tag_logits = avg.scores({"rows": torch.arange(N)})
    mean = [(torch.sigmoid(torch.tensor(a)) + torch.sigmoid(torch.tensor(b))) / 2 for a, b in zip(*logits)]
    assert torch.allclose(torch.sigmoid(song_logits), mean[0].double(), atol=1e-12)
    assert torch.allclose(torch.sigmoid(tag_logits), mean[1].double(), atol=1e-12)
    c = ens.batch_candidates([avg], np.ones((1, N), bool), q, np.arange(N), make_vocab(),
                             torch.zeros(S, dtype=torch.long), CPU, False, ens.StepTimer(CPU)).members[0]
    p = mean[0].numpy().copy()
    p[:, [1, 2]] = -1  # seen songs are not candidates
    want = np.argsort(-p, axis=1, kind="stable")[:, : S - 2]
    assert c.song_idx[:, : S - 2].tolist() == want.tolist()
    assert np.allclose(c.song_p[:, : S - 2].numpy(), np.take_along_axis(p, want, 1), atol=1e-6)


def save_tiny_run(path: Path, dumps, seed: int, **config) -> SongsTagsArtistsModel:
    torch.manual_seed(seed)
    model = SongsTagsArtistsModel(SongsTagsArtistsConfig.from_dumps(dumps, **config))
    save_checkpoint(path, {"model_name": model.name, "model_config": model.config_dict(),
                           "model": model.state_dict(), "vocab_hash": dumps.vocab.hash})
    return model.eval()


def test_load_run_seeds_and_ensemble_seeds(small_dataset, run_root, tmp_path):
    out = run_root / "output"
    dumps = load_dumps(out)
    models = [save_tiny_run(out / f"songs_tags_artists_seed{s}" / "best.pt", dumps, s) for s in (0, 1)]
    voted = ens.load_run(out, "songs_tags_artists", dumps, CPU, seeds=[0, 1])
    assert isinstance(voted, ens.SeedAverage)
    q = dumps.val_questions
    batch = models[0].question_batch(q, np.arange(8))
    with torch.no_grad():
        got = voted.scores(batch)
        each = [m.scores(batch) for m in models]
    for i in range(2):
        want = (torch.sigmoid(each[0][i].double()) + torch.sigmoid(each[1][i].double())) / 2
        assert torch.allclose(torch.sigmoid(got[i]), want, atol=1e-12)
    with pytest.raises(InputError, match=r"songs_tags_artists_seed2/best.pt: checkpoint not found.*--seeds=0,2"):
        ens.load_run(out, "songs_tags_artists", dumps, CPU, seeds=[0, 2])
    save_tiny_run(out / "songs_tags_artists_seed3" / "best.pt", dumps, 3, tags_loss_weight=0.5)
    with pytest.raises(InputError, match="another model or configuration"):
        ens.load_run(out, "songs_tags_artists", dumps, CPU, seeds=[0, 3])
    # Ensemble.py --seeds: model 1 alone (as the leaderboard runs it), its two seeds soft-voted
    results = tmp_path / "r.json"
    ens.run_ensemble(gpu=-1, question_path=str(small_dataset / "dataset" / "questions" / "val.json"), out_path=str(results),
            output_dir=str(out), runs=("songs_tags_artists",), seeds=[0, 1])
    assert len(json.loads(results.read_text(encoding="utf-8"))) == len(q)
    with pytest.raises(UsageError, match="--seeds"):
        Ensemble.main(output_dir=str(out), out_path=str(results), seeds=[1, 1])


def test_train_seeds_one_run_folder_per_model_and_seed(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(train, "run_step", lambda script, args, nproc=None: calls.append((script, args)))
    train.main(dataset_dir=str(tmp_path), output_dir=str(tmp_path / "out"), skip_dump=True, seeds=[0, 2])
    got = [(Path(s).stem, [a for a in args if a.startswith(("--seed", "--run_name"))]) for s, args in calls]
    assert got == [("songs_tags_artists_model_trainer", ["--seed=0", "--run_name=songs_tags_artists_seed0"]),
                   ("songs_tags_artists_model_trainer", ["--seed=2", "--run_name=songs_tags_artists_seed2"]),
                   ("plylst_title_model_trainer", ["--seed=0", "--run_name=plylst_title_seed0"]),
                   ("plylst_title_model_trainer", ["--seed=2", "--run_name=plylst_title_seed2"])]
    calls.clear()
    train.main(dataset_dir=str(tmp_path), output_dir=str(tmp_path / "out"), skip_dump=True)
    assert [Path(s).stem for s, _ in calls] == ["songs_tags_artists_model_trainer", "plylst_title_model_trainer"]
    assert not [a for _, args in calls for a in args if a.startswith(("--seed", "--run_name"))]
    with pytest.raises(UsageError, match="--seeds"):
        train.main(dataset_dir=str(tmp_path), output_dir=str(tmp_path / "out"), seeds=[1, 1])
