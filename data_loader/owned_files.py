"""The importers' outputs: written atomically, and never over a file they did not write.

Each folder an importer writes into keeps `.written_by_importers.json`, {"files": {name: [sha256, ...]}}: the
hashes of the files the importers wrote there. Step 0 (data_loader/make_sample_dataset.py) keeps a marker of its own
through the same functions. A file of an output's name that the marker does not vouch for (the
user's own data, or an imported file edited since) stops the import before any work unless --force; an importer's
own, unchanged outputs are replaced freely, so an import can be re-run. While a file is being replaced the marker
lists both its old and its new hash, so a run killed at any point leaves files the marker still vouches for.
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
IMPORTERS = {"written_by": "data_loader importers"}  # the importers' marker header


def vouched(root: Path, marker: str = MARKER) -> dict[str, list[str]]:
    """{file name relative to root: [sha256, ...]} that the marker `root/marker` lists; {} without a readable one."""
    try:
        content = json.loads((root / marker).read_bytes())
    except (FileNotFoundError, ValueError):
        return {}
    files = content.get("files") if isinstance(content, dict) else None
    return files if isinstance(files, dict) else {}


def unvouched(root: Path, names: list[str], marker: str = MARKER) -> list[str]:
    """Those of `names` (relative to root) that exist but that the marker does not vouch for: not a plain file, not
    written by the step that keeps the marker, or changed since (their sha256 is not listed)."""
    listed = vouched(root, marker)
    out = []
    for name in names:
        path = root / name
        if not os.path.lexists(path):
            continue
        if path.is_symlink() or not path.is_file() or sha256_file(path) not in listed.get(name, ()):
            out.append(name)
    return out


def foreign(paths: list[Path]) -> list[Path]:
    """Those of `paths` that exist but that no importer wrote, or that changed since (their folder's marker does
    not list their sha256)."""
    return [path for path in paths if unvouched(path.parent, [path.name])]


def check_replaceable(flag: str, paths: list[Path], force: bool) -> None:
    """Refuse (UsageError, before any work) to replace files no importer wrote, unless `force`."""
    theirs = [] if force else foreign(paths)
    if theirs:
        raise UsageError(f"--{flag}: {', '.join(map(str, theirs))} already exist(s) and no importer wrote "
                         f"{'it' if len(theirs) == 1 else 'them'} (or {'it' if len(theirs) == 1 else 'they'} "
                         f"changed since); nothing was written: choose another --{flag}, or add --force to replace")


def _vouch(root: Path, name: str, hashes: list[str], marker: str, header: dict) -> None:
    files = vouched(root, marker)
    files[name] = hashes
    write_json(root / marker, {**header, "files": files}, indent=1)


class HashingWriter:
    """A binary file that hashes what is written to it."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self._f.write(data)
        self.sha256.update(data)


@contextlib.contextmanager
def owned_write(path: str | os.PathLike, root: str | os.PathLike | None = None, marker: str = MARKER,
                header: dict = IMPORTERS) -> Iterator[HashingWriter]:
    """Write `path` atomically (a temp file renamed over it on success) and vouch for it in the marker
    `root/marker` (root: default the file's folder; the marker's other keys: `header`)."""
    path = Path(path)
    root = path.parent if root is None else Path(root)
    name = path.relative_to(root).as_posix()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as raw:
            writer = HashingWriter(raw)
            yield writer
            raw.flush()
            os.fsync(raw.fileno())
        digest = writer.sha256.hexdigest()
        _vouch(root, name, list(dict.fromkeys([digest, *vouched(root, marker).get(name, ())])), marker, header)
    _vouch(root, name, [digest], marker, header)


def write_owned_json(path: str | os.PathLike, obj: object) -> None:
    """One JSON value (UTF-8, ensure_ascii=False, the C encoder) through `owned_write`."""
    with owned_write(path) as f:
        f.write(json.dumps(obj, ensure_ascii=False).encode("utf-8"))
