"""Step 1 (data_loader/dump_datasets.py and its parts): vocabulary cut-offs, tie order and artist document
frequency on hand-made counts; the issue-date correction; a whole run on a small generated dataset (split files,
vocabulary, SentencePiece ids, npz round trip, meta.json); a run without song_meta; and bad inputs, which must exit
non-zero naming the file and record and leave no outputs, or older good outputs untouched."""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from _fixtures import make_playlists, make_song_meta, write_json

from common.jsonio import InputError
from data_loader import dump_datasets
from data_loader.build_vocab import build_vocab
from data_loader.dumps import load_dumps
from data_loader.encode import encode_playlists
from data_loader.issue_dates import song_issue_dates
from data_loader.playlists import CSR, Playlists
from data_loader.split import seeded_split
from data_loader.title import MASK, PAD, SEP, SONGS_CLS, TAGS_CLS
from data_loader.vocab import Vocab

REPO = Path(__file__).resolve().parents[1]


def pl(pid: int, songs: list[int], tags: list[str] = (), updt: str = "2020-01-01 00:00:00.000") -> dict:
    return {"tags": list(tags), "id": pid, "plylst_title": "t", "songs": songs, "like_cnt": 0, "updt_date": updt}


# --------------------------------------------------------------------------------------------------------------
# vocabulary and issue dates on hand-made counts


def test_song_and_tag_cutoffs_keep_first_seen_ties() -> None:
    # songs: 7 x10, 50 x1 (seen before 3), 3 x1 -> shares .83 .92 1.0 -> keep 2 (recall 0.9)
    # tags: x x20, y x1 (seen before b), b x1 -> shares .909 .955 1.0 -> keep 2 (recall 0.95)
    train = [pl(0, [50, 7, 3], ["y", "x", "b"])] + [pl(i, [7] if i < 10 else [], ["x"]) for i in range(1, 20)]
    vocab, distinct = build_vocab(train, None)
    assert vocab.songs == [7, 50] and vocab.tags == ["x", "y"]
    assert distinct == {"songs": 3, "tags": 3, "artists": 0}
    assert vocab.artists == [] and len(vocab.song_artists) == 2 and vocab.song_artists.values.size == 0
    # counts 5,3,1,1 at recall 0.9: the share before the last item is exactly 0.9, not above it: keep all four
    train = [pl(0, [1, 2, 3, 4])] + [pl(1, [1, 2]), pl(2, [1, 2]), pl(3, [1]), pl(4, [1])]
    assert build_vocab(train, None)[0].songs == [1, 2, 3, 4]


def test_artists_by_document_frequency() -> None:
    song_artists = {1: [100], 2: [100, 200], 3: [300], 4: [400], 9: [999]}
    train = [pl(0, [1, 2]), pl(1, [3, 1]), pl(2, [4]), pl(3, [3]), pl(4, [3]), pl(5, [9])]
    # song counts 3:3 1:2 2:1 4:1 9:1 -> with songs recall 0.8, song 9 (seen last) is cut, so artist 999 is never counted
    recall = {"songs": 0.8, "tags": 0.95, "artists": 0.98}
    vocab, distinct = build_vocab(train, song_artists, recall)
    assert vocab.songs == [3, 1, 2, 4]
    # documents: 100 in playlists 0, 1 (twice in playlist 0 but counted once) -> 2; 300 -> 3; 200, 400 -> 1.
    # By occurrences 100 would tie 300 at 3 and come first.
    assert vocab.artists == [300, 100, 200, 400] and distinct["artists"] == 4
    label = {a: vocab.n_songs + vocab.n_tags + k for k, a in enumerate(vocab.artists)}
    rows = [vocab.song_artists.row(i).tolist() for i in range(vocab.n_songs)]
    assert rows == [[label[300]], [label[100]], [label[100], label[200]], [label[400]]]
    # artists recall 0.7: shares 3/7, 5/7 > 0.7 -> keep 300, 100; song 2 keeps only artist 100, song 4 none
    vocab = build_vocab(train, song_artists, dict(recall, artists=0.7))[0]
    assert vocab.artists == [300, 100]
    assert [vocab.song_artists.row(i).tolist() for i in range(4)] == [[vocab.n_songs + 0], [vocab.n_songs + 1],
                                                                      [vocab.n_songs + 1], []]


def reference_vocab(train: list[dict], song_artists: dict) -> tuple[list, list, list, list]:
    """Label_info written plainly: Counters in file order, stable sorted(reverse=True), the accumulate-and-stop loop."""
    def cut(counter: Counter, recall: float) -> list:
        total, accum, kept = sum(counter.values()), 0, []
        for item, count in sorted(counter.items(), key=lambda kv: kv[1], reverse=True):
            if accum / total > recall:
                break
            kept.append(item)
            accum += count
        return kept

    songs = cut(Counter(s for p in train for s in p["songs"]), 0.9)
    tags = cut(Counter(t for p in train for t in p["tags"]), 0.95)
    in_vocab, artist_df = set(songs), Counter()
    for p in train:  # one count per playlist; within a playlist in order of first occurrence
        artist_df.update(list(dict.fromkeys(a for s in p["songs"] if s in in_vocab for a in song_artists[s])))
    artists = cut(artist_df, 0.98)
    label = {a: len(songs) + len(tags) + k for k, a in enumerate(artists)}
    return songs, tags, artists, [[label[a] for a in song_artists[s] if a in label] for s in songs]


def test_build_vocab_matches_plain_python() -> None:
    train = make_playlists(500, seed=4, n_songs=400) + make_playlists(300, seed=5, n_songs=900, first_id=500)
    song_artists = {r["id"]: r["artist_id_basket"] for r in make_song_meta(900, seed=4)}
    vocab, _ = build_vocab(train, song_artists)
    songs, tags, artists, rows = reference_vocab(train, song_artists)
    assert 0 < len(songs) < 900 and 0 < len(artists)
    assert (vocab.songs, vocab.tags, vocab.artists) == (songs, tags, artists)
    assert [vocab.song_artists.row(i).tolist() for i in range(vocab.n_songs)] == rows


def test_issue_date_correction() -> None:
    songs = [10, 11, 12, 13, 14]
    vocab = Vocab(songs, [], [], CSR(np.zeros(0, np.int32), np.zeros(len(songs) + 1, np.int64)))
    issue = {10: 0, 11: 20200101, 12: 20190505, 13: 20180101}  # 14 has no metadata: treated as date 0
    full_train = [
        pl(0, [10, 11, 12, 13, 99], updt="2019-05-05 10:00:00.000"),
        pl(1, [10, 11, 14], updt="2021-01-01 10:00:00.000"),
        pl(2, [11, 14], updt="2017-03-04 10:00:00.000"),
        pl(3, [12], updt="2019-06-01 10:00:00.000"),
    ]
    dates = song_issue_dates(vocab, full_train, issue)
    assert dates.dtype == np.int32
    # 10: date 0 -> earliest updt of its playlists; 11: later than two playlists -> the earliest; 12: equal is fine;
    # 13: earlier than its playlist, kept; 14: unknown -> earliest updt
    assert dates.tolist() == [20190505, 20170304, 20190505, 20180101, 20170304]
    assert song_issue_dates(vocab, full_train, None).tolist() == [0] * 5


# --------------------------------------------------------------------------------------------------------------
# whole runs


def make_dataset(root: Path, n: int = 400, song_meta: bool = True) -> Path:
    write_json(root / "train.json", make_playlists(n, seed=11, first_id=1000))
    if song_meta:
        write_json(root / "song_meta.json", make_song_meta(300, seed=11))
    return root


def file_digests(*dirs: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for d in dirs for p in sorted(d.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("step1")
    dataset, output = make_dataset(root / "dataset"), root / "output"
    capture = root / "stdout.txt"
    with open(capture, "w") as f:  # capsys is function-scoped; keep the printout by redirecting stdout
        stdout, sys.stdout = sys.stdout, f
        try:
            dump_datasets.main(dataset_dir=str(dataset), output_dir=str(output))
        finally:
            sys.stdout = stdout
    return dataset, output, capture.read_text()


def test_run_writes_the_faithful_split(run) -> None:
    dataset, output, _ = run
    train = json.loads((dataset / "train.json").read_text(encoding="utf-8"))
    expected = seeded_split(train)
    for name, part in zip(("orig/train", "orig/val", "questions/val", "answers/val"), expected):
        assert json.loads((dataset / f"{name}.json").read_text(encoding="utf-8")) == part, name


def test_run_dumps(run) -> None:
    dataset, output, printed = run
    dumps = load_dumps(output)
    orig_train = json.loads((dataset / "orig/train.json").read_text(encoding="utf-8"))
    questions = json.loads((dataset / "questions/val.json").read_text(encoding="utf-8"))
    full = json.loads((dataset / "train.json").read_text(encoding="utf-8"))
    meta_songs = make_song_meta(300, seed=11)

    vocab, _ = build_vocab(orig_train, {r["id"]: r["artist_id_basket"] for r in meta_songs})
    assert dumps.vocab.to_json() == vocab.to_json() and vocab.n_artists > 0
    v = dumps.vocab
    assert f"num(after filtering): songs {v.n_songs}, tags {v.n_tags}, artists {v.n_artists}" in printed
    issue = {r["id"]: int(r["issue_date"]) for r in meta_songs}
    assert np.array_equal(dumps.song_issue_dates, song_issue_dates(vocab, full, issue))
    assert (dumps.song_issue_dates > 0).all()

    sp = dumps.sp
    ids = [sp.piece_to_id(s) for s in ("@songs_cls", "@tags_cls", "@sep", "@mask", "@pad")]
    assert ids == [SONGS_CLS, TAGS_CLS, SEP, MASK, PAD] == [3, 4, 5, 6, 7]

    for loaded, records in ((dumps.train, orig_train), (dumps.val_questions, questions)):
        again = encode_playlists(records, vocab, sp)
        assert loaded.ids.tolist() == [r["id"] for r in records]
        for field in ("ids", "updt"):
            assert np.array_equal(getattr(loaded, field), getattr(again, field))
        for field in ("songs", "tags", "artists", "title"):
            a, b = getattr(loaded, field), getattr(again, field)
            assert np.array_equal(a.values, b.values) and np.array_equal(a.offsets, b.offsets), field
    assert isinstance(dumps.train, Playlists) and len(dumps.train) == 360 and len(dumps.val_questions) == 40

    meta = dumps.meta
    assert set(meta) >= {"format_version", "created", "code_version", "sources", "has_song_meta", "split", "vocab",
                         "sentencepiece", "paths"}
    assert meta["has_song_meta"] is True and meta["sources"]["train.json"]["n"] == 400
    assert meta["sources"]["song_meta.json"]["sha256"] == hashlib.sha256(
        (dataset / "song_meta.json").read_bytes()).hexdigest()
    assert meta["split"] == {"ratio": 0.9, "seed": 777, "n_train": 360, "n_val": 40,
                             "by_type": {"songs only": 12, "songs+tags": 20, "tags only": 6, "title only": 2}}
    assert meta["vocab"] | {"hash": None} == {"n_songs": v.n_songs, "n_tags": v.n_tags, "n_artists": v.n_artists,
                                              "size": v.size, "hash": None,
                                              "recall": {"songs": 0.9, "tags": 0.95, "artists": 0.98}}
    assert meta["vocab"]["hash"] == v.hash
    assert meta["sentencepiece"]["requested"] == 6000 and meta["sentencepiece"]["vocab_size"] == len(sp)
    assert dumps.val_answers_path == (dataset / "answers/val.json").resolve()
    assert dumps.val_questions_path == (dataset / "questions/val.json").resolve()


def test_run_without_song_meta(tmp_path, capsys) -> None:
    dataset = make_dataset(tmp_path / "dataset", n=120, song_meta=False)
    dump_datasets.main(dataset_dir=str(dataset), output_dir=str(tmp_path / "out"))
    printed = capsys.readouterr().out
    assert printed.count("WARNING") == 1 and "no artist tokens" in printed and "release-date filter" in printed
    dumps = load_dumps(tmp_path / "out")
    assert dumps.meta["has_song_meta"] is False and dumps.meta["sources"]["song_meta.json"] is None
    assert dumps.vocab.n_artists == 0 and dumps.train.artists.values.size == 0
    assert not dumps.song_issue_dates.any() and len(dumps.song_issue_dates) == dumps.vocab.n_songs


# --------------------------------------------------------------------------------------------------------------
# bad inputs


def _break(case: str, dataset: Path) -> str:
    """Damage the dataset in one way; return what the error message must contain besides the file name."""
    train = dataset / "train.json"
    records = json.loads(train.read_text(encoding="utf-8"))
    if case == "malformed":
        train.write_text(train.read_text(encoding="utf-8")[:-50], encoding="utf-8")
        return "malformed JSON"
    if case == "missing file":
        train.unlink()
        return "file not found"
    if case == "empty":
        write_json(train, [])
        return "no playlists"
    if case == "missing field":
        del records[7]["tags"]
    elif case == "wrong type":
        records[7]["songs"][0:0] = ["12"]
    elif case == "duplicate id":
        records[9]["id"] = records[7]["id"]
        write_json(train, records)
        return f"records 7 and 9 have the same playlist id {records[7]['id']}"
    elif case == "bad song_meta":
        meta = json.loads((dataset / "song_meta.json").read_text(encoding="utf-8"))
        meta[5]["artist_id_basket"] = "x"
        write_json(dataset / "song_meta.json", meta)
        return "song_meta.json: record 5 (song id 5)"
    write_json(train, records)
    return f"record 7 (playlist id {records[7]['id']})"


CASES = ["malformed", "missing file", "empty", "missing field", "wrong type", "duplicate id", "bad song_meta"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_exits_without_outputs(case: str, tmp_path) -> None:
    dataset = make_dataset(tmp_path / "dataset", n=30)
    expected = _break(case, dataset)
    before = file_digests(dataset)
    result = subprocess.run(
        [sys.executable, "data_loader/dump_datasets.py", f"--dataset_dir={dataset}", f"--output_dir={tmp_path / 'out'}"],
        cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.stderr
    assert ("song_meta.json" if case == "bad song_meta" else "train.json") in lines[0]
    assert not (tmp_path / "out").exists() and file_digests(dataset) == before


@pytest.mark.parametrize("records, expected", [
    (make_playlists(1), "1 playlist(s) leave the training split empty"),
    ([dict(p, plylst_title="♥ ㅋㅋ") for p in make_playlists(20)], "no title in the training split"),
])
def test_unusable_training_split(records, expected, tmp_path) -> None:
    dataset = tmp_path / "dataset"
    write_json(dataset / "train.json", records)
    with pytest.raises(InputError, match=re.escape(expected)):
        dump_datasets.main(dataset_dir=str(dataset), output_dir=str(tmp_path / "out"))
    assert [p.name for p in dataset.iterdir()] == ["train.json"] and not (tmp_path / "out").exists()


def test_bad_input_leaves_older_outputs_untouched(tmp_path, capsys) -> None:
    dataset, output = make_dataset(tmp_path / "dataset", n=60), tmp_path / "out"
    dump_datasets.main(dataset_dir=str(dataset), output_dir=str(output))
    good = file_digests(dataset / "orig", dataset / "questions", dataset / "answers", output)
    _break("wrong type", dataset)
    with pytest.raises(InputError, match="record 7"):
        dump_datasets.main(dataset_dir=str(dataset), output_dir=str(output))
    assert file_digests(dataset / "orig", dataset / "questions", dataset / "answers", output) == good


def test_failure_after_writing_started_invalidates_the_dumps(tmp_path, monkeypatch, capsys) -> None:
    dataset, output = make_dataset(tmp_path / "dataset", n=60), tmp_path / "out"
    dump_datasets.main(dataset_dir=str(dataset), output_dir=str(output))
    assert (output / "dumps/meta.json").is_file()

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(dump_datasets, "train_sentencepiece", crash)
    with pytest.raises(RuntimeError):
        dump_datasets.main(dataset_dir=str(dataset), output_dir=str(output))
    assert not (output / "dumps/meta.json").exists()
    assert not [p for p in output.rglob(".*")]  # no temporary files left behind
    with pytest.raises(InputError, match="run step 1 first"):
        load_dumps(output)
