"""Tiny Melon-shaped records for the step-1 tests (independent of data_loader/make_sample_dataset.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

WORDS = ["신나는", "드라이브", "감성", "힙합", "발라드", "새벽", "카페", "coffee", "chill", "summer", "night", "운동"]
EXTRAS = ["", " ♥", "!!", " ㅋㅋ", " 🎧", " & friends", " 2020"]


def make_playlists(n: int, seed: int = 0, n_songs: int = 300, n_tags: int = 40, first_id: int = 0) -> list[dict]:
    """`n` playlists in the official schema; some with 0 or 1 songs or tags, Korean titles, one empty title."""
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_songs + 1)
    pop /= pop.sum()
    records = []
    for i in range(n):
        n_s = int(rng.choice([0, 1, 2, 3, 5, 8, 20, 120], p=[.05, .1, .1, .15, .2, .2, .15, .05]))
        n_t = int(rng.choice([0, 1, 2, 4, 12], p=[.1, .2, .3, .3, .1]))
        songs = rng.choice(n_songs, size=min(n_s, n_songs), replace=False, p=pop).tolist()
        tags = [f"태그{t}" if t % 3 else f"tag{t}" for t in rng.choice(n_tags, size=n_t, replace=False).tolist()]
        words = rng.choice(WORDS, size=int(rng.integers(1, 4))).tolist()
        title = "" if i == 3 else " ".join(words) + EXTRAS[i % len(EXTRAS)]
        day = int(rng.integers(0, 3000))
        updt = f"{2010 + day // 365:04d}-{1 + day % 365 // 31:02d}-{1 + day % 28:02d} 12:{i % 60:02d}:00.000"
        records.append({"tags": tags, "id": first_id + i, "plylst_title": title, "songs": songs,
                        "like_cnt": int(rng.integers(0, 100)), "updt_date": updt})
    return records


def make_song_meta(n_songs: int = 300, seed: int = 0) -> list[dict]:
    """song_meta records 0..n_songs-1: string issue dates (some "0", some in the future), 1-2 artists each."""
    rng = np.random.default_rng(seed)
    records = []
    for s in range(n_songs):
        date = "0" if s % 17 == 0 else f"{int(rng.integers(2005, 2022))}{int(rng.integers(1, 13)):02d}01"
        artists = sorted({int(a) for a in rng.integers(1000, 1000 + n_songs // 4, size=int(rng.integers(1, 3)))})
        records.append({"song_gn_dtl_gnr_basket": ["GN0101"], "issue_date": date, "album_name": f"앨범 {s}",
                        "album_id": s // 3, "artist_id_basket": artists, "song_name": f"노래 {s}",
                        "song_gn_gnr_basket": ["GN0100"], "artist_name_basket": [f"가수 {a}" for a in artists],
                        "id": s})
    return records


def write_json(path: Path, obj: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path
