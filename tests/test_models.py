"""Tests for models/: the two BERT-style models and their shared layers and losses.

Covers: output shapes; the exact architecture against a reference forward written from docs/original.md 2.2 and 3.2 that
shares nothing with models/ (its own LayerNorm with epsilon 1e-12, tanh-GELU and ReLU formulas, attention with the
original's -1e9 masking, reading only the parameter tensors), in float64 and with perturbed LayerNorm gains and
biases so that an exact GELU, a ReLU/GELU swap or a LayerNorm epsilon of 1e-5 shows; full training steps of both
models (model 1, model 2 fine-tuning with its table dropout scaled 1/(1-p), model 2 MLM) against plain autograd of
that reference with a fixed table-dropout mask and losses written with torch's own BCE and a double argsort; the
custom autograd functions (gradcheck); padding invariance; order invariance of model 1; parameter counts at the real
sizes; the losses against hand computations with dense targets; under bf16 autocast, scores and the ranking term's
top 100 from the heads in float32 (bf16 logits tie), in float32 unchanged bit for bit; table dropout on in train mode
and off in eval; a few Adam steps lowering each loss; question batches, routing, the configs' original defaults and
a rebuild through JSON; bf16 autocast against float32 element by element (logits and every gradient; CPU, and
CUDA when present). Tiny sizes, CPU, seconds. Run: python -m pytest tests/test_models.py -q
"""
import json
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
from trainer.checkpoint import build_model

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
# A reference of the original's forward pass written from docs/original.md 2.2 / 3.2 that shares nothing with models/:
# its own LayerNorm (eps 1e-12), tanh-GELU and ReLU formulas and attention with the original's masking, reading only
# the models' parameter tensors (by state_dict name). No pruning, no custom autograd, every position computed.
# ---------------------------------------------------------------------------------------------------------------------

def ref_layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """tf.contrib.layers.layer_norm over the last dimension: biased variance, epsilon 1e-12."""
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-12) * w + b


def ref_gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def ref_relu(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x > 0, x, torch.zeros_like(x))


def ref_encoder(p: dict[str, torch.Tensor], emb: torch.Tensor, mask: torch.Tensor, n_heads: int, act) -> torch.Tensor:
    """x = LN(emb); per layer: h = LN(x + mask * MHA(x)); x = LN(h + mask * FFN(h)) (dropout off). MHA: bias-free
    projections, scores q.k / sqrt(d / heads) zeroed outside outer(mask, mask), then 1e9 subtracted there.
    p: the model's parameters by name; emb [B, L, d] (zero at pads), mask bool [B, L] -> [B, L, d]."""
    B, L, d = emb.shape
    dh = d // n_heads
    m = mask[..., None].to(emb.dtype)
    pair = (mask[:, None, :, None] & mask[:, None, None, :]).to(emb.dtype)  # [B, 1, L, L]
    x = ref_layer_norm(emb, p["encoder.ln_emb.weight"], p["encoder.ln_emb.bias"])
    n_layers = sum(name.endswith(".ln_attn.weight") for name in p)
    for i in range(n_layers):
        w = {name[len(f"encoder.layers.{i}."):]: t for name, t in p.items() if name.startswith(f"encoder.layers.{i}.")}
        q, k, v = ((x @ w[f"attn.{n}.weight"].T).view(B, L, n_heads, dh).transpose(1, 2) for n in "qkv")
        scores = (q @ k.transpose(-1, -2) / math.sqrt(dh)) * pair - 1e9 * (1 - pair)  # [B, heads, L, L]
        attn = (torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(B, L, d) @ w["attn.o.weight"].T
        h = ref_layer_norm(x + attn * m, w["ln_attn.weight"], w["ln_attn.bias"])
        ffn = act(h @ w["ffn.up.weight"].T + w["ffn.up.bias"]) @ w["ffn.down.weight"].T + w["ffn.down.bias"]
        x = ref_layer_norm(h + ffn * m, w["ln_ffn.weight"], w["ln_ffn.bias"])
    return x


def reference_model1_logits(model: SongsTagsArtistsModel, ids: torch.Tensor, table: torch.Tensor):
    """docs/original.md 2.2: songs / tags / artists logits from the cls positions 0 / 1 / 2 against the (dropped) table."""
    c, p = model.config, dict(model.named_parameters())
    mask = ids != c.pad
    emb = table[ids] * math.sqrt(c.d_model) * mask[..., None]
    h = ref_encoder(p, emb, mask, c.n_heads, ref_gelu_tanh)
    S_, T_ = c.n_songs, c.n_tags
    return (h[:, 0] @ table[:S_].T + p["song_bias"], h[:, 1] @ table[S_ : S_ + T_].T + p["tag_bias"],
            h[:, 2] @ table[S_ + T_ : S_ + T_ + c.n_artists].T + p["artist_bias"])


def reference_model2_hidden(model: PlylstTitleModel, ids: torch.Tensor) -> torch.Tensor:
    """docs/original.md 3.2: (BPE embedding * sqrt(d) + position embedding) * pad mask -> the ReLU encoder, [B, L, d]."""
    c, p = model.config, dict(model.named_parameters())
    mask = ids != 7  # @pad
    emb = (p["bpe_embedding"][ids] * math.sqrt(c.d_model) + p["position_embedding"][: ids.shape[1]]) * mask[..., None]
    return ref_encoder(p, emb, mask, c.n_heads, ref_relu)


def reference_model2_logits(model: PlylstTitleModel, ids: torch.Tensor, table: torch.Tensor):
    """Songs from the songs_cls output, tags from the tags_cls output, against the (dropped) [S+T, d] table."""
    p, S_ = dict(model.named_parameters()), model.config.n_songs
    h = reference_model2_hidden(model, ids)
    return h[:, 0] @ table[:S_].T + p["song_bias"], h[:, 1] @ table[S_:].T + p["tag_bias"]


def perturbed(model):
    """Random LayerNorm gains and biases, FFN and output biases (all 1 / 0 at init), so that mixing them up shows."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, t in model.named_parameters():
            if name.endswith(".bias") or name.endswith("_bias"):
                t.copy_(0.3 * torch.randn(t.shape, generator=g))
            elif ".ln_" in name and name.endswith(".weight"):
                t.copy_(1 + 0.3 * torch.randn(t.shape, generator=g))
    return model


def dense(targets: torch.Tensor, B: int, V: int) -> torch.Tensor:
    y = torch.zeros(B, V)
    y[targets[0], targets[1]] = 1.0
    return y


def reference_loss(logits, targets, weights, ranking: float = 0.0):
    """docs/original.md 2.3: sum of weight * mean BCE over batch x vocabulary of each head, plus ranking * the top-100
    term of the song head (torch's BCE with dense targets and a double-argsort ranking: nothing from models/)."""
    loss = sum(w * F.binary_cross_entropy_with_logits(x, dense(t, *x.shape)) for x, t, w in zip(logits, targets, weights))
    return loss + ranking * hand_ranking(logits[0], dense(targets[0], *logits[0].shape)) if ranking else loss


@pytest.mark.parametrize("n_layers", [1, 2])
def test_model1_matches_reference_forward(n_layers):
    """In float64, so that a tanh-GELU swapped for the exact one or a LayerNorm epsilon of 1e-5 shows (both ~1e-5)."""
    model = perturbed(small_model1(n_layers=n_layers).double()).eval()
    ids = model1_batch(model.config)["ids"]
    with torch.no_grad():
        got = model(ids, n_logits=3)
        want = reference_model1_logits(model, ids, model.embedding)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-10, rtol=1e-9)


def test_model2_matches_reference_forward():
    model = perturbed(small_model2().double()).eval()
    batch = model2_batch()
    with torch.no_grad():
        songs, tags = model.scores({"ids": batch["ids"]})
        want_songs, want_tags = reference_model2_logits(model, batch["ids"], model.output_table)
        torch.testing.assert_close(songs, want_songs, atol=1e-10, rtol=1e-9)
        torch.testing.assert_close(tags, want_tags, atol=1e-10, rtol=1e-9)
        rows, cols = batch["mlm_positions"]
        mlm = reference_model2_hidden(model, batch["ids"])[rows, cols] @ model.bpe_embedding.T  # tied, no bias
        torch.testing.assert_close(model.mlm_logits(batch), mlm, atol=1e-10, rtol=1e-9)


def fixed_table_mask(monkeypatch, model) -> torch.Tensor:
    """The table-dropout keep mask (p = 0.1), drawn once and returned by every keep_mask call (other dropouts 0)."""
    table = model.embedding if isinstance(model, SongsTagsArtistsModel) else model.output_table
    fixed = keep_mask(tuple(table.shape), 0.1, torch.device("cpu"), torch.float32)
    monkeypatch.setattr(layers, "keep_mask", lambda *a, **k: fixed)
    return fixed


def compare_step(model, loss: torch.Tensor, reference: torch.Tensor) -> dict[str, torch.Tensor]:
    """loss.backward() against reference.backward() on the same parameters: equal loss and gradients."""
    loss.backward()
    got = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    reference.backward()
    torch.testing.assert_close(loss, reference, atol=1e-6, rtol=1e-5)
    want = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert got.keys() == want.keys()
    for n in got:
        torch.testing.assert_close(got[n], want[n], atol=1e-7, rtol=1e-4, msg=lambda m: f"{n}: {m}")
    return got


def test_training_step_matches_plain_autograd_with_fixed_mask(monkeypatch):
    """Model 1: the custom table-dropout and head functions give the loss and gradients of the plain formula
    E_d = E * mask / 0.9 used for both the lookup and the tied heads (other dropouts off)."""
    model = perturbed(small_model1(dropout=0.0)).train()
    batch = model1_batch(model.config)
    fixed = fixed_table_mask(monkeypatch, model)
    loss, _ = model.loss(batch, ranking_weight=2.0)
    logits = reference_model1_logits(model, batch["ids"], model.embedding * fixed / 0.9)
    ref = reference_loss(logits, [batch[k] for k in ("song_targets", "tag_targets", "artist_targets")],
                         (1.0, 0.15, 0.15), ranking=2.0)
    got = compare_step(model, loss, ref)
    assert got["embedding"][model.config.pad].abs().sum() == 0  # pad rows are multiplied by the mask: no gradient


def test_model2_finetune_step_matches_plain_autograd_with_fixed_mask(monkeypatch):
    """Model 2 fine-tuning: the output table dropped as table * mask / 0.9 (one mask per step), songs and tags from
    the two cls outputs, BCE means + 0.15 tags + 2 * ranking; no gradient reaches the BPE rows of unused pieces."""
    model = perturbed(small_model2(dropout=0.0)).train()
    batch = {k: v for k, v in model2_batch().items() if not k.startswith("mlm")}
    fixed = fixed_table_mask(monkeypatch, model)
    loss, _ = model.loss(batch, ranking_weight=2.0)
    logits = reference_model2_logits(model, batch["ids"], model.output_table * fixed / 0.9)
    ref = reference_loss(logits, [batch["song_targets"], batch["tag_targets"]], (1.0, 0.15), ranking=2.0)
    got = compare_step(model, loss, ref)
    unused = sorted(set(range(PIECES)) - set(batch["ids"].flatten().tolist()))
    assert got["bpe_embedding"][unused].abs().sum() == 0


def test_model2_mlm_step_matches_plain_autograd():
    """Stage A: softmax cross-entropy of the masked positions against 0.9 + 0.1/V on the true piece and 0.1/V
    elsewhere, logits = hidden @ BPE table^T (tied, no bias); the song/tag heads get no gradient."""
    model = perturbed(small_model2(dropout=0.0)).train()
    batch = model2_batch()
    loss, plain = model.loss(batch)
    rows, cols = batch["mlm_positions"]
    logp = torch.log_softmax(reference_model2_hidden(model, batch["ids"])[rows, cols] @ model.bpe_embedding.T, -1)
    target = torch.full_like(logp, 0.1 / PIECES)
    target[torch.arange(len(rows)), batch["mlm_labels"]] += 0.9
    got = compare_step(model, loss, -(target * logp).sum(-1).mean())
    assert plain == loss.detach()
    assert "output_table" not in got and "song_bias" not in got


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




def ranked_term(logits: torch.Tensor, y: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
    """The ranking term over the given top items `top` [B, k] of each row, p from `logits`."""
    x = logits.float()
    p, yk = torch.sigmoid(x.gather(1, top)), y.gather(1, top)
    return torch.where(yk > 0, -torch.log(p + 1e-10), -torch.log(1 - p + 1e-10)).sum() / x.numel()


def test_ranking_term_in_float32_keeps_torch_topk_bit_for_bit():
    """In float32 the term ranks the logits it is given with torch.topk, bit for bit (no other ranking applies)."""
    torch.manual_seed(0)
    logits = torch.randn(6, 700) * 3
    targets = coo([list(range(r, 700, 4 + r)) for r in range(6)])
    want = ranked_term(logits, dense(targets, 6, 700), torch.topk(logits, 100, dim=1).indices)
    assert torch.equal(top100_ranking_term(logits, targets), want)



def bf16_case(make):
    """A model in eval mode with song biases 3 (p near 0.95: a positive's and a negative's terms differ widely) and
    its batch (model 2: fine-tuning)."""
    model = make().eval()
    with torch.no_grad():
        model.song_bias.fill_(3.0)
    batch = model1_batch(model.config) if make is small_model1 else \
        {k: v for k, v in model2_batch().items() if not k.startswith("mlm")}
    return model, batch


def autocast_logits(model, batch):
    """One forward under CPU bf16 autocast: its song and tag logits (bf16), and the same two heads computed here in
    float32 from the encoder's cls outputs of that forward (eval mode: the table undropped)."""
    outputs = []
    hook = model.encoder.register_forward_hook(lambda module, args, out: outputs.append(out))
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(batch["ids"])[:2]
        hook.remove()
        h = outputs[0].float()
        table = model.embedding if isinstance(model, SongsTagsArtistsModel) else model.output_table
        float32 = (h[:, 0] @ table[:S].T + model.song_bias, h[:, 1] @ table[S : S + T].T + model.tag_bias)
    return logits, float32


@pytest.mark.parametrize("make", [small_model1, small_model2])
def test_scores_under_bf16_autocast_are_float32_logits(make):
    """Under bf16 autocast (--amp; on the CPU here) the heads' logits are bf16, with ties in every row's top 100;
    scores (what validation and the ensemble rank) are the heads in float32 from the same cls outputs: no ties, and
    the float32 model's logits up to the bf16 encoder's error. In float32 scores are the forward's logits, bit for
    bit."""
    model, batch = bf16_case(make)
    with torch.no_grad():
        want = model.scores(batch)
        forward = model(batch["ids"], n_logits=2) if make is small_model1 else model(batch["ids"])
        assert all(torch.equal(a, b) for a, b in zip(want, forward))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = model.scores(batch)
    bf16, float32 = autocast_logits(model, batch)
    for k in range(2):  # songs, tags
        assert bf16[k].dtype == torch.bfloat16 and got[k].dtype == torch.float32
        torch.testing.assert_close(got[k], float32[k], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got[k], want[k], atol=0.02 * float(want[k].abs().max()), rtol=0.02)
    assert all(len(row.unique()) < 90 for row in torch.topk(bf16[0].float(), 100, dim=1).values)
    assert all(len(row.unique()) == 100 for row in torch.topk(got[0], 100, dim=1).values)


@pytest.mark.parametrize("make", [small_model1, small_model2])
def test_ranking_term_under_bf16_autocast_ranks_the_float32_logits(make):
    """Under bf16 autocast the term's top 100 is that of the song head in float32 (from the same forward's cls
    output), p from the bf16 logits. The songs that a ranking of the bf16 logits could pick (at or above the 100th
    bf16 value) but the float32 ranking leaves out are made positives: any ranking of the bf16 logits (torch.topk's
    among equal values, or any tie rule) counts some of them, and the term changes."""
    model, batch = bf16_case(make)
    (songs, _), (float32, _) = autocast_logits(model, batch)
    top = torch.topk(float32, 100, dim=1).indices
    x = songs.float()
    eligible = x >= torch.sort(x, dim=1, descending=True).values[:, 99:100]
    left_out = eligible & ~torch.zeros_like(eligible).scatter_(1, top, True)
    assert left_out.any()  # the bf16 logits cannot tell which songs are the float32 top 100
    targets = torch.cat([batch["song_targets"], torch.stack(torch.where(left_out))], 1)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        total, plain = model.loss(batch | {"song_targets": targets}, ranking_weight=2.0)
    want = ranked_term(songs, dense(targets, 3, S), top)
    torch.testing.assert_close(total, plain + 2.0 * want, rtol=1e-6, atol=0)

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


def check_bf16_against_float32(model, batch: dict[str, torch.Tensor], device: torch.device, monkeypatch) -> None:
    """One training step (fixed table-dropout mask, other dropouts off) in float32 and under bf16 autocast:
    logits close element by element (bf16 keeps ~3 significant digits), the loss float32 and close, and every
    gradient float32, close element by element relative to its tensor's scale, and pointing the same way.
    The ranking term's top 100 is a choice: two songs at the 100th place closer in float32 than the bf16 forward's
    error may come in either order from it, whatever the ranking, and the song that counts gets a gradient several
    times the other's. So the float32 step ranks the songs as the bf16 step does (by its float32 song logits,
    scores under autocast), and the two are compared on the same choice."""
    model = perturbed(model).to(device).train()
    batch = {k: v.to(device) for k, v in batch.items() if not k.startswith("mlm")}
    table = model.embedding if isinstance(model, SongsTagsArtistsModel) else model.output_table
    fixed = keep_mask(tuple(table.shape), 0.1, torch.device("cpu"), torch.float32).to(device)
    monkeypatch.setattr(layers, "keep_mask", lambda shape, p, dev, dtype, generator=None: fixed.to(dtype))
    runs = {}
    for bf16 in (True, False):
        model.zero_grad()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = [x.detach().float() for x in model(batch["ids"])]
            if bf16:
                with torch.no_grad():
                    ranked = model.scores(batch)[0]
                loss = model.loss(batch, ranking_weight=2.0)[0]
            else:
                loss = model.loss(batch)[0] + 2.0 * top100_ranking_term(model(batch["ids"])[0], batch["song_targets"],
                                                                        rank_by=ranked)
        loss.backward()
        runs[bf16] = (logits, loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                                              if p.grad is not None})
    (want_logits, want_loss, want_grads), (got_logits, got_loss, got_grads) = runs[False], runs[True]
    for got, want in zip(got_logits, want_logits):
        torch.testing.assert_close(got, want, atol=0.02 * float(want.abs().max()), rtol=0.02)
    assert got_loss.dtype == torch.float32
    torch.testing.assert_close(got_loss, want_loss, atol=5e-3, rtol=2e-3)
    assert got_grads.keys() == want_grads.keys()
    for n, want in want_grads.items():
        got = got_grads[n]
        assert got.dtype == torch.float32, n
        torch.testing.assert_close(got, want, atol=0.1 * float(want.abs().max()), rtol=0.1, msg=lambda m: f"{n}: {m}")
        assert F.cosine_similarity(got.flatten(), want.flatten(), 0) > 0.998, n
        assert abs(float(got.norm() / want.norm()) - 1) < 0.05, n


@pytest.mark.parametrize("make", [small_model1, small_model2])
def test_cpu_bf16_autocast_close_to_float32(make, monkeypatch):
    model = make(dropout=0.0)
    batch = model1_batch(model.config) if isinstance(model, SongsTagsArtistsModel) else model2_batch()
    check_bf16_against_float32(model, batch, torch.device("cpu"), monkeypatch)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("make", [small_model1, small_model2])
def test_cuda_bf16_autocast_close_to_float32(make, monkeypatch):
    model = make(dropout=0.0)
    batch = model1_batch(model.config) if isinstance(model, SongsTagsArtistsModel) else model2_batch()
    check_bf16_against_float32(model, batch, torch.device("cuda"), monkeypatch)


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
    assert (c1.n_songs, c1.n_tags, c1.n_artists, c1.d_model, c1.d_ff) == (S, T, A, 16, 64)
    assert (c1.songs_cls, c1.tags_cls, c1.artists_cls, c1.pad) == (S + T + A, S + T + A + 1, S + T + A + 2,
                                                                   S + T + A + 3)
    c2 = PlylstTitleConfig.from_dumps(dumps, d_model=12, d_ff=48)
    assert (c2.n_songs, c2.n_tags, c2.n_pieces, c2.max_len) == (S, T, PIECES, 53)
    # the defaults are the original's (docs/original.md 2.1-2.3, 3.1-3.3)
    d1, d2 = SongsTagsArtistsConfig(S, T, A), PlylstTitleConfig(S, T, PIECES)
    assert (d1.d_model, d1.n_layers, d1.n_heads, d1.d_ff, d1.dropout, d1.table_dropout, d1.max_len, d1.max_songs,
            d1.tags_loss_weight, d1.artists_loss_weight) == (240, 1, 2, 960, 0.1, 0.1, 280, 100, 0.15, 0.15)
    assert (d2.d_model, d2.n_layers, d2.n_heads, d2.d_ff, d2.dropout, d2.table_dropout, d2.max_pieces,
            d2.tags_loss_weight, d2.label_smoothing) == (132, 2, 2, 528, 0.1, 0.1, 50, 0.15, 0.1)
    # a model rebuilt from its config as a checkpoint stores it (config.json: through JSON) scores the same
    for model, batch in ((small_model1(), model1_batch(c1)), (small_model2(), model2_batch())):
        rebuilt = build_model(model.name, json.loads(json.dumps(model.config_dict())))
        assert type(rebuilt) is type(model) and rebuilt.config == model.config
        rebuilt.load_state_dict(model.state_dict())
        with torch.no_grad():
            for a, b in zip(model.eval().scores(batch), rebuilt.eval().scores(batch)):
                assert torch.equal(a, b)
    assert set(MODELS) == {"songs_tags_artists", "plylst_title"}
