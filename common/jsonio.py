"""Reading and writing the pipeline's files: JSON with clear errors, and atomic writes for everything.

Every step writes through `atomic_write` so that a crash or a bad input never leaves a half-written file in
place of a good one: the data goes to a temporary file in the same folder, which is then renamed over the target.

Temporary files and folders are named `.{stem}.{pid}.{token}.tmp{suffix}` (`.train.4711.3f9a0c1e.tmp.npz` for
train.npz), so that one left behind by a killed process can be recognised by its name alone and removed once its
writer is gone: `remove_stale_temps(folder)`, which the steps call on the folders they write to. It also knows the
one older naming that carried a pid, step 0's `.{name}.json.{pid}.tmp`; the still older `.{stem}.XXXXXXXX{suffix}`
of tempfile.mkstemp has no pid, so nothing tells a killed writer's file from a live one's, and it is left alone.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import threading
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
        with opener(path, "rb") as f:
            return json.loads(f.read())  # from bytes: ~25% faster than a text-mode file on 100+ MB inputs
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


# .{stem}.{pid}.{token}.tmp{suffix}: the pid of the writing process and 8 random hex digits
TEMP_NAME = re.compile(r"\.(?P<stem>.*)\.(?P<pid>[1-9][0-9]{0,9})\.[0-9a-f]{8}\.tmp(?:\.[^.]+)?")
# .{name}.{pid}.tmp: step 0's temporary files before the scheme above (its outputs are all .json files)
OLD_STEP0_TEMP_NAME = re.compile(r"\.(?P<name>[^/]+\.json)\.(?P<pid>[1-9][0-9]{0,9})\.tmp")


def _temp_name(stem: str, suffix: str = "") -> str:
    return f".{stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp{suffix}"


def temp_owner(name: str) -> int | None:
    """The pid of the process that made the temporary file or folder `name` (a bare name), or None when `name`
    is not a temporary name of this module's scheme (or of step 0's older one)."""
    m = TEMP_NAME.fullmatch(name) or OLD_STEP0_TEMP_NAME.fullmatch(name)
    return int(m.group("pid")) if m else None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files and folders that killed processes left in `folder` (not in its subfolders).

    Only temporary names (`temp_owner` is not None) whose writing process no longer exists are removed: a temp
    of a live process (this one included) and every other file stay, so it is safe to call at the start of any
    step, even while another step writes into the same folder. The pid is checked on this machine, so
    do not point it at a folder that processes on another machine (or in another PID namespace) write to.
    Returns the paths removed (none when the folder does not exist).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in sorted(folder.iterdir()):
        pid = temp_owner(entry.name)
        if pid is None or _alive(pid):
            continue
        with contextlib.suppress(FileNotFoundError):  # another cleaner may have been first
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


@contextlib.contextmanager
def temp_dir(parent: str | os.PathLike, stem: str) -> Iterator[Path]:
    """A fresh folder `.{stem}.{pid}.{token}.tmp` in `parent`, removed with its content when the block ends."""
    path = Path(parent) / _temp_name(stem)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary sibling of `path` to write to (np.savez, torch.save, ...); renamed over `path` only if the
    block succeeds, removed otherwise. Its name keeps the suffix (np.savez would append .npz to another)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / _temp_name(path.stem, path.suffix)
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # the umask applies, as for any new file
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def signals_deferred(signums: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the block, then deliver them: a few renames that belong together are never
    cut in half by Ctrl-C or a kill. The mask (pthread_sigmask) defers the signals sent to this thread; one that the
    kernel hands to another thread (torch's worker threads do not block them) reaches the stand-in handler instead.
    Outside the main thread Python cannot change handlers, and the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    # a handler installed outside Python (getsignal: None) could not be put back: such signals are left alone
    signums = tuple(s for s in signums if signal.getsignal(s) is not None)
    handlers = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in signums}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, signums)
    try:
        yield
    finally:
        for s, handler in handlers.items():  # first, so that no handler can raise while others are still stand-ins
            signal.signal(s, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a signal held back on this thread arrives now
        for s in dict.fromkeys(caught):  # those another thread took meanwhile, to the handler they were meant for
            signal.raise_signal(s)


@contextlib.contextmanager
def atomic_paths(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """Like `atomic_path` for files that only make sense together: temporary siblings to write to, renamed over
    their targets only if the block succeeds, all with SIGINT and SIGTERM held back (`signals_deferred`), so that an
    interrupt leaves every old file or every new one, never a mix; removed if the block fails."""
    targets = [Path(p) for p in paths]
    temps = []
    try:
        for path in targets:
            path.parent.mkdir(parents=True, exist_ok=True)
            temps.append(path.parent / _temp_name(path.stem, path.suffix))
            os.close(os.open(temps[-1], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        yield list(temps)
        with signals_deferred():
            for tmp, path in zip(temps, targets):
                os.replace(tmp, path)
    except BaseException:
        for leftover in temps:  # those not renamed (all, unless the interrupt came after the renames)
            leftover.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """Like `atomic_path`, but yields the open file (text mode is UTF-8)."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = None) -> None:
    """Write JSON atomically, UTF-8 with ensure_ascii=False (as the original's util.write_json)."""
    # json.dumps, not json.dump: only the one-shot encoder runs in C (json.dump is pure Python, ~10x slower)
    text = json.dumps(obj, ensure_ascii=False, indent=indent, default=_to_builtin)
    with atomic_write(path) as f:
        f.write(text)


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, as hex (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class JsonListWriter:
    """Writes a JSON list to a binary file a chunk of records at a time, so that a large file never sits in memory
    whole; the bytes are those of one json.dumps of the whole list (", " between records, UTF-8)."""

    def __init__(self, f) -> None:
        self._f = f
        self._empty = True
        f.write(b"[")

    def extend(self, records: list) -> None:
        if records:
            text = json.dumps(records, ensure_ascii=False, check_circular=False)[1:-1]
            self._f.write(((", " if not self._empty else "") + text).encode("utf-8"))
            self._empty = False

    def close(self) -> None:
        self._f.write(b"]")
