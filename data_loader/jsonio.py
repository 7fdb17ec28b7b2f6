"""Reading and writing the pipeline's files: JSON with clear errors, and atomic writes for everything.

Every step writes through `atomic_write` so that a crash or a bad input never leaves a half-written file in
place of a good one: the data goes to a temporary file in the same folder, which is then renamed over the target.
"""
from __future__ import annotations

import contextlib
import gzip
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


class InputError(ValueError):
    """Bad input: the message names the file and, where there is one, the record."""


def load_json(path: str | os.PathLike) -> Any:
    """Load a UTF-8 JSON file (plain or .gz); malformed JSON becomes an InputError naming file, line and column."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except (UnicodeDecodeError, OSError, EOFError) as e:
        raise InputError(f"{path}: cannot read as UTF-8 JSON: {e}") from None


def _to_builtin(o: Any) -> Any:
    """json.dump hook: numpy scalars and arrays become Python ints/floats/lists."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """Open a temporary sibling of `path` for writing; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        encoding = None if "b" in mode else "utf-8"
        with open(tmp, mode, encoding=encoding) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Like `atomic_write`, for writers that want a file name (np.savez, torch.save, sentencepiece)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = None) -> None:
    """Write JSON atomically, UTF-8 with ensure_ascii=False (as the original's util.write_json)."""
    with atomic_write(path) as f:
        json.dump(obj, f, ensure_ascii=False, indent=indent, default=_to_builtin)
