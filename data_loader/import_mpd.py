"""Import the Spotify Million Playlist Dataset (its `mpd.slice.*.json` files) into the project's Melon schema.

    python -m data_loader.import_mpd --slices=mpd/data --out_dir=dataset [--force]

Writes into out_dir:
    train.json      one playlist per MPD playlist: id = pid, songs = the track ids in track order (a repeated
                    track kept once), tags = [], plylst_title = name, updt_date = modified_at (UTC),
                    like_cnt = num_followers (0 when absent)
    song_meta.json  one record per distinct track, id order: artist_id_basket = [its artist's id], album_id,
                    issue_date "00010101", empty genre baskets, and the track / artist / album names
    mpd_uris.json   the URI -> id maps (data_loader/mpd_uris.py)

Ids are dense, in the order the slices (sorted by their first pid) first name a track, artist or album.
The MPD gives no release dates. "00000000" would not do: step 1 reads a 0 date as unknown and replaces it with the
earliest updt_date of the playlists holding the song, and later drops the song from older questions; "00010101"
is earlier than every playlist, so no song is ever dropped for its date.

Memory: slices are read one at a time and train.json and song_meta.json are written as they go, so what stays in
memory is the URI maps (docs/own_data.md has the measured peak and throughput). Files are written atomically and
never over a file the importers did not write (data_loader/owned_files.py) unless --force; a malformed record stops
the import with one error naming the slice file and the playlist (index and pid) and writes nothing.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

from common.cli import UsageError, check_output_dir, run_cli
from common.jsonio import InputError, JsonListWriter, load_json, remove_stale_temps
from data_loader.mpd_format import check_playlist, playlists_of, updt_date, where
from data_loader.mpd_uris import FILE_NAME as URIS_FILE, UriMaps, playlist_songs, write_uri_maps
from data_loader.owned_files import check_replaceable, owned_write

NO_DATE = "00010101"  # an issue date before every playlist: no date filter (module docstring)
SLICE_NAME = re.compile(r"mpd\.slice\.(\d+)-(\d+)\.json")
OUTPUTS = ("train.json", "song_meta.json", URIS_FILE)


def slice_files(folder: Path) -> list[Path]:
    """The `mpd.slice.*.json` files of `folder`, by their first pid (then by name for other names)."""
    files = [p for p in folder.glob("mpd.slice.*.json") if p.is_file()]

    def key(p: Path) -> tuple[int, int, str]:
        m = SLICE_NAME.fullmatch(p.name)
        return (0, int(m.group(1)), p.name) if m else (1, 0, p.name)

    return sorted(files, key=key)


def _import_slice(path: Path, maps: UriMaps, pids: set[int], meta: list[dict]) -> tuple[list[dict], int, str]:
    """(train.json records of one slice, tracks dropped as repeats, the latest updt_date), adding new tracks to
    `maps` and their song_meta records to `meta`."""
    records, repeats, latest = [], 0, ""
    for i, p in enumerate(playlists_of(load_json(path), str(path))):
        at = where(str(path), i, p)
        check_playlist(p, at, ("name", "modified_at"))
        songs, new = playlist_songs(p, at, maps, pids)
        for song, t, artist, album in new:
            meta.append({"id": song, "artist_id_basket": [artist], "album_id": album, "issue_date": NO_DATE,
                         "song_gn_gnr_basket": [], "song_gn_dtl_gnr_basket": [],
                         "song_name": t.get("track_name", ""), "artist_name_basket": [t.get("artist_name", "")],
                         "album_name": t.get("album_name", "")})
        repeats += len(p["tracks"]) - len(songs)
        updt = updt_date(p["modified_at"])
        latest = max(latest, updt)
        records.append({"tags": [], "id": p["pid"], "plylst_title": p["name"], "songs": songs,
                        "like_cnt": p.get("num_followers", 0), "updt_date": updt})
    return records, repeats, latest


def _peak_mib() -> float | None:
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(slices: str, out_dir: str = "dataset", force: bool = False) -> None:
    """Import MPD slice files into train.json, song_meta.json and mpd_uris.json.

    Args:
        slices: the folder of `mpd.slice.*.json` files (the MPD's data/ folder).
        out_dir: where to write the three files.
        force: replace files of those names that no importer wrote (or that changed since); without it such
            files stop the import before any work.
    """
    folder, out = Path(slices), Path(out_dir)
    if not folder.is_dir():
        raise UsageError(f"--slices={slices} is not a folder")
    files = slice_files(folder)
    if not files:
        raise UsageError(f"--slices={slices} holds no mpd.slice.*.json files")
    check_output_dir("out_dir", out)
    check_replaceable("out_dir", [out / name for name in OUTPUTS], force)
    out.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_temps(out):
        print(f"removed {stale}, left by a killed run")

    maps, pids = UriMaps(), set()
    n_playlists = repeats = 0
    start = time.perf_counter()
    with owned_write(out / "train.json") as train_file, owned_write(out / "song_meta.json") as meta_file:
        train, song_meta = JsonListWriter(train_file), JsonListWriter(meta_file)
        for k, path in enumerate(files, 1):
            meta: list[dict] = []
            records, dropped, latest = _import_slice(path, maps, pids, meta)
            train.extend(records)
            song_meta.extend(meta)
            n_playlists += len(records)
            repeats += dropped
            maps.latest_updt_date = max(maps.latest_updt_date, latest)
            if k % 100 == 0 or k == len(files):
                rate = n_playlists / max(time.perf_counter() - start, 1e-9)
                print(f"  {k}/{len(files)} slices: {n_playlists:,} playlists, {len(maps.songs):,} songs, "
                      f"{rate:,.0f} playlists/s", flush=True)
        if not n_playlists:
            raise InputError(f"{folder}: the slice files hold no playlists")
        train.close()
        song_meta.close()
    write_uri_maps(out / URIS_FILE, maps)
    seconds = time.perf_counter() - start
    sizes = maps.sizes()
    print(f"imported {n_playlists:,} playlists from {len(files)} slice file(s) into {out}/ in {seconds:.1f}s "
          f"({n_playlists / seconds:,.0f} playlists/s): {sizes['songs']:,} songs, {sizes['artists']:,} artists, "
          f"{sizes['albums']:,} albums")
    if repeats:
        print(f"  {repeats:,} track(s) repeated inside a playlist were kept once")
    peak = _peak_mib()
    if peak is not None:
        print(f"  peak memory (max RSS): {peak:,.0f} MiB")


if __name__ == "__main__":
    run_cli(main)
