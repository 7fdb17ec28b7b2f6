"""Write a results file as a RecSys Challenge 2018 submission (the challenge's CSV).

    python -m data_loader.mpd_submission --results=results.json --team_name="my team" --email=me@example.com \\
        [--dataset_dir=dataset] [--challenge=challenge_set.json] [--out_path=submission.csv] [--force]

The CSV's first line is `team_info,<team name>,<email>`; then one line per playlist, `pid, uri1, uri2, ..., uri500`:
the first 500 songs of the playlist's recommendation turned back into track URIs through {dataset_dir}/mpd_uris.json.
With --challenge, the lines follow the challenge's order, and every challenge playlist must have a recommendation that
holds none of its seed tracks (the challenge refuses such submissions); without it, the results' order.

A recommendation with fewer than 500 distinct songs, a repeated song, a song id the map lacks, or (with --challenge)
a seed track or a pid outside the challenge stops the writer with one error naming the results file and the record.
"""
from __future__ import annotations

from pathlib import Path

from common.cli import Input, UsageError, check_output_file, run_cli
from common.jsonio import InputError, load_json
from data_loader.mpd_format import is_int, playlists_of, track_uris, where
from data_loader.mpd_uris import FILE_NAME as URIS_FILE, load_uri_maps
from data_loader.owned_files import check_replaceable, owned_write

N_TRACKS = 500  # tracks per playlist in a submission


def check_results(results: object, path: str, known: int) -> dict[int, list[int]]:
    """{pid: first 500 songs} of a results file (a list of {"id", "songs"}), song ids < `known`."""
    if not isinstance(results, list):
        raise InputError(f"{path}: expected a list of recommendations, got {type(results).__name__}")
    out: dict[int, list[int]] = {}
    for i, r in enumerate(results):
        if not isinstance(r, dict) or not is_int(r.get("id")) or not isinstance(r.get("songs"), list):
            raise InputError(f"{path}: record {i}: expected an object with an integer 'id' and a 'songs' list")
        at = f"{path}: record {i} (playlist id {r['id']})"
        songs = r["songs"][:N_TRACKS]
        if not all(map(is_int, songs)):
            raise InputError(f"{at}: songs must be integer song ids")
        if len(set(songs)) != len(songs):
            raise InputError(f"{at}: a song appears more than once in its first {N_TRACKS}")
        if len(songs) < N_TRACKS:
            raise InputError(f"{at}: {len(songs)} songs; the challenge needs {N_TRACKS} per playlist")
        bad = next((s for s in songs if not 0 <= s < known), None)
        if bad is not None:
            raise InputError(f"{at}: song id {bad} is not in the URI map")
        if r["id"] in out:
            raise InputError(f"{at}: a second recommendation for this playlist")
        out[r["id"]] = songs
    return out


def challenge_order(challenge: str, recs: dict[int, list[int]], song_ids: dict[str, int], results: str) -> list[int]:
    """The challenge's pids in order, once every one is checked to have a recommendation without its seeds."""
    order = []
    for i, p in enumerate(playlists_of(load_json(challenge), challenge)):
        at = where(challenge, i, p)
        if not isinstance(p, dict) or not is_int(p.get("pid")) or not isinstance(p.get("tracks"), list):
            raise InputError(f"{at}: expected an object with an integer 'pid' and a 'tracks' list")
        if p["pid"] not in recs:
            raise InputError(f"{results}: no recommendation for pid {p['pid']} of {challenge}")
        seeds = {song_ids.get(track_uris(t, at, j)[0]) for j, t in enumerate(p["tracks"])}
        seed = next((s for s in recs[p["pid"]] if s in seeds), None)
        if seed is not None:
            raise InputError(f"{results}: pid {p['pid']}: song {seed} is one of its seed tracks in {challenge}")
        order.append(p["pid"])
    extra = recs.keys() - set(order)
    if extra:
        raise InputError(f"{results}: pid {min(extra)} is not in {challenge} ({len(extra)} such in all)")
    return order


def main(results: str, team_name: str, email: str, dataset_dir: str = "dataset", challenge: str | None = None,
         out_path: str = "submission.csv", force: bool = False) -> None:
    """Write the submission CSV of a results file.

    Args:
        results: a results file ({"id", "songs"} per playlist, at least 500 distinct songs each).
        team_name: the team name of the team_info line.
        email: the contact address of the team_info line.
        dataset_dir: holds mpd_uris.json from data_loader/import_mpd.py.
        challenge: challenge_set.json: checks and orders the lines by it.
        out_path: the CSV to write.
        force: replace an out_path that no importer wrote (or that changed since).
    """
    for flag, value in (("team_name", team_name), ("email", email)):
        if not value.strip() or any(c in value for c in ",\n\r"):
            raise UsageError(f"--{flag} must be non-empty, without commas or line breaks, got {value!r}")
    uris_path = Path(dataset_dir) / URIS_FILE
    protected = [Input(Path(results), "the results file, --results"), Input(uris_path, f"the URI map, {uris_path}")]
    protected += [Input(Path(challenge), "the challenge file, --challenge")] if challenge is not None else []
    check_output_file("out_path", out_path, protected)
    check_replaceable("out_path", [Path(out_path)], force)
    maps = load_uri_maps(uris_path)
    recs = check_results(load_json(results), results, len(maps.songs))
    order = challenge_order(challenge, recs, maps.songs, results) if challenge is not None else list(recs)
    uris = list(maps.songs)  # the map is in id order: uris[id]
    with owned_write(out_path) as f:
        f.write(f"team_info,{team_name},{email}\n".encode("utf-8"))
        for pid in order:
            f.write((f"{pid}, " + ", ".join(uris[s] for s in recs[pid]) + "\n").encode("utf-8"))
    print(f"wrote {len(order):,} playlists x {N_TRACKS} tracks to {out_path}")


if __name__ == "__main__":
    run_cli(main)
