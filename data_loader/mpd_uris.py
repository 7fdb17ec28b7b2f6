"""The Spotify URI maps of an imported MPD: track, artist and album URIs to the dense integer ids of the Melon schema.

`mpd_uris.json`, written beside train.json and song_meta.json by data_loader/import_mpd.py:

    {"format": "mpd_uris/1", "latest_updt_date": "2017-10-31 23:59:59.000",
     "songs": {track uri: id, ...}, "artists": {artist uri: id, ...}, "albums": {album uri: id, ...}}

Each map lists its URIs in id order, ids 0, 1, 2, ... in the order the import first met them, so a map read back
is also the list of URIs by id (the submission writer's inverse). An import of questions (the challenge set) appends
the URIs it has not seen and never renumbers, so train.json stays valid. `latest_updt_date` is the latest updt_date
of the imported playlists: the challenge set has no dates, and its questions take this one.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from itertools import count, islice
from operator import eq
from pathlib import Path

from common.jsonio import InputError, load_json
from data_loader.mpd_format import track_uris
from data_loader.owned_files import owned_write

FORMAT = "mpd_uris/1"
KINDS = ("songs", "artists", "albums")
FILE_NAME = "mpd_uris.json"
_CHUNK = 100_000  # map entries per json.dumps call when writing (bounds the size of one string)


@dataclass
class UriMaps:
    """uri -> id for songs, artists and albums; ids are dense and follow insertion order."""

    songs: dict[str, int] = field(default_factory=dict)
    artists: dict[str, int] = field(default_factory=dict)
    albums: dict[str, int] = field(default_factory=dict)
    latest_updt_date: str = ""

    def add(self, kind: str, uri: str) -> tuple[int, bool]:
        """(the id of `uri` in the map `kind`, whether it was new and got the next id)."""
        table = getattr(self, kind)
        known = table.get(uri)
        if known is not None:
            return known, False
        table[uri] = len(table)
        return table[uri], True

    def sizes(self) -> dict[str, int]:
        return {kind: len(getattr(self, kind)) for kind in KINDS}


def _dense(values) -> bool:
    return all(map(eq, values, count()))


def load_uri_maps(path: str | os.PathLike) -> UriMaps:
    """Read and check `mpd_uris.json` (format, str keys, int ids 0..n-1 in order); InputError names the file."""
    data = load_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"{path}: not a URI map of format {FORMAT!r} (data_loader/import_mpd.py writes one)")
    maps = UriMaps(latest_updt_date=data.get("latest_updt_date", ""))
    for kind in KINDS:
        table = data.get(kind)
        if not isinstance(table, dict) or not _dense(table.values()):
            raise InputError(f"{path}: '{kind}' must map URIs to the ids 0, 1, 2, ... in order")
        setattr(maps, kind, table)
    if not isinstance(maps.latest_updt_date, str):
        raise InputError(f"{path}: 'latest_updt_date' must be a string")
    return maps


def write_uri_maps(path: str | os.PathLike, maps: UriMaps) -> None:
    """Write the maps atomically, a chunk of entries at a time (the full MPD's maps hold 3.3 million URIs)."""
    with owned_write(Path(path)) as f:
        head = {"format": FORMAT, "latest_updt_date": maps.latest_updt_date}
        f.write(json.dumps(head, ensure_ascii=False)[:-1].encode("utf-8"))
        for kind in KINDS:
            f.write(f', "{kind}": {{'.encode("utf-8"))
            items = iter(getattr(maps, kind).items())
            first = True
            while chunk := dict(islice(items, _CHUNK)):
                f.write(((", " if not first else "") + json.dumps(chunk, ensure_ascii=False)[1:-1]).encode("utf-8"))
                first = False
            f.write(b"}")
        f.write(b"}")


def playlist_songs(p: dict, at: str, maps: UriMaps,
                   pids: set[int]) -> tuple[list[int], list[tuple[int, dict, int, int]]]:
    """A checked MPD playlist's distinct song ids in track order (a repeated track counts once), new tracks mapped
    to new ids; -> (song ids, [(song id, track record, artist id, album id)] of the tracks new to `maps`). A pid
    already in `pids` is an error naming the playlist (`at`); the pid is added."""
    if p["pid"] in pids:
        raise InputError(f"{at}: pid {p['pid']} is already the pid of an earlier playlist")
    pids.add(p["pid"])
    songs: dict[int, None] = {}
    new = []
    for j, t in enumerate(p["tracks"]):
        track, artist, album = track_uris(t, at, j)
        song, is_new = maps.add("songs", track)
        if is_new:
            new.append((song, t, maps.add("artists", artist)[0], maps.add("albums", album)[0]))
        songs[song] = None
    return list(songs), new
