"""Tests for data_loader/import_interactions.py (a playlist-item CSV/TSV -> train.json and interaction_ids.json).

Covers: the Melon schema of the output; songs ordered by position (ties and no position: file order) with repeats
kept once; updt_date from the largest timestamp (unix seconds or ISO 8601, empty cells ignored); titles; the
separator sniffed or given; one error naming the file and the line per malformed line, with nothing written;
refusing a train.json no importer wrote unless --force. Run: python -m pytest tests/test_import_interactions.py -q
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from common.cli import UsageError
from common.jsonio import InputError
from data_loader import import_interactions
from data_loader.schema import validate_playlists

REPO = Path(__file__).resolve().parents[1]

ROWS = [  # playlist_id, item_id, position, timestamp, title
    ("p1", "song-c", "3", "1500000300", "Road trip"),
    ("p2", "song-a", "1", "2017-07-14T02:40:00Z", ""),
    ("p1", "song-a", "1", "1500000100", ""),
    ("p1", "song-b", "2", "", "other title"),
    ("p2", "song-d", "0", "2017-07-14 04:40:00+02:00", "Chill"),
    ("p1", "song-a", "2.5", "1500000200", ""),  # a repeat: its first by position (1) is kept
    ("p3", "song-e", "7", "", ""),
]


def write_rows(path: Path, rows, sep: str = ",", header=("playlist_id", "item_id", "position", "timestamp", "title")):
    path.write_text("\n".join(sep.join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    return path


def run(path: Path, out: Path, **flags) -> tuple[list[dict], dict]:
    import_interactions.main(path=str(path), out_dir=str(out), **flags)
    return json.loads((out / "train.json").read_text()), json.loads((out / "interaction_ids.json").read_text())


def test_playlists_from_all_columns(tmp_path, capsys):
    train, ids = run(write_rows(tmp_path / "in.csv", ROWS), tmp_path / "out")
    assert validate_playlists(train, "train.json") == []
    assert ids["playlists"] == {"p1": 0, "p2": 1, "p3": 2}
    assert ids["items"] == {"song-c": 0, "song-a": 1, "song-b": 2, "song-d": 3, "song-e": 4}
    assert train == [
        {"tags": [], "id": 0, "plylst_title": "Road trip", "songs": [1, 2, 0], "updt_date": "2017-07-14 02:45:00.000"},
        {"tags": [], "id": 1, "plylst_title": "Chill", "songs": [3, 1], "updt_date": "2017-07-14 02:40:00.000"},
        {"tags": [], "id": 2, "plylst_title": "", "songs": [4], "updt_date": "1970-01-01 00:00:00.000"},
    ]
    out = capsys.readouterr().out
    assert "(separator: comma)" in out and "1 repeated item(s) inside a playlist were kept once" in out


def test_file_order_without_position_and_tsv_sniffed(tmp_path):
    rows = [(p, i) for p, i, *_ in ROWS]
    train, _ = run(write_rows(tmp_path / "in.tsv", rows, "\t", ("playlist_id", "item_id")), tmp_path / "out")
    assert [p["songs"] for p in train] == [[0, 1, 2], [1, 3], [4]]
    assert all(p["updt_date"] == "1970-01-01 00:00:00.000" and p["plylst_title"] == "" for p in train)


def test_header_case_extra_columns_and_given_separator(tmp_path, capsys):
    rows = [(i, "x", p) for p, i, *_ in ROWS]
    path = write_rows(tmp_path / "in.txt", rows, ";", ("Item_ID", "Comment", "PLAYLIST_ID"))
    train, ids = run(path, tmp_path / "out", sep="semicolon")
    assert list(ids["playlists"]) == ["p1", "p2", "p3"] and train[0]["songs"] == [0, 1, 2]
    assert "ignored column(s): comment" in capsys.readouterr().out
    train2, _ = run(path, tmp_path / "out2")  # sniffed: the header holds two semicolons
    assert train2 == train


@pytest.mark.parametrize("lines, message", [
    (["playlist,item_id", "a,b"], "line 1: the header has no 'playlist_id' column (columns: playlist, item_id; "
                                  "separator ',')"),
    (["playlist_id,item_id,position", "a,b,1", "a,c,first"], "line 3: position 'first' is not a number"),
    (["playlist_id,item_id,timestamp", "a,b,1", "a,c,yesterday"],
     "line 3: timestamp 'yesterday' is neither unix seconds nor an ISO 8601 date-time"),
    (["playlist_id,item_id,timestamp", "a,b,1e20"], "line 2: timestamp '1e20' is outside the years 1-9999"),
    (["playlist_id,item_id", "a,b", ",c"], "line 3: empty playlist_id"),
    (["playlist_id,item_id,title", "a,b,t", "a"], "line 3: 1 field(s), the header needs at least 3"),
    (["playlist_id,item_id"], "no interactions after the header"),
    (["playlist_id item_id", "a b"], "line 1: cannot tell the separator"),
])
def test_malformed_lines_are_named(tmp_path, lines, message):
    path = tmp_path / "in.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        import_interactions.main(path=str(path), out_dir=str(tmp_path / "out"))
    assert str(err.value).startswith(f"{path}: {message}")
    assert not (tmp_path / "out" / "train.json").exists()


def test_cli_one_error_line(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("playlist_id,item_id,position\na,b,1\na,c,x\n")
    proc = subprocess.run([sys.executable, "-m", "data_loader.import_interactions", f"--path={path}",
                           f"--out_dir={tmp_path / 'out'}"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [f"error: {path}: line 3: position 'x' is not a number"]
    bad_sep = subprocess.run([sys.executable, "-m", "data_loader.import_interactions", f"--path={path}",
                              "--sep=ab"], cwd=REPO, capture_output=True, text=True)
    assert bad_sep.returncode == 2 and "--sep must be auto, comma, tab, semicolon, pipe or one character" in \
        bad_sep.stderr


def test_refuses_a_train_json_no_importer_wrote(tmp_path):
    path = write_rows(tmp_path / "in.csv", ROWS)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "train.json").write_text("[]")
    with pytest.raises(UsageError, match="no importer wrote it"):
        import_interactions.main(path=str(path), out_dir=str(tmp_path / "out"))
    assert (tmp_path / "out" / "train.json").read_text() == "[]"
    run(path, tmp_path / "out", force=True)
    run(path, tmp_path / "out")  # its own output: replaced freely


def test_round_trip_of_the_melon_sample(tmp_path):
    """The tiny sample's train.json written as shuffled interaction rows comes back with the same playlists."""
    from datetime import datetime, timezone

    import numpy as np

    from data_loader.make_sample_dataset import generate

    train = generate("tiny", seed=0)["train.json"][:300]
    rows = []
    for p in train:
        ts = int(datetime.strptime(p["updt_date"][:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp())
        rows += [(f"pl{p['id']}", f"s{s}", str(j), str(ts - j), p["plylst_title"] if j == 0 else "")
                 for j, s in enumerate(p["songs"])]
    rows = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))]
    got, ids = run(write_rows(tmp_path / "in.tsv", rows, "\t"), tmp_path / "out")
    item = {v: int(k[1:]) for k, v in ids["items"].items()}
    by_name = {int(k[2:]): got[v] for k, v in ids["playlists"].items()}
    for p in train:
        r = by_name[p["id"]]
        assert [item[s] for s in r["songs"]] == p["songs"]
        assert (r["plylst_title"], r["updt_date"]) == (p["plylst_title"], p["updt_date"])
