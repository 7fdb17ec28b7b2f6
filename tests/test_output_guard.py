"""An output file is never one of the pipeline's inputs: step 4 (Ensemble.py, inference.py, the hybrid) and the
baselines refuse, before any work and with one line, an --out_path that is a dataset file, part of step 1's split,
the question or weights file, or under the dumps or a checkpoint, however the path reaches it (a symlinked folder,
`..`, the benchmark's models folder whose dumps/ is a link); the file is left as it was, and other paths still work.
Run: python -m pytest tests/test_output_guard.py -q
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from baselines import item_cf
from common.cli import UsageError
from data_loader import dump_datasets
from data_loader.make_sample_dataset import generate, write
import inference
from predictor import Ensemble


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Path:
    """A tiny sample with step 1's split (D) and dumps (O), and a models folder M whose dumps/ links to O's."""
    root = tmp_path_factory.mktemp("guard")
    data = generate("tiny", seed=0)
    write(str(root / "D"), {"train.json": data["train.json"][:200], "song_meta.json": data["song_meta.json"],
                            "test.json": data["test.json"][:20]})
    dump_datasets.main(dataset_dir=str(root / "D"), output_dir=str(root / "O"))
    (root / "M").mkdir()
    (root / "M" / "dumps").symlink_to(root / "O" / "dumps", target_is_directory=True)
    (root / "O" / "weights.json").write_text("{}")
    (root / "link").symlink_to(root / "D" / "answers", target_is_directory=True)
    return root


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(split: Path, run, out_path: str, what: str) -> None:
    before = digest(split)
    with pytest.raises(UsageError) as e:
        run(out_path)
    assert str(e.value) == f"--out_path {out_path} would overwrite an input ({what}); choose another file"
    assert digest(split) == before


def test_ensemble_refuses_its_inputs(split):
    D, O, M = (str(split / n) for n in "DOM")

    def ensemble(out_path: str, output_dir: str = O, weights: str | None = None) -> None:
        Ensemble.main(gpu=-1, dataset_dir=D, output_dir=output_dir, question_path=f"{D}/questions/val.json",
                      out_path=out_path, weights=weights)

    refused(split, ensemble, f"{D}/answers/val.json", f"the split's answers, {D}/answers")
    refused(split, ensemble, f"{D}/questions/val.json", f"the split's questions, {D}/questions")
    refused(split, ensemble, f"{split}/link/val.json", f"the split's answers, {D}/answers")
    refused(split, ensemble, f"{D}/orig/../answers/val.json", f"the split's answers, {D}/answers")
    refused(split, ensemble, f"{D}/song_meta.json", "the dataset's song_meta.json")
    refused(split, ensemble, f"{O}/dumps/vocab.json", f"step 1's dumps, {O}/dumps")
    refused(split, ensemble, f"{O}/songs_tags_artists/best.pt", "a training checkpoint")
    refused(split, lambda p: ensemble(p, output_dir=M), f"{O}/dumps/meta.json", f"step 1's dumps, {M}/dumps")
    refused(split, lambda p: ensemble(p, weights=f"{O}/weights.json"), f"{O}/weights.json",
            "the weights file, --weights")
    refused(split, lambda p: inference.main(gpu=-1, dataset_dir=D, output_dir=O, out_path=p), f"{D}/test.json",
            "the dataset's test.json")


def test_baselines_refuse_their_inputs_and_write_elsewhere(split):
    D = str(split / "D")

    def knn(out_path: str, question_path: str | None = None) -> None:
        item_cf.main(dataset_dir=D, question_path=question_path, out_path=out_path)

    refused(split, knn, f"{D}/orig/train.json", f"step 1's split, {D}/orig")
    refused(split, knn, f"{D}/train.json", "the dataset's train.json")
    refused(split, lambda p: knn(p, question_path=f"{split}/O/q.json"), f"{split}/O/q.json",
            "the question file, --question_path")
    knn(str(split / "reco" / "item_cf.json"))
    assert (split / "reco" / "item_cf.json").is_file()
