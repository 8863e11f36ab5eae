"""Exact search, and a one-hypothesis-at-a-time beam search, as oracles for the batched one.

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
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from explorer.seq2seq.decoding.beam import (
    BeamResult,
    BeamSettings,
    Hypothesis,
    Scorer,
    _as_sources,
    make_hypothesis,
)
from explorer.seq2seq.decoding.decode import (
    DecodeError,
    as_source,
    inference,
    pad_sources,
    target_ids,
    within_positions,
)
from explorer.seq2seq.models.base import BOS, EOS, Seq2Seq


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


def _hypothesis(tokenizer: Any, path: _Path, scorer: Scorer) -> Hypothesis:
    steps = path.unroll()
    attn = None if steps[0].attn is None else np.stack([p.attn for p in steps]).astype(np.float64)
    return make_hypothesis(
        tokenizer, [p.token for p in steps], [p.logprob for p in steps], attn, scorer
    )


def _encode_one(model: Seq2Seq, ids: Sequence[int]):
    src, lengths = pad_sources([ids], model.device)
    return model.encode(src, lengths)


def empty_translation_score(model: Seq2Seq, tokenizer: Any, src: str | Sequence[int]) -> float:
    """log p(EOS | BOS, x): the score of the empty translation."""
    source = as_source(tokenizer, src)
    with inference(model):
        memory = _encode_one(model, source.ids)
        bos = torch.full((1,), BOS, dtype=torch.long, device=model.device)
        out, _ = model.step(memory, model.start(memory), bos)
        return float(F.log_softmax(out.logits.float(), dim=-1)[0, EOS])


def exact_search(
    model: Seq2Seq,
    tokenizer: Any,
    src: str | Sequence[int],
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
    S_len = len(source.ids)
    lp_max = float(np.max(scorer.lp(np.arange(1, max_len + 1))))
    complete: list[tuple[float, int, _Path]] = []  # (normalised, tie-break, path)
    counter = itertools.count()
    expansions = 0
    with inference(model):
        memory = _encode_one(model, source.ids)
        # heap of unexpanded prefixes: (-S, tie-break, S, length, path, state, last token)
        heap = [(-0.0, next(counter), 0.0, 0, None, model.start(memory), BOS)]
        empty = None
        while heap:
            _, _, S, length, path, state, y_prev = heap[0]
            if len(complete) >= nbest:
                nth = sorted(complete, key=lambda c: (-c[0], c[1]))[nbest - 1][0]
                bound = S if scorer.length_penalty == "none" else S / lp_max
                if nth >= bound:
                    break
            if expansions >= max_expansions:
                raise SearchLimitError(
                    f"exact_search: no proof of optimality after {max_expansions} expansions "
                    f"(max_len={max_len}); lower max_len or raise max_expansions"
                )
            heapq.heappop(heap)
            expansions += 1
            y = torch.full((1,), y_prev, dtype=torch.long, device=model.device)
            out, new_state = model.step(memory, state, y)
            logp = F.log_softmax(out.logits.float(), dim=-1)[0].cpu().numpy()  # (V,)
            attn = None
            if out.attention is not None:
                attn = out.attention[0, -1].float().mean(dim=0).cpu().numpy()[:S_len]  # (S,)
            if empty is None:
                empty = float(logp[EOS])
            for tok in np.flatnonzero(np.isfinite(logp)):
                tok, lp = int(tok), float(logp[tok])
                child = _Path(tok, lp, attn, path)
                S_child = S + lp
                if tok == EOS or length + 1 == max_len:
                    cov = None
                    if beta:
                        if attn is None:
                            raise DecodeError(
                                "beta: the coverage penalty needs a model with attention"
                            )
                        cov = np.sum([p.attn for p in child.unroll()], axis=0, dtype=np.float64)
                    norm = scorer(S_child, length + 1, cov)
                    complete.append((norm, next(counter), child))
                else:
                    entry = (-S_child, next(counter), S_child, length + 1, child, new_state, tok)
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


# --------------------------------------------------------------- one hypothesis at a time


@dataclass
class _Hyp:
    path: _Path | None
    score: float
    state: Any
    last: int


def beam_search_reference(
    model: Seq2Seq,
    tokenizer: Any,
    sentences: str | Sequence[int] | Sequence[str | Sequence[int]],
    *,
    beam: int = 5,
    nbest: int = 1,
    max_len: int | None = None,
    max_len_a: float = 2.0,
    max_len_b: int = 10,
    min_len: int = 0,
    length_penalty: str = "none",
    alpha: float = 0.0,
    beta: float = 0.0,
    stop: str = "bound",
    prefix: str | Sequence[int] | None = None,
) -> list[BeamResult]:
    """The search :func:`beam.beam_search` does, written plainly: one sentence and one hypothesis
    per model call. Same candidates, same fates, same stopping; no tree, no greedy run."""
    scorer = Scorer(length_penalty, alpha, beta)
    s = BeamSettings(beam, nbest, max_len, max_len_a, max_len_b, min_len, stop, scorer)
    k = int(beam)
    forced = [] if prefix is None else target_ids(tokenizer, prefix, "prefix")
    results = []
    with inference(model):
        for source in _as_sources(tokenizer, sentences):
            T = within_positions(model, s.limit(len(source.ids), len(forced)))
            memory = _encode_one(model, source.ids)
            live = [_Hyp(None, 0.0, model.start(memory), BOS)]
            finished: list[tuple[float, int, _Path]] = []
            reason, order = "", itertools.count()
            for t in range(T):
                cands = []  # (score, flat index, logprob, token, hypothesis, state, attention)
                for h_i, h in enumerate(live):
                    y = torch.full((1,), h.last, dtype=torch.long, device=model.device)
                    out, state = model.step(memory, h.state, y)
                    logp = F.log_softmax(out.logits.float(), dim=-1)[0]  # (V,)
                    search = logp.double()
                    if t < len(forced):
                        search = torch.full_like(search, float("-inf"))
                        search[forced[t]] = float(logp[forced[t]])
                    if t < min_len:
                        search[EOS] = float("-inf")
                    attn = None
                    if out.attention is not None:
                        attn = out.attention[0, -1].float().mean(dim=0).cpu().numpy()
                        attn = attn[: len(source.ids)]
                    vals, toks = (h.score + search).topk(min(2 * k, search.shape[0]))
                    for v, tok in zip(vals.tolist(), toks.tolist(), strict=True):
                        if v > float("-inf"):
                            flat = h_i * search.shape[0] + tok
                            cands.append((v, flat, float(logp[tok]), tok, h, state, attn))
                if t < len(forced) and not cands:
                    raise DecodeError(
                        f"prefix: token {forced[t]} has probability 0 under the model"
                    )
                if beta and cands and cands[0][6] is None:
                    raise DecodeError("beta: the coverage penalty needs a model with attention")
                cands.sort(key=lambda c: (-c[0], c[1]))
                next_live = []
                for rank, (v, _, lp, tok, h, state, attn) in enumerate(cands[: 2 * k]):
                    node = _Path(tok, lp, attn, h.path)
                    if (tok == EOS or t + 1 >= T) and rank < k:
                        steps = node.unroll()
                        cov = (
                            np.sum([p.attn for p in steps], axis=0, dtype=np.float64)
                            if beta
                            else None
                        )
                        finished.append((scorer(v, t + 1, cov), next(order), node))
                    elif tok != EOS and t + 1 < T and len(next_live) < k:
                        next_live.append(_Hyp(node, v, state, tok))
                live = next_live
                if t + 1 >= T:
                    reason = "max-length"
                elif not live:
                    reason = "exhausted"
                elif stop == "bound" and len(finished) >= nbest:
                    nth = sorted((f[0] for f in finished), reverse=True)[nbest - 1]
                    if nth >= scorer.bound(max(h.score for h in live), t + 2, T):
                        reason = "bound"
                if reason:
                    break
            finished.sort(key=lambda f: (-f[0], f[1]))
            hyps = [_hypothesis(tokenizer, f[2], scorer) for f in finished[:nbest]]
            results.append(BeamResult(hyps, None, None, None, reason))
    return results
