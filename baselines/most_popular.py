"""The official "most popular" baseline (kakao-arena/melon-playlist-continuation most_popular.py).

Every question gets the most frequent songs and tags of orig/train.json, minus its own songs and tags. The official
keeps the top 200 songs / 100 tags and could come out short; here the ranking goes on as deep as needed.

    python -m baselines.most_popular --dataset_dir=dataset --question_path=dataset/questions/val.json \\
        --out_path=reco_result/most_popular.json
"""
from __future__ import annotations

from baselines.common import answer, cli, popularity
from data_loader.cli import run_cli


def recommend(train: list[dict], questions: list[dict], song_meta: list[dict] | None = None) -> list[dict]:
    """Most popular songs / tags minus the seen ones, for every question (song_meta unused)."""
    song_pop = popularity(p["songs"] for p in train)
    tag_pop = popularity(p["tags"] for p in train)
    return [answer(q, (), (), song_pop, tag_pop) for q in questions]


if __name__ == "__main__":
    run_cli(cli(recommend, "most_popular", song_meta="unused"))
