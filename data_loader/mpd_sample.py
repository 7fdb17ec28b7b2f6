"""The synthetic sample in the Spotify Million Playlist Dataset's shape (make_sample_dataset.py --format=mpd).

From the Melon-shaped sample's playlists and songs (same planted themes), `to_mpd` builds:
    mpd.slice.{first}-{last}.json      the train playlists, 1,000 a file, pids 0, 1, 2, ... in train.json's order:
                                       name = plylst_title, modified_at = updt_date (UTC), num_followers = like_cnt,
                                       tracks with made-up Spotify URIs (one per song, artist, album of song_meta)
    challenge_set.json                 one challenge playlist per val playlist (pids from 1,000,000), in the
                                       challenge's 10 categories (title only ... title and 100 random tracks),
                                       taken in turn, a playlist too short for its turn's category (every category
                                       holds back at least one track) getting one it fits, drawn at random
    sample_answers/challenge_set.json  the held-out tracks of each challenge playlist, in the challenge's shape

Song i of song_meta.json is `track_uri(i)`; its artist (first of its basket) and album likewise.
Everything is drawn from one numpy Generator seeded from the sample's seed: the same seed gives the same bytes.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

SLICE = 1_000  # playlists per slice file, as in the MPD
FIRST_CHALLENGE_PID = 1_000_000
# The challenge's 10 categories: (seed tracks, title shown, seeds drawn at random rather than the first ones)
CATEGORIES = ((0, True, False), (1, True, False), (5, True, False), (5, False, False), (10, True, False),
              (10, False, False), (25, True, False), (25, True, True), (100, True, False), (100, True, True))
GENERATED_ON = "2018-01-16 08:47:28.198015"  # fixed, so that a seed gives the same bytes
_ALPHABET = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
# (multiplier, offset, digits) of the three parts of a 22-character id; the first part alone is a bijection of
# ids below 62**7 (the multiplier is coprime with 62), the others only make the ids look random
_PARTS = ((2654435761, 12345, 7), (2246822519, 777, 7), (3266489917, 4242, 8))


def slice_names(n_playlists: int) -> list[str]:
    """The slice file names of `n_playlists` playlists."""
    return [f"mpd.slice.{a}-{min(a + SLICE, n_playlists) - 1}.json" for a in range(0, n_playlists, SLICE)]


def file_names(n_train: int) -> list[str]:
    """Every file `to_mpd` writes for a sample of `n_train` train playlists."""
    return slice_names(n_train) + ["challenge_set.json", "sample_answers/challenge_set.json"]


def spotify_uris(kind: str, ids: np.ndarray, salt: int) -> list[str]:
    """'spotify:{kind}:' + a distinct 22-character base-62 id for each of `ids` (int64, 0 <= id < 1e9)."""
    columns = []
    for mult, offset, digits in _PARTS:
        x = (ids.astype(np.int64) * mult + offset + salt) % 62**digits
        for _ in range(digits):
            columns.append(_ALPHABET[x % 62])
            x //= 62
    codes = np.ascontiguousarray(np.stack(columns, axis=1))
    return [f"spotify:{kind}:{c}" for c in codes.view("S22").ravel().astype(str).tolist()]


class _Tracks:
    """The MPD track object of every song of song_meta.json (record i is song i)."""

    def __init__(self, song_meta: Sequence[dict], rng: np.random.Generator) -> None:
        n = len(song_meta)
        artist = np.array([s["artist_id_basket"][0] for s in song_meta], dtype=np.int64)
        album = np.array([s["album_id"] for s in song_meta], dtype=np.int64)
        self.track_uri = spotify_uris("track", np.arange(n), 0)
        self.artist_uri = spotify_uris("artist", artist, 1)
        self.album_uri = spotify_uris("album", album, 2)
        self.artist, self.album = artist.tolist(), album.tolist()
        self.duration = rng.integers(90_000, 360_000, n).tolist()
        self.meta = song_meta

    def track(self, song: int, pos: int) -> dict:
        s = self.meta[song]
        return {"pos": pos, "artist_name": s["artist_name_basket"][0], "track_uri": self.track_uri[song],
                "artist_uri": self.artist_uri[song], "track_name": s["song_name"], "album_uri": self.album_uri[song],
                "duration_ms": self.duration[song], "album_name": s["album_name"]}


def _unix_seconds(updt_dates: list[str]) -> list[int]:
    return np.array([u[:19] for u in updt_dates], dtype="datetime64[s]").astype(np.int64).tolist()


def _slice(playlists: Sequence[dict], first_pid: int, tracks: _Tracks, rng: np.random.Generator) -> dict:
    modified = _unix_seconds([p["updt_date"] for p in playlists])
    edits = rng.integers(1, 40, len(playlists)).tolist()
    out = []
    for k, p in enumerate(playlists):
        songs = p["songs"]
        out.append({
            "name": p["plylst_title"], "collaborative": "false", "pid": first_pid + k, "modified_at": modified[k],
            "num_tracks": len(songs), "num_albums": len({tracks.album[s] for s in songs}),
            "num_followers": p["like_cnt"], "tracks": [tracks.track(s, j) for j, s in enumerate(songs)],
            "num_edits": edits[k], "duration_ms": sum(tracks.duration[s] for s in songs),
            "num_artists": len({tracks.artist[s] for s in songs}),
        })
    last = first_pid + len(playlists) - 1
    return {"info": {"generated_on": GENERATED_ON, "slice": f"{first_pid}-{last}", "version": "v1"}, "playlists": out}


def _challenge(playlists: Sequence[dict], tracks: _Tracks, rng: np.random.Generator) -> tuple[dict, dict]:
    """(challenge_set.json, sample_answers/challenge_set.json)."""
    questions, answers = [], []
    for i, p in enumerate(playlists):
        songs = p["songs"]
        category = i % len(CATEGORIES)
        if CATEGORIES[category][0] >= len(songs):
            fits = [c for c, (k, _, _) in enumerate(CATEGORIES) if k < len(songs)]
            category = fits[int(rng.integers(len(fits)))]
        k, titled, random = CATEGORIES[category]
        shown = np.sort(rng.choice(len(songs), k, replace=False)) if random else np.arange(k)
        held = np.setdiff1d(np.arange(len(songs)), shown)
        pid = FIRST_CHALLENGE_PID + i
        q = {"name": p["plylst_title"]} if titled else {}
        q |= {"num_holdouts": len(held), "pid": pid, "num_tracks": len(songs),
              "tracks": [tracks.track(songs[j], j) for j in shown.tolist()], "num_samples": k}
        questions.append(q)
        answers.append({"pid": pid, "num_holdouts": len(held),
                        "tracks": [tracks.track(songs[j], j) for j in held.tolist()]})
    head = {"date": GENERATED_ON, "version": "v1"}
    return head | {"playlists": questions}, head | {"playlists": answers}


def to_mpd(train: Sequence[dict], challenge: Sequence[dict], song_meta: Sequence[dict],
           seed: int) -> Iterator[tuple[str, object]]:
    """(file name, JSON-ready object) of every file of the MPD-shaped sample (module docstring), one at a time so
    that a large sample never holds all its slices in memory.

    Args:
        train: Melon-schema playlists for the slices.
        challenge: whole Melon-schema playlists (at least 2 songs each) for the challenge set.
        song_meta: the songs' records; record i is song i.
        seed: seeds the draws (durations, edits, the challenge's categories and random seeds).
    """
    rng = np.random.default_rng([seed, 2018])
    tracks = _Tracks(song_meta, rng)
    for name, first in zip(slice_names(len(train)), range(0, len(train), SLICE)):
        yield name, _slice(train[first:first + SLICE], first, tracks, rng)
    questions, answers = _challenge(challenge, tracks, rng)
    yield "challenge_set.json", questions
    yield "sample_answers/challenge_set.json", answers
