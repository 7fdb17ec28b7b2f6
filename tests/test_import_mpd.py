"""Tests for data_loader/import_mpd.py (MPD slices -> train.json, song_meta.json, mpd_uris.json) on the MPD-shaped
sample of data_loader/make_sample_dataset.py --format=mpd and on small hand-made slices.

Covers: the Melon schema of the outputs (data_loader/schema.py) and every field's source; the same songs as the
Melon-shaped sample, through the URIs; dense ids in first-appearance order, slices taken by their first pid; the
issue dates never filtering a song; repeated tracks kept once; one error naming the slice and the playlist per
malformed record, with nothing written; refusing files no importer wrote unless --force.
Run: python -m pytest tests/test_import_mpd.py -q
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.cli import UsageError
from common.jsonio import InputError
from data_loader import import_mpd
from data_loader.issue_dates import popularity_issue_dates
from data_loader.make_sample_dataset import generate, main as make_sample
from data_loader.mpd_sample import spotify_uris
from data_loader.mpd_uris import load_uri_maps
from data_loader.playlists import updt_to_int
from data_loader.schema import validate_playlists, validate_song_meta

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    """A folder with sample/ (the tiny preset as MPD files) and dataset/ (its import)."""
    root = tmp_path_factory.mktemp("mpd")
    make_sample(out_dir=str(root / "sample"), preset="tiny", seed=0, format="mpd")
    import_mpd.main(slices=str(root / "sample"), out_dir=str(root / "dataset"))
    return root


def load(path: Path):
    return json.loads(path.read_bytes())


def track(uri: str, artist: str = "spotify:artist:a", album: str = "spotify:album:b", **names) -> dict:
    return {"pos": 0, "track_uri": uri, "artist_uri": artist, "album_uri": album, **names}


def playlist(pid: int, uris: list[str], **fields) -> dict:
    return {"name": f"p{pid}", "pid": pid, "modified_at": 1_500_000_000 + pid, "num_followers": pid,
            "tracks": [track(u, artist=f"spotify:artist:{u[-1]}") for u in uris]} | fields


def write_slice(folder: Path, name: str, playlists: list) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps({"info": {}, "playlists": playlists}), encoding="utf-8")


# ----------------------------------------------------------------------------------------------------------------
# The sample


def test_outputs_follow_the_melon_schema(imported):
    train = load(imported / "dataset" / "train.json")
    meta = load(imported / "dataset" / "song_meta.json")
    assert validate_playlists(train, "train.json") == []  # no warnings either: repeats were dropped
    validate_song_meta(meta, "song_meta.json")
    assert [p["id"] for p in train] == list(range(1500))
    assert all(p["tags"] == [] for p in train)
    assert [s["id"] for s in meta] == list(range(len(meta)))
    assert all(s["song_gn_gnr_basket"] == [] and s["song_gn_dtl_gnr_basket"] == [] for s in meta)


def test_fields_come_from_the_slices(imported):
    train = load(imported / "dataset" / "train.json")
    meta = load(imported / "dataset" / "song_meta.json")
    maps = load_uri_maps(imported / "dataset" / "mpd_uris.json")
    slices = [p for name in ("mpd.slice.0-999.json", "mpd.slice.1000-1499.json")
              for p in load(imported / "sample" / name)["playlists"]]
    for p, r in zip(slices, train):
        assert r["id"] == p["pid"] and r["plylst_title"] == p["name"] and r["like_cnt"] == p["num_followers"]
        assert r["updt_date"] == np.datetime_as_string(np.datetime64(p["modified_at"], "s")).replace("T", " ") + ".000"
        assert r["songs"] == [maps.songs[t["track_uri"]] for t in p["tracks"]]
        for t, s in zip(p["tracks"], r["songs"]):
            assert meta[s]["artist_id_basket"] == [maps.artists[t["artist_uri"]]]
            assert meta[s]["album_id"] == maps.albums[t["album_uri"]]
            assert (meta[s]["song_name"], meta[s]["artist_name_basket"], meta[s]["album_name"]) == (
                t["track_name"], [t["artist_name"]], t["album_name"])
    assert maps.latest_updt_date == max(r["updt_date"] for r in train)


def test_same_playlists_as_the_melon_sample(imported):
    melon = generate("tiny", seed=0)
    train = load(imported / "dataset" / "train.json")
    maps = load_uri_maps(imported / "dataset" / "mpd_uris.json")
    uri_of = spotify_uris("track", np.arange(len(melon["song_meta.json"])), 0)
    assert len(set(uri_of)) == len(uri_of)  # one URI per song
    for m, r in zip(melon["train.json"], train):
        assert r["songs"] == [maps.songs[uri_of[s]] for s in m["songs"]]
        assert (r["plylst_title"], r["updt_date"], r["like_cnt"]) == (m["plylst_title"], m["updt_date"], m["like_cnt"])


def test_ids_are_dense_in_first_appearance_order(imported):
    train = load(imported / "dataset" / "train.json")
    first_seen = list(dict.fromkeys(s for p in train for s in p["songs"]))
    assert first_seen == list(range(len(first_seen)))
    maps = load_uri_maps(imported / "dataset" / "mpd_uris.json")
    meta = load(imported / "dataset" / "song_meta.json")
    assert list(maps.songs.values()) == list(range(len(meta)))
    artists = list(dict.fromkeys(s["artist_id_basket"][0] for s in meta))
    assert artists == list(range(len(maps.artists)))


def test_train_json_bytes_are_one_json_dumps(imported):
    raw = (imported / "dataset" / "train.json").read_bytes()
    assert raw == json.dumps(json.loads(raw), ensure_ascii=False).encode("utf-8")


def test_issue_dates_never_filter_a_song(imported):
    train = load(imported / "dataset" / "train.json")
    meta = load(imported / "dataset" / "song_meta.json")
    dates = popularity_issue_dates(np.arange(len(meta)), train, meta)  # step 1's correction of the dates
    assert 0 < dates.max() <= min(updt_to_int(p["updt_date"]) for p in train)


# ----------------------------------------------------------------------------------------------------------------
# Hand-made slices


def test_slices_in_pid_order_and_repeats_kept_once(tmp_path, capsys):
    write_slice(tmp_path / "in", "mpd.slice.10-10.json", [playlist(10, ["t:x"])])
    write_slice(tmp_path / "in", "mpd.slice.2-2.json", [playlist(2, ["t:y", "t:z", "t:y"])])
    first = playlist(0, ["t:z"])
    del first["num_followers"]  # optional: like_cnt 0
    write_slice(tmp_path / "in", "mpd.slice.0-0.json", [first])
    import_mpd.main(slices=str(tmp_path / "in"), out_dir=str(tmp_path / "out"))
    train = load(tmp_path / "out" / "train.json")
    assert [(p["id"], p["songs"], p["like_cnt"]) for p in train] == [(0, [0], 0), (2, [1, 0], 2), (10, [2], 10)]
    assert "1 track(s) repeated inside a playlist were kept once" in capsys.readouterr().out
    assert list(load_uri_maps(tmp_path / "out" / "mpd_uris.json").songs) == ["t:z", "t:y", "t:x"]


def bad_case(kind: str) -> tuple[list[tuple[str, object]], str]:
    """(slice files, the error expected after '{folder}/')."""
    good = playlist(10, ["t:a"])
    if kind == "no track uri":
        p = playlist(11, ["t:b", "t:c"])
        del p["tracks"][1]["track_uri"]
        return [("mpd.slice.10-11.json", {"playlists": [good, p]})], \
            "mpd.slice.10-11.json: playlist 1 (pid 11): track 1: 'track_uri' must be a non-empty string, got None"
    if kind == "pid twice":
        return [("mpd.slice.0-0.json", {"playlists": [good]}), ("mpd.slice.1-1.json", {"playlists": [good]})], \
            "mpd.slice.1-1.json: playlist 0 (pid 10): pid 10 is already the pid of an earlier playlist"
    if kind == "modified_at text":
        return [("mpd.slice.0-0.json", {"playlists": [good | {"modified_at": "2017"}]})], \
            "mpd.slice.0-0.json: playlist 0 (pid 10): 'modified_at' must be unix seconds (an integer from 0), got '2017'"
    if kind == "no name":
        p = dict(good)
        del p["name"]
        return [("mpd.slice.0-0.json", {"playlists": [p]})], \
            "mpd.slice.0-0.json: playlist 0 (pid 10): missing field(s) 'name'"
    if kind == "not an object":
        return [("mpd.slice.0-0.json", {"playlists": [good, 7]})], \
            "mpd.slice.0-0.json: playlist 1: expected an object, got int"
    if kind == "no playlists":
        return [("mpd.slice.0-0.json", [good])], "mpd.slice.0-0.json: expected an object with a 'playlists' list"
    if kind == "bad json":
        return [("mpd.slice.0-0.json", None)], "mpd.slice.0-0.json: malformed JSON at line 1, column 2"
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["no track uri", "pid twice", "modified_at text", "no name", "not an object",
                                  "no playlists", "bad json"])
def test_malformed_records_name_the_slice_and_the_playlist(tmp_path, kind):
    files, message = bad_case(kind)
    for name, obj in files:
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / name).write_text("{" if obj is None else json.dumps(obj))
    with pytest.raises(InputError) as err:
        import_mpd.main(slices=str(tmp_path / "in"), out_dir=str(tmp_path / "out"))
    assert str(err.value).startswith(f"{tmp_path / 'in'}/{message}")
    assert not (tmp_path / "out" / "train.json").exists() and not (tmp_path / "out" / "song_meta.json").exists()


def test_cli_one_error_line_and_nothing_written(tmp_path):
    files, message = bad_case("no track uri")
    write_slice(tmp_path / "in", files[0][0], files[0][1]["playlists"])
    run = subprocess.run([sys.executable, "-m", "data_loader.import_mpd", f"--slices={tmp_path / 'in'}",
                          f"--out_dir={tmp_path / 'out'}"], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 1 and run.stderr.splitlines() == [f"error: {tmp_path / 'in'}/{message}"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []  # not even a temp file


def test_refuses_files_no_importer_wrote(tmp_path):
    write_slice(tmp_path / "in", "mpd.slice.0-0.json", [playlist(0, ["t:a"])])
    out = tmp_path / "out"
    out.mkdir()
    (out / "train.json").write_text("[]")  # the user's own file
    with pytest.raises(UsageError, match=r"train.json already exist\(s\) and no importer wrote it"):
        import_mpd.main(slices=str(tmp_path / "in"), out_dir=str(out))
    assert (out / "train.json").read_text() == "[]" and not (out / "song_meta.json").exists()
    import_mpd.main(slices=str(tmp_path / "in"), out_dir=str(out), force=True)
    import_mpd.main(slices=str(tmp_path / "in"), out_dir=str(out))  # its own files: replaced freely
    (out / "song_meta.json").write_text("[]")  # edited since
    with pytest.raises(UsageError, match="song_meta.json already exist"):
        import_mpd.main(slices=str(tmp_path / "in"), out_dir=str(out))


def test_usage_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="holds no mpd.slice.*.json files"):
        import_mpd.main(slices=str(tmp_path / "empty"), out_dir=str(tmp_path / "out"))
    with pytest.raises(UsageError, match="is not a folder"):
        import_mpd.main(slices=str(tmp_path / "nowhere"), out_dir=str(tmp_path / "out"))
