"""The task's rules, in one place: what an answer holds, how deep members propose, how questions are typed.

A question playlist has some of its songs / tags / title hidden; an answer is N_SONGS songs and N_TAGS tags, and the
score is SONG_WEIGHT * song nDCG@N_SONGS + TAG_WEIGHT * tag nDCG@N_TAGS (common/metric.py). A member of an ensemble
proposes SONG_CANDIDATES songs and TAG_CANDIDATES tags per question, from which the ensemble picks its answer.
"""
from __future__ import annotations

N_SONGS = 100  # songs per answer, and the song cut-off of nDCG
N_TAGS = 10  # tags per answer, and the tag cut-off of nDCG
SONG_WEIGHT = 0.85  # the score's weights of song and tag nDCG
TAG_WEIGHT = 0.15
SONG_CANDIDATES = 500  # songs a member proposes per question (the original ensemble's depth, docs/original.md 4)
TAG_CANDIDATES = 50  # tags a member proposes per question
# Fixed order for reports; step 1's split makes 30% / 50% / 15% / 5% of these (docs/original.md 1.2).
QUESTION_TYPES = ("songs only", "songs+tags", "tags only", "title only")


def question_type(q: dict) -> str:
    """Name of the question's type (one of QUESTION_TYPES), read from which of its songs and tags are non-empty."""
    songs, tags = bool(q["songs"]), bool(q["tags"])
    if songs:
        return "songs+tags" if tags else "songs only"
    return "tags only" if tags else "title only"
