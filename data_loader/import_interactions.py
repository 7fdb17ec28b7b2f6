"""Import a plain playlist-item interactions file (CSV or TSV) into the project's train.json.

    python -m data_loader.import_interactions --path=interactions.csv --out_dir=dataset [--sep=auto] [--force]

The first line is a header naming the columns: `playlist_id` and `item_id` (required), `position`, `timestamp` and
`title` (optional); other columns are ignored, names are matched without case. The separator is the one of comma,
tab, semicolon and pipe that the header line holds most of, unless --sep gives it (those names or one character).

Writes into out_dir:
    train.json            one playlist per playlist_id, in first-appearance order: songs = its items ordered by
                          position when the column is there (ties and no position: file order), an item repeated
                          in a playlist kept once (first by that order); tags = []; plylst_title = the playlist's
                          first non-empty title ("" without); updt_date = its largest timestamp (UTC) when there
                          is one, else 1970-01-01 00:00:00.000.
    interaction_ids.json  {"format", "playlists": {playlist_id: id}, "items": {item_id: song id}}: the raw ids
                          (as text) and the dense integer ids train.json uses, in id order.

A timestamp is unix seconds (an integer or decimal number) or an ISO 8601 date-time (UTC unless it names its zone);
a position is a number. No song_meta.json is written: step 1 then runs without artists or a release-date filter.
A malformed line stops the import with one error naming the file and the line; nothing is written then. Outputs are
atomic and never replace a file the importers did not write (data_loader/owned_files.py) unless --force.
"""
from __future__ import annotations

import csv
from array import array
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from common.cli import UsageError, check_output_dir, run_cli
from common.jsonio import InputError, JsonListWriter, remove_stale_temps
from data_loader.owned_files import check_replaceable, owned_write, write_owned_json

REQUIRED = ("playlist_id", "item_id")
OPTIONAL = ("position", "timestamp", "title")
SEPARATORS = {"comma": ",", "tab": "\t", "semicolon": ";", "pipe": "|", "\\t": "\t"}
SECONDS = (-62135596800, 253402300799)  # 0001-01-01 to 9999-12-31 23:59:59 UTC
NO_UPDT = "1970-01-01 00:00:00.000"  # the date of a playlist without a timestamp
IDS_FILE = "interaction_ids.json"
OUTPUTS = ("train.json", IDS_FILE)
MAX_SONGS = 2**31 - 1  # the schema's largest song id
_CHUNK = 10_000  # playlists per json.dumps call when writing train.json


def separator(sep: str, path: Path) -> str:
    """The one-character separator: --sep's, or sniffed from the start of the file."""
    if sep != "auto":
        value = SEPARATORS.get(sep.lower(), sep)
        if len(value) != 1 or value in "\"\r\n":
            raise UsageError(f"--sep must be auto, comma, tab, semicolon, pipe or one character, got {sep!r}")
        return value
    with open(path, encoding="utf-8-sig", newline="") as f:
        head = f.readline()
    counts = {c: head.count(c) for c in ",\t;|"}
    best = max(counts, key=counts.get)
    if counts[best] == 0:
        raise InputError(f"{path}: line 1: cannot tell the separator (no comma, tab, semicolon or pipe in the "
                         f"header); give --sep")
    return best


def _number(text: str, what: str, at: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{at}: {what} {text!r} is not a number") from None
    if not np.isfinite(value):
        raise InputError(f"{at}: {what} {text!r} is not a finite number")
    return value


def unix_seconds(text: str, at: str) -> float:
    """A timestamp cell as unix seconds: a number, or an ISO 8601 date-time (UTC when it names no zone)."""
    try:
        value = float(text)
    except ValueError:
        try:
            value = _iso_seconds(text)
        except ValueError:
            raise InputError(f"{at}: timestamp {text!r} is neither unix seconds nor an ISO 8601 date-time") from None
    if not SECONDS[0] <= value <= SECONDS[1]:  # also refuses nan and inf
        raise InputError(f"{at}: timestamp {text!r} is outside the years 1-9999")
    return value


def _iso_seconds(text: str) -> float:
    t = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()


def updt_of(seconds: float) -> str:
    """The Melon schema's updt_date of unix seconds (UTC, within SECONDS), whole seconds."""
    day = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=int(np.floor(seconds)))
    return f"{day.year:04d}" + day.strftime("-%m-%d %H:%M:%S.000")  # %Y does not pad years before 1000


class _Columns:
    """The interactions read so far: one entry per line, ids as dense indexes."""

    def __init__(self) -> None:
        self.playlists: dict[str, int] = {}
        self.items: dict[str, int] = {}
        self.playlist, self.item = array("q"), array("q")
        self.position, self.timestamp = array("d"), array("d")
        self.titles: dict[int, str] = {}


def _read(path: Path, sep: str) -> tuple[_Columns, list[str]]:
    """Read every line of the file (the columns found, and the header's unused column names)."""
    cols = _Columns()
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=sep)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise InputError(f"{path}: empty file; the first line must be a header") from None
        except csv.Error as e:
            raise InputError(f"{path}: line 1: {e}") from None
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise InputError(f"{path}: line 1: the header has no {' or '.join(map(repr, missing))} column "
                             f"(columns: {', '.join(header)}; separator {sep!r})")
        at_col = {c: header.index(c) for c in REQUIRED + OPTIONAL if c in header}
        width = max(at_col.values()) + 1
        p_col, i_col = at_col["playlist_id"], at_col["item_id"]
        pos_col, ts_col, title_col = (at_col.get(c) for c in OPTIONAL)
        try:
            for row in reader:
                at = f"{path}: line {reader.line_num}"
                if not row or row == [""]:
                    continue  # a blank line
                if len(row) < width:
                    raise InputError(f"{at}: {len(row)} field(s), the header needs at least {width}")
                pid_text, item_text = row[p_col].strip(), row[i_col].strip()
                if not pid_text or not item_text:
                    raise InputError(f"{at}: empty {'playlist_id' if not pid_text else 'item_id'}")
                pid = cols.playlists.setdefault(pid_text, len(cols.playlists))
                cols.playlist.append(pid)
                cols.item.append(cols.items.setdefault(item_text, len(cols.items)))
                if pos_col is not None:
                    cols.position.append(_number(row[pos_col].strip(), "position", at))
                if ts_col is not None:
                    text = row[ts_col].strip()
                    cols.timestamp.append(unix_seconds(text, at) if text else np.nan)  # empty: no timestamp
                if title_col is not None and pid not in cols.titles and row[title_col].strip():
                    cols.titles[pid] = row[title_col].strip()
        except csv.Error as e:
            raise InputError(f"{path}: line {reader.line_num}: {e}") from None
    if not cols.playlist:
        raise InputError(f"{path}: no interactions after the header")
    if len(cols.items) > MAX_SONGS + 1:
        raise InputError(f"{path}: {len(cols.items):,} distinct items, more than the schema's song ids hold")
    return cols, [h for h in header if h not in at_col]


@dataclass
class _Sorted:
    """Each playlist's distinct items in order: playlist p holds items[bounds[p]:bounds[p + 1]]."""

    items: np.ndarray  # int64 [T] item indexes, by playlist then position (or file order), repeats removed
    bounds: np.ndarray  # int64 [P + 1]
    latest: np.ndarray  # float64 [P] the largest timestamp of each playlist, NaN for none
    repeats: int  # interactions dropped as repeats


def sort_rows(cols: _Columns) -> _Sorted:
    """Group the rows by playlist, order each playlist's items and drop the repeats (vectorised)."""
    pl = np.frombuffer(cols.playlist, dtype=np.int64)
    it = np.frombuffer(cols.item, dtype=np.int64)
    keys = (pl,) if not len(cols.position) else (np.frombuffer(cols.position, dtype=np.float64), pl)
    order = np.lexsort(keys)  # by playlist, then position; lexsort is stable, so ties keep the file's order
    pl, it = pl[order], it[order]
    first = np.zeros(len(pl), bool)
    first[np.unique(pl * len(cols.items) + it, return_index=True)[1]] = True
    n = len(cols.playlists)
    latest = np.full(n, np.nan)
    if len(cols.timestamp):
        ts = np.frombuffer(cols.timestamp, dtype=np.float64)
        np.fmax.at(latest, np.frombuffer(cols.playlist, dtype=np.int64), ts)  # fmax: a NaN (empty cell) loses
    return _Sorted(it[first], np.searchsorted(pl[first], np.arange(n + 1)), latest, int(len(pl) - first.sum()))


def records(cols: _Columns, rows: _Sorted, start: int, stop: int) -> list[dict]:
    """The train.json records of playlists start..stop-1 (made a chunk at a time: a list of all of them would hold
    every item as a Python int)."""
    songs = rows.items[rows.bounds[start]:rows.bounds[stop]].tolist()
    offsets = (rows.bounds[start:stop + 1] - rows.bounds[start]).tolist()
    return [{"tags": [], "id": p, "plylst_title": cols.titles.get(p, ""), "songs": songs[offsets[k]:offsets[k + 1]],
             "updt_date": NO_UPDT if np.isnan(rows.latest[p]) else updt_of(rows.latest[p])}
            for k, p in enumerate(range(start, stop))]


def main(path: str, out_dir: str = "dataset", sep: str = "auto", force: bool = False) -> None:
    """Import an interactions CSV/TSV into train.json and interaction_ids.json.

    Args:
        path: the interactions file (UTF-8), its first line a header with playlist_id and item_id.
        out_dir: where to write train.json and interaction_ids.json.
        sep: the separator: auto (sniffed), comma, tab, semicolon, pipe, or one character.
        force: replace files of those names that no importer wrote (or that changed since).
    """
    source, out = Path(path), Path(out_dir)
    if not source.is_file():
        raise UsageError(f"--path={path} is not a file")
    check_output_dir("out_dir", out)
    check_replaceable("out_dir", [out / name for name in OUTPUTS], force)
    char = separator(sep, source)
    cols, unused = _read(source, char)
    rows = sort_rows(cols)
    n = len(cols.playlists)
    out.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_temps(out):
        print(f"removed {stale}, left by a killed run")
    with owned_write(out / "train.json") as f:
        train = JsonListWriter(f)
        for start in range(0, n, _CHUNK):
            train.extend(records(cols, rows, start, min(start + _CHUNK, n)))
        train.close()
    write_owned_json(out / IDS_FILE, {"format": "interaction_ids/1", "playlists": cols.playlists,
                                      "items": cols.items})
    name = {v: k for k, v in SEPARATORS.items() if k != "\\t"}.get(char, repr(char))
    print(f"imported {len(cols.playlist):,} interactions from {path} (separator: {name}): {n:,} "
          f"playlists, {len(cols.items):,} items, into {out}/train.json and {out}/{IDS_FILE}")
    if rows.repeats:
        print(f"  {rows.repeats:,} repeated item(s) inside a playlist were kept once")
    if unused:
        print(f"  ignored column(s): {', '.join(unused)}")


if __name__ == "__main__":
    run_cli(main)
