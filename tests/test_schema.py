"""Input validation (data_loader/schema.py): valid playlist and song_meta files pass (question files with empty
lists and titles included); each kind of bad record raises InputError naming the file, the record index and the
id; duplicate songs or tags only warn."""
from __future__ import annotations

import copy

import pytest
from _fixtures import make_playlists, make_song_meta

from common.jsonio import InputError
from data_loader.schema import validate_playlists, validate_song_meta

PATH = "dataset/train.json"


def test_valid_playlists_pass() -> None:
    records = make_playlists(60)
    assert validate_playlists(records, PATH) == []
    question = dict(records[0], songs=[], tags=[], plylst_title="")
    del question["like_cnt"]  # optional
    assert validate_playlists([question], PATH) == []
    assert validate_playlists([], PATH, require_nonempty=False) == []


@pytest.mark.parametrize("change, expected", [
    (lambda r: r.pop("songs"), "missing field(s) 'songs'"),
    (lambda r: r.pop("updt_date"), "missing field(s) 'updt_date'"),
    (lambda r: r.update(songs="1,2"), "'songs' must be a list, got str"),
    (lambda r: r.update(songs=[1, "2"]), "'songs' must hold only ints; item 1 is str '2'"),
    (lambda r: r.update(songs=[1, True]), "item 1 is bool True"),
    (lambda r: r.update(songs=[1, 2.0]), "item 1 is float 2.0"),
    (lambda r: r.update(songs=[-1]), "'songs' item 0 = -1 is outside"),
    (lambda r: r.update(tags=["a", 3]), "'tags' must hold only strs; item 1 is int 3"),
    (lambda r: r.update(plylst_title=None), "'plylst_title' must be a str, got NoneType"),
    (lambda r: r.update(updt_date="2020-01-01"), "'updt_date' must be a str 'YYYY-MM-DD HH:MM:SS.fff'"),
    (lambda r: r.update(updt_date=20200101), "'updt_date' must be a str"),
    (lambda r: r.update(like_cnt="7"), "'like_cnt' must be an int"),
])
def test_bad_playlist_field(change, expected) -> None:
    records = make_playlists(20)
    change(records[13])
    with pytest.raises(InputError) as e:
        validate_playlists(records, PATH)
    message = str(e.value)
    assert message.startswith(f"{PATH}: record 13 (playlist id 13): ") and expected in message, message


@pytest.mark.parametrize("bad_id", ["13", True, 1.5, None])
def test_bad_playlist_id(bad_id) -> None:
    records = make_playlists(20)
    records[13]["id"] = bad_id
    with pytest.raises(InputError, match=r"record 13 .*'id' must be an int64"):
        validate_playlists(records, PATH)


def test_bad_playlist_structure() -> None:
    with pytest.raises(InputError, match=f"^{PATH}: expected a JSON list of playlists, got dict"):
        validate_playlists({"a": 1}, PATH)
    with pytest.raises(InputError, match=f"^{PATH}: no playlists$"):
        validate_playlists([], PATH)
    with pytest.raises(InputError, match=f"^{PATH}: record 1: expected an object, got list"):
        validate_playlists([make_playlists(1)[0], [1, 2]], PATH)


def test_duplicate_playlist_ids_name_both_records() -> None:
    records = make_playlists(20)
    records[15]["id"] = 4
    with pytest.raises(InputError, match=f"^{PATH}: records 4 and 15 have the same playlist id 4$"):
        validate_playlists(records, PATH)


def test_duplicate_items_warn() -> None:
    records = make_playlists(20)
    records[5]["songs"] = [1, 2, 1]
    records[7]["tags"] = ["a", "a"]
    before = copy.deepcopy(records)
    warnings = validate_playlists(records, PATH)
    assert len(warnings) == 2 and "record 5 (playlist id 5)" in warnings[0] and "'tags'" in warnings[1]
    assert records == before


def test_song_meta() -> None:
    records = make_song_meta(50)
    validate_song_meta(records, "song_meta.json")
    records[3]["issue_date"] = 20200101  # an int date is accepted too
    validate_song_meta(records, "song_meta.json")
    for field, value, expected in [
        ("issue_date", "2020-01-01", "'issue_date' must be a YYYYMMDD int or string"),
        ("issue_date", "", "'issue_date' must be"),
        ("issue_date", None, "'issue_date' must be"),
        ("artist_id_basket", [1, "2"], "'artist_id_basket' must hold only ints"),
        ("artist_id_basket", 5, "'artist_id_basket' must be a list"),
        ("id", "9", "'id' must be an int"),
    ]:
        bad = copy.deepcopy(records)
        bad[9][field] = value
        with pytest.raises(InputError, match=r"^song_meta.json: record 9 ") as e:
            validate_song_meta(bad, "song_meta.json")
        assert expected in str(e.value)
    bad = copy.deepcopy(records)
    bad[20]["id"] = 2
    with pytest.raises(InputError, match="records 2 and 20 have the same song id 2"):
        validate_song_meta(bad, "song_meta.json")
    with pytest.raises(InputError, match="no songs"):
        validate_song_meta([], "song_meta.json")
