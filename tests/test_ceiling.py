"""The pool's ceiling (predictor/ceiling.py): the share of answer items among the members' candidates, per member,
their union and with the popularity fallback, per question type, against counts written out by hand.

Run: python -m pytest tests/test_ceiling.py -q
"""
from __future__ import annotations

import numpy as np
import pytest

from predictor.ceiling import pool_reach, reach, reach_table
from predictor.pool import Pool


def test_reach_counts_answer_items_among_each_members_candidates():
    a = [np.array([[1, 2, 3], [7, -1, -1]]), np.array([[3, 4, -1], [8, 9, 10]])]  # two members, two questions
    fallback = np.array([[5, 6], [11, 12]])
    pool = Pool.build(a, fallback)
    answers = [[2, 4, 5, 99], [9, 12, 13]]  # 99 and 13: nobody proposes them
    types = np.array([0, 2])  # songs only, tags only
    got = reach(pool, answers, types, ["m1", "m2"])
    assert got["m1"] == {"overall": pytest.approx(1 / 7), "songs only": 0.25, "tags only": 0.0}
    assert got["m2"] == {"overall": pytest.approx(2 / 7), "songs only": 0.25, "tags only": pytest.approx(1 / 3)}
    assert got["all members"]["overall"] == pytest.approx(3 / 7) and got["all members"]["songs only"] == 0.5
    assert got["+ fallback"] == {"overall": pytest.approx(5 / 7), "songs only": 0.75,
                                 "tags only": pytest.approx(2 / 3)}


def test_pool_reach_covers_both_targets_and_prints_a_line_each():
    pool = Pool.build([np.array([[1, 2]])], np.array([[3]]))
    ceiling = pool_reach({"songs": pool, "tags": pool}, [{"songs": [1], "tags": [3, -2]}], np.array([1]), ["m"])
    assert ceiling["songs"]["m"]["songs+tags"] == 1.0 and ceiling["tags"]["m"]["overall"] == 0.0
    assert ceiling["tags"]["+ fallback"]["overall"] == 0.5  # -2: a tag no member knows, never in reach
    table = reach_table(ceiling)
    assert len(table.splitlines()) == 1 + 2 * 3 and "tags: + fallback" in table
