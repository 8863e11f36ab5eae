"""A small Transformer encoder-decoder (Vaswani et al. 2017, "Attention Is All You Need").

Notation follows the paper: d_model, h heads of size d_k = d_model / h, projections W^Q W^K W^V W^O,
a position-wise feed-forward network of inner size d_ff, and

    Attention(Q, K, V) = softmax(Q Kᵀ / sqrt(d_k)) V

Every attention module returns its output, weights and raw scores per head; nothing is stored
on a module, so beam search may reorder hypotheses freely.

Decoding is incremental with a key/value cache: ``step`` computes only the newest position. Each
decoder layer's cross-attention keys and values are projected from the encoder output once, in
``encode``, and reused at every step.

Blocks are post-LN as in the paper (x = LN(x + Sublayer(x))) or pre-LN (x = x + Sublayer(LN(x)),
with a final LayerNorm after the last encoder and decoder layer).

Options that other implementations need (Marian / opus-mt, see ``marian.py``): sinusoidal
positions laid out as [sin | cos] halves instead of interleaved (``positions="sinusoidal-halves"``),
the SiLU feed-forward (``activation="silu"``), unscaled embeddings (``scale_embeddings=False``), a
bias on the output logits (``output_bias``) and a decoder that never emits PAD or BOS
(``never_pad_bos``: their logits are -inf, so the other tokens' probabilities are renormalised).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from explorer.seq2seq.models.attention import fused_scaled_dot_product, scaled_dot_product
from explorer.seq2seq.models.base import BOS, PAD, ForwardOutput, Memory, Seq2Seq, StepOutput
from explorer.seq2seq.models.dropout import Dropout

POSITIONS = ("sinusoidal", "learned", "sinusoidal-halves")
NORMS = ("pre", "post")
ACTIVATIONS = ("relu", "gelu", "silu")


# Decoding steps (at most FEW_ROWS rows: a beam's hypotheses) with an output matrix of at least
# BIG_OUTPUT numbers (beyond the CPU's caches: 24 MB in float32) compute it as few_rows_logits
# does. With a smaller matrix F.linear was as fast or faster (8,000 × 256: 0.23 ms against
# 0.44 ms a step; 16,000 × 512: 2.9 ms against 1.7 ms, the other way round).
FEW_ROWS = 16
BIG_OUTPUT = 6_000_000


def few_rows_logits(h: torch.Tensor, W: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """h Wᵀ + b for a few rows h (..., d_model) and a large W (V, d_model), computed as (W hᵀ)ᵀ.

    A decoding step multiplies one row per hypothesis by W; with a large vocabulary that product
    reads all of W and is most of the step. On the CPU the BLAS reads W about twice as fast as
    the product W hᵀ with at least two columns than as ``F.linear`` does (opus-mt's 59k × 512
    matrix, one row: 11 ms against 6 ms a step on our AMD EPYC; five rows: 22 ms against
    12 ms), so a single row is computed twice. The same numbers up to float rounding.
    """
    x = h.reshape(-1, h.shape[-1])  # (n, d)
    n = x.shape[0]
    cols = torch.cat([x, x]) if n == 1 else x  # (n', d), n' ≥ 2
    if bias is None:
        out = torch.mm(W, cols.t())  # (V, n')
    else:
        out = torch.addmm(bias[:, None], W, cols.t())
    return out[:, :n].t().contiguous().reshape(*h.shape[:-1], W.shape[0])


class TransformerConfigError(ValueError):
    """A TransformerConfig field holds an invalid value; the message names the field."""


class SequenceTooLongError(ValueError):
    """A source or target is longer than the model's ``max_len`` positions."""


@dataclass
class TransformerConfig:
    arch: str = "transformer"
    src_vocab: int = 0  # source vocabulary size, specials included
    tgt_vocab: int = 0  # target vocabulary size, specials included
    d_model: int = 256
    heads: int = 4  # h
    enc_layers: int = 3
    dec_layers: int = 3
    d_ff: int = 1024
    dropout: float = 0.1  # P_drop on embeddings and on every sublayer output
    positions: str = "sinusoidal"  # "sinusoidal" | "learned"
    norm: str = "pre"  # "pre" | "post"
    max_len: int = 512  # most positions a source or a target may have
    tie_embeddings: bool = True  # decoder input embedding = output projection
    activation: str = "relu"  # "relu" (as in the paper) | "gelu" | "silu"
    scale_embeddings: bool = True  # token embeddings times sqrt(d_model)
    output_bias: bool = False  # logits = W_out h + b_out
    never_pad_bos: bool = False  # PAD and BOS logits are -inf: the decoder never emits them

    def __post_init__(self) -> None:
        def bad(field: str, why: str) -> TransformerConfigError:
            value = getattr(self, field)
            return TransformerConfigError(f"TransformerConfig.{field}={value!r}: {why}")

        if self.arch != "transformer":
            raise bad("arch", "must be 'transformer'")
        for field in ("src_vocab", "tgt_vocab"):
            if not isinstance(getattr(self, field), int) or getattr(self, field) < 4:
                raise bad(field, "must be an integer >= 4 (PAD, UNK, BOS, EOS and the pieces)")
        for field in ("d_model", "heads", "enc_layers", "dec_layers", "d_ff", "max_len"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad(field, "must be a positive integer")
        if self.d_model % self.heads:
            raise bad("d_model", f"must be divisible by heads={self.heads}")
        if self.positions != "learned" and self.d_model % 2:
            raise bad("d_model", "must be even for sinusoidal positions")
        if not 0.0 <= self.dropout < 1.0:
            raise bad("dropout", "must be in [0, 1)")
        if self.positions not in POSITIONS:
            raise bad("positions", f"must be one of {', '.join(POSITIONS)}")
        if self.norm not in NORMS:
            raise bad("norm", f"must be one of {', '.join(NORMS)}")
        if self.activation not in ACTIVATIONS:
            raise bad("activation", f"must be one of {', '.join(ACTIVATIONS)}")
        for field in ("tie_embeddings", "scale_embeddings", "output_bias", "never_pad_bos"):
            if not isinstance(getattr(self, field), bool):
                raise bad(field, "must be True or False")

    @property
    def d_k(self) -> int:
        return self.d_model // self.heads


def sinusoidal_positions(
    n: int, d_model: int, start: int = 0, device: torch.device | str | None = None
) -> torch.Tensor:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d_model)), PE(pos, 2i+1) = cos(...) for the positions
    start .. start+n-1. (n, d_model)"""
    pos = torch.arange(start, start + n, dtype=torch.float32, device=device).unsqueeze(1)  # (n, 1)
    i2 = torch.arange(0, d_model, 2, device=device).float()  # (d_model/2,) the even indices 2i
    inv_freq = torch.exp(i2 * (-math.log(10000.0) / d_model))
    pe = torch.zeros(n, d_model, device=device)
    pe[:, 0::2] = torch.sin(pos * inv_freq)
    pe[:, 1::2] = torch.cos(pos * inv_freq)
    return pe


def sinusoidal_positions_halves(
    n: int, d_model: int, start: int = 0, device: torch.device | str | None = None
) -> torch.Tensor:
    """The same frequencies as ``sinusoidal_positions`` laid out as [sin | cos] halves (Marian):
    PE(pos, i) = sin(pos / 10000^(2i/d_model)), PE(pos, d_model/2 + i) = cos(...), computed in
    float64 as Marian does. (n, d_model)"""
    pos = torch.arange(start, start + n, dtype=torch.float64, device=device).unsqueeze(1)
    i2 = torch.arange(0, d_model, 2, dtype=torch.float64, device=device)  # (d_model/2,)
    angle = pos / torch.pow(10000.0, i2 / d_model)  # (n, d_model/2)
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1).float()


_POSITION_TABLES = {
    "sinusoidal": sinusoidal_positions,
    "sinusoidal-halves": sinusoidal_positions_halves,
}


class Embedding(nn.Module):
    """Token embedding scaled by sqrt(d_model) plus a position encoding, then dropout."""

    def __init__(self, vocab: int, config: TransformerConfig):
        super().__init__()
        self.d_model = config.d_model
        self.max_len = config.max_len
        self.scale = math.sqrt(config.d_model) if config.scale_embeddings else 1.0
        self.tok = nn.Embedding(vocab, config.d_model)
        nn.init.normal_(self.tok.weight, std=config.d_model**-0.5)
        if config.positions == "learned":
            self.pos = nn.Embedding(config.max_len, config.d_model)
            nn.init.normal_(self.pos.weight, std=0.02)
        else:
            self.pos = None  # sinusoidal: computed for the positions each call needs
            self.table = _POSITION_TABLES[config.positions]
        self.drop = Dropout(config.dropout)

    def forward(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        """tokens (B, T) at positions start .. start+T-1 → (B, T, d_model)."""
        T = tokens.shape[1]
        if start + T > self.max_len:
            raise SequenceTooLongError(
                f"position {start + T - 1} is beyond max_len={self.max_len} of this Transformer"
            )
        x = self.tok(tokens) * self.scale  # (B, T, d_model)
        if self.pos is not None:
            x = x + self.pos.weight[start : start + T]
        else:
            x = x + self.table(T, self.d_model, start, tokens.device)
        return self.drop(x)


class MultiHeadAttention(nn.Module):
    """MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O,
    head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V).

    Keys and values are projected separately (``project_kv``) so that the decoder can project the
    encoder output once per sentence and cache its own past keys and values.
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.h, self.d_k = config.heads, config.d_k
        self.W_q = nn.Linear(config.d_model, config.d_model)
        self.W_k = nn.Linear(config.d_model, config.d_model)
        self.W_v = nn.Linear(config.d_model, config.d_model)
        self.W_o = nn.Linear(config.d_model, config.d_model)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.h, self.d_k).transpose(1, 2)  # (B, H, T, d_k)

    def project_kv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, d_model) → keys, values (B, H, T, d_k)."""
        return self.split_heads(self.W_k(x)), self.split_heads(self.W_v(x))

    def forward(
        self,
        x: torch.Tensor,  # (B, T_q, d_model) the queries' source
        k: torch.Tensor,  # (B, H, T_k, d_k)
        v: torch.Tensor,  # (B, H, T_k, d_k)
        mask: torch.Tensor | None,  # broadcastable to (B, H, T_q, T_k), True where allowed
        need_weights: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
        """Returns output (B, T_q, d_model), weights and scores (B, H, T_q, T_k), and the
        queries (B, H, T_q, d_k). Without ``need_weights`` the weights and scores are None (the
        fused kernel computes the same output without forming them)."""
        B, T_q, D = x.shape
        q = self.split_heads(self.W_q(x))  # (B, H, T_q, d_k)
        if need_weights:
            heads, alpha, e = scaled_dot_product(q, k, v, mask)  # (B, H, T_q, d_k)
        else:
            heads, alpha, e = fused_scaled_dot_product(q, k, v, mask), None, None
        out = self.W_o(heads.transpose(1, 2).reshape(B, T_q, D))  # (B, T_q, d_model)
        return out, alpha, e, q


class FeedForward(nn.Module):
    """FFN(x) = W_2 act(W_1 x + b_1) + b_2, applied at each position."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.W_1 = nn.Linear(config.d_model, config.d_ff)
        self.W_2 = nn.Linear(config.d_ff, config.d_model)
        self.act = {"gelu": nn.GELU, "silu": nn.SiLU, "relu": nn.ReLU}[config.activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.W_2(self.act(self.W_1(x)))


class EncoderLayer(nn.Module):
    """Self-attention then feed-forward, each wrapped in a residual connection and LayerNorm."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.pre = config.norm == "pre"
        self.self_attn = MultiHeadAttention(config)
        self.ffn = FeedForward(config)
        self.ln_1 = nn.LayerNorm(config.d_model)
        self.ln_2 = nn.LayerNorm(config.d_model)
        self.drop = Dropout(config.dropout)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, need_weights: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, S, d_model), mask (B, 1, 1, S) → x (B, S, d_model), weights (B, H, S, S) or
        None without ``need_weights``."""
        a = self.ln_1(x) if self.pre else x
        k, v = self.self_attn.project_kv(a)
        out, alpha, _, _ = self.self_attn(a, k, v, mask, need_weights)
        x = x + self.drop(out)
        if not self.pre:
            x = self.ln_1(x)
        f = self.ffn(self.ln_2(x) if self.pre else x)
        x = x + self.drop(f)
        if not self.pre:
            x = self.ln_2(x)
        return x, alpha


@dataclass(frozen=True)
class DecoderLayerOutput:
    x: torch.Tensor  # (B, T, d_model) the layer's output
    k: torch.Tensor  # (B, H, T, d_k) self-attention keys of the new positions
    v: torch.Tensor  # (B, H, T, d_k) self-attention values of the new positions
    # the weights and scores are None when the layer ran without need_weights
    self_attention: torch.Tensor | None  # (B, H, T, t0+T)
    cross_attention: torch.Tensor | None  # (B, H, T, S)
    cross_scores: torch.Tensor | None  # (B, H, T, S)
    context: torch.Tensor  # (B, T, d_model) cross-attention sublayer output (after W^O)
    cross_query: torch.Tensor  # (B, H, T, d_k) the cross-attention's queries q = W^Q x


class DecoderLayer(nn.Module):
    """Masked self-attention, cross-attention over the encoder output, feed-forward."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.pre = config.norm == "pre"
        self.self_attn = MultiHeadAttention(config)
        self.cross_attn = MultiHeadAttention(config)
        self.ffn = FeedForward(config)
        self.ln_1 = nn.LayerNorm(config.d_model)
        self.ln_2 = nn.LayerNorm(config.d_model)
        self.ln_3 = nn.LayerNorm(config.d_model)
        self.drop = Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,  # (B, T, d_model) the new positions t0 .. t0+T-1
        past_k: torch.Tensor,  # (B, H, t0, d_k) cached self-attention keys
        past_v: torch.Tensor,  # (B, H, t0, d_k)
        self_mask: torch.Tensor | None,  # (T, t0+T) True where allowed, None for all
        cross_k: torch.Tensor,  # (B, H, S, d_k) projected once from the encoder output
        cross_v: torch.Tensor,  # (B, H, S, d_k)
        cross_mask: torch.Tensor,  # (B, 1, 1, S)
        need_weights: bool = True,
    ) -> DecoderLayerOutput:
        a = self.ln_1(x) if self.pre else x
        k, v = self.self_attn.project_kv(a)  # (B, H, T, d_k)
        K, V = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)  # (B, H, t0+T, d_k)
        out, self_alpha, _, _ = self.self_attn(a, K, V, self_mask, need_weights)
        x = x + self.drop(out)
        if not self.pre:
            x = self.ln_1(x)

        query = self.ln_2(x) if self.pre else x
        c, alpha, e, q = self.cross_attn(query, cross_k, cross_v, cross_mask, need_weights)
        x = x + self.drop(c)
        if not self.pre:
            x = self.ln_2(x)

        f = self.ffn(self.ln_3(x) if self.pre else x)
        x = x + self.drop(f)
        if not self.pre:
            x = self.ln_3(x)
        return DecoderLayerOutput(x, k, v, self_alpha, alpha, e, c, q)


class TransformerSeq2Seq(Seq2Seq):
    """Transformer encoder-decoder following the ``Seq2Seq`` contract of ``base.py``."""

    arch = "transformer"

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.src_embed = Embedding(config.src_vocab, config)
        self.tgt_embed = Embedding(config.tgt_vocab, config)
        self.encoder = nn.ModuleList(EncoderLayer(config) for _ in range(config.enc_layers))
        self.decoder = nn.ModuleList(DecoderLayer(config) for _ in range(config.dec_layers))
        pre = config.norm == "pre"
        self.enc_ln_f = nn.LayerNorm(config.d_model) if pre else nn.Identity()
        self.dec_ln_f = nn.LayerNorm(config.d_model) if pre else nn.Identity()
        # With tied embeddings the output projection is the decoder embedding matrix itself, so
        # the state dict holds no shared tensors.
        self.W_out = None
        if not config.tie_embeddings:
            self.W_out = nn.Linear(config.d_model, config.tgt_vocab, bias=False)
            nn.init.normal_(self.W_out.weight, std=config.d_model**-0.5)
        self._pad_bos = torch.tensor([PAD, BOS])
        self.b_out = nn.Parameter(torch.zeros(config.tgt_vocab)) if config.output_bias else None
        for name, p in self.named_parameters():
            if p.dim() == 2 and ".W_" in f".{name}" and "W_out" not in name:
                nn.init.xavier_uniform_(p)

    # ---- pieces shared by forward and step -------------------------------------------------

    @property
    def output_weight(self) -> nn.Parameter:
        """W (V, d_model) of the output projection: the decoder's embeddings when tied."""
        return self.tgt_embed.tok.weight if self.W_out is None else self.W_out.weight

    def project(self, h: torch.Tensor) -> torch.Tensor:
        """Decoder output (..., d_model) → logits (..., V)."""
        h = self.dec_ln_f(h)
        W = self.output_weight
        bias = self.b_out
        if self.config.never_pad_bos:  # -inf in the (V,) bias: no pass over every row's logits
            base = bias if bias is not None else h.new_zeros(W.shape[0])
            bias = base.index_fill(0, self._pad_bos.to(base.device), float("-inf"))
        if h.device.type == "cpu" and not torch.is_grad_enabled() and W.numel() >= BIG_OUTPUT:
            if h.numel() <= FEW_ROWS * h.shape[-1] and W.is_contiguous():
                return few_rows_logits(h, W, bias)
        return F.linear(h, W, bias)

    def _decode(
        self,
        memory: Memory,
        y: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        need_weights: bool = True,
        keep: torch.Tensor | None = None,
    ) -> tuple[list[DecoderLayerOutput], torch.Tensor]:
        """Run the decoder on new tokens y (B, T) after a cache k, v (B, L, H, t0, d_k).

        Returns every layer's output and the logits (B, T, V), or (N, V) at the positions
        where ``keep`` (B, T) is True.
        """
        t0, T = k.shape[3], y.shape[1]
        self_mask = None
        if T > 1:
            # position t0+i may attend to positions 0 .. t0+i
            self_mask = torch.ones(T, t0 + T, dtype=torch.bool, device=y.device).tril(t0)
        cross_mask = memory.mask[:, None, None, :]  # (B, 1, 1, S)
        x = self.tgt_embed(y, start=t0)  # (B, T, d_model)
        layers = []
        for l, layer in enumerate(self.decoder):
            out = layer(
                x,
                k[:, l],
                v[:, l],
                self_mask,
                memory.extra["cross_k"][:, l],
                memory.extra["cross_v"][:, l],
                cross_mask,
                need_weights,
            )
            layers.append(out)
            x = out.x
        return layers, self.project(x if keep is None else x[keep])

    # ---- the contract ----------------------------------------------------------------------

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> Memory:
        """src (B, S) token ids, src_lengths (B,) → Memory with cross-attention keys precomputed."""
        return self._encode(src, src_lengths, need_weights=True)

    def _encode(self, src: torch.Tensor, src_lengths: torch.Tensor, need_weights: bool) -> Memory:
        """``encode``; without ``need_weights`` the Memory's self_attention is None."""
        if src.dim() != 2 or src_lengths.shape != src.shape[:1]:
            raise ValueError(
                f"encode expects src (B, S) and src_lengths (B,), got {tuple(src.shape)} "
                f"and {tuple(src_lengths.shape)}"
            )
        S = src.shape[1]
        if src_lengths.numel() and not (1 <= int(src_lengths.min()) <= int(src_lengths.max()) <= S):
            raise ValueError(
                f"encode: every src_lengths value must be in 1..{S} (the padded source length), "
                f"got {src_lengths.tolist()}"
            )
        positions = torch.arange(S, device=src.device)
        mask = positions[None, :] < src_lengths.to(src.device)[:, None]  # (B, S)
        attn_mask = mask[:, None, None, :]  # (B, 1, 1, S)
        x = self.src_embed(src)  # (B, S, d_model)
        layers, self_attention = [], []
        for layer in self.encoder:
            x, alpha = layer(x, attn_mask, need_weights)
            layers.append(x)
            self_attention.append(alpha)
        h = self.enc_ln_f(x)  # (B, S, d_model)
        cross = [layer.cross_attn.project_kv(h) for layer in self.decoder]
        return Memory(
            states=h,
            mask=mask,
            extra={
                "cross_k": torch.stack([k for k, _ in cross], dim=1),  # (B, L_dec, H, S, d_k)
                "cross_v": torch.stack([v for _, v in cross], dim=1),  # (B, L_dec, H, S, d_k)
            },
            # (B, L_enc, H, S, S)
            self_attention=torch.stack(self_attention, dim=1) if need_weights else None,
            layers=torch.stack(layers, dim=1),  # (B, L_enc, S, d_model)
        )

    def start(self, memory: Memory) -> dict[str, torch.Tensor]:
        """An empty self-attention cache: k, v (B, L_dec, H, 0, d_k)."""
        c = self.config
        B = memory.states.shape[0]
        empty = memory.states.new_zeros(B, c.dec_layers, c.heads, 0, c.d_k)
        return {"k": empty, "v": empty.clone()}

    def step(
        self, memory: Memory, state: dict[str, torch.Tensor], y_prev: torch.Tensor
    ) -> tuple[StepOutput, dict[str, torch.Tensor]]:
        """Feed y_prev (B,) at position t = cache length; return its outputs and the new cache."""
        layers, logits = self._decode(memory, y_prev[:, None], state["k"], state["v"])
        new_k = torch.stack([o.k for o in layers], dim=1)  # (B, L, H, 1, d_k)
        new_v = torch.stack([o.v for o in layers], dim=1)
        state = {
            "k": torch.cat([state["k"], new_k], dim=3),  # (B, L, H, t+1, d_k)
            "v": torch.cat([state["v"], new_v], dim=3),
        }

        def stack(name: str) -> torch.Tensor:  # (B, H, 1, ·) or (B, 1, ·) per layer → (B, L, ...)
            return torch.stack([getattr(o, name) for o in layers], dim=1).squeeze(-2)

        out = StepOutput(
            logits=logits[:, 0],  # (B, V)
            scores=stack("cross_scores"),  # (B, L, H, S)
            attention=stack("cross_attention"),  # (B, L, H, S)
            hidden=stack("x"),  # (B, L, d_model)
            context=stack("context"),  # (B, L, d_model)
            self_attention=stack("self_attention"),  # (B, L, H, t+1)
            query=stack("cross_query"),  # (B, L, H, d_k)
        )
        return out, state

    def forward(
        self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor
    ) -> ForwardOutput:
        """Teacher forcing: src (B, S), src_lengths (B,), tgt_in (B, T) → logits (B, T, V)."""
        memory = self.encode(src, src_lengths)
        empty = self.start(memory)
        layers, logits = self._decode(memory, tgt_in, empty["k"], empty["v"])

        def heads(name: str) -> torch.Tensor:  # (B, H, T, ·) per layer → (B, T, L, H, ·)
            return torch.stack([getattr(o, name) for o in layers], dim=1).permute(0, 3, 1, 2, 4)

        def states(name: str) -> torch.Tensor:  # (B, T, D) per layer → (B, T, L, D)
            return torch.stack([getattr(o, name) for o in layers], dim=2)

        return ForwardOutput(
            logits=logits,  # (B, T, V)
            scores=heads("cross_scores"),  # (B, T, L, H, S)
            attention=heads("cross_attention"),  # (B, T, L, H, S)
            hidden=states("x"),  # (B, T, L, d_model)
            context=states("context"),  # (B, T, L, d_model)
            self_attention=heads("self_attention"),  # (B, T, L, H, T)
            query=heads("cross_query"),  # (B, T, L, H, d_k)
            memory=memory,
        )

    def logits(
        self,
        src: torch.Tensor,
        src_lengths: torch.Tensor,
        tgt_in: torch.Tensor,
        keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher forcing's logits as ``Seq2Seq.logits``: every attention runs through torch's
        fused ``scaled_dot_product_attention`` and no weights are formed.
        The same numbers as ``forward(...).logits`` up to float rounding."""
        # Measured with python -m explorer.tools.bench_sdpa (issue 19's d 256, 4 heads, 3+3
        # layers, 64 x 14 tokens, one thread, a busy 2-core CPU): a forward and backward step
        # 0.93 to 1.05 times the explicit path's time over six runs, within the noise; the
        # attention alone (64 x 4 heads x 14 x 64) 1.2 to 1.4 times faster fused. Fused is kept:
        # never slower measurably, and the weights' memory is never allocated.
        memory = self._encode(src, src_lengths, need_weights=False)
        empty = self.start(memory)
        return self._decode(memory, tgt_in, empty["k"], empty["v"], False, keep)[1]
