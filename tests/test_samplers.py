"""The training-data samplers of both models (data_loader/songs_tags_artists_data.py, plylst_title_data.py).

Covers, over many draws on hand-built playlists: model 1's denoising counts stay in the original's ranges
(k_s in [lo, min(#songs, 100)], k_t in [lo_t, min(#tags, 5)], never both empty) and reach the caps 100 and 5, input artists are exactly those
of the sampled songs, targets are the whole playlist, and the counts and the chosen songs are uniform; model 2's
MLM selection rate ~15% with 80/10/10 replacements, cls/sep never masked, truncation to 50 pieces, skipped titles;
fine-tuning targets (sets, even for repeated items); that an epoch is a pure function of (seed, epoch); and that
the sizes (100 songs, 280 positions, 50 pieces) come from the model config when it changes them.
Run: python -m pytest tests/test_samplers.py -q
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from data_loader.encode import artists_csr
from data_loader.playlists import CSR, Playlists
from data_loader.plylst_title_data import SEQ_LEN, TitleFinetuneData, TitleMLMData, mlm_validation_batches
from data_loader.songs_tags_artists_data import SongsTagsArtistsData
from data_loader.title import MASK, PAD, SEP, SONGS_CLS, TAGS_CLS
from data_loader.vocab import Vocab

S, T, A = 300, 20, 40  # songs, tags, artists in the toy vocabulary


def toy_vocab() -> Vocab:
    # song s has artists s % A and (s * 7) % A, except every 10th song, which has none
    rows = [[] if s % 10 == 0 else sorted({S + T + s % A, S + T + (s * 7) % A}) for s in range(S)]
    return Vocab(list(range(1000, 1000 + S)), [f"tag{t}" for t in range(T)], list(range(A)), CSR.from_lists(rows))


def toy_playlists(songs: list[list[int]], tags: list[list[int]], titles: list[list[int]] | None = None) -> Playlists:
    """Playlists from song indices [0,S) and tag indices [0,T) (stored as label ids, like step 1's dumps)."""
    vocab = toy_vocab()
    n = len(songs)
    song_csr = CSR.from_lists(songs)
    return Playlists(np.arange(n, dtype=np.int64), np.full(n, 20200101, np.int32), song_csr,
                     CSR.from_lists([[S + t for t in ts] for ts in tags]), artists_csr(song_csr, vocab),
                     CSR.from_lists(titles if titles is not None else [[]] * n))


def decode_rows(batch: dict[str, torch.Tensor]) -> list[tuple[set, set, set, list]]:
    """(input songs, input tags, input artists, song list with repeats) of every row of a model-1 batch."""
    out = []
    for row in batch["ids"].tolist():
        items = [x for x in row if x < S + T + A]
        out.append(({x for x in items if x < S}, {x for x in items if S <= x < S + T},
                    {x for x in items if x >= S + T}, [x for x in items if x < S]))
    return out


def targets_of(batch: dict[str, torch.Tensor], key: str, row: int) -> set:
    t = batch[key]
    return set(t[1, t[0] == row].tolist())


def test_denoising_counts_stay_in_the_original_ranges():
    rng = np.random.default_rng(0)
    songs, tags = [], []
    for i in range(300):
        n_s = [0, 1, 3, 40, 100, 150][i % 6]
        n_t = [0, 1, 3, 8][i // 6 % 4]
        if n_s == 0 and n_t == 0:
            n_t = 2
        songs.append(rng.choice(S, n_s, replace=False).tolist())
        tags.append(rng.choice(T, n_t, replace=False).tolist())
    songs.append([])  # no song, no tag: skipped
    tags.append([])
    pl = toy_playlists(songs, tags)
    vocab = toy_vocab()
    data = SongsTagsArtistsData(pl, vocab, bs=64, seed=1)
    assert len(data) == 300
    for epoch in range(1, 6):
        ep = data.epoch(epoch)
        assert len(ep) == 5 and ep[4]["ids"].shape[0] == 300 - 4 * 64  # last partial batch kept
        for b in range(len(ep)):
            batch = ep[b]
            assert batch["ids"][:, :3].tolist() == [[S + T + A, S + T + A + 1, S + T + A + 2]] * len(batch["ids"])
            for r, (in_songs, in_tags, in_artists, song_list) in enumerate(decode_rows(batch)):
                pid = int(ep.targets.ids[b * 64 + r])
                full_songs, full_tags = set(songs[pid]), {S + t for t in tags[pid]}
                k_s, k_t = len(song_list), len(in_tags)
                assert len(set(song_list)) == k_s and in_songs <= full_songs
                assert (1 if not full_tags else 0) <= k_s <= min(len(full_songs), 100)
                assert (1 if k_s == 0 else 0) <= k_t <= min(len(full_tags), 5) and in_tags <= full_tags
                assert k_s + k_t > 0
                assert in_artists == set(artists_csr(CSR.from_lists([sorted(in_songs)]), vocab).values.tolist())
                assert targets_of(batch, "song_targets", r) == full_songs
                assert targets_of(batch, "tag_targets", r) == {t - S for t in full_tags}
                full_artists = set(pl.artists.row(pid).tolist())
                assert targets_of(batch, "artist_targets", r) == {a - S - T for a in full_artists}


def test_denoising_counts_and_choices_are_uniform():
    n = 4000
    songs = [list(range(10))] * n  # 10 songs, 3 tags: k_s ~ U{0..10}, and k_t ~ U{0..3} (U{1..3} when k_s == 0)
    tags = [[0, 1, 2]] * n
    ep = SongsTagsArtistsData(toy_playlists(songs, tags), toy_vocab(), bs=n, seed=0).epoch(1)
    rows = decode_rows(ep[0])
    k_s = np.bincount([len(r[3]) for r in rows], minlength=11)
    assert np.all(np.abs(k_s - n / 11) < 5 * np.sqrt(n / 11)), k_s
    picked = np.bincount([s for r in rows for s in r[3]], minlength=10)
    assert np.all(np.abs(picked / n - 0.5) < 0.04), picked  # each song is in the sample with p = E[k_s] / 10
    k_t = np.array([len(r[1]) for r in rows])
    ks = np.array([len(r[3]) for r in rows])
    counts = np.bincount(k_t[ks > 0], minlength=4)
    assert np.all(np.abs(counts - counts.sum() / 4) < 5 * np.sqrt(counts.sum() / 4)), counts
    assert set(k_t[ks == 0].tolist()) <= {1, 2, 3}


def test_denoising_counts_reach_the_100_song_and_5_tag_caps():
    """k_s is uniform on [0, 100] for 150-song playlists and k_t on [0, 5] for 8-tag ones: every count occurs (about
    40 and 570 times each in 4000 draws) and none above the caps (docs/original.md 2.1)."""
    n = 4000
    rng = np.random.default_rng(2)
    songs = [rng.choice(S, 150, replace=False).tolist() for _ in range(n)]
    ep = SongsTagsArtistsData(toy_playlists(songs, [list(range(8))] * n), toy_vocab(), bs=n, seed=0).epoch(1)
    rows = decode_rows(ep[0])
    assert {len(r[3]) for r in rows} == set(range(101))
    assert {len(r[1]) for r in rows if r[3]} == set(range(6))


def test_an_epoch_is_a_pure_function_of_seed_and_epoch():
    rng = np.random.default_rng(3)
    pl = toy_playlists([rng.choice(S, 30, replace=False).tolist() for _ in range(200)], [[1, 2, 3]] * 200)
    a, b = SongsTagsArtistsData(pl, toy_vocab(), seed=5), SongsTagsArtistsData(pl, toy_vocab(), seed=5)
    assert torch.equal(a.epoch(2)[1]["ids"], b.epoch(2)[1]["ids"])
    assert not torch.equal(a.epoch(2)[0]["ids"], a.epoch(3)[0]["ids"])


def _titles(n: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(8, 500, int(rng.choice([0, 1, 2, 5, 12, 30, 70]))).tolist() for _ in range(n)]


def test_mlm_masking_rates_and_layout():
    titles = _titles(6000)
    pl = toy_playlists([[]] * len(titles), [[]] * len(titles), titles)
    V = 500
    data = TitleMLMData(pl, n_pieces=V, bs=256, seed=0)
    eligible = [t[:50] for t in titles if len(t) > 1]
    assert len(data) == len(eligible)
    ep = data.epoch(1)
    batches = [ep[i] for i in range(len(ep))]
    ids = torch.cat([b["ids"] for b in batches])
    assert ids.shape[1] == SEQ_LEN and (ids[:, 0] == SONGS_CLS).all() and (ids[:, 1] == TAGS_CLS).all()
    n_pieces = sum(len(t) for t in eligible)
    selected = sum(len(b["mlm_labels"]) for b in batches)
    assert abs(selected / n_pieces - 0.15) < 5 * np.sqrt(0.15 * 0.85 / n_pieces)  # 5 sigma: ~0.006 here
    expected_rows = sum(1 - 0.85 ** len(t) for t in eligible)  # titles with nothing selected are skipped
    assert abs(len(ids) - expected_rows) < 4 * np.sqrt(expected_rows)
    kinds = np.zeros(3)
    for b in batches:
        rows, cols = b["mlm_positions"]
        assert len(torch.unique(rows)) == len(b["ids"])  # every kept title has a selected piece
        # the last non-pad column is @sep (a random replacement may itself be @pad or @sep, as in the original)
        last = SEQ_LEN - 1 - torch.argmax((b["ids"] != PAD).flip(1).int(), dim=1)
        lens = last - 2  # pieces per row
        assert (b["ids"][torch.arange(len(lens)), 2 + lens] == SEP).all()
        assert ((cols >= 2) & (cols < 2 + lens[rows])).all()  # only title pieces are ever selected
        got = b["ids"][rows, cols]
        kinds += [(got == MASK).sum(), ((got != MASK) & (got == b["mlm_labels"])).sum(),
                  ((got != MASK) & (got != b["mlm_labels"])).sum()]
    share = kinds / kinds.sum()
    assert abs(share[0] - 0.8) < 0.02 and abs(share[1] - 0.1) < 0.015 and abs(share[2] - 0.1) < 0.015, share
    assert not torch.equal(ep[0]["ids"], data.epoch(2)[0]["ids"])  # re-masked every epoch


def test_mlm_validation_is_fixed_and_finetune_keeps_every_titled_playlist():
    titles = _titles(300, seed=1)
    songs = [[i % S] if i % 3 else [] for i in range(300)]  # some empty targets, which fine-tuning keeps
    pl = toy_playlists(songs, [[] for _ in range(300)], titles)
    a, b = mlm_validation_batches(pl, 500, 64), mlm_validation_batches(pl, 500, 64)
    assert torch.equal(a[0]["ids"], b[0]["ids"]) and torch.equal(a[0]["mlm_labels"], b[0]["mlm_labels"])
    data = TitleFinetuneData(pl, toy_vocab(), bs=64, seed=0)
    titled = [i for i, t in enumerate(titles) if t]
    assert len(data) == len(titled)
    ep = data.epoch(1)
    seen = 0
    for i in range(len(ep)):
        batch = ep[i]
        assert set(batch) == {"ids", "song_targets", "tag_targets"}
        for r in range(len(batch["ids"])):
            pid = int(ep.targets.ids[i * 64 + r])
            assert targets_of(batch, "song_targets", r) == set(songs[pid])
            pieces = batch["ids"][r, 2:2 + min(len(titles[pid]), 50)].tolist()
            assert pieces == titles[pid][:50]
            seen += 1
    assert seen == len(titled)


@pytest.mark.parametrize("bs", [1, 7, 128])
def test_batch_count_covers_every_playlist_once(bs: int):
    rng = np.random.default_rng(bs)
    pl = toy_playlists([rng.choice(S, 5, replace=False).tolist() for _ in range(50)], [[0]] * 50)
    ep = SongsTagsArtistsData(pl, toy_vocab(), bs=bs).epoch(1)
    assert sorted(ep.targets.ids.tolist()) == list(range(50))
    assert sum(len(ep[i]["ids"]) for i in range(len(ep))) == 50
    with pytest.raises(IndexError):
        ep[len(ep)]


def test_targets_are_sets_even_if_a_playlist_repeats_an_item():
    pl = toy_playlists([[1, 1, 2]], [[3, 3]], [[9, 9, 9]])
    batch = SongsTagsArtistsData(pl, toy_vocab()).epoch(1)[0]
    assert batch["song_targets"].tolist() == [[0, 0], [1, 2]] and batch["tag_targets"].tolist() == [[0], [3]]
    batch = TitleFinetuneData(pl, toy_vocab()).epoch(1)[0]
    assert batch["song_targets"].tolist() == [[0, 0], [1, 2]] and batch["tag_targets"].tolist() == [[0], [3]]


def test_rows_longer_than_280_lose_their_last_artists():
    n_songs, n_tags = 150, 6  # 2 own artists per song: 3 + 100 + 5 + 200 positions before the cut
    vocab = Vocab(list(range(n_songs)), [f"t{i}" for i in range(n_tags)], list(range(2 * n_songs)),
                  CSR.from_lists([[n_songs + n_tags + 2 * s, n_songs + n_tags + 2 * s + 1] for s in range(n_songs)]))
    songs = CSR.from_lists([list(range(n_songs))] * 50)
    tags = CSR.from_lists([list(range(n_songs, n_songs + n_tags))] * 50)
    pl = Playlists(np.arange(50), np.zeros(50, np.int32), songs, tags, artists_csr(songs, vocab),
                   CSR.from_lists([[]] * 50))
    ids = SongsTagsArtistsData(pl, vocab, bs=50).epoch(1)[0]["ids"]
    assert ids.shape[1] == 280
    assert ((ids < n_songs).sum(1) <= 100).all() and (ids[:, :3] >= n_songs + n_tags + 2 * n_songs).all()


def test_samplers_take_their_sizes_from_the_model_config():
    rng = np.random.default_rng(3)
    songs = [sorted(rng.choice(S, 40, replace=False).tolist()) for _ in range(64)]
    tags = [sorted(rng.choice(T, 4, replace=False).tolist()) for _ in range(64)]
    titles = [rng.integers(8, 100, 12).tolist() for _ in range(64)]
    pl = toy_playlists(songs, tags, titles)
    batch = SongsTagsArtistsData(pl, toy_vocab(), bs=64, max_songs=7, max_len=12).epoch(1)[0]
    assert batch["ids"].shape[1] == 12 and max(len(r[3]) for r in decode_rows(batch)) == 7
    ids = TitleFinetuneData(pl, toy_vocab(), bs=64, max_pieces=5).epoch(1)[0]["ids"]
    assert ids.shape == (64, 8) and (ids[:, 7] == SEP).all()
    for epoch in (TitleMLMData(pl, 100, bs=64, max_pieces=5).epoch(1), mlm_validation_batches(pl, 100, 64, 0, 5)):
        b = epoch[0]
        assert b["ids"].shape[1] == 8 and (b["mlm_positions"][1] < 7).all() and (b["ids"][:, 7] == SEP).all()
