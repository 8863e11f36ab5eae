"""Tiny deterministic stand-ins for the tokenizer and the model families, plus brute-force oracles.

- :class:`ToyTokenizer`: the tokenizer interface over a handful of whole-word symbols.
- :class:`ToyMarkov`: a fixed random model over a 3-token target vocabulary (plus the four special
  ids). Its logits depend on the previous token (a Markov table), on the whole prefix (a small
  recurrent state, so ``reorder`` matters) and on the source through a two-head fake attention.
  PAD, UNK and BOS get probability 0, so brute force over every output up to length 5 is cheap.
- :class:`PrefixTable`: probabilities written out by hand for each target prefix, for examples with
  a known answer (greedy and beam search parting, say).
- :func:`enumerate_outputs`: every complete output up to a length limit with its per-token
  log-probabilities and attention, computed one prefix at a time through ``step()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explorer.seq2seq.models.base import (
    BOS,
    EOS,
    PAD,
    SPECIAL_PIECES,
    UNK,
    ForwardOutput,
    Memory,
    Seq2Seq,
    StepOutput,
)


class ToyTokenizer:
    """Whole words as pieces; ids 0-3 are the special pieces, then the symbols in order."""

    def __init__(self, src_symbols=("x", "y", "z"), tgt_symbols=("a", "b", "c")):
        self.src_vocab = list(SPECIAL_PIECES) + list(src_symbols)
        self.tgt_vocab = list(SPECIAL_PIECES) + list(tgt_symbols)

    @property
    def src_vocab_size(self) -> int:
        return len(self.src_vocab)

    @property
    def tgt_vocab_size(self) -> int:
        return len(self.tgt_vocab)

    def piece_to_id(self, piece: str, side: str) -> int:
        vocab = self.src_vocab if side == "src" else self.tgt_vocab
        return vocab.index(piece) if piece in vocab else UNK

    def encode_src(self, text: str) -> list[int]:
        return [self.piece_to_id(w, "src") for w in text.split()] + [EOS]

    def src_pieces(self, ids) -> list[str]:
        return [self.src_vocab[i] for i in ids]

    def tgt_pieces(self, ids) -> list[str]:
        return [self.tgt_vocab[i] for i in ids]

    def tgt_piece(self, i: int) -> str:
        return self.tgt_vocab[i]

    def decode_tgt(self, ids) -> str:
        words = []
        for i in ids:
            if i == EOS:
                break
            if i >= len(SPECIAL_PIECES):
                words.append(self.tgt_vocab[i])
        return " ".join(words)


class _StepLoopForward(Seq2Seq):
    """forward() by stacking step() outputs: the toy models' teacher forcing."""

    def forward(self, src, src_lengths, tgt_in) -> ForwardOutput:
        memory = self.encode(src, src_lengths)
        state = self.start(memory)
        outs = []
        for t in range(tgt_in.shape[1]):
            out, state = self.step(memory, state, tgt_in[:, t])
            outs.append(out)

        def stack(name):
            return torch.stack([getattr(o, name) for o in outs], dim=1)

        return ForwardOutput(
            logits=stack("logits"),
            scores=stack("scores"),
            attention=stack("attention"),
            hidden=stack("hidden"),
            context=stack("context"),
            memory=memory,
        )


@dataclass
class ToyConfig:
    src_vocab: int = 7
    tgt_vocab: int = 7
    d_model: int = 4
    heads: int = 2
    sharpness: float = 1.5  # scales the Markov table; larger = more peaked distributions
    seed: int = 0


class ToyMarkov(_StepLoopForward):
    """s_t = tanh(E[y_{t-1}] + A s_{t-1});  e_hi = w_h (s_t · h_i);  α_h = softmax(e_h);
    c = mean_h Σ_i α_hi h_i;  z_t = M[y_{t-1}] + (s_t + c) U, with PAD/UNK/BOS logits -inf."""

    arch = "toy"

    def __init__(self, config: ToyConfig | None = None):
        super().__init__()
        self.config = c = config or ToyConfig()
        g = torch.Generator().manual_seed(c.seed)

        def rand(*shape, scale=1.0):
            return nn.Parameter(torch.randn(*shape, generator=g) * scale, requires_grad=False)

        self.E_src = rand(c.src_vocab, c.d_model)  # encoder embeddings
        self.P = rand(16, c.d_model, scale=0.5)  # source position embeddings
        self.E = rand(c.tgt_vocab, c.d_model)  # decoder embeddings
        self.A = rand(c.d_model, c.d_model, scale=0.5)  # recurrence
        self.M = rand(c.tgt_vocab, c.tgt_vocab, scale=c.sharpness)  # Markov table
        self.U = rand(c.d_model, c.tgt_vocab)  # output projection
        self.w = nn.Parameter(torch.linspace(0.5, 2.0, c.heads), requires_grad=False)
        banned = torch.zeros(c.tgt_vocab, dtype=torch.bool)
        banned[[PAD, UNK, BOS]] = True
        self.register_buffer("banned", banned)

    def encode(self, src, src_lengths) -> Memory:
        B, S = src.shape
        h = torch.tanh(self.E_src[src] + self.P[:S])  # (B, S, D)
        mask = torch.arange(S, device=src.device)[None, :] < src_lengths[:, None]  # (B, S)
        return Memory(states=h, mask=mask, extra={})

    def start(self, memory: Memory) -> torch.Tensor:
        return torch.zeros(memory.states.shape[0], self.config.d_model)  # (B, D)

    def step(self, memory: Memory, state: torch.Tensor, y_prev: torch.Tensor):
        s = torch.tanh(self.E[y_prev] + state @ self.A)  # (B, D)
        dots = torch.bmm(memory.states, s.unsqueeze(2)).squeeze(2)  # (B, S)
        e = self.w[None, :, None] * dots[:, None, :]  # (B, H, S)
        e = e.masked_fill(~memory.mask[:, None, :], float("-inf"))
        alpha = torch.softmax(e, dim=-1)  # (B, H, S)
        c = torch.einsum("bhs,bsd->bd", alpha, memory.states) / alpha.shape[1]  # (B, D)
        logits = self.M[y_prev] + (s + c) @ self.U  # (B, V)
        logits = logits.masked_fill(self.banned, float("-inf"))
        out = StepOutput(
            logits=logits,
            scores=e.unsqueeze(1),  # (B, 1, H, S)
            attention=alpha.unsqueeze(1),
            hidden=s.unsqueeze(1),  # (B, 1, D)
            context=c.unsqueeze(1),
        )
        return out, s


class PrefixTable(_StepLoopForward):
    """p(· | y_<t) read from ``table[tuple(y_<t)]`` (a dict of token → probability), or
    ``default`` for prefixes not listed. The source only feeds a uniform attention.
    Its decoder state is the (B, t) history of fed tokens."""

    arch = "table"

    def __init__(self, table: dict, default: dict, vocab: int = 7):
        super().__init__()
        self.table, self.default, self.V = table, default, vocab
        self.dummy = nn.Parameter(torch.zeros(1), requires_grad=False)

    def _logits(self, probs: dict) -> torch.Tensor:
        z = torch.full((self.V,), float("-inf"))
        for tok, p in probs.items():
            z[tok] = math.log(p)
        return z

    def encode(self, src, src_lengths) -> Memory:
        B, S = src.shape
        mask = torch.arange(S)[None, :] < src_lengths[:, None]
        return Memory(states=F.one_hot(src, 8).float(), mask=mask, extra={})

    def start(self, memory: Memory) -> torch.Tensor:
        return torch.zeros(memory.states.shape[0], 0, dtype=torch.long)  # (B, 0)

    def step(self, memory: Memory, state: torch.Tensor, y_prev: torch.Tensor):
        hist = torch.cat([state, y_prev[:, None]], dim=1)  # (B, t+1), BOS first
        logits = torch.stack(
            [self._logits(self.table.get(tuple(h[1:].tolist()), self.default)) for h in hist]
        )
        alpha = memory.mask.float() / memory.mask.sum(1, keepdim=True)  # (B, S)
        B = hist.shape[0]
        out = StepOutput(
            logits=logits,
            scores=torch.zeros_like(alpha).masked_fill(~memory.mask, float("-inf"))[:, None, None],
            attention=alpha[:, None, None],
            hidden=torch.zeros(B, 1, 2),
            context=torch.zeros(B, 1, 2),
        )
        return out, hist


A, B_, C = 4, 5, 6  # target symbols a, b, c of ToyTokenizer

# Greedy takes c, a, </s> (0.9·0.5·0.35 = 0.1575); the best output is c, b, </s> (0.9·0.4·0.9 =
# 0.324). They part at step 1.
PARTING_TABLE = {
    (): {C: 0.9, A: 0.05, B_: 0.03, EOS: 0.02},
    (C,): {A: 0.5, B_: 0.4, EOS: 0.1},
    (C, A): {EOS: 0.35, A: 0.33, B_: 0.32},
    (C, B_): {EOS: 0.9, A: 0.06, B_: 0.04},
}
PARTING_DEFAULT = {EOS: 0.7, A: 0.2, B_: 0.1}


@dataclass
class Output:
    tokens: tuple[int, ...]
    logprobs: np.ndarray  # (T,) float64
    attention: np.ndarray | None  # (T, S) last layer, mean over heads


def enumerate_outputs(model: Seq2Seq, src_ids, max_len: int) -> list[Output]:
    """Every output with ≤ max_len tokens that ends in </s> or reaches max_len, by depth-first
    search through ``step()`` with one prefix at a time (tokens of probability 0 skipped)."""
    model.eval()
    results: list[Output] = []
    with torch.no_grad():
        src = torch.tensor([list(src_ids)])
        memory = model.encode(src, torch.tensor([len(src_ids)]))

        def visit(state, y_prev, tokens, lps, atts):
            out, state = model.step(memory, state, torch.tensor([y_prev]))
            logp = F.log_softmax(out.logits.float(), dim=-1)[0].double().numpy()
            att = None if out.attention is None else out.attention[0, -1].mean(0).numpy()
            for tok in np.flatnonzero(np.isfinite(logp)):
                tok = int(tok)
                t2, l2, a2 = tokens + (tok,), lps + [logp[tok]], atts + [att]
                if tok == EOS or len(t2) == max_len:
                    attn = None if att is None else np.stack(a2).astype(np.float64)
                    results.append(Output(t2, np.array(l2), attn))
                else:
                    visit(state, tok, t2, l2, a2)

        visit(model.start(memory), BOS, (), [], [])
    return results


def normalized(
    logprobs: np.ndarray, attention, length_penalty: str, alpha: float, beta: float
) -> float:
    """The scoring formulas, written out independently of beam.py."""
    S, L = float(np.sum(logprobs)), len(logprobs)
    if length_penalty == "avg":
        S = S / L**alpha
    elif length_penalty == "gnmt":
        S = S / ((5 + L) / 6) ** alpha
    if beta:
        coverage = np.asarray(attention).sum(axis=0)  # Σ_j α_ij for each source word i
        S += beta * float(np.log(np.clip(coverage, 1e-6, 1.0)).sum())
    return S


REAL_ARCHS = ["none", "bahdanau", "luong-dot", "luong-general", "transformer"]
WIDE_TOK = ToyTokenizer(src_symbols=tuple("pqrstuvw"), tgt_symbols=tuple("abcdefghij"))


def tiny_real_model(arch: str, cell: str = "gru", seed: int = 0) -> Seq2Seq:
    """A small untrained model of a real family."""
    from explorer.seq2seq.models.families import build_model

    sizes = {"src_vocab": WIDE_TOK.src_vocab_size, "tgt_vocab": WIDE_TOK.tgt_vocab_size}
    if arch == "transformer":
        config = dict(d_model=16, heads=2, enc_layers=2, dec_layers=2, d_ff=32, max_len=64)
    else:
        config = dict(emb_dim=8, hidden_dim=12, layers=2, cell=cell)
    torch.manual_seed(seed)
    return build_model({"arch": arch, **sizes, **config, "dropout": 0.1})
