"""Tests for models/: the two BERT-style models and their shared layers and losses.

Covers: output shapes; the exact architecture against a plain reference forward written from ORIGINAL.md 2.2 and
3.2 (no pruning, explicit attention with the original's -1e9 masking); the custom autograd functions against
plain autograd (gradcheck, and a full training step with a fixed table-dropout mask); padding invariance; order
invariance of model 1; parameter counts at the real sizes; the losses against hand computations with dense
targets; table dropout on in train mode and off in eval; a few Adam steps lowering each loss; question batches,
routing, configs and rebuilding; bf16 autocast (CPU, and CUDA when present). Tiny sizes, CPU, seconds.
Run: python -m pytest tests/test_models.py -q
"""
import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import models.layers as layers
from data_loader.playlists import CSR, Playlists
from models import MODELS, PlylstTitleConfig, PlylstTitleModel, SongsTagsArtistsConfig, SongsTagsArtistsModel
from models.layers import keep_mask, multi_hot_bce_mean, segment_logits, top100_ranking_term

S, T, A, PIECES = 300, 20, 15, 60


def small_model1(**kw) -> SongsTagsArtistsModel:
    torch.manual_seed(0)
    return SongsTagsArtistsModel(SongsTagsArtistsConfig(S, T, A, d_model=16, n_heads=2, d_ff=64, **kw))


def small_model2(**kw) -> PlylstTitleModel:
    torch.manual_seed(0)
    return PlylstTitleModel(PlylstTitleConfig(S, T, PIECES, d_model=12, n_heads=2, d_ff=48, max_pieces=10, **kw))


def coo(lists: list[list[int]]) -> torch.Tensor:
    """long [2, P] (row, column) pairs of ragged per-row lists."""
    pairs = [(r, c) for r, cols in enumerate(lists) for c in cols]
    return torch.tensor(pairs, dtype=torch.long).T.reshape(2, -1)


def dense(targets: torch.Tensor, B: int, V: int) -> torch.Tensor:
    y = torch.zeros(B, V)
    y[targets[0], targets[1]] = 1.0
    return y


def model1_batch(c: SongsTagsArtistsConfig) -> dict[str, torch.Tensor]:
    """Three playlists of different lengths, laid out cls + songs + tags + artists, pad-padded."""
    S_, T_ = c.n_songs, c.n_tags
    artists = [[S_ + T_ + 1, S_ + T_ + 4], [], [S_ + T_ + 2]] if c.n_artists else [[], [], []]
    rows = [[5, 17, 200, S_ + 3] + artists[0], [9, S_ + 7] + artists[1], [250, 251, 252, 253] + artists[2]]
    L = 3 + max(map(len, rows))
    ids = torch.full((len(rows), L), c.pad)
    for i, r in enumerate(rows):
        ids[i, :3] = torch.tensor([c.songs_cls, c.tags_cls, c.artists_cls])
        ids[i, 3 : 3 + len(r)] = torch.tensor(r)
    return {"ids": ids, "song_targets": coo([[5, 17, 200, 201], [9, 10], [250, 251, 252, 253, 299]]),
            "tag_targets": coo([[3], [7, 8], []]), "artist_targets": coo([[1, 4], [0], [2]])}


def model2_batch() -> dict[str, torch.Tensor]:
    ids = torch.full((3, 13), 7)
    for i, pieces in enumerate([[10, 11, 12], [20], [30, 31, 32, 33, 34, 35, 36, 37, 38, 39]]):
        ids[i, :2] = torch.tensor([3, 4])
        ids[i, 2 : 2 + len(pieces)] = torch.tensor(pieces)
        ids[i, 2 + len(pieces)] = 5
    return {"ids": ids, "song_targets": coo([[1, 2, 3], [], [100, 299]]), "tag_targets": coo([[0], [19], []]),
            "mlm_positions": torch.tensor([[0, 2, 2], [3, 4, 7]]), "mlm_labels": torch.tensor([11, 31, 35])}


# ---------------------------------------------------------------------------------------------------------------------
# A plain reference of the original's forward pass (no pruning, no custom autograd, the original's masking)
# ---------------------------------------------------------------------------------------------------------------------

def reference_encoder(enc: layers.Encoder, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """LN(emb), then per layer h = LN(x + mask*MHA(x)); x = LN(h + mask*FFN(h)) at every position, dropout off,
    with the original's attention masking: scores zeroed outside outer(mask, mask), then 1e9 subtracted there."""
    m = mask[..., None].float()
    pair = (mask[:, None, :, None] & mask[:, None, None, :]).float()  # [B, 1, L, L]
    x = enc.ln_emb(emb)
    for layer in enc.layers:
        a = layer.attn
        B, L, d = x.shape
        q, k, v = (w(x).view(B, L, a.n_heads, -1).transpose(1, 2) for w in (a.q, a.k, a.v))
        scores = (q @ k.transpose(-1, -2) / math.sqrt(d // a.n_heads)) * pair - 1e9 * (1 - pair)
        att = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, L, d)
        h = layer.ln_attn(x + a.o(att) * m)
        x = layer.ln_ffn(h + layer.ffn(h) * m)
    return x


def reference_model1_logits(model: SongsTagsArtistsModel, ids: torch.Tensor, table: torch.Tensor):
    c = model.config
    mask = ids != c.pad
    emb = table[ids] * math.sqrt(c.d_model) * mask[..., None]
    h = reference_encoder(model.encoder, emb, mask)
    S_, T_ = c.n_songs, c.n_tags
    return (h[:, 0] @ table[:S_].T + model.song_bias, h[:, 1] @ table[S_ : S_ + T_].T + model.tag_bias,
            h[:, 2] @ table[S_ + T_ : S_ + T_ + c.n_artists].T + model.artist_bias)


@pytest.mark.parametrize("n_layers", [1, 2])
def test_model1_matches_reference_forward(n_layers):
    model = small_model1(n_layers=n_layers).eval()
    ids = model1_batch(model.config)["ids"]
    with torch.no_grad():
        got = model(ids, n_logits=3)
        want = reference_model1_logits(model, ids, model.embedding)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


def test_model2_matches_reference_forward():
    model = small_model2().eval()
    ids = model2_batch()["ids"]
    c = model.config
    with torch.no_grad():
        songs, tags = model.scores({"ids": ids})
        mask = ids != 7
        emb = (model.bpe_embedding[ids] * math.sqrt(c.d_model) + model.position_embedding[: ids.shape[1]]) \
            * mask[..., None]
        h = reference_encoder(model.encoder, emb, mask)
        torch.testing.assert_close(songs, h[:, 0] @ model.output_table[:S].T + model.song_bias, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(tags, h[:, 1] @ model.output_table[S:].T + model.tag_bias, atol=1e-5, rtol=1e-5)


def test_training_step_matches_plain_autograd_with_fixed_mask(monkeypatch):
    """The custom table-dropout and head functions give the loss and gradients of the plain formula
    E_d = E * mask / 0.9 used for both the lookup and the tied heads (other dropouts off)."""
    model = small_model1(dropout=0.0).train()
    batch = model1_batch(model.config)
    fixed = keep_mask(tuple(model.embedding.shape), 0.1, torch.device("cpu"), torch.float32)
    monkeypatch.setattr(layers, "keep_mask", lambda *a, **k: fixed)
    loss, _ = model.loss(batch, ranking_weight=2.0)
    loss.backward()
    got = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()

    c = model.config
    table = model.embedding * fixed / 0.9
    songs, tags, artists = reference_model1_logits(model, batch["ids"], table)
    ref = multi_hot_bce_mean(songs, batch["song_targets"]) + 0.15 * multi_hot_bce_mean(tags, batch["tag_targets"]) \
        + 0.15 * multi_hot_bce_mean(artists, batch["artist_targets"]) \
        + 2.0 * top100_ranking_term(songs, batch["song_targets"])
    ref.backward()
    torch.testing.assert_close(loss, ref, atol=1e-6, rtol=1e-5)
    for n, p in model.named_parameters():
        torch.testing.assert_close(got[n], p.grad, atol=1e-7, rtol=1e-4, msg=lambda m: f"{n}: {m}")
    assert got["embedding"][c.pad].abs().sum() == 0  # pad rows are multiplied by the mask: no gradient


def test_segment_logits_and_masked_table_gradcheck():
    torch.manual_seed(0)
    table = torch.randn(12, 4, dtype=torch.double, requires_grad=True)
    q = torch.randn(3, 2, 4, dtype=torch.double, requires_grad=True)
    b1, b2 = (torch.randn(n, dtype=torch.double, requires_grad=True) for n in (5, 4))
    assert torch.autograd.gradcheck(lambda t, q, b1, b2: segment_logits(t, q, [(0, 5), (6, 10)], [b1, b2]),
                                    (table, q, b1, b2))
    keep = (torch.rand(12, 4) > 0.3).double()
    ids = torch.tensor([0, 3, 3, 11, 0])
    assert torch.autograd.gradcheck(lambda t: layers._MaskedTable.apply(t, keep, ids), (table,))


# ---------------------------------------------------------------------------------------------------------------------
# Shapes and invariances
# ---------------------------------------------------------------------------------------------------------------------

def test_shapes():
    m1, m2 = small_model1(), small_model2()
    b1, b2 = model1_batch(m1.config), model2_batch()
    songs, tags, artists = m1(b1["ids"])
    assert songs.shape == (3, S) and tags.shape == (3, T) and artists.shape == (3, A)
    assert [x.shape for x in m1.scores(b1)] == [(3, S), (3, T)]
    assert [x.shape for x in m2.scores(b2)] == [(3, S), (3, T)]
    for m, b in ((m1, b1), (m2, b2)):
        total, plain = m.loss(b, 2.0)
        assert total.shape == plain.shape == () and total.dtype == torch.float32 and not plain.requires_grad


def test_padding_invariance():
    m1, m2 = small_model1().eval(), small_model2().eval()
    b1, b2 = model1_batch(m1.config), model2_batch()
    ids1 = torch.cat([b1["ids"], torch.full((3, 7), m1.config.pad)], 1)
    with torch.no_grad():  # model 2: rows 0 and 1 need 6 positions, question_batch pads them to max_len
        for m, short, long in ((m1, b1["ids"], ids1), (m2, b2["ids"][:2, :6], b2["ids"][:2])):
            for a, b in zip(m.scores({"ids": short}), m.scores({"ids": long})):
                torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_model1_ignores_item_order():
    m = small_model1().eval()
    ids = model1_batch(m.config)["ids"]
    torch.manual_seed(1)
    shuffled = ids.clone()
    for i in range(len(ids)):
        perm = 3 + torch.randperm(ids.shape[1] - 3)  # pads move too: any position order
        shuffled[i, 3:] = ids[i, perm]
    with torch.no_grad():
        for a, b in zip(m(ids), m(shuffled)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_parameter_counts_at_real_sizes():
    s, t, a = 1000, 50, 30
    m1 = SongsTagsArtistsModel(SongsTagsArtistsConfig(s, t, a))
    counts = {n: p.numel() for n, p in m1.named_parameters()}
    assert sum(counts.values()) - counts["embedding"] - (s + t + a) == 693_840
    assert counts["embedding"] == 240 * (s + t + a + 5)
    assert sum(isinstance(x, torch.nn.LayerNorm) for x in m1.modules()) == 3

    m2 = PlylstTitleModel(PlylstTitleConfig(s, t, 6000))
    assert sum(p.numel() for p in m2.encoder.parameters()) == 420_816
    assert m2.bpe_embedding.numel() == 792_000 and m2.position_embedding.numel() == 6_996
    assert m2.output_table.numel() == 132 * (s + t)
    assert sum(p.numel() for p in m2.parameters()) == 420_816 + 792_000 + 6_996 + 133 * (s + t)
    assert sum(isinstance(x, torch.nn.LayerNorm) for x in m2.modules()) == 5


def test_initialisation():
    m = SongsTagsArtistsModel(SongsTagsArtistsConfig(5000, 10, 10))
    assert abs(m.embedding.std().item() - 240**-0.5) < 0.002
    assert all(torch.count_nonzero(b) == 0 for b in (m.song_bias, m.tag_bias, m.artist_bias))
    layer = m.encoder.layers[0]
    assert layer.attn.q.bias is None and layer.attn.o.bias is None
    assert layer.ffn.up.weight.abs().max() <= math.sqrt(6 / (240 + 960)) and torch.count_nonzero(layer.ffn.up.bias) == 0
    m2 = PlylstTitleModel(PlylstTitleConfig(100, 10, 6000))
    assert m2.position_embedding.abs().max() <= 0.04 and m2.output_table.abs().max() <= 0.04
    assert abs(m2.bpe_embedding.std().item() - 132**-0.5) < 0.002


# ---------------------------------------------------------------------------------------------------------------------
# Losses against hand computations
# ---------------------------------------------------------------------------------------------------------------------

def hand_ranking(logits: torch.Tensor, y: torch.Tensor, k: int = 100) -> torch.Tensor:
    """The original's formula: double argsort of p, top-k entries contribute, mean over batch x vocabulary."""
    p = torch.sigmoid(logits)
    rank = torch.argsort(torch.argsort(-p, dim=1), dim=1)
    top = (rank < k).float()
    term = top * (y * -torch.log(p + 1e-10) + (1 - y) * -torch.log(1 - p + 1e-10))
    return term.mean()


def test_loss_helpers_match_dense_formulas():
    torch.manual_seed(0)
    logits = torch.randn(4, 250) * 3
    targets = coo([[0, 5, 249], [], [7] + list(range(100, 160)), [3]])
    y = dense(targets, 4, 250)
    torch.testing.assert_close(multi_hot_bce_mean(logits, targets), F.binary_cross_entropy_with_logits(logits, y))
    torch.testing.assert_close(top100_ranking_term(logits, targets), hand_ranking(logits, y))
    x = logits.clone().requires_grad_()
    multi_hot_bce_mean(x, targets).backward()
    torch.testing.assert_close(x.grad, (torch.sigmoid(logits) - y) / y.numel())


def test_model1_loss_matches_hand_computation():
    model = small_model1().eval()  # dropout off
    batch = model1_batch(model.config)
    with torch.no_grad():
        songs, tags, artists = model(batch["ids"])
        bce = F.binary_cross_entropy_with_logits
        want = bce(songs, dense(batch["song_targets"], 3, S)) + 0.15 * bce(tags, dense(batch["tag_targets"], 3, T)) \
            + 0.15 * bce(artists, dense(batch["artist_targets"], 3, A))
        total, plain = model.loss(batch, ranking_weight=2.0)
        torch.testing.assert_close(plain, want)
        torch.testing.assert_close(total, want + 2.0 * hand_ranking(songs, dense(batch["song_targets"], 3, S)))
        assert model.loss(batch)[0] == plain


def test_model1_without_artists_skips_the_artist_head():
    model = SongsTagsArtistsModel(SongsTagsArtistsConfig(S, T, 0, d_model=16, d_ff=64)).eval()
    batch = model1_batch(model.config)
    del batch["artist_targets"]
    with torch.no_grad():
        songs, tags = model.scores(batch)
        want = F.binary_cross_entropy_with_logits(songs, dense(batch["song_targets"], 3, S)) \
            + 0.15 * F.binary_cross_entropy_with_logits(tags, dense(batch["tag_targets"], 3, T))
        torch.testing.assert_close(model.loss(batch)[1], want)


def test_model2_losses_match_hand_computation():
    model = small_model2().eval()
    batch = model2_batch()
    with torch.no_grad():
        songs, tags = model.scores(batch)
        y = dense(batch["song_targets"], 3, S)
        want = F.binary_cross_entropy_with_logits(songs, y) \
            + 0.15 * F.binary_cross_entropy_with_logits(tags, dense(batch["tag_targets"], 3, T))
        fine_tune = {k: v for k, v in batch.items() if not k.startswith("mlm")}
        total, plain = model.loss(fine_tune, ranking_weight=2.0)
        torch.testing.assert_close(plain, want)
        torch.testing.assert_close(total, want + 2.0 * hand_ranking(songs, y))

        # MLM: softmax cross-entropy against 0.9 + 0.1/V on the true piece and 0.1/V elsewhere
        rows, cols = batch["mlm_positions"]
        logp = torch.log_softmax(model.hidden(batch["ids"])[rows, cols] @ model.bpe_embedding.T, -1)
        target = torch.full_like(logp, 0.1 / PIECES)
        target[torch.arange(3), batch["mlm_labels"]] += 0.9
        mlm, mlm_plain = model.loss(batch)
        torch.testing.assert_close(mlm, -(target * logp).sum(-1).mean())
        assert mlm == mlm_plain


# ---------------------------------------------------------------------------------------------------------------------
# Dropout, training, autocast
# ---------------------------------------------------------------------------------------------------------------------

def test_keep_mask_rate_and_seed():
    torch.manual_seed(3)
    m = keep_mask((1000, 1000), 0.1, torch.device("cpu"), torch.float32)
    assert m.dtype == torch.float32 and set(m.unique().tolist()) == {0.0, 1.0}
    assert abs(m.mean().item() - 0.9) < 0.002
    torch.manual_seed(3)
    assert torch.equal(m, keep_mask((1000, 1000), 0.1, torch.device("cpu"), torch.float32))
    assert not torch.equal(m, keep_mask((1000, 1000), 0.1, torch.device("cpu"), torch.float32))
    drop, x = layers.Dropout(0.1), torch.ones(1000, 1000)
    y = drop.train()(x)
    assert abs((y == 0).float().mean().item() - 0.1) < 0.002
    torch.testing.assert_close(y[y != 0], torch.full_like(y[y != 0], 1 / 0.9))
    assert drop.eval()(x) is x


@pytest.mark.parametrize("make", [small_model1, small_model2])
def test_table_dropout_on_in_train_off_in_eval(make):
    model = make(dropout=0.0)  # only the table dropout is random
    batch = model1_batch(model.config) if isinstance(model, SongsTagsArtistsModel) else model2_batch()
    with torch.no_grad():
        model.train()
        a, b = model.scores(batch)[0], model.scores(batch)[0]
        assert not torch.allclose(a, b)
        model.eval()
        torch.testing.assert_close(model.scores(batch)[0], model.scores(batch)[0], rtol=0, atol=0)
    table = model.embedding if isinstance(model, SongsTagsArtistsModel) else model.output_table
    masked, _, scale = model.table_dropout.train()(table)
    assert scale == pytest.approx(1 / 0.9)
    assert 0.05 < (masked == 0).float().mean().item() < 0.15
    masked, _, scale = model.table_dropout.eval()(table)
    assert masked is table and scale == 1.0


@pytest.mark.parametrize("name", ["model1", "model2", "mlm"])
def test_adam_steps_lower_the_loss(name):
    model = small_model1() if name == "model1" else small_model2()
    batch = model1_batch(model.config) if name == "model1" else model2_batch()
    if name == "model2":
        batch = {k: v for k, v in batch.items() if not k.startswith("mlm")}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.9, 0.98), eps=1e-9)
    with torch.no_grad():
        before = model.eval().loss(batch)[1].item()
    model.train()
    for _ in range(15):
        opt.zero_grad()
        model.loss(batch, ranking_weight=2.0)[0].backward()
        opt.step()
    with torch.no_grad():
        after = model.eval().loss(batch)[1].item()
    assert after < 0.8 * before


def test_cpu_bf16_autocast_close_to_float32():
    for model, batch in ((small_model1(), None), (small_model2(), model2_batch())):
        batch = batch if batch is not None else model1_batch(model.config)
        batch = {k: v for k, v in batch.items() if not k.startswith("mlm")}
        model.eval()
        with torch.no_grad():
            want = model.loss(batch)[1]
            with torch.autocast("cpu", dtype=torch.bfloat16):
                got = model.loss(batch)[1]
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want, atol=0.02, rtol=0.02)
        model.train()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model.loss(batch, ranking_weight=2.0)[0]
        loss.backward()
        assert all(p.grad is None or (p.grad.dtype == p.dtype and torch.isfinite(p.grad).all())
                   for p in model.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_autocast_close_to_float32():
    for model, batch in ((small_model1(), None), (small_model2(), model2_batch())):
        batch = batch if batch is not None else model1_batch(model.config)
        batch = {k: v.cuda() for k, v in batch.items() if not k.startswith("mlm")}
        model = model.cuda().eval()
        with torch.no_grad():
            want = model.loss(batch)[1]
            with torch.autocast("cuda", dtype=torch.bfloat16):
                got = model.loss(batch)[1]
        torch.testing.assert_close(got, want, atol=0.02, rtol=0.02)
        model.train()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            model.loss(batch, ranking_weight=2.0)[0].backward()
        assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


# ---------------------------------------------------------------------------------------------------------------------
# Question batches, routing, configs
# ---------------------------------------------------------------------------------------------------------------------

def questions(songs, tags, artists, titles) -> Playlists:
    n = len(songs)
    return Playlists(np.arange(n), np.full(n, 20200101, np.int32), CSR.from_lists(songs), CSR.from_lists(tags),
                     CSR.from_lists(artists), CSR.from_lists(titles))


def test_question_batches_and_routing():
    m1, m2 = small_model1(), small_model2()
    c = m1.config
    q = questions(songs=[list(range(120)), [], [7]], tags=[[S + 1], [], [S + 2, S + 3]],
                  artists=[list(range(S + T, S + T + A)) * 12, [], [S + T]], titles=[[10] * 70, [], [11, 12]])
    assert m1.accepts(q).tolist() == [True, False, True]
    assert m2.accepts(q).tolist() == [True, False, True]

    ids = m1.question_batch(q, np.array([0, 2]))["ids"]
    cls = [c.songs_cls, c.tags_cls, c.artists_cls]
    assert ids.dtype == torch.long and ids.shape == (2, c.max_len)  # row 0 has 3 + 100 + 1 + 180 > 280 items
    assert ids[0].tolist() == cls + list(range(100)) + [S + 1] + (list(range(S + T, S + T + A)) * 12)[:176]
    assert ids[1].tolist() == cls + [7, S + 2, S + 3, S + T] + [c.pad] * (c.max_len - 7)

    ids = m2.question_batch(q, np.array([2, 0]))["ids"]
    assert ids.shape == (2, 13)
    assert ids[0].tolist() == [3, 4, 11, 12, 5] + [7] * 8
    assert ids[1].tolist() == [3, 4] + [10] * 10 + [5]
    for m in (m1, m2):
        with torch.no_grad():
            assert [x.shape for x in m.eval().scores(m.question_batch(q, np.array([0, 2])))] == [(2, S), (2, T)]


def test_configs_from_dumps_and_rebuild():
    dumps = SimpleNamespace(meta={"vocab": {"n_songs": S, "n_tags": T, "n_artists": A, "size": S + T + A + 5},
                                  "sentencepiece": {"vocab_size": PIECES}})
    c1 = SongsTagsArtistsConfig.from_dumps(dumps, d_model=16, d_ff=64)
    assert (c1.n_songs, c1.n_tags, c1.n_artists, c1.d_model) == (S, T, A, 16)
    assert (c1.songs_cls, c1.tags_cls, c1.artists_cls, c1.pad) == (S + T + A, S + T + A + 1, S + T + A + 2,
                                                                   S + T + A + 3)
    c2 = PlylstTitleConfig.from_dumps(dumps, d_model=12, d_ff=48)
    assert (c2.n_songs, c2.n_tags, c2.n_pieces, c2.max_len) == (S, T, PIECES, 53)
    for config in (c1, c2):
        cls = next(m for m in MODELS.values() if m.config_class is type(config))
        model = cls(config)
        assert model.config_dict() == dataclasses.asdict(config)
        rebuilt = MODELS[model.name](cls.config_class(**model.config_dict()))
        rebuilt.load_state_dict(model.state_dict())
        assert type(rebuilt)(rebuilt.config).config == config
    assert set(MODELS) == {"songs_tags_artists", "plylst_title"}
