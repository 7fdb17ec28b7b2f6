"""The importers' outputs: written atomically, and never over a file they did not write.

Each folder an importer writes into keeps `.written_by_importers.json`, {"files": {name: [sha256, ...]}}: the
hashes of the files the importers wrote there. A file of an output's name that the marker does not vouch for (the
user's own data, or an imported file edited since) stops the import before any work unless --force; an importer's
own, unchanged outputs are replaced freely, so an import can be re-run. While a file is being replaced the marker
lists both its old and its new hash, so a run killed at any point leaves files the marker still vouches for (as
data_loader/make_sample_dataset.py does with its own marker).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import BinaryIO, Iterator

from common.cli import UsageError
from common.jsonio import atomic_path, sha256_file, write_json

MARKER = ".written_by_importers.json"


def _vouched(folder: Path) -> dict[str, list[str]]:
    try:
        marker = json.loads((folder / MARKER).read_bytes())
    except (FileNotFoundError, ValueError):
        return {}
    files = marker.get("files") if isinstance(marker, dict) else None
    return files if isinstance(files, dict) else {}


def foreign(paths: list[Path]) -> list[Path]:
    """Those of `paths` that exist but that no importer wrote, or that changed since (their folder's marker does
    not list their sha256)."""
    out = []
    for path in paths:
        if not os.path.lexists(path):
            continue
        if path.is_symlink() or not path.is_file() or sha256_file(path) not in _vouched(path.parent).get(path.name, ()):
            out.append(path)
    return out


def check_replaceable(flag: str, paths: list[Path], force: bool) -> None:
    """Refuse (UsageError, before any work) to replace files no importer wrote, unless `force`."""
    theirs = [] if force else foreign(paths)
    if theirs:
        raise UsageError(f"--{flag}: {', '.join(map(str, theirs))} already exist(s) and no importer wrote "
                         f"{'it' if len(theirs) == 1 else 'them'} (or {'it' if len(theirs) == 1 else 'they'} "
                         f"changed since); nothing was written: choose another --{flag}, or add --force to replace")


def _set_hashes(folder: Path, name: str, hashes: list[str]) -> None:
    files = _vouched(folder)
    files[name] = hashes
    write_json(folder / MARKER, {"written_by": "data_loader importers", "files": files}, indent=1)


class HashingWriter:
    """A binary file that hashes what is written to it."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self._f.write(data)
        self.sha256.update(data)


@contextlib.contextmanager
def owned_write(path: str | os.PathLike) -> Iterator[HashingWriter]:
    """Write `path` atomically (a temp file renamed over it on success) and vouch for it in its folder's marker."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as raw:
            writer = HashingWriter(raw)
            yield writer
            raw.flush()
            os.fsync(raw.fileno())
        digest = writer.sha256.hexdigest()
        _set_hashes(path.parent, path.name, list(dict.fromkeys([digest, *_vouched(path.parent).get(path.name, ())])))
    _set_hashes(path.parent, path.name, [digest])


def write_owned_json(path: str | os.PathLike, obj: object) -> None:
    """One JSON value (UTF-8, ensure_ascii=False, the C encoder) through `owned_write`."""
    with owned_write(path) as f:
        f.write(json.dumps(obj, ensure_ascii=False).encode("utf-8"))
