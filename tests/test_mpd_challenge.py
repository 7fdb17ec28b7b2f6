"""Tests for the MPD challenge set's side: the sample's challenge_set.json (data_loader/mpd_sample.py), its import
as questions and answers (data_loader/import_mpd_challenge.py), scoring them (evaluate.py --metric=mpd) and the
submission CSV (data_loader/mpd_submission.py).

Covers: the challenge's 10 categories and what each shows; the same seed giving the same files; questions whose songs
are the challenge's tracks through the same URI maps as train.json, unknown URIs appended and counted without
renumbering; the end-to-end score of a perfect and of a popularity answer; the CSV's lines and the checks that
refuse a submission the challenge would refuse; one error naming the file and the playlist per malformed record.
Run: python -m pytest tests/test_mpd_challenge.py -q
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from common.cli import UsageError
from common.jsonio import InputError
from common.mpd_metric import evaluate_mpd, primary_artists
from data_loader import import_mpd, import_mpd_challenge, mpd_submission
from data_loader.make_sample_dataset import generate_mpd, main as make_sample
from data_loader.mpd_sample import CATEGORIES, FIRST_CHALLENGE_PID
from data_loader.mpd_uris import load_uri_maps
from data_loader.schema import validate_playlists

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """sample/ (the tiny preset as MPD files) and dataset/ (the slices imported, questions and answers not yet)."""
    root = tmp_path_factory.mktemp("challenge")
    make_sample(out_dir=str(root / "sample"), preset="tiny", seed=0, format="mpd")
    import_mpd.main(slices=str(root / "sample"), out_dir=str(root / "dataset"))
    return root


@pytest.fixture
def dataset(sample, tmp_path) -> Path:
    """A private copy of the imported dataset (the challenge import extends its map)."""
    shutil.copytree(sample / "dataset", tmp_path / "dataset")
    return tmp_path / "dataset"


def load(path: Path):
    return json.loads(Path(path).read_bytes())


def imported_pair(sample: Path, dataset: Path) -> tuple[list[dict], list[dict]]:
    import_mpd_challenge.main(challenge=str(sample / "sample" / "challenge_set.json"), dataset_dir=str(dataset))
    import_mpd_challenge.main(challenge=str(sample / "sample" / "sample_answers" / "challenge_set.json"),
                              dataset_dir=str(dataset), out_path=str(dataset / "answers.json"))
    return load(dataset / "challenge.json"), load(dataset / "answers.json")


# ----------------------------------------------------------------------------------------------------------------
# The sample's challenge set


def test_challenge_categories(sample):
    questions = load(sample / "sample" / "challenge_set.json")["playlists"]
    answers = load(sample / "sample" / "sample_answers" / "challenge_set.json")["playlists"]
    assert [q["pid"] for q in questions] == [a["pid"] for a in answers] == list(
        range(FIRST_CHALLENGE_PID, FIRST_CHALLENGE_PID + 300))
    seen = Counter()
    for i, (q, a) in enumerate(zip(questions, answers)):
        shown = [t["pos"] for t in q["tracks"]]
        held = [t["pos"] for t in a["tracks"]]
        assert sorted(shown + held) == list(range(q["num_tracks"]))  # seeds and held-out: the whole playlist
        assert q["num_samples"] == len(shown) and q["num_holdouts"] == len(held) == a["num_holdouts"] >= 1
        kind = next(c for c, (k, titled, random) in enumerate(CATEGORIES)
                    if k == len(shown) and titled == ("name" in q) and random == (shown != list(range(len(shown)))))
        if CATEGORIES[i % 10][0] < q["num_tracks"]:
            assert CATEGORIES[kind][:2] == CATEGORIES[i % 10][:2]  # its turn's category (a random draw of 25 or
        seen[kind] += 1                                             # 100 may happen to be the first ones)
    assert sorted(seen) == list(range(10))


def test_same_seed_same_files():
    first = dict(generate_mpd("tiny", seed=0))
    assert first == dict(generate_mpd("tiny", seed=0))
    other = dict(generate_mpd("tiny", seed=1))
    assert other["challenge_set.json"] != first["challenge_set.json"]


# ----------------------------------------------------------------------------------------------------------------
# Import


def test_questions_map_to_the_same_song_ids(sample, dataset, capsys):
    known = load_uri_maps(dataset / "mpd_uris.json").songs
    questions, answers = imported_pair(sample, dataset)
    maps = load_uri_maps(dataset / "mpd_uris.json")
    assert list(maps.songs.items())[: len(known)] == list(known.items())  # appended, nothing renumbered
    uris = list(maps.songs)
    raw = load(sample / "sample" / "challenge_set.json")["playlists"]
    for q, p in zip(questions, raw):
        assert [uris[s] for s in q["songs"]] == [t["track_uri"] for t in p["tracks"]]
        assert all(known[t["track_uri"]] == s for t, s in zip(p["tracks"], q["songs"]) if t["track_uri"] in known)
        assert q["id"] == p["pid"] and q["plylst_title"] == p.get("name", "") and q["tags"] == []
        assert q["updt_date"] == maps.latest_updt_date and q["num_holdouts"] == p["num_holdouts"]
    assert validate_playlists(questions, "q", require_nonempty=False) == []
    new_q = len({t["track_uri"] for p in raw for t in p["tracks"]} - known.keys())
    out = capsys.readouterr().out
    assert f"  {new_q:,} track URI(s) were not in {dataset / 'mpd_uris.json'}: given new song ids {len(known):,} and " \
           f"up, appended to it" in out
    assert new_q > 0  # the sample's val playlists hold a few songs no train playlist has
    new_a = len({t["track_uri"] for p in load(sample / "sample" / "sample_answers" / "challenge_set.json")["playlists"]
                 for t in p["tracks"]} - known.keys() - {t["track_uri"] for p in raw for t in p["tracks"]})
    assert len(maps.songs) == len(known) + new_q + new_a
    new_tracks = [t for p in raw for t in p["tracks"] if t["track_uri"] not in known]
    assert all(t["artist_uri"] in maps.artists and t["album_uri"] in maps.albums for t in new_tracks)


def test_scores_of_a_perfect_and_a_popular_answer(sample, dataset):
    questions, answers = imported_pair(sample, dataset)
    table = primary_artists(load(dataset / "song_meta.json"))
    perfect = evaluate_mpd(answers, [{"id": a["id"], "songs": a["songs"]} for a in answers], table, questions)
    assert (perfect["r_precision"], perfect["ndcg"], perfect["clicks"]) == (1.0, pytest.approx(1.0), 0.0)
    counts = Counter(s for p in load(dataset / "train.json") for s in p["songs"])
    popular = [s for s, _ in counts.most_common()]
    rec = [{"id": q["id"], "songs": [s for s in popular if s not in set(q["songs"])][:500]} for q in questions]
    result = evaluate_mpd(answers, rec, table, questions)
    assert 0 < result["r_precision"] < 1 and 0 < result["ndcg"] < 1 and 0 < result["clicks"] < 51
    assert result["left_out"] == []
    assert list(result["by_type"]) == ["title only", "title + 1 song", "5 songs", "title + 5 songs", "10 songs",
                                       "title + 10 songs", "title + 25 songs", "title + 100 songs"]


@pytest.mark.parametrize("change, message", [
    (lambda p: p[3]["tracks"][0].pop("artist_uri"),
     "playlist 3 (pid 1000003): track 0: 'artist_uri' must be a non-empty string, got None"),
    (lambda p: p[2].update(pid="x"), "playlist 2 (pid 'x'): 'pid' must be an integer, got 'x'"),
    (lambda p: p[5].update(pid=1000004), "playlist 5 (pid 1000004): pid 1000004 is already the pid of an earlier"),
    (lambda p: p[1].update(name=3), "playlist 1 (pid 1000001): 'name' must be a string, got 3"),
])
def test_malformed_challenge_records(sample, dataset, tmp_path, change, message):
    data = load(sample / "sample" / "challenge_set.json")
    change(data["playlists"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    before = (dataset / "mpd_uris.json").read_bytes()
    with pytest.raises(InputError, match="^" + str(bad).replace(".", r"\.") + ": " + message.replace("(", r"\(")
                       .replace(")", r"\)")):
        import_mpd_challenge.main(challenge=str(bad), dataset_dir=str(dataset))
    assert not (dataset / "challenge.json").exists() and (dataset / "mpd_uris.json").read_bytes() == before


def test_challenge_import_needs_the_map(sample, tmp_path):
    with pytest.raises(InputError, match="mpd_uris.json: not found; import the slices first"):
        import_mpd_challenge.main(challenge=str(sample / "sample" / "challenge_set.json"),
                                  dataset_dir=str(tmp_path / "none"))


# ----------------------------------------------------------------------------------------------------------------
# The submission CSV


def popular_results(dataset: Path, questions: list[dict]) -> list[dict]:
    counts = Counter(s for p in load(dataset / "train.json") for s in p["songs"])
    popular = [s for s, _ in counts.most_common()]
    return [{"id": q["id"], "songs": [s for s in popular if s not in set(q["songs"])][:500], "tags": []}
            for q in reversed(questions)]


def test_submission_csv(sample, dataset, tmp_path):
    questions, _ = imported_pair(sample, dataset)
    results = popular_results(dataset, questions)
    (tmp_path / "results.json").write_text(json.dumps(results))
    challenge = sample / "sample" / "challenge_set.json"
    run = subprocess.run([sys.executable, "-m", "data_loader.mpd_submission", f"--results={tmp_path / 'results.json'}",
                          "--team_name=team x", "--email=x@example.com", f"--dataset_dir={dataset}",
                          f"--challenge={challenge}", f"--out_path={tmp_path / 'sub.csv'}"],
                         cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    lines = (tmp_path / "sub.csv").read_text().splitlines()
    assert lines[0] == "team_info,team x,x@example.com"
    uris = list(load_uri_maps(dataset / "mpd_uris.json").songs)
    by_pid = {r["id"]: r["songs"] for r in results}
    pids = [p["pid"] for p in load(challenge)["playlists"]]
    assert len(lines) == 1 + len(pids)
    for line, pid in zip(lines[1:], pids):  # the challenge's order, not the results'
        fields = line.split(", ")
        assert fields == [str(pid)] + [uris[s] for s in by_pid[pid]] and len(fields) == 501


def shorten(rs: list[dict], seeds: dict) -> str:
    rs[0]["songs"] = rs[0]["songs"][:499]
    return f"record 0 (playlist id {rs[0]['id']}): 499 songs; the challenge needs 500 per playlist"


def repeat(rs: list[dict], seeds: dict) -> str:
    rs[0]["songs"].insert(0, rs[0]["songs"][3])
    return f"record 0 (playlist id {rs[0]['id']}): a song appears more than once in its first 500"


def drop_last(rs: list[dict], seeds: dict) -> str:
    return f"no recommendation for pid {rs.pop()['id']} of"


def add_seed(rs: list[dict], seeds: dict) -> str:
    r = next(r for r in rs if seeds[r["id"]])
    r["songs"].insert(7, seeds[r["id"]][-1])
    return f"pid {r['id']}: song {seeds[r['id']][-1]} is one of its seed tracks"


def unknown_song(rs: list[dict], seeds: dict) -> str:
    rs[0]["songs"].insert(0, 10**8)
    return f"record 0 (playlist id {rs[0]['id']}): song id 100000000 is not in the URI map"


def extra_pid(rs: list[dict], seeds: dict) -> str:
    rs.append({"id": 5, "songs": rs[0]["songs"]})
    return "pid 5 is not in"


@pytest.mark.parametrize("change", [shorten, repeat, drop_last, add_seed, unknown_song, extra_pid])
def test_submission_refusals(sample, dataset, tmp_path, change):
    questions, _ = imported_pair(sample, dataset)
    results = popular_results(dataset, questions)
    message = change(results, {q["id"]: q["songs"] for q in questions})
    (tmp_path / "results.json").write_text(json.dumps(results))
    with pytest.raises(InputError) as err:
        mpd_submission.main(results=str(tmp_path / "results.json"), team_name="t", email="e", dataset_dir=str(dataset),
                            challenge=str(sample / "sample" / "challenge_set.json"), out_path=str(tmp_path / "s.csv"))
    assert str(err.value).startswith(str(tmp_path / "results.json")) and message in str(err.value)
    assert not (tmp_path / "s.csv").exists()


def test_submission_flag_checks(sample, dataset, tmp_path):
    with pytest.raises(UsageError, match="--team_name must be non-empty, without commas"):
        mpd_submission.main(results="r.json", team_name="a,b", email="e", dataset_dir=str(dataset))
    with pytest.raises(UsageError, match="would overwrite an input"):
        mpd_submission.main(results=str(tmp_path / "r.json"), team_name="a", email="e", dataset_dir=str(dataset),
                            out_path=str(tmp_path / "r.json"))


def test_sample_format_flag(tmp_path):
    with pytest.raises(UsageError, match="--format must be one of melon, mpd, got 'csv'"):
        make_sample(out_dir=str(tmp_path), preset="tiny", format="csv")
    (tmp_path / "challenge_set.json").write_text("{}")  # the user's own file
    with pytest.raises(UsageError, match="already holds challenge_set.json, not written by this script"):
        make_sample(out_dir=str(tmp_path), preset="tiny", format="mpd")
    assert (tmp_path / "challenge_set.json").read_text() == "{}"
