"""The official "genre most popular" baseline (kakao-arena/melon-playlist-continuation genre_most_popular.py).

A question's genre is the most common major genre (song_meta `song_gn_gnr_basket`) over its songs, ties in
first-seen order. It gets that genre's 200 most frequent songs in orig/train.json (ties in song_meta order, as the
official's Counter), minus its own songs; questions without a known song get the overall most popular songs.
Tags are the overall most popular minus the seen ones. Where the official could come out short of 100 songs, the
list is topped up from overall popularity. Needs song_meta.json.

    python -m baselines.genre_most_popular --dataset_dir=dataset --out_path=reco_result/genre_most_popular.json
"""
from __future__ import annotations

from collections import Counter

from baselines.common import answer, cli, popularity
from common.cli import run_cli
from common.jsonio import InputError

GENRE_TOP = 200  # the official keeps this many songs per genre


def songs_by_genre(song_meta: list[dict], song_count: Counter) -> dict[str, list[int]]:
    """Genre -> its GENRE_TOP songs by descending count in the training playlists, ties in song_meta order."""
    members: dict[str, list[int]] = {}
    for song in song_meta:
        for genre in song.get("song_gn_gnr_basket", ()):
            members.setdefault(genre, []).append(song["id"])
    return {g: sorted(ids, key=lambda s: -song_count[s])[:GENRE_TOP] for g, ids in members.items()}


def recommend(train: list[dict], questions: list[dict], song_meta: list[dict] | None) -> list[dict]:
    """Top songs of each question's main genre, tags by overall popularity."""
    if song_meta is None:
        raise InputError("genre_most_popular needs song_meta.json (song_gn_gnr_basket)")
    song_count = Counter(s for p in train for s in p["songs"])
    song_pop = [s for s, _ in song_count.most_common()]
    tag_pop = popularity(p["tags"] for p in train)
    genre_songs = songs_by_genre(song_meta, song_count)
    genres_of = {song["id"]: song.get("song_gn_gnr_basket", ()) for song in song_meta}
    results = []
    for q in questions:
        votes = Counter(g for s in q["songs"] for g in genres_of.get(s, ()))
        top = votes.most_common(1)
        results.append(answer(q, genre_songs[top[0][0]] if top else song_pop, (), song_pop, tag_pop))
    return results


if __name__ == "__main__":
    run_cli(cli(recommend, "genre_most_popular", song_meta="required"))
