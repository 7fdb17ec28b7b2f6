"""Shared fixture for the trainer tests: a small Melon-shaped dataset run through step 1 once per session.

The playlists come from data_loader/make_sample_dataset.py (planted themes, so the models have something to learn),
cut to 240 (216 to train on: 2 batches of 128, or 4 of 64) and the entry points run in seconds on a CPU.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from data_loader import dump_datasets
from data_loader.make_sample_dataset import generate, write


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with dataset/ (train.json, song_meta.json and step 1's split) and output/dumps/."""
    root = tmp_path_factory.mktemp("small")
    data = generate("tiny", seed=0)
    write(str(root / "dataset"), {"train.json": data["train.json"][:240], "song_meta.json": data["song_meta.json"]})
    dump_datasets.main(dataset_dir=str(root / "dataset"), output_dir=str(root / "output"))
    return root


@pytest.fixture
def run_root(small_dataset: Path, tmp_path: Path) -> Path:
    """A private output folder holding a copy of the session's dumps (runs write next to them)."""
    shutil.copytree(small_dataset / "output" / "dumps", tmp_path / "output" / "dumps")
    return tmp_path


@pytest.fixture
def one_thread():
    """Tiny models run faster on one thread, and far faster when the CPU is shared (no OpenMP spin-waits).
    Modules opt in with pytestmark = pytest.mark.usefixtures("one_thread")."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
