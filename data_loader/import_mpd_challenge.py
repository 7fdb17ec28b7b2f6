"""Import the MPD challenge set (`challenge_set.json`) as a question file of the project's schema.

    python -m data_loader.import_mpd_challenge --challenge=challenge_set.json --dataset_dir=dataset \\
        [--out_path=dataset/challenge.json] [--force]

Reads {dataset_dir}/mpd_uris.json (written by data_loader/import_mpd.py) and writes one question per challenge
playlist: id = pid, songs = its seed tracks mapped through the same URI maps (in the given order, a repeat kept
once), tags = [], plylst_title = name ("" when the playlist has none), updt_date = the map's latest_updt_date (the
challenge gives no dates; the latest one filters no song), and num_samples / num_holdouts when given.

A track URI the map lacks gets the next song id, appended to mpd_uris.json (its artist and album too); the count is
printed. Ids already in the map never change, so train.json and song_meta.json stay valid (the new songs have no
song_meta record). The same command imports a file of held-out tracks in the challenge's shape (the sample's
`sample_answers/challenge_set.json`) as an answer file for evaluate.py --metric=mpd.

Every malformed record stops the import with one error naming the file and the playlist (index and pid); nothing
is written then. Outputs are atomic and never replace a file the importers did not write, unless --force.
"""
from __future__ import annotations

from pathlib import Path

from common.cli import Input, check_output_file, run_cli, step_inputs
from common.jsonio import InputError, load_json, remove_stale_temps
from data_loader.mpd_format import check_playlist, playlists_of, where
from data_loader.mpd_uris import FILE_NAME as URIS_FILE, UriMaps, load_uri_maps, playlist_songs, write_uri_maps
from data_loader.owned_files import check_replaceable, write_owned_json
from data_loader.schema import validate_playlists

DEFAULT_UPDT = "2017-12-31 23:59:59.000"  # for a map without dates: after every MPD playlist (made 2010-2017)


def questions_of(playlists: list, path: str, maps: UriMaps) -> tuple[list[dict], int]:
    """(question records, how many distinct track URIs were new to the map), appending the new ones to `maps`."""
    before = len(maps.songs)
    updt = maps.latest_updt_date or DEFAULT_UPDT
    questions, pids = [], set()
    for i, p in enumerate(playlists):
        at = where(path, i, p)
        check_playlist(p, at, ())
        songs, _ = playlist_songs(p, at, maps, pids)
        q = {"tags": [], "id": p["pid"], "plylst_title": p.get("name", ""), "songs": songs, "updt_date": updt}
        q.update((k, p[k]) for k in ("num_samples", "num_holdouts") if k in p)
        questions.append(q)
    return questions, len(maps.songs) - before


def main(challenge: str, dataset_dir: str = "dataset", out_path: str | None = None, force: bool = False) -> None:
    """Write the challenge set's questions, extending mpd_uris.json with the tracks it did not know.

    Args:
        challenge: challenge_set.json (or a file of the same shape).
        dataset_dir: holds mpd_uris.json from data_loader/import_mpd.py.
        out_path: the question file to write (default {dataset_dir}/challenge.json).
        force: replace an out_path that no importer wrote (or that changed since).
    """
    dataset = Path(dataset_dir)
    uris_path = dataset / URIS_FILE
    target = Path(out_path) if out_path is not None else dataset / "challenge.json"
    protected = step_inputs(dataset) + [Input(uris_path, f"the URI map, {uris_path}"),
                                        Input(Path(challenge), "the challenge file, --challenge")]
    check_output_file("out_path", target, protected)
    check_replaceable("out_path", [target], force)
    check_replaceable("dataset_dir", [uris_path], force)  # extended in place: the importer's own map
    if not uris_path.is_file():
        raise InputError(f"{uris_path}: not found; import the slices first (python -m data_loader.import_mpd "
                         f"--slices=... --out_dir={dataset_dir})")
    maps = load_uri_maps(uris_path)
    questions, new = questions_of(playlists_of(load_json(challenge), challenge), challenge, maps)
    validate_playlists(questions, f"{target} (from {challenge})", require_nonempty=False)
    for stale in remove_stale_temps(target.parent):
        print(f"removed {stale}, left by a killed run")
    write_owned_json(target, questions)
    if new:
        write_uri_maps(uris_path, maps)
    print(f"wrote {len(questions):,} questions ({sum(len(q['songs']) for q in questions):,} songs) to {target}")
    print(f"  {new:,} track URI(s) were not in {uris_path}: given new song ids {len(maps.songs) - new:,} and up, "
          f"appended to it" if new else f"  every track URI was in {uris_path}")


if __name__ == "__main__":
    run_cli(main)
