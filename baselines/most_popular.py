"""The official "most popular" baseline (kakao-arena/melon-playlist-continuation most_popular.py).

Every question gets the most frequent songs and tags of orig/train.json, minus its own songs and tags. The official
keeps the top 200 songs / 100 tags and could come out short; here the ranking goes on as deep as needed.

    python -m baselines.most_popular --dataset_dir=dataset --question_path=dataset/questions/val.json \\
        --out_path=reco_result/most_popular.json
"""
from __future__ import annotations

from collections import Counter

from baselines.common import Ranked, answer, cli, popularity, top_up
from common.arena import SONG_CANDIDATES, TAG_CANDIDATES
from common.cli import run_cli


def rank(train: list[dict], questions: list[dict], song_meta: list[dict] | None = None, n_songs: int = SONG_CANDIDATES,
         n_tags: int = TAG_CANDIDATES) -> Ranked:
    """Each question's n_songs / n_tags most frequent unseen songs and tags, scored by their playlist counts."""
    song_count = Counter(s for p in train for s in p["songs"])
    tag_count = Counter(t for p in train for t in p["tags"])
    lists: tuple[list, ...] = ([], [], [], [])
    for q in questions:
        songs = top_up((s for s, _ in song_count.most_common(n_songs + len(q["songs"]))), (), q["songs"], n_songs)
        tags = top_up((t for t, _ in tag_count.most_common(n_tags + len(q["tags"]))), (), q["tags"], n_tags)
        for out, x in zip(lists, (songs, [song_count[s] for s in songs], tags, [tag_count[t] for t in tags])):
            out.append(x)
    return Ranked.from_lists([q["id"] for q in questions], *lists)


def recommend(train: list[dict], questions: list[dict], song_meta: list[dict] | None = None) -> list[dict]:
    """Most popular songs / tags minus the seen ones, for every question (song_meta unused)."""
    song_pop = popularity(p["songs"] for p in train)
    tag_pop = popularity(p["tags"] for p in train)
    return [answer(q, (), (), song_pop, tag_pop) for q in questions]


if __name__ == "__main__":
    run_cli(cli(recommend, "most_popular", song_meta="unused"))
