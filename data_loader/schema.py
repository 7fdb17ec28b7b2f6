"""Checks that input records follow the official Melon schema, with errors that name the file and the record.

Playlist files (train.json, and the question files val.json / test.json) hold a list of objects with
`id` (int), `songs` (list of int), `tags` (list of str), `plylst_title` (str), `updt_date`
("YYYY-MM-DD HH:MM:SS.fff", a real calendar date and time of day) and optionally `like_cnt` (int); other fields
are kept and ignored.
Lists and titles may be empty: question files hide songs, tags or both, and real titles can be "".

Duplicate songs or tags inside one playlist are accepted with a warning (the real data has none): the
original keeps them as they are, so do we, but they count twice in the vocabulary frequencies.

The checks first run column-wise at C speed (`set(map(type, column))`, min/max, one regex map, each distinct
updt_date day checked once as a calendar date); only when that finds a problem does a per-record pass look for the
first bad record to name it. At full scale (115k playlists with 5.3M songs; 708k song_meta records) each file takes
1-2 s of CPU on a small 2-core machine.
"""
from __future__ import annotations

import re
from datetime import date
from itertools import chain
from operator import itemgetter
from typing import Any, Callable

from common.jsonio import InputError

PLAYLIST_FIELDS = ("id", "songs", "tags", "plylst_title", "updt_date")
SONG_META_FIELDS = ("id", "issue_date", "artist_id_basket")
# the shape of "%Y-%m-%d %H:%M:%S.%f" (all that updt_to_int needs), then the same with a time of day in range; the
# date part is checked as a calendar date (is_real_date): together, what datetime.strptime accepts
UPDT_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{1,6}")
UPDT_DATE = re.compile(r"\d{4}-\d{2}-\d{2} (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{1,6}")
MAX_ITEM_ID = 2**31 - 1  # raw artist ids are held as int32 (memory follows the number of ids, not their size)
INT64 = (-(2**63), 2**63 - 1)  # playlist ids are stored as int64


def is_real_date(yyyy_mm_dd: str) -> bool:
    """'2019-02-28' is a date of the calendar; '2019-02-29', '2020-13-45' and '0000-01-01' are not."""
    try:
        date.fromisoformat(yyyy_mm_dd)
    except ValueError:
        return False
    return True


def _describe(x: Any) -> str:
    text = repr(x)
    return f"{type(x).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _items_error(value: Any, field: str, item_type: type, bounds: tuple[int, int] | None = None) -> str | None:
    """Why `value` is not a list of `item_type` (within `bounds` for ints), or None when it is."""
    if type(value) is not list:
        return f"'{field}' must be a list, got {_describe(value)}"
    if not value:
        return None
    if set(map(type, value)) != {item_type}:  # exact types: a bool is not an int here
        k, x = next((k, x) for k, x in enumerate(value) if type(x) is not item_type)
        return f"'{field}' must hold only {item_type.__name__}s; item {k} is {_describe(x)}"
    if bounds is not None and (min(value) < bounds[0] or max(value) > bounds[1]):
        k, x = next((k, x) for k, x in enumerate(value) if not bounds[0] <= x <= bounds[1])
        return f"'{field}' item {k} = {x} is outside [{bounds[0]}, {bounds[1]}]"
    return None


def _object_error(r: Any, fields: tuple[str, ...]) -> str | None:
    """Why `r` is not an object holding all of `fields`, or None when it is."""
    if type(r) is not dict:
        return f"expected an object, got {_describe(r)}"
    missing = [f for f in fields if f not in r]
    return f"missing field(s) {', '.join(repr(f) for f in missing)}" if missing else None


def _playlist_error(r: Any) -> str | None:
    error = _object_error(r, PLAYLIST_FIELDS)
    if error:
        return error
    pid = r["id"]
    if type(pid) is not int or not INT64[0] <= pid <= INT64[1]:
        return f"'id' must be an int64, got {_describe(pid)}"
    error = _items_error(r["songs"], "songs", int, (0, MAX_ITEM_ID)) or _items_error(r["tags"], "tags", str)
    if error:
        return error
    if type(r["plylst_title"]) is not str:
        return f"'plylst_title' must be a str, got {_describe(r['plylst_title'])}"
    updt = r["updt_date"]
    if type(updt) is not str or not UPDT_SHAPE.fullmatch(updt):
        return f"'updt_date' must be a str 'YYYY-MM-DD HH:MM:SS.fff', got {_describe(updt)}"
    if not UPDT_DATE.fullmatch(updt) or not is_real_date(updt[:10]):
        return f"'updt_date' {updt!r} is not a real date and time"
    if "like_cnt" in r and type(r["like_cnt"]) is not int:
        return f"'like_cnt' must be an int, got {_describe(r['like_cnt'])}"
    return None


def _ints_within(values: list, low: int, high: int) -> bool:
    return set(map(type, values)) <= {int} and (not values or (min(values) >= low and max(values) <= high))


def _columns(records: list, fields: tuple[str, ...]) -> list[list] | None:
    """One list per field of the records' values, or None unless every record is an object with all the fields."""
    if set(map(type, records)) != {dict}:
        return None
    try:
        return [list(map(itemgetter(f), records)) for f in fields]
    except KeyError:
        return None


def _all_playlists_valid(records: list) -> bool:
    """Column-wise, C-speed version of _playlist_error over all records: True means every record is valid,
    False means look record by record (which finds and names the first bad one)."""
    columns = _columns(records, PLAYLIST_FIELDS)
    if columns is None:
        return False
    ids, songs, tags, titles, updts = columns
    likes = [r.get("like_cnt", 0) for r in records]
    return (_ints_within(ids, *INT64) and set(map(type, titles)) == {str} and set(map(type, likes)) == {int}
            and set(map(type, songs)) == {list} and _ints_within(list(chain.from_iterable(songs)), 0, MAX_ITEM_ID)
            and set(map(type, tags)) == {list} and set(map(type, chain.from_iterable(tags))) <= {str}
            and set(map(type, updts)) == {str} and all(map(UPDT_DATE.fullmatch, updts))
            and all(map(is_real_date, {u[:10] for u in updts})))  # each distinct day once: a few thousand


def _all_songs_valid(records: list) -> bool:
    """Column-wise version of _song_error (see _all_playlists_valid); mixed int/str dates go record by record."""
    columns = _columns(records, SONG_META_FIELDS)
    if columns is None:
        return False
    ids, dates, baskets = columns
    date_types = set(map(type, dates))
    if date_types == {str}:
        joined = "".join(dates)
        dates_ok = min(map(len, dates)) >= 1 and max(map(len, dates)) <= 8 and joined.isascii() and joined.isdigit()
    else:
        dates_ok = _ints_within(dates, 0, 99999999)
    return (dates_ok and _ints_within(ids, 0, MAX_ITEM_ID) and set(map(type, baskets)) == {list}
            and _ints_within(list(chain.from_iterable(baskets)), 0, MAX_ITEM_ID))


def _record_name(i: int, r: Any, key: str) -> str:
    return f"record {i} ({key} {r['id']!r})" if type(r) is dict and "id" in r else f"record {i}"


def _check_records(records: list, path: str, key: str, all_valid: Callable[[list], bool],
                   record_error: Callable[[Any], str | None]) -> None:
    """The fast column-wise check; only if it fails, the record-by-record one that names the first bad record
    (as `key` and its id); then unique ids."""
    if not all_valid(records):
        for i, r in enumerate(records):
            error = record_error(r)
            if error:
                raise InputError(f"{path}: {_record_name(i, r, key)}: {error}")
    ids = [r["id"] for r in records]
    if len(set(ids)) != len(ids):
        first: dict[int, int] = {}
        for i, x in enumerate(ids):
            if x in first:
                raise InputError(f"{path}: records {first[x]} and {i} have the same {key} {x}")
            first[x] = i


def validate_playlists(records: Any, path: str, *, require_nonempty: bool = True) -> list[str]:
    """Check a loaded playlist file; raise InputError naming `path` and the first bad record.

    Args:
        records: the parsed JSON.
        path: the file name used in messages.
        require_nonempty: an empty list is an error ("no playlists"). Training files need playlists; a
            question file may pass False.
    Returns:
        Warnings (strings) about legal but suspicious content: duplicate songs or tags inside a playlist.
    """
    if type(records) is not list:
        raise InputError(f"{path}: expected a JSON list of playlists, got {type(records).__name__}")
    if not records and require_nonempty:
        raise InputError(f"{path}: no playlists")
    _check_records(records, path, "playlist id", _all_playlists_valid, _playlist_error)

    warnings = []
    for field in ("songs", "tags"):
        lists = [r[field] for r in records]
        if sum(map(len, map(set, lists))) != sum(map(len, lists)):
            dups = [i for i, items in enumerate(lists) if len(set(items)) != len(items)]
            warnings.append(f"{path}: {len(dups)} playlist(s) repeat an item in '{field}' (first: "
                            f"{_record_name(dups[0], records[dups[0]], 'playlist id')}); kept as they are")
    return warnings


def _song_error(r: Any) -> str | None:
    error = _object_error(r, SONG_META_FIELDS)
    if error:
        return error
    sid = r["id"]
    if type(sid) is not int or not 0 <= sid <= MAX_ITEM_ID:
        return f"'id' must be an int in [0, {MAX_ITEM_ID}], got {_describe(sid)}"
    date = r["issue_date"]
    if not ((type(date) is int and 0 <= date <= 99999999)
            or (type(date) is str and len(date) <= 8 and date.isascii() and date.isdigit())):
        return f"'issue_date' must be a YYYYMMDD int or string of up to 8 digits, got {_describe(date)}"
    return _items_error(r["artist_id_basket"], "artist_id_basket", int, (0, MAX_ITEM_ID))


def validate_song_meta(records: Any, path: str) -> None:
    """Check a loaded song_meta.json (id, issue_date, artist_id_basket; unique ids); raise InputError naming `path`
    and the first bad record. Other fields (genres, names, album) are not used and not checked."""
    if type(records) is not list:
        raise InputError(f"{path}: expected a JSON list of songs, got {type(records).__name__}")
    if not records:
        raise InputError(f"{path}: no songs")
    _check_records(records, path, "song id", _all_songs_valid, _song_error)
