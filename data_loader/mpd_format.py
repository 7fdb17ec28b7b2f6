"""Reading the Spotify Million Playlist Dataset's JSON records, with errors that name the file and the record.

A slice file (`mpd.slice.0-999.json`) and the challenge set (`challenge_set.json`) are both an object whose
"playlists" list holds playlist objects; a playlist's "tracks" list holds track objects with "track_uri",
"artist_uri" and "album_uri" (strings) and optionally "track_name", "artist_name", "album_name" (strings) and "pos".
Slice playlists carry "pid", "name", "modified_at" (unix seconds) and "num_followers"; challenge playlists carry
"pid", maybe "name", "num_samples" and "num_holdouts". Other fields are ignored.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from common.jsonio import InputError

URI_FIELDS = ("track_uri", "artist_uri", "album_uri")
NAME_FIELDS = ("track_name", "artist_name", "album_name")
INT64 = (-(2**63), 2**63 - 1)
LAST_SECOND = 253402300799  # 9999-12-31 23:59:59 UTC: the last time a YYYY date can hold


def is_int(x: Any) -> bool:
    return type(x) is int  # not a bool


def playlists_of(data: Any, path: str) -> list:
    """The "playlists" list of a loaded slice or challenge file."""
    if not isinstance(data, dict) or not isinstance(data.get("playlists"), list):
        raise InputError(f"{path}: expected an object with a 'playlists' list")
    return data["playlists"]


def where(path: str, i: int, p: Any) -> str:
    """How messages name playlist i of `path`: 'slice.json: playlist 7 (pid 7007)'."""
    pid = f" (pid {p['pid']!r})" if isinstance(p, dict) and "pid" in p else ""
    return f"{path}: playlist {i}{pid}"


def check_playlist(p: Any, at: str, required: tuple[str, ...]) -> None:
    """A playlist object with the `required` fields, an int64 pid and a list of tracks; optional fields typed."""
    if not isinstance(p, dict):
        raise InputError(f"{at}: expected an object, got {type(p).__name__}")
    missing = [f for f in ("pid", "tracks", *required) if f not in p]
    if missing:
        raise InputError(f"{at}: missing field(s) {', '.join(map(repr, missing))}")
    if not is_int(p["pid"]) or not INT64[0] <= p["pid"] <= INT64[1]:
        raise InputError(f"{at}: 'pid' must be an integer, got {p['pid']!r}")
    if not isinstance(p["tracks"], list):
        raise InputError(f"{at}: 'tracks' must be a list")
    if "name" in p and not isinstance(p["name"], str):
        raise InputError(f"{at}: 'name' must be a string, got {p['name']!r}")
    for key in ("num_followers", "num_samples", "num_holdouts"):
        if key in p and (not is_int(p[key]) or p[key] < 0):
            raise InputError(f"{at}: '{key}' must be a non-negative integer, got {p[key]!r}")
    if "modified_at" in p and (not is_int(p["modified_at"]) or not 0 <= p["modified_at"] <= LAST_SECOND):
        raise InputError(f"{at}: 'modified_at' must be unix seconds (an integer from 0), got {p['modified_at']!r}")


def track_uris(t: Any, at: str, j: int) -> tuple[str, str, str]:
    """(track, artist, album URI) of track j of a playlist; its optional names must be strings."""
    if not isinstance(t, dict):
        raise InputError(f"{at}: track {j}: expected an object, got {type(t).__name__}")
    uris = tuple(t.get(f) for f in URI_FIELDS)
    for name, uri in zip(URI_FIELDS, uris):
        if not isinstance(uri, str) or not uri:
            raise InputError(f"{at}: track {j}: '{name}' must be a non-empty string, got {uri!r}")
    for name in NAME_FIELDS:
        if name in t and not isinstance(t[name], str):
            raise InputError(f"{at}: track {j}: '{name}' must be a string, got {t[name]!r}")
    return uris  # type: ignore[return-value]


def updt_date(unix_seconds: int) -> str:
    """The Melon schema's updt_date ("YYYY-MM-DD HH:MM:SS.000", UTC) of a unix time."""
    return datetime.fromtimestamp(unix_seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.000")
