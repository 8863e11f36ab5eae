"""RNN encoder-decoders: without attention, with Bahdanau attention, with Luong attention.

One encoder for every ``arch``: an embedding, dropout and a multi-layer (bi)GRU/LSTM over packed
sequences, giving the annotations h_i (B, S, D_enc) and the final state of every layer. The decoder
starts from the encoder's final states through a bridge, s_0 = tanh(W_b h_final) per layer (an
LSTM's cells likewise, through a bridge of their own).

- ``none`` (Cho et al. 2014): the whole source is squeezed into one vector c, the encoder's last
  top-layer state (forward final and backward final, concatenated, for a bidirectional encoder).
  Every step sees it: s_t = RNN([emb(y_{t-1}); c], s_{t-1}), o_t = tanh(W_o [s_t; c; emb(y_{t-1})]).
- ``bahdanau`` (Bahdanau et al. 2015): the query is the previous state s_{t-1};
  e_ti = v · tanh(W_s s_{t-1} + W_h h_i),  α_t = softmax(e_t),  c_t = Σ_i α_ti h_i,
  s_t = RNN([emb(y_{t-1}); c_t], s_{t-1}),  o_t = tanh(W_o [s_t; c_t; emb(y_{t-1})]).
- ``luong-dot`` / ``luong-general`` (Luong et al. 2015, with input feeding):
  s_t = RNN([emb(y_{t-1}); h~_{t-1}], s_{t-1}),  e_ti = score(s_t, h_i),  c_t = Σ_i α_ti h_i,
  h~_t = tanh(W_c [c_t; s_t]),  o_t = h~_t.
  Dot scores need keys as wide as the decoder: when the encoder output is wider (a bidirectional
  encoder), ``encode`` projects it to ``hidden_dim`` and those projected states are memory.states,
  the h_i used as keys and as values.

Every family then reads out logits = W_y dropout(o_t). With ``tie_embeddings`` W_y is the target
embedding matrix, preceded by a projection from ``hidden_dim`` to ``emb_dim`` when they differ.

``forward`` runs exactly the computation of ``step`` in a loop over the target, so the step API is
faithful by construction; only the output layers, which feed nothing back, run once over all steps.
The decoder state is a dict of batch-first tensors: ``h`` (B, L, H), ``cell`` (B, L, H) for an
LSTM, ``feed`` (B, H) = h~_{t-1} for Luong input feeding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from explorer.seq2seq.models.attention import SCORE_FUNCTIONS
from explorer.seq2seq.models.base import (
    SPECIAL_PIECES,
    ForwardOutput,
    Memory,
    Seq2Seq,
    StepOutput,
)
from explorer.seq2seq.models.dropout import Dropout

ARCHS = ("none", "bahdanau", "luong-dot", "luong-general")
CELLS = ("gru", "lstm")
SCORE_OF_ARCH = {"bahdanau": "additive", "luong-dot": "dot", "luong-general": "general"}


class RNNConfigError(ValueError):
    """An RNNConfig field has a value the model cannot be built with."""


class RNNInputError(ValueError):
    """A tensor handed to an RNNSeq2Seq has the wrong shape, dtype or values."""


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass
class RNNConfig:
    arch: str  # "none" | "bahdanau" | "luong-dot" | "luong-general"
    src_vocab: int
    tgt_vocab: int
    emb_dim: int = 128
    hidden_dim: int = 256
    layers: int = 1
    cell: str = "gru"  # "gru" | "lstm"
    bidirectional: bool = True  # the encoder only; the decoder runs left to right
    dropout: float = 0.1
    tie_embeddings: bool = False  # output layer weight = target embedding matrix
    attn_dim: int | None = None  # bahdanau only: size of W_s s + W_h h_i; None: hidden_dim

    def __post_init__(self) -> None:
        def bad(field: str, expected: str) -> RNNConfigError:
            return RNNConfigError(
                f"RNNConfig.{field} must be {expected}, got {getattr(self, field)!r}"
            )

        if self.arch not in ARCHS:
            raise bad("arch", "one of " + ", ".join(repr(a) for a in ARCHS))
        min_vocab = len(SPECIAL_PIECES) + 1
        for field in ("src_vocab", "tgt_vocab"):
            value = getattr(self, field)
            if not _is_int(value) or value < min_vocab:
                raise bad(field, f"an integer >= {min_vocab} (4 special tokens and one more)")
        for field in ("emb_dim", "hidden_dim", "layers"):
            value = getattr(self, field)
            if not _is_int(value) or value < 1:
                raise bad(field, "a positive integer")
        if self.cell not in CELLS:
            raise bad("cell", "one of " + ", ".join(repr(c) for c in CELLS))
        for field in ("bidirectional", "tie_embeddings"):
            if not isinstance(getattr(self, field), bool):
                raise bad(field, "True or False")
        d = self.dropout
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not 0.0 <= d < 1.0:
            raise bad("dropout", "a number in [0, 1)")
        if self.attn_dim is not None and (not _is_int(self.attn_dim) or self.attn_dim < 1):
            raise bad("attn_dim", "None or a positive integer")


def _make_rnn(
    cell: str, input_size: int, hidden: int, layers: int, dropout: float, bidirectional: bool
) -> nn.RNNBase:
    rnn_cls = nn.LSTM if cell == "lstm" else nn.GRU
    return rnn_cls(
        input_size,
        hidden,
        num_layers=layers,
        batch_first=True,
        dropout=dropout if layers > 1 else 0.0,  # between layers only
        bidirectional=bidirectional,
    )


class RNNEncoder(nn.Module):
    """Embedding, dropout, (bi)GRU/LSTM over packed sequences."""

    def __init__(self, config: RNNConfig):
        super().__init__()
        c = config
        self.embedding = nn.Embedding(c.src_vocab, c.emb_dim, padding_idx=0)
        self.dropout = Dropout(c.dropout)
        self.rnn = _make_rnn(c.cell, c.emb_dim, c.hidden_dim, c.layers, c.dropout, c.bidirectional)
        self.num_directions = 2 if c.bidirectional else 1
        self.output_dim = c.hidden_dim * self.num_directions

    def _by_layer(self, h_n: torch.Tensor) -> torch.Tensor:
        """(L * dirs, B, H) → (B, L, dirs * H): each layer's final forward and backward states."""
        L = self.rnn.num_layers
        h_n = h_n.view(L, self.num_directions, h_n.shape[1], h_n.shape[2])  # (L, dirs, B, H)
        return torch.cat(h_n.unbind(1), dim=-1).transpose(0, 1)  # (B, L, D_enc)

    def forward(
        self, src: torch.Tensor, src_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """src (B, S), lengths (B,) → h (B, S, D_enc), final (B, L, D_enc), final cell or None."""
        S = src.shape[1]
        x = self.dropout(self.embedding(src))  # (B, S, E)
        packed = pack_padded_sequence(x, src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, h_n = self.rnn(packed)
        h, _ = pad_packed_sequence(out, batch_first=True, total_length=S)  # (B, S, D_enc)
        if isinstance(h_n, tuple):  # LSTM: (h_n, c_n)
            return h, self._by_layer(h_n[0]), self._by_layer(h_n[1])
        return h, self._by_layer(h_n), None


class _Step(NamedTuple):
    """One decoder step on the RNN's native (layer-first) state."""

    s: torch.Tensor  # (B, H) top-layer decoder state s_t
    h: Any  # (L, B, H) every layer's state, or (h, cell) for an LSTM
    feed: torch.Tensor | None  # (B, H) Luong's h~_t, fed to the next step
    context: torch.Tensor  # (B, D_ctx)
    alpha: torch.Tensor | None  # (B, S)
    e: torch.Tensor | None  # (B, S), -inf at padding
    query: torch.Tensor | None  # (B, H) what attention scored: s_t (Luong) or s_{t-1} (Bahdanau)


class _CellStep:
    """A one-layer decoder RNN's step as torch's own cell function (``torch.gru_cell``,
    ``torch.lstm_cell``, the arithmetic of nn.GRU and nn.LSTM), the input projection split in two:
    ``x_emb`` = W_ih[:, :E] emb + b_ih, computed beforehand for all steps, and the rest of the
    input (c_t or h~_{t-1}) projected here by W_ih[:, E:]."""

    def __init__(self, rnn: nn.RNNBase, emb_dim: int):
        self.W_rest = rnn.weight_ih_l0[:, emb_dim:]
        kind = self.W_rest.device.type
        if torch.is_autocast_enabled(kind):
            # autocast caches its casts of whole weights, not of this slice: cast it once here
            # rather than at every step
            self.W_rest = self.W_rest.to(torch.get_autocast_dtype(kind))
        self.W_hh, self.b_hh = rnn.weight_hh_l0, rnn.bias_hh_l0
        self.lstm = isinstance(rnn, nn.LSTM)

    def __call__(
        self, rest: torch.Tensor, x_emb: torch.Tensor, h: torch.Tensor, cell: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, D_rest), (B, G·H), h (B, H), an LSTM's cell (B, H) or None → new h and cell."""
        if self.lstm:
            return torch.lstm_cell(rest, (h, cell), self.W_rest, self.W_hh, x_emb, self.b_hh)
        return torch.gru_cell(rest, h, self.W_rest, self.W_hh, x_emb, self.b_hh), None


class RNNSeq2Seq(Seq2Seq):
    """An RNN encoder-decoder; ``config.arch`` picks how the decoder sees the source."""

    def __init__(self, config: RNNConfig):
        super().__init__()
        self.config = config
        self.arch = config.arch
        c = config
        H, E = c.hidden_dim, c.emb_dim

        self.encoder = RNNEncoder(c)
        D_enc = self.encoder.output_dim
        # Dot scores compare s_t with h_i directly, so the annotations must be H wide.
        self.key_proj = (
            nn.Linear(D_enc, H, bias=False) if c.arch == "luong-dot" and D_enc != H else None
        )
        D_mem = H if self.key_proj is not None else D_enc  # width of memory.states
        self.context_dim = D_mem

        self.bridge = nn.ModuleList(nn.Linear(D_enc, H) for _ in range(c.layers))
        self.bridge_cell = (
            nn.ModuleList(nn.Linear(D_enc, H) for _ in range(c.layers))
            if c.cell == "lstm"
            else None
        )

        self.tgt_embedding = nn.Embedding(c.tgt_vocab, E, padding_idx=0)
        self.dropout = Dropout(c.dropout)
        luong = c.arch.startswith("luong")
        dec_input = E + (H if luong else D_mem)  # [emb(y_{t-1}); h~_{t-1}] or [emb; c]
        self.decoder = _make_rnn(c.cell, dec_input, H, c.layers, c.dropout, False)

        if c.arch == "none":
            self.attention = None
        else:
            score_cls = SCORE_FUNCTIONS[SCORE_OF_ARCH[c.arch]]
            if c.arch == "bahdanau":
                self.attention = score_cls(H, D_mem, c.attn_dim)
            else:
                self.attention = score_cls(H, D_mem)
        if luong:
            self.W_c = nn.Linear(D_mem + H, H, bias=False)  # h~_t = tanh(W_c [c_t; s_t])
        else:
            self.W_o = nn.Linear(H + D_mem + E, H)  # o_t = tanh(W_o [s_t; c_t; emb(y_{t-1})])

        self.out = nn.Linear(E if c.tie_embeddings else H, c.tgt_vocab)
        if c.tie_embeddings:
            self.out.weight = self.tgt_embedding.weight
        self.out_proj = nn.Linear(H, E, bias=False) if c.tie_embeddings and H != E else None

    # ---------------------------------------------------------------- checks

    def _check_source(self, src: torch.Tensor, src_lengths: torch.Tensor) -> None:
        if src.dim() != 2 or src.dtype != torch.long:
            raise RNNInputError(
                f"src must be a (B, S) long tensor, got {tuple(src.shape)} {src.dtype}"
            )
        if src_lengths.shape != (src.shape[0],):
            raise RNNInputError(
                f"src_lengths must have shape ({src.shape[0]},), got {tuple(src_lengths.shape)}"
            )
        if src.numel() and (src.min() < 0 or src.max() >= self.config.src_vocab):
            raise RNNInputError(f"src holds ids outside [0, {self.config.src_vocab})")
        if src_lengths.numel() and (src_lengths.min() < 1 or src_lengths.max() > src.shape[1]):
            raise RNNInputError(
                f"src_lengths must lie in [1, {src.shape[1]}], got {src_lengths.tolist()}"
            )

    def _check_target(self, y: torch.Tensor, name: str, batch: int, dims: int) -> None:
        if y.dim() != dims or y.dtype != torch.long or y.shape[0] != batch:
            raise RNNInputError(
                f"{name} must be a long tensor with {dims} dimension(s) and batch {batch}, "
                f"got {tuple(y.shape)} {y.dtype}"
            )
        if y.numel() and (y.min() < 0 or y.max() >= self.config.tgt_vocab):
            raise RNNInputError(f"{name} holds ids outside [0, {self.config.tgt_vocab})")

    # ---------------------------------------------------------------- encoder

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> Memory:
        self._check_source(src, src_lengths)
        h, final, final_cell = self.encoder(src, src_lengths)  # (B, S, D_enc), (B, L, D_enc)
        S = src.shape[1]
        mask = torch.arange(S, device=src.device) < src_lengths.to(src.device).unsqueeze(1)
        extra: dict[str, Any] = {"final": final}
        if final_cell is not None:
            extra["final_cell"] = final_cell
        if self.key_proj is not None:
            h = self.key_proj(h)  # (B, S, H): the annotations the dot scores compare with s_t
        if self.attention is None:
            extra["c"] = final[:, -1]  # (B, D_enc) the fixed context: top layer's final states
        else:
            extra["keys"] = self.attention.project_keys(h)  # once per sentence
        return Memory(states=h, mask=mask, extra=extra)

    def start(self, memory: Memory) -> dict[str, torch.Tensor]:
        final = memory.extra["final"]  # (B, L, D_enc)
        state = {
            "h": torch.stack([torch.tanh(W(final[:, l])) for l, W in enumerate(self.bridge)], 1)
        }
        if self.bridge_cell is not None:
            cells = memory.extra["final_cell"]
            state["cell"] = torch.stack(
                [torch.tanh(W(cells[:, l])) for l, W in enumerate(self.bridge_cell)], 1
            )  # (B, L, H)
        if self.arch.startswith("luong"):
            state["feed"] = final.new_zeros(final.shape[0], self.config.hidden_dim)  # h~_0 = 0
        return state

    # ---------------------------------------------------------------- decoder

    def _to_native(self, state: dict[str, torch.Tensor]) -> Any:
        h = state["h"].transpose(0, 1).contiguous()  # (L, B, H) as the RNN wants it
        if "cell" in state:
            return h, state["cell"].transpose(0, 1).contiguous()
        return h

    def score_weights(self) -> dict[str, Any]:
        """Luong general: W (D_q, D_k); Bahdanau: W_s (A, D_q), W_h (A, D_k), b (A,), v (A,)."""
        a = self.attention

        def np_(x: torch.Tensor):
            return x.detach().float().cpu().numpy()

        if a is None or a.name == "dot":
            return {}
        if a.name == "general":
            return {"W": np_(a.W.weight)}
        return {
            "W_s": np_(a.W_s.weight),
            "W_h": np_(a.W_h.weight),
            "b": np_(a.W_h.bias),
            "v": np_(a.v.weight[0]),
        }

    @staticmethod
    def _h_of(h: Any) -> torch.Tensor:
        """The RNN's native state → its h states (L, B, H), leaving an LSTM's cells aside."""
        return h[0] if isinstance(h, tuple) else h

    def _decode_step(
        self, memory: Memory, h: Any, feed: torch.Tensor | None, emb: torch.Tensor
    ) -> _Step:
        """The recurrence shared by ``step`` and ``forward``; emb (B, E) = emb(y_{t-1})."""
        alpha = e = None
        if self.arch.startswith("luong"):
            out, h = self.decoder(torch.cat([emb, feed], dim=-1).unsqueeze(1), h)
            s = out[:, 0]  # (B, H) s_t
            c, alpha, e = self.attention(s, memory.states, memory.extra["keys"], memory.mask)
            h_tilde = torch.tanh(self.W_c(torch.cat([c, s], dim=-1)))  # (B, H) h~_t
            return _Step(s, h, h_tilde, c, alpha, e, s)
        s_prev = None
        if self.attention is None:
            c = memory.extra["c"]  # (B, D_enc) the same c at every step
        else:  # Bahdanau: the query is s_{t-1}
            s_prev = self._h_of(h)[-1]  # (B, H)
            c, alpha, e = self.attention(s_prev, memory.states, memory.extra["keys"], memory.mask)
        out, h = self.decoder(torch.cat([emb, c], dim=-1).unsqueeze(1), h)
        return _Step(out[:, 0], h, None, c, alpha, e, s_prev)

    def _output(
        self, s: torch.Tensor, c: torch.Tensor, emb: torch.Tensor, h_tilde: torch.Tensor | None
    ) -> torch.Tensor:
        """o (..., H), what the output layer reads: h~_t, or tanh(W_o [s_t; c_t; emb(y_{t-1})])."""
        if h_tilde is not None:
            return h_tilde
        return torch.tanh(self.W_o(torch.cat([s, c, emb], dim=-1)))

    def _logits(self, o: torch.Tensor) -> torch.Tensor:
        """(..., H) → (..., V)."""
        o = self.dropout(o)
        if self.out_proj is not None:
            o = self.out_proj(o)  # (..., E) to meet the tied embedding matrix
        return self.out(o)

    def step(
        self, memory: Memory, state: dict[str, torch.Tensor], y_prev: torch.Tensor
    ) -> tuple[StepOutput, dict[str, torch.Tensor]]:
        B = memory.states.shape[0]
        self._check_target(y_prev, "y_prev", B, 1)
        emb = self.dropout(self.tgt_embedding(y_prev))  # (B, E)
        r = self._decode_step(memory, self._to_native(state), state.get("feed"), emb)
        new_state = {"h": self._h_of(r.h).transpose(0, 1)}  # (B, L, H)
        if isinstance(r.h, tuple):
            new_state["cell"] = r.h[1].transpose(0, 1)
        if r.feed is not None:
            new_state["feed"] = r.feed
        out = StepOutput(
            logits=self._logits(self._output(r.s, r.context, emb, r.feed)),  # (B, V)
            scores=None if r.e is None else r.e.view(B, 1, 1, -1),  # (B, 1, 1, S)
            attention=None if r.alpha is None else r.alpha.view(B, 1, 1, -1),
            hidden=new_state["h"],  # (B, L, H)
            context=r.context.unsqueeze(1),  # (B, 1, D_ctx)
            query=None if r.query is None else r.query.view(B, 1, 1, -1),  # (B, 1, 1, D_q)
        )
        return out, new_state

    def logits(
        self,
        src: torch.Tensor,
        src_lengths: torch.Tensor,
        tgt_in: torch.Tensor,
        keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher forcing's logits as ``Seq2Seq.logits``: the numbers of ``forward``,
        computed faster for a one-layer decoder. The target embeddings' share of the decoder
        RNN's input projection, W_ih[:, :E] emb(y_{t-1}) + b_ih, is one matrix product over all
        steps; each step adds W_ih[:, E:] c_t (or h~_{t-1}) inside torch's cell function, and no
        attention weights, scores or states are kept. A deeper decoder takes ``forward``."""
        if self.config.layers != 1:
            return super().logits(src, src_lengths, tgt_in, keep)
        self._check_target(tgt_in, "tgt_in", src.shape[0], 2)
        if tgt_in.shape[1] == 0:
            raise RNNInputError("tgt_in must hold at least one step, got shape (B, 0)")
        memory = self.encode(src, src_lengths)
        state = self.start(memory)
        embs = self.dropout(self.tgt_embedding(tgt_in))  # (B, T, E), as in forward
        rnn, E = self.decoder, self.config.emb_dim
        x_emb = F.linear(embs, rnn.weight_ih_l0[:, :E], rnn.bias_ih_l0)  # (B, T, G·H)
        cell = _CellStep(rnn, E)
        s = state["h"][:, 0]  # (B, H) s_0
        c_cell = state["cell"][:, 0] if "cell" in state else None
        feed = state.get("feed")  # (B, H) h~_0, Luong only
        ss, cs, fs = [], [], []
        for x_t in x_emb.unbind(1):  # x_t (B, G·H)
            if feed is not None:  # Luong: s_t from [emb; h~_{t-1}], then attention on s_t
                s, c_cell = cell(feed, x_t, s, c_cell)
                c, _, _ = self.attention(s, memory.states, memory.extra["keys"], memory.mask)
                feed = torch.tanh(self.W_c(torch.cat([c, s], dim=-1)))  # (B, H) h~_t
                fs.append(feed)
                continue
            if self.attention is None:
                c = memory.extra["c"]
            else:  # Bahdanau: the query is s_{t-1}
                c, _, _ = self.attention(s, memory.states, memory.extra["keys"], memory.mask)
            s, c_cell = cell(c, x_t, s, c_cell)
            ss.append(s)
            cs.append(c)
        if fs:
            o = torch.stack(fs, 1)  # (B, T, H)
        else:
            o = self._output(torch.stack(ss, 1), torch.stack(cs, 1), embs, None)
        return self._logits(o if keep is None else o[keep])  # (B, T, V) or (N, V)

    def forward(
        self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor
    ) -> ForwardOutput:
        self._check_target(tgt_in, "tgt_in", src.shape[0], 2)
        B, T = tgt_in.shape
        if T == 0:
            raise RNNInputError("tgt_in must hold at least one step, got shape (B, 0)")
        memory = self.encode(src, src_lengths)
        state = self.start(memory)
        h, feed = self._to_native(state), state.get("feed")
        embs = self.dropout(self.tgt_embedding(tgt_in))  # (B, T, E), once for all steps
        steps: list[_Step] = []
        for t in range(T):
            r = self._decode_step(memory, h, feed, embs[:, t])
            h, feed = r.h, r.feed
            steps.append(r)

        def stacked(name: str) -> torch.Tensor:
            return torch.stack([getattr(r, name) for r in steps], 1)  # (B, T, ...)

        hidden = torch.stack([self._h_of(r.h).transpose(0, 1) for r in steps], 1)  # (B, T, L, H)
        context = stacked("context")  # (B, T, D_ctx)
        h_tilde = stacked("feed") if self.arch.startswith("luong") else None
        o = self._output(stacked("s"), context, embs, h_tilde)  # (B, T, H), all steps at once
        attention = scores = query = None
        if self.attention is not None:
            attention = stacked("alpha").view(B, T, 1, 1, -1)  # (B, T, 1, 1, S)
            scores = stacked("e").view(B, T, 1, 1, -1)
            query = stacked("query").view(B, T, 1, 1, -1)  # (B, T, 1, 1, D_q)
        return ForwardOutput(
            logits=self._logits(o),  # (B, T, V)
            scores=scores,
            attention=attention,
            hidden=hidden,
            context=context.unsqueeze(2),  # (B, T, 1, D_ctx)
            query=query,
            memory=memory,
        )
