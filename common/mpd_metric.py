"""The RecSys Challenge 2018 (Spotify Million Playlist Dataset) metrics: R-precision, NDCG and recommended-songs clicks.

For one playlist with the held-out songs G (a set) and the ranked recommendation R (distinct songs, cut to its first
K = 500), positions i counted from 1:

    R-precision = (|G ∩ R[1:|G|]| + 0.25 * |A(G) ∩ A(R[1:|G|] \\ G)|) / |G|
        A(S) is the set of the primary artists of the songs S. A recommended song in the first |G| that is not in G
        but whose artist is the artist of a song of G earns a quarter, once per distinct artist (the challenge's
        artist-level partial credit, as the organisers' analysis and the winners' evaluator define it). Without an
        artist table the second term is 0.
    NDCG        = DCG / IDCG
        DCG  = sum_{i=1}^{|R|} [R_i in G] / log2(i + 1)
        IDCG = sum_{i=1}^{min(|G|, K)} 1 / log2(i + 1)
        (the organisers' scoring code; the rules page prints IDCG over |G ∩ R| and log2(i) instead, which would
        give NDCG 1 to any list that ranks its few hits first.)
    clicks      = floor((i* - 1) / 10) for i* the position of the first R_i in G, else K / 10 + 1 = 51
        (Spotify's Recommended Songs shows 10 songs a page: the pages turned before the first relevant song.)

Each is averaged over the playlists. A playlist with no held-out song has no score (NaN): the caller leaves it out.

`mpd_scores` computes all three for many playlists at once with numpy (one [N, K] matrix of hits);
`r_precision`, `ndcg` and `clicks` are the same for one playlist. `evaluate_mpd` checks answer and result lists and
averages (evaluate.py --metric=mpd is its command line).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from common.metric import ResultsError, is_int

K = 500  # songs a recommendation holds in the challenge, and the metrics' cut-off
PAGE = 10  # songs per page of Recommended Songs
ARTIST_CREDIT = 0.25  # R-precision's partial credit for an artist match


# ----------------------------------------------------------------------------------------------------------------
# Artist table


def artist_table(song_ids: Sequence[int], artists: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(sorted song ids int64 [S], their primary artists int64 [S]) for `artists_of`: song_ids[j] has artist
    artists[j] (ids need not be dense or sorted)."""
    ids = np.asarray(song_ids, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    return ids[order], np.asarray(artists, dtype=np.int64)[order]


def artists_of(table: tuple[np.ndarray, np.ndarray], songs: np.ndarray) -> np.ndarray:
    """int64 array shaped like `songs`: the primary artist of each song, -1 for a song the table lacks or a
    negative (padding) song id."""
    keys, values = table
    if not len(keys):
        return np.full(songs.shape, -1, np.int64)
    at = np.minimum(np.searchsorted(keys, songs), len(keys) - 1)
    return np.where((keys[at] == songs) & (songs >= 0), values[at], -1)


# ----------------------------------------------------------------------------------------------------------------
# The metrics


def _ragged(lists: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(row of each item int64 [T], the items int64 [T]) of a list of id lists."""
    lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    flat = np.fromiter((x for row in lists for x in row), dtype=np.int64, count=int(lengths.sum()))
    return np.repeat(np.arange(len(lists)), lengths), flat


def rec_matrix(recs: Sequence[Sequence[int]], k: int = K) -> np.ndarray:
    """int64 [N, k]: each recommendation's first k songs, padded with -1."""
    out = np.full((len(recs), k), -1, np.int64)
    for r, songs in enumerate(recs):
        head = songs[:k]
        out[r, : len(head)] = head
    return out


def _in_rows(rows: np.ndarray, ids: np.ndarray, sorted_keys: np.ndarray, width: int) -> np.ndarray:
    """bool, shaped like ids: whether (row, id) is one of the sorted keys row * width + id."""
    keys = rows * width + ids
    at = np.minimum(np.searchsorted(sorted_keys, keys), max(len(sorted_keys) - 1, 0))
    return (sorted_keys[at] == keys) if len(sorted_keys) else np.zeros(keys.shape, bool)


def mpd_scores(answers: Sequence[Sequence[int]], recs: np.ndarray,
               table: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The three metrics of N playlists (module docstring), each float64 [N], NaN where the answer is empty.

    Args:
        answers: N lists of held-out song ids (repeats count once).
        recs: int64 [N, k] ranked distinct song ids, -1 padding at the end (`rec_matrix`); k is the cut-off.
        table: `artist_table` for the R-precision's artist credit; None scores tracks only.
    """
    n, k = recs.shape
    rows, flat = _ragged(answers)
    width = int(max(flat.max(initial=0), recs.max(initial=0))) + 1
    gt_keys = np.unique(rows * width + flat)
    size = np.bincount(gt_keys // width, minlength=n)  # |G|
    grid = np.broadcast_to(np.arange(n)[:, None], recs.shape)
    hit = (recs >= 0) & _in_rows(grid, recs, gt_keys, width)  # [N, k]

    discount = 1.0 / np.log2(np.arange(2, k + 2))  # position i = 1..k: 1 / log2(i + 1)
    ideal = np.concatenate([[0.0], np.cumsum(discount)])[np.minimum(size, k)]
    dcg = hit @ discount
    first = np.argmax(hit, axis=1)
    click = np.where(hit.any(axis=1), first // PAGE, k // PAGE + 1).astype(np.float64)

    top = np.arange(k)[None, :] < size[:, None]  # R[1:|G|]
    matched = (hit & top).sum(axis=1).astype(np.float64)
    if table is not None:
        gt_artist = artists_of(table, flat)
        known = gt_artist >= 0
        rec_artist = artists_of(table, recs)
        a_width = int(max(gt_artist.max(initial=0), rec_artist.max(initial=0))) + 1
        art_keys = np.unique(rows[known] * a_width + gt_artist[known])
        near = top & ~hit & (rec_artist >= 0) & _in_rows(grid, rec_artist, art_keys, a_width)
        distinct = np.unique(grid[near] * a_width + rec_artist[near])  # each artist once per playlist
        matched += ARTIST_CREDIT * np.bincount(distinct // a_width, minlength=n)

    empty = size == 0
    safe = np.where(empty, 1, size)
    nan = np.full(n, np.nan)
    return {"r_precision": np.where(empty, nan, matched / safe),
            "ndcg": np.where(empty, nan, dcg / np.where(empty, 1.0, ideal)),
            "clicks": np.where(empty, nan, click)}


def _one(gt: Sequence[int], rec: Sequence[int], table=None) -> dict[str, float]:
    return {name: float(v[0]) for name, v in mpd_scores([list(gt)], rec_matrix([list(rec)]), table).items()}


def r_precision(gt: Sequence[int], rec: Sequence[int], table: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """R-precision of one playlist (module docstring), with the artist credit when `table` is given."""
    return _one(gt, rec, table)["r_precision"]


def ndcg(gt: Sequence[int], rec: Sequence[int]) -> float:
    """NDCG of one playlist (module docstring) over the first 500 songs of `rec`."""
    return _one(gt, rec)["ndcg"]


def clicks(gt: Sequence[int], rec: Sequence[int]) -> float:
    """Recommended-songs clicks of one playlist (module docstring): 51 when none of the first 500 is in `gt`."""
    return _one(gt, rec)["clicks"]


# ----------------------------------------------------------------------------------------------------------------
# Files: checks and averages


def _index(playlists: Any, name: str, check_songs: bool) -> dict[int, int]:
    """{playlist id: record index} of a list of objects with an int id and a list of int songs (distinct when
    `check_songs`); a ResultsError names the file and the record."""
    if not isinstance(playlists, list):
        raise ResultsError(f"{name}: expected a list of playlists, got {type(playlists).__name__}")
    index: dict[int, int] = {}
    for i, p in enumerate(playlists):
        if not isinstance(p, dict) or "id" not in p or not is_int(p["id"]):
            raise ResultsError(f"{name}: record {i}: expected an object with an integer 'id'")
        where = f"{name}: record {i} (playlist id {p['id']})"
        songs = p.get("songs")
        if not isinstance(songs, list):
            raise ResultsError(f"{where}: 'songs' must be a list")
        if not set(map(type, songs)) <= {int}:  # numpy ints pass too, from in-memory results
            bad = next((s for s in songs if not is_int(s)), None)
            if bad is not None:
                raise ResultsError(f"{where}: songs item {bad!r} is not an integer song id")
        if songs and min(songs) < 0:
            raise ResultsError(f"{where}: song id {min(songs)} is negative")
        if check_songs and len(set(songs)) != len(songs):
            seen: set = set()
            dup = next(s for s in songs if s in seen or seen.add(s))
            raise ResultsError(f"{where}: song {dup} appears more than once")
        if p["id"] in index:
            raise ResultsError(f"{where}: duplicate playlist id (first at record {index[p['id']]})")
        index[p["id"]] = i
    return index


def primary_artists(song_meta: Any, name: str = "song_meta") -> tuple[np.ndarray, np.ndarray]:
    """`artist_table` from song_meta records: each song's first `artist_id_basket` entry (songs with an empty
    basket have none). A ResultsError names the file and the record."""
    if not isinstance(song_meta, list):
        raise ResultsError(f"{name}: expected a list of songs, got {type(song_meta).__name__}")
    ids, artists = [], []
    for i, s in enumerate(song_meta):
        if not isinstance(s, dict) or not is_int(s.get("id")) or not isinstance(s.get("artist_id_basket"), list):
            raise ResultsError(f"{name}: record {i}: expected an object with an integer 'id' and an "
                               f"'artist_id_basket' list")
        basket = s["artist_id_basket"]
        if basket:
            if not is_int(basket[0]):
                raise ResultsError(f"{name}: record {i} (song id {s['id']}): artist {basket[0]!r} is not an integer")
            ids.append(s["id"])
            artists.append(basket[0])
    return artist_table(ids, artists)


def question_shape(q: dict) -> str:
    """The challenge category a question looks like: 'title only', 'N songs' or 'title + N songs'."""
    n, title = len(q.get("songs", ())), bool(q.get("plylst_title") or q.get("name"))
    if not n:
        return "title only" if title else "nothing"
    songs = f"{n} song{'s' if n > 1 else ''}"
    return f"title + {songs}" if title else songs


def _summary(scores: dict[str, np.ndarray], rows: np.ndarray) -> dict:
    return {name: float(np.mean(v[rows])) for name, v in scores.items()} | {"count": int(len(rows))}


def evaluate_mpd(gt: list[dict], rec: list[dict], table: tuple[np.ndarray, np.ndarray] | None = None,
                 question: list[dict] | None = None, *, gt_name: str = "answers", rec_name: str = "results",
                 question_name: str = "questions") -> dict:
    """Average the three metrics over the answer playlists of `gt` that hold songs.

    Args:
        gt: answers, {"id", "songs"} each (other keys, tags included, are not scored).
        rec: one recommendation per answer playlist: {"id", "songs"} with distinct songs; the first 500 count.
        table: `primary_artists` of song_meta.json for the artist credit, or None.
        question: the questions; adds "by_type", the averages per `question_shape`.
    Returns:
        {"r_precision", "ndcg", "clicks", "count", "left_out": [lines saying what was not scored]} (+ "by_type").
    """
    gt_index = _index(gt, gt_name, check_songs=False)
    rec_index = _index(rec, rec_name, check_songs=True)
    missing = gt_index.keys() - rec_index.keys()
    if missing:
        raise ResultsError(f"{rec_name}: no recommendation for playlist id {min(missing)} of {gt_name} "
                           f"({len(missing)} missing in all)")
    extra = rec_index.keys() - gt_index.keys()
    if extra:
        raise ResultsError(f"{rec_name}: playlist id {min(extra)} is not in {gt_name} ({len(extra)} extra in all)")
    ids = list(gt_index)
    answers = [gt[gt_index[i]]["songs"] for i in ids]
    recs = [rec[rec_index[i]]["songs"] for i in ids]
    scores = mpd_scores(answers, rec_matrix(recs), table)
    scored = np.flatnonzero(~np.isnan(scores["ndcg"]))
    if not len(scored):
        raise ResultsError(f"{gt_name}: no playlist holds an answer song to score")

    left_out = []
    if len(scored) < len(ids):
        left_out.append(f"{len(ids) - len(scored)} answer playlist(s) with no songs (no score defined)")
    if any(p.get("tags") for p in gt):
        left_out.append("tags: the challenge scores songs only")
    if table is None:
        left_out.append("R-precision's artist credit (no song_meta given)")
    lengths = np.fromiter(map(len, recs), dtype=np.int64, count=len(recs))
    if lengths.min() < K:
        left_out.append(f"{int((lengths < K).sum())} recommendation(s) shorter than {K} songs (shortest "
                        f"{int(lengths.min())}): a song they lack counts as a miss, clicks 51 when none hits")
    if lengths.max() > K:
        left_out.append(f"songs after the first {K} of {int((lengths > K).sum())} recommendation(s)")

    result = _summary(scores, scored) | {"left_out": left_out}
    if question is not None:
        q_index = _index(question, question_name, check_songs=False)
        shapes = []
        for i in ids:
            if i not in q_index:
                raise ResultsError(f"{question_name}: no question for playlist id {i} of {gt_name}")
            shapes.append(question_shape(question[q_index[i]]))
        shapes_arr = np.array(shapes, dtype=object)
        order = sorted(set(shapes), key=lambda s: (s != "title only", int(s.split()[-2]) if "song" in s else 0, s))
        result["by_type"] = {s: _summary(scores, scored[shapes_arr[scored] == s]) for s in order
                             if (shapes_arr[scored] == s).any()}
    return result
