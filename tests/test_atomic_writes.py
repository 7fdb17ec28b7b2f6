"""Atomic writes (common/jsonio.py atomic_path, atomic_write, write_json; trainer/checkpoint.py save_checkpoint):
a write that fails part-way leaves the previous file byte for byte and no temporary file in the folder; a write
that succeeds replaces the file whole, with the usual permissions.

Failures are made inside the write (an exception after part of the data, a KeyboardInterrupt, an object JSON
cannot encode, torch.save writing half a checkpoint and raising). Run: python -m pytest tests/test_atomic_writes.py -q
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from common.jsonio import atomic_path, atomic_write, load_json, write_json
from trainer.checkpoint import load_checkpoint, save_checkpoint
import trainer.checkpoint as checkpoint

OLD = b'{"old": "\xec\x9d\x8c\xec\x95\x85", "n": 1}'  # '{"old": "음악", "n": 1}' in UTF-8


def folder_with_old_file(tmp_path: Path, name: str = "data.json") -> Path:
    target = tmp_path / "run" / name
    target.parent.mkdir()
    target.write_bytes(OLD)
    return target


def assert_untouched(target: Path, old: bytes = OLD) -> None:
    assert target.read_bytes() == old
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temporary file left


def test_exception_inside_atomic_write_keeps_the_old_file(tmp_path):
    target = folder_with_old_file(tmp_path)
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_write(target) as f:
            f.write('{"new": ')
            f.flush()
            raise RuntimeError("disk full")
    assert_untouched(target)


@pytest.mark.parametrize("error", [OSError("no space left"), KeyboardInterrupt()])
def test_failure_inside_atomic_path_keeps_the_old_file(tmp_path, error):
    target = folder_with_old_file(tmp_path)
    with pytest.raises(type(error)):
        with atomic_path(target) as tmp:
            assert tmp.parent == target.parent and tmp != target
            tmp.write_bytes(b"half a fi")
            raise error
    assert_untouched(target)


def test_write_json_that_cannot_encode_keeps_the_old_file(tmp_path):
    target = folder_with_old_file(tmp_path)
    with pytest.raises(TypeError):
        write_json(target, {"fine": 1, "not json": object()})
    assert_untouched(target)


def test_failed_first_write_leaves_nothing(tmp_path):
    target = tmp_path / "new" / "results.json"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write("[")
            raise RuntimeError("crash")
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_successful_write_replaces_the_file_whole(tmp_path):
    target = folder_with_old_file(tmp_path)
    write_json(target, [{"id": 1, "tags": ["비 오는 날"]}])
    assert load_json(target) == [{"id": 1, "tags": ["비 오는 날"]}] and "비 오는 날" in target.read_text("utf-8")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not the temporary file's private 0600
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_save_checkpoint_failing_in_torch_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "run" / "last.pt"
    save_checkpoint(path, {"model_name": "m", "model_config": {}, "model": {"w": torch.ones(3)}, "vocab_hash": "a"})
    old = path.read_bytes()

    def half_save(obj, f):  # writes part of a checkpoint, then fails as a full disk would
        Path(f).write_bytes(old[: len(old) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", half_save)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, {"model_name": "m", "model_config": {}, "model": {"w": torch.zeros(3)},
                               "vocab_hash": "b"})
    assert_untouched(path, old)
    monkeypatch.undo()
    ckpt = load_checkpoint(path)
    assert ckpt["vocab_hash"] == "a" and torch.equal(ckpt["model"]["w"], torch.ones(3))
