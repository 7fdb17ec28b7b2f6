"""The faithful split (data_loader/split.py): record-for-record equality with a plain re-implementation of the
official split_data.py procedure (docs/original.md 1.2), the group arithmetic at full scale, and the question/answer
invariants (disjoint, complete, order kept, caps on deleted columns)."""
from __future__ import annotations

import copy
import json
import random

import numpy as np
import pytest
from _fixtures import make_playlists

from data_loader.split import group_sizes, seeded_split, split_paths, write_split


def reference_split(playlists: list[dict], ratio: float) -> tuple[list, list, list, list]:
    """The official procedure written out plainly: deep copies, numpy masks, one final index shuffle."""
    random.seed(777)
    np.random.seed(777)
    playlists = copy.deepcopy(playlists)
    random.shuffle(playlists)
    n_train = int(len(playlists) * ratio)
    train, val = playlists[:n_train], playlists[n_train:]
    tot = len(val)
    groups = [
        (val[: int(tot * 0.3)], ["songs"], ["tags"]),
        (val[int(tot * 0.3): int(tot * 0.8)], ["songs", "tags"], []),
        (val[int(tot * 0.8): int(tot * 0.95)], ["tags"], ["songs"]),
        (val[int(tot * 0.95):], [], ["songs", "tags"]),
    ]
    questions, answers = [], []
    for group, mask_cols, del_cols in groups:
        q_pl, a_pl = copy.deepcopy(group), copy.deepcopy(group)
        for i in range(len(group)):
            for col in del_cols:
                q_pl[i][col] = []
                a_pl[i][col] = a_pl[i][col][: 100 if col == "songs" else 10]
            for col in mask_cols:
                length = len(group[i][col])
                mask = np.full(length, False)
                mask[: length // 2] = True
                np.random.shuffle(mask)
                q_pl[i][col] = list(np.array(q_pl[i][col])[mask])
                a_pl[i][col] = list(np.array(a_pl[i][col])[np.invert(mask)])
        questions += q_pl
        answers += a_pl
    order = np.arange(len(questions))
    np.random.shuffle(order)
    return train, val, list(np.array(questions)[order]), list(np.array(answers)[order])


def as_json(obj: object) -> object:
    """What the original's write_json would store (numpy ints become ints, numpy strings are str)."""
    return json.loads(json.dumps(obj, ensure_ascii=False, default=int))


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 31, 200, 1000])
def test_matches_reference(n: int) -> None:
    playlists = make_playlists(n, seed=n)
    for name, ours, ref in zip(("train", "val", "questions", "answers"),
                               seeded_split(playlists), reference_split(playlists, 0.9)):
        assert as_json(ours) == as_json(ref), name


def test_long_lists_and_other_ratio() -> None:
    playlists = make_playlists(300, seed=5, n_songs=400)
    for p in playlists[::7]:
        p["songs"] = list(range(150))  # longer than the 100-song answer cap
        p["tags"] = [f"t{k}" for k in range(15)]
    assert as_json(seeded_split(playlists, 0.8)) == as_json(reference_split(playlists, 0.8))


def test_full_scale_arithmetic() -> None:
    stub = {"tags": [], "plylst_title": "", "songs": [], "updt_date": "2020-01-01 00:00:00.000"}
    train, val, questions, answers = seeded_split([dict(stub, id=i) for i in range(115_071)])
    assert (len(train), len(val), len(questions), len(answers)) == (103_563, 11_508, 11_508, 11_508)
    assert group_sizes(11_508) == {"songs only": 3452, "songs+tags": 5754, "tags only": 1726, "title only": 576}
    assert {p["id"] for p in train}.isdisjoint(p["id"] for p in val)
    assert sorted(p["id"] for p in train + val) == list(range(115_071))


def test_questions_and_answers_partition_val() -> None:
    """Each question's columns as docs/original.md 1.2 says for its group, the group known from the playlist's position in
    val (cut at int(0.3 n), int(0.8 n), int(0.95 n)): a masked column shows floor(L/2) items and the answer the
    rest, both in the original order; a deleted one shows nothing and the answer the first 100 songs / 10 tags."""
    playlists = make_playlists(400, seed=3)
    for p in playlists[::9]:
        p["songs"], p["tags"] = list(range(130)), [f"t{k}" for k in range(14)]  # longer than the deleted caps
    before = copy.deepcopy(playlists)
    train, val, questions, answers = seeded_split(playlists)
    assert playlists == before  # the input is not modified
    n = len(val)
    cuts = [int(n * 0.3), int(n * 0.8), int(n * 0.95)]
    masked = {0: {"songs"}, 1: {"songs", "tags"}, 2: {"tags"}, 3: set()}  # per group
    group = {p["id"]: sum(i >= c for c in cuts) for i, p in enumerate(val)}
    by_id = {p["id"]: p for p in val}
    assert [q["id"] for q in questions] == [a["id"] for a in answers]
    assert sorted(by_id) == sorted(q["id"] for q in questions)
    seen_kinds = set()
    for q, a in zip(questions, answers):
        p = by_id[q["id"]]
        for field in ("id", "plylst_title", "updt_date", "like_cnt"):
            assert q[field] == a[field] == p[field]
        for col, cap in (("songs", 100), ("tags", 10)):
            if col in masked[group[q["id"]]]:
                assert len(q[col]) == len(p[col]) // 2
                assert sorted(q[col] + a[col]) == sorted(p[col])
                assert q[col] == [x for x in p[col] if x in set(q[col])]
                assert a[col] == [x for x in p[col] if x not in set(q[col])]
                seen_kinds.add(("masked", len(p[col]) >= 2))
            else:
                assert q[col] == [] and a[col] == p[col][:cap]
                seen_kinds.add(("deleted", len(p[col]) > cap))
    assert seen_kinds == {("masked", True), ("masked", False), ("deleted", True), ("deleted", False)}


def test_write_split_files(tmp_path) -> None:
    parts = seeded_split(make_playlists(50, seed=1))
    paths = write_split(tmp_path, parts)
    assert paths == split_paths(tmp_path)
    for path, part in zip(paths.values(), parts):
        text = path.read_text(encoding="utf-8")
        assert "\\u" not in text  # ensure_ascii=False: Korean titles stay readable
        assert json.loads(text) == part
