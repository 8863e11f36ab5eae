"""Exact search: the provably best outputs, to tell search errors from model errors.

``exact_search`` is best-first (uniform-cost) search over prefixes. Every log-probability is ≤ 0,
so a prefix's score S bounds every completion of it (decoding.md §4). Complete outputs (ending in
EOS, or reaching ``max_len`` tokens) are collected as prefixes are expanded, best S first; the
search stops once the n-th best complete output scores at least the bound of the best unexpanded
prefix. For S that bound is S itself (Dijkstra). A length-only penalty breaks monotonicity, but
a completion of length L ≤ max_len still scores at most S / lp(L), maximised over L: the same
search stays exact. The coverage penalty depends on the attention path and is not supported.

``search_error`` answers the classroom question "search error or model error?" (Stahlberg & Byrne
2019): beam search made a search error when the exact search found a better-scoring output.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from explorer.seq2seq.decoding.beam import BeamResult, BeamSettings
from explorer.seq2seq.decoding.decode import (
    DecodeError,
    Source,
    as_source,
    inference,
    pad_sources,
)
from explorer.seq2seq.decoding.scoring import Hypothesis, Scorer, make_hypothesis
from explorer.seq2seq.models.base import BOS, EOS, Seq2Seq

if TYPE_CHECKING:
    from explorer.seq2seq.data.tokenizer import TokenizerLike


class SearchLimitError(DecodeError):
    """Exact search gave up before proving its answer optimal."""


@dataclass(frozen=True, eq=False)
class ExactResult:
    nbest: list[Hypothesis]  # best first
    expansions: int  # prefixes the model was run on
    empty_score: float  # log p(EOS | x) at step 0: the empty translation's score
    formula: str

    @property
    def best(self) -> Hypothesis:
        return self.nbest[0]

    @property
    def tokens(self) -> tuple[int, ...]:
        return self.best.tokens

    @property
    def pieces(self) -> tuple[str, ...]:
        return self.best.pieces

    @property
    def text(self) -> str:
        return self.best.text

    @property
    def score(self) -> float:
        """S of the best output."""
        return self.best.score

    @property
    def normalized_score(self) -> float:
        return self.best.normalized_score


@dataclass(frozen=True)
class _Path:
    """A prefix as a linked list, so siblings share their history."""

    token: int
    logprob: float
    attn: np.ndarray | None
    parent: _Path | None

    def unroll(self) -> list[_Path]:
        out, p = [], self
        while p is not None:
            out.append(p)
            p = p.parent
        return out[::-1]


def _hypothesis(tokenizer: TokenizerLike, path: _Path, scorer: Scorer) -> Hypothesis:
    steps = path.unroll()
    attn = None if steps[0].attn is None else np.stack([p.attn for p in steps]).astype(np.float64)
    return make_hypothesis(
        tokenizer, [p.token for p in steps], [p.logprob for p in steps], attn, scorer
    )


def _encode_one(model: Seq2Seq, ids: Sequence[int]):
    src, lengths = pad_sources([ids], model.device)
    return model.encode(src, lengths)


def empty_translation_score(
    model: Seq2Seq, tokenizer: TokenizerLike, src: str | Sequence[int]
) -> float:
    """log p(EOS | BOS, x): the score of the empty translation."""
    source = as_source(tokenizer, src)
    with inference(model):
        memory = _encode_one(model, source.ids)
        bos = torch.full((1,), BOS, dtype=torch.long, device=model.device)
        out, _ = model.step(memory, model.start(memory), bos)
        return float(F.log_softmax(out.logits.float(), dim=-1)[0, EOS])


def _step_one(model: Seq2Seq, memory, state, y_prev: int, S_len: int):
    """log p over the vocabulary (V,), the attention row (S,) or None, and the new state."""
    y = torch.full((1,), y_prev, dtype=torch.long, device=model.device)
    out, new_state = model.step(memory, state, y)
    logp = F.log_softmax(out.logits.float(), dim=-1)[0].cpu().numpy()  # (V,)
    attn = None
    if out.attention is not None:
        attn = out.attention[0, -1].float().mean(dim=0).cpu().numpy()[:S_len]  # (S,)
    return logp, attn, new_state


def _coverage(path: _Path, beta: float) -> np.ndarray | None:
    """Σ_j α_j along a complete output, when the coverage penalty needs it."""
    if not beta:
        return None
    if path.attn is None:
        raise DecodeError("beta: the coverage penalty needs a model with attention")
    return np.sum([p.attn for p in path.unroll()], axis=0, dtype=np.float64)


def _nth_best(complete: list[tuple[float, int, _Path]], n: int) -> float:
    return sorted(complete, key=lambda c: (-c[0], c[1]))[n - 1][0]


def exact_search(
    model: Seq2Seq,
    tokenizer: TokenizerLike,
    src: str | Sequence[int] | Source,
    *,
    max_len: int,
    length_penalty: str = "none",
    alpha: float = 0.0,
    beta: float = 0.0,
    nbest: int = 1,
    max_expansions: int = 20_000,
) -> ExactResult:
    """The n outputs of at most ``max_len`` tokens with the best S / lp(|Y|) + β·cp, provably.

    Raises :class:`SearchLimitError` after ``max_expansions`` model calls without a proof.
    """
    scorer = Scorer(length_penalty, alpha, beta)
    BeamSettings(beam=nbest, nbest=nbest, max_len=max_len)  # validates nbest and max_len
    source = as_source(tokenizer, src)
    lp_max = float(np.max(scorer.lp(np.arange(1, max_len + 1))))
    complete: list[tuple[float, int, _Path]] = []  # (normalised, tie-break, path)
    counter = itertools.count()
    expansions, empty = 0, None
    with inference(model):
        memory = _encode_one(model, source.ids)
        # heap of unexpanded prefixes: (-S, tie-break, S, length, path, state, last token)
        heap = [(-0.0, next(counter), 0.0, 0, None, model.start(memory), BOS)]
        while heap:
            S = heap[0][2]
            bound = S if scorer.length_penalty == "none" else S / lp_max
            if len(complete) >= nbest and _nth_best(complete, nbest) >= bound:
                break
            if expansions >= max_expansions:
                raise SearchLimitError(
                    f"exact_search: no proof of optimality after {max_expansions} expansions "
                    f"(max_len={max_len}); lower max_len or raise max_expansions"
                )
            _, _, S, length, path, state, y_prev = heapq.heappop(heap)
            expansions += 1
            logp, attn, new_state = _step_one(model, memory, state, y_prev, len(source.ids))
            if empty is None:
                empty = float(logp[EOS])
            for tok in np.flatnonzero(np.isfinite(logp)):
                child, L = _Path(int(tok), float(logp[tok]), attn, path), length + 1
                S_child = S + child.logprob
                if child.token == EOS or L == max_len:
                    norm = scorer(S_child, L, _coverage(child, beta))
                    complete.append((norm, next(counter), child))
                else:
                    entry = (-S_child, next(counter), S_child, L, child, new_state, child.token)
                    heapq.heappush(heap, entry)
    complete.sort(key=lambda c: (-c[0], c[1]))
    nbest_h = [_hypothesis(tokenizer, c[2], scorer) for c in complete[:nbest]]
    return ExactResult(nbest_h, expansions, float(empty), scorer.formula)


def search_error(beam_result: BeamResult, exact_result: ExactResult, tol: float = 1e-6) -> bool:
    """True when exact search found an output the beam's scoring formula ranks above the beam's
    best: a search error. False means the beam's answer is the model's own best (any flaw in it
    is a model error)."""
    if beam_result.best.formula != exact_result.formula:
        raise DecodeError(
            f"search_error: beam scored with {beam_result.best.formula!r} but exact search with "
            f"{exact_result.formula!r}; run both with the same length_penalty and alpha"
        )
    return exact_result.best.normalized_score > beam_result.best.normalized_score + tol
