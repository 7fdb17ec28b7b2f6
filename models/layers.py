"""Building blocks shared by both models (docs/original.md 2.2 and 3.2) and their losses (docs/original.md 2.3).

The original writes its block as x = LN(x); h = x + Drop(MHA(x)); h = LN(h); x = h + Drop(FFN(h)); final LN.
Because the residual adds the *normalised* tensor this is a post-norm Transformer with an extra LayerNorm on the
embeddings, which is how it is built here: Encoder = LN(embeddings) -> post-norm EncoderLayers (2L+1 LayerNorms).

Speed notes (the output heads over ~10^5 items dominate a step; everything else is kept to a few passes):
- TableDropout draws one keep-mask per forward and returns the masked table *unscaled* together with 1/(1-p);
  callers fold that factor into their small operand (the [B, d] queries, the looked-up rows), saving a pass over
  the [V, d] table. Its backward folds the lookup's gradient into the table gradient in one pass.
- segment_logits computes several heads over row ranges of one table and writes their table gradient straight into
  one [V, d] buffer (autograd would build a zero-filled [V, d] tensor per slice and add them up).
- The last encoder layer can compute only its first `n_out` positions: the heads read nothing else.
- On the CPU, dropout masks come from numpy (keep_mask), several times faster than torch's serial generator.
- The BCE loss has a hand-written backward: no zero-filled [B, V] gradient for the positives' gather and no
  sum of two [B, V] gradients, as autograd would make.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LN_EPS = 1e-12  # tf.contrib.layers.layer_norm's epsilon
ACTIVATIONS = {"gelu_tanh": lambda x: F.gelu(x, approximate="tanh"), "relu": F.relu}


def compute_dtype(t: torch.Tensor) -> torch.dtype:
    """The dtype matmuls on `t`'s device run in: the autocast dtype inside an autocast region, else t.dtype."""
    dev = t.device.type
    return torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else t.dtype


# ---------------------------------------------------------------------------------------------------------------------
# Table dropout and tied heads
# ---------------------------------------------------------------------------------------------------------------------

MASK_CHUNK = 1 << 19  # mask elements drawn per numpy call: the random words stay in cache until compared


def keep_mask(shape: tuple[int, ...], p: float, device: torch.device, dtype: torch.dtype,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """`dtype` tensor of 0/1, each element 1 with probability 1-p independently (a float mask multiplies ~2x
    faster than a bool one on the CPU).

    On the CPU torch's generator is serial (~0.5 s for a [184k, 240] table); numpy's SFC64 makes the same
    32-bit uniform draws several times faster. Its seed comes from torch's generator (`generator`, default the
    global one), so torch.manual_seed still fixes the masks. Element i is dropped iff its 32-bit word, read as
    int32, is below INT32_MIN + round(p * 2^32), so the drop rate is p to within 2^-33.
    """
    if device.type != "cpu":
        return torch.empty(shape, device=device, dtype=dtype).bernoulli_(1.0 - p, generator=generator)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
    threshold = -(2**31) + round(p * 2**32)
    out = torch.empty(shape, dtype=torch.float32)  # float32 so numpy can write it (it has no bfloat16)
    flat = out.view(-1).numpy()  # shares out's memory
    for i, a in enumerate(range(0, flat.size, MASK_CHUNK)):
        b = min(a + MASK_CHUNK, flat.size)
        # chunk i has its own stream, seeded (seed, i); each uint64 word holds two 32-bit draws
        words = np.random.Generator(np.random.SFC64([seed, i])).bit_generator.random_raw((b - a + 1) // 2)  # uint64
        # the bool comparison is written straight into the float32 mask as 0.0 / 1.0
        np.greater_equal(words.view(np.int32)[: b - a], threshold, out=flat[a:b], casting="unsafe")
    return out.to(dtype)


class Dropout(nn.Module):
    """nn.Dropout with keep_mask's masks on the CPU, where torch's own dropout is ~5-10x slower."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        return x * keep_mask(tuple(x.shape), self.p, x.device, x.dtype).mul_(1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class _MaskedTable(torch.autograd.Function):
    """(table * keep, (table * keep)[ids]) with one backward that scatters the rows' gradient into the table's."""

    @staticmethod
    def forward(ctx, table: torch.Tensor, keep: torch.Tensor, ids: torch.Tensor):
        ctx.set_materialize_grads(False)  # an unused output's gradient arrives as None, not as a [V, d] of zeros
        masked = table * keep
        ctx.save_for_backward(keep, ids)
        return masked, masked.index_select(0, ids)

    @staticmethod
    def backward(ctx, g_masked: torch.Tensor | None, g_rows: torch.Tensor | None):
        keep, ids = ctx.saved_tensors
        # d(table * keep) / d table = keep, for the whole table and for the looked-up rows alike
        grad = g_masked * keep if g_masked is not None else torch.zeros_like(keep)
        if g_rows is not None and ids.numel():
            # index_put_ with accumulate sums repeated ids (every cls token) and is ~3x faster than index_add_
            grad.index_put_((ids,), g_rows * keep.index_select(0, ids), accumulate=True)
        return grad, None, None


class TableDropout(nn.Module):
    """Element-wise dropout over a whole embedding table, one mask per forward (the original's table dropout).

    forward(table [V, d], ids long [...] or None) -> (masked [V, d], rows [..., d] or None, scale):
    the dropped table is masked * scale and its rows at `ids` are rows * scale, with scale = 1/(1-p) in training
    and 1 in eval. The scale is left to the caller so that it multiplies a small tensor, not the [V, d] table.
    The masks come from torch's global generator, or after `seed_masks(s)` from a generator of their own seeded
    with s (distributed training draws the same mask on every rank that way).
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self._mask_seed: int | None = None
        self._generator: torch.Generator | None = None

    def seed_masks(self, seed: int | None) -> None:
        """Draw the next masks from a generator seeded with `seed`; None: from torch's global generator again."""
        self._mask_seed, self._generator = seed, None

    def _mask_generator(self, device: torch.device) -> torch.Generator | None:
        if self._mask_seed is not None and (self._generator is None or self._generator.device != device):
            self._generator = torch.Generator(device).manual_seed(self._mask_seed)
        return self._generator

    def forward(self, table: torch.Tensor, ids: torch.Tensor | None = None):
        if not self.training or self.p == 0:
            return table, (F.embedding(ids, table) if ids is not None else None), 1.0
        # autograd.Function takes tensors only: "no lookup" is an empty id list
        flat = ids.reshape(-1) if ids is not None else table.new_zeros(0, dtype=torch.long)
        keep = keep_mask(tuple(table.shape), self.p, table.device, table.dtype,
                         generator=self._mask_generator(table.device))
        masked, rows = _MaskedTable.apply(table, keep, flat)
        return masked, (rows.view(*ids.shape, table.shape[1]) if ids is not None else None), 1.0 / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class _SegmentLogits(torch.autograd.Function):
    """logits_k = queries[:, k] @ table[lo_k:hi_k].T + bias_k for each segment k; see segment_logits."""

    @staticmethod
    def forward(ctx, table: torch.Tensor, queries: torch.Tensor, bounds: tuple[tuple[int, int], ...], *biases):
        ctx.set_materialize_grads(False)  # a head left out of the loss gets None: its backward matmuls are skipped
        dtype = compute_dtype(table)
        # loss.backward() runs outside the autocast region: keep the compute dtype for it, and the table's dtype
        # for the table's gradient
        ctx.bounds, ctx.dtype, ctx.table_dtype = bounds, dtype, table.dtype
        ctx.save_for_backward(table, queries)
        # autocast off and explicit casts, so that forward and the hand-written backward compute in one dtype
        with torch.autocast(table.device.type, enabled=False):
            q = queries.to(dtype)
            return tuple(torch.addmm(b.to(dtype), q[:, k], table[lo:hi].to(dtype).T)
                         for k, ((lo, hi), b) in enumerate(zip(bounds, biases)))

    @staticmethod
    def backward(ctx, *grads: torch.Tensor | None):
        table, queries = ctx.saved_tensors
        dtype = ctx.dtype
        grad_table = table.new_empty(table.shape, dtype=dtype)  # each row is written once below, zeros included
        grad_q = torch.zeros_like(queries, dtype=dtype)  # [B, K, d]; small, and a skipped head leaves zeros
        grad_b = []
        covered = 0  # rows outside every segment (the specials) get zero gradient
        with torch.autocast(table.device.type, enabled=False):
            q = queries.to(dtype)
            for k, ((lo, hi), g) in enumerate(zip(ctx.bounds, grads)):
                grad_table[covered:lo].zero_()
                covered = hi
                if g is None:
                    grad_table[lo:hi].zero_()
                    grad_b.append(None)
                    continue
                g = g.to(dtype)
                torch.mm(g.T, q[:, k], out=grad_table[lo:hi])  # [hi-lo, d]
                grad_q[:, k] = g @ table[lo:hi].to(dtype)  # [B, d]
                grad_b.append(g.sum(0, dtype=torch.float32))  # the biases are float32 parameters
            grad_table[covered:].zero_()
        return (grad_table.to(ctx.table_dtype), grad_q.to(queries.dtype), None, *grad_b)


def segment_logits(table: torch.Tensor, queries: torch.Tensor, bounds: list[tuple[int, int]],
                   biases: list[torch.Tensor]) -> list[torch.Tensor]:
    """Tied output heads over row ranges of one table.

    Args:
        table: [V, d] (possibly masked) output table; segment k uses rows bounds[k] = (lo, hi), ascending,
            non-overlapping.
        queries: [B, K, d] query vector of each segment (the hidden state at that cls position).
        biases: K bias vectors, bias k of shape [hi_k - lo_k].
    Returns:
        K logit tensors [B, hi_k - lo_k] (in the autocast dtype inside an autocast region).
    """
    return list(_SegmentLogits.apply(table, queries, tuple(bounds), *biases))


def float32_logits(table: torch.Tensor, queries: torch.Tensor, bounds: list[tuple[int, int]],
                   biases: list[torch.Tensor]) -> list[torch.Tensor]:
    """segment_logits' logits computed in float32, autocast off, without gradient: what the models rank by under
    bf16 autocast (--amp), where segment_logits returns bf16 logits. bf16 keeps 8 significant bits, so a row's
    ~10^5 logits take far fewer values and its top 100 holds groups of equal logits, whose order (and, at the
    100th place, whose membership) would be arbitrary; casting bf16 logits to float32 leaves them equal.
    Same arguments as segment_logits; returns K float32 tensors [B, hi_k - lo_k]."""
    with torch.no_grad(), torch.autocast(table.device.type, enabled=False):
        q = queries.float()
        return [torch.addmm(b.float(), q[:, k], table[lo:hi].float().T)
                for k, ((lo, hi), b) in enumerate(zip(bounds, biases))]


def ranking_logits(table: torch.Tensor, queries: torch.Tensor, bounds: list[tuple[int, int]],
                   biases: list[torch.Tensor]) -> list[torch.Tensor]:
    """The logits to rank by: segment_logits' own, or float32_logits' where autocast lowers the table's precision
    (bf16 autocast over float32 parameters)."""
    if compute_dtype(table) == table.dtype:
        return segment_logits(table, queries, bounds, biases)
    return float32_logits(table, queries, bounds, biases)


# ---------------------------------------------------------------------------------------------------------------------
# Transformer encoder
# ---------------------------------------------------------------------------------------------------------------------

def _glorot_linear(d_in: int, d_out: int, bias: bool) -> nn.Linear:
    """nn.Linear with TF's defaults: glorot-uniform kernel, zero bias."""
    layer = nn.Linear(d_in, d_out, bias=bias)
    nn.init.xavier_uniform_(layer.weight)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


class MultiHeadAttention(nn.Module):
    """Bias-free Q/K/V/O projections, softmax(QK^T / sqrt(d/h)) with padded keys masked, dropout on the weights."""

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        assert d_model % n_heads == 0, f"d_model {d_model} not divisible by n_heads {n_heads}"
        self.n_heads, self.dropout = n_heads, dropout
        self.q, self.k, self.v, self.o = (_glorot_linear(d_model, d_model, bias=False) for _ in range(4))

    def forward(self, xq: torch.Tensor, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """xq [B, Lq, d] queries, x [B, L, d] keys/values, key_mask bool [B, L] (True = real) -> [B, Lq, d].

        Every row has real keys (its cls tokens), so no softmax row is empty: padded *queries* get finite
        outputs that the layer then zeroes, as the original's outer(mask, mask) masking does.
        """
        B, Lq, d = xq.shape
        h = self.n_heads
        q = self.q(xq).view(B, Lq, h, d // h).transpose(1, 2)  # [B, h, Lq, d/h]
        k = self.k(x).view(B, -1, h, d // h).transpose(1, 2)  # [B, h, L, d/h]
        v = self.v(x).view(B, -1, h, d // h).transpose(1, 2)  # [B, h, L, d/h]
        # boolean attn_mask: True = may attend; [B, 1, 1, L] broadcasts over heads and queries
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :],
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.o(out.transpose(1, 2).reshape(B, Lq, d))  # [B, Lq, d]


class FeedForward(nn.Module):
    """Linear(d, d_ff) -> activation -> Linear(d_ff, d), glorot-uniform kernels, zero biases."""

    def __init__(self, d_model: int, d_ff: int, activation: str):
        super().__init__()
        self.up, self.down = _glorot_linear(d_model, d_ff, bias=True), _glorot_linear(d_ff, d_model, bias=True)
        self.act = ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.up(x)))


class EncoderLayer(nn.Module):
    """Post-norm block: h = LN(x + Drop(mask * MHA(x))); out = LN(h + Drop(mask * FFN(h)))."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, activation: str):
        super().__init__()
        self.attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ffn = FeedForward(d_model, d_ff, activation)
        self.ln_attn = nn.LayerNorm(d_model, eps=LN_EPS)
        self.ln_ffn = nn.LayerNorm(d_model, eps=LN_EPS)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, n_out: int | None = None) -> torch.Tensor:
        """x [B, L, d], mask bool [B, L] -> [B, n_out or L, d]: only the first n_out positions are computed
        (they attend to all L positions), which is exact for a last layer whose other outputs are unused."""
        xq = x if n_out is None else x[:, :n_out]
        m = mask[:, : xq.shape[1], None].to(xq.dtype)  # [B, Lq, 1]
        h = self.ln_attn(xq + self.drop(self.attn(xq, x, mask) * m))
        return self.ln_ffn(h + self.drop(self.ffn(h) * m))


class Encoder(nn.Module):
    """LN(embeddings) followed by n_layers post-norm layers (the original's "pre-norm" block, docs/original.md 2.2)."""

    def __init__(self, d_model: int, n_layers: int, n_heads: int, d_ff: int, dropout: float, activation: str):
        super().__init__()
        self.ln_emb = nn.LayerNorm(d_model, eps=LN_EPS)
        self.layers = nn.ModuleList(EncoderLayer(d_model, n_heads, d_ff, dropout, activation)
                                    for _ in range(n_layers))

    def forward(self, emb: torch.Tensor, mask: torch.Tensor, n_out: int | None = None) -> torch.Tensor:
        """emb [B, L, d] (already zero at pads), mask bool [B, L] -> hidden [B, n_out or L, d]."""
        x = self.ln_emb(emb)
        for i, layer in enumerate(self.layers):
            x = layer(x, mask, n_out if i == len(self.layers) - 1 else None)
        return x


# ---------------------------------------------------------------------------------------------------------------------
# Losses (float32 even under autocast)
# ---------------------------------------------------------------------------------------------------------------------

class _MultiHotBCE(torch.autograd.Function):
    """Mean BCE-with-logits against a sparse multi-hot target; see multi_hot_bce_mean.

    The backward is written out because autograd would fill a [B, V] zero tensor for the gather's gradient and
    add it to softplus's: here it is sigmoid(x) * scale in place, then -scale added at the positives.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(logits, rows, cols)
        return (F.softplus(logits).sum() - logits[rows, cols].sum()) / logits.numel()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        logits, rows, cols = ctx.saved_tensors
        scale = grad / logits.numel()
        g = torch.sigmoid(logits).mul_(scale)  # d softplus(x) / dx = sigmoid(x)
        # accumulate: a positive listed twice was subtracted twice in forward
        g.index_put_((rows, cols), -scale.expand(rows.shape), accumulate=True)
        return g, None, None


def multi_hot_bce_mean(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """mean over [B, V] of BCE-with-logits(logits, y), y the multi-hot of `targets`, without building y.

    BCE(x, y) = softplus(x) - x*y, so the mean is (sum softplus(x) - sum of x at the positives) / (B*V).
    logits [B, V]; targets long [2, P] (row, column) of the positives. Returns a float32 scalar.
    """
    return _MultiHotBCE.apply(logits.float(), targets[0], targets[1])


def top100_ranking_term(logits: torch.Tensor, targets: torch.Tensor, k: int = 100,
                        rank_by: torch.Tensor | None = None) -> torch.Tensor:
    """The original's ranking loss (docs/original.md 2.3): over each row's top-k items by p = sigmoid(logits),
    positives add -log(p + 1e-10) and negatives -log(1 - p + 1e-10); the sum is divided by B*V.

    The ranking comes from this same forward pass and carries no gradient. Ranking by logits equals ranking by p
    (sigmoid is monotone) except among logits whose p rounds to the same float, where any order is a valid ranking.
    logits [B, V]; targets long [2, P] (row, column) of the positives; rank_by: float32 [B, V] logits of the same
    forward pass to rank by instead of `logits` (under bf16 autocast the models pass float32_logits: bf16 logits
    tie too often to rank, see there); p still comes from `logits`. Returns a float32 scalar.
    """
    x = logits.float()
    B, V = x.shape
    idx = torch.topk((x if rank_by is None else rank_by.float()).detach(), min(k, V), dim=1).indices  # [B, k]
    p = torch.sigmoid(x.gather(1, idx))  # [B, k]
    key = torch.arange(B, device=x.device)[:, None] * V + idx  # [B, k] flat position of each top item
    positive = torch.isin(key, targets[0] * V + targets[1])
    term = torch.where(positive, -torch.log(p + 1e-10), -torch.log(1 - p + 1e-10))
    return term.sum() / x.numel()
