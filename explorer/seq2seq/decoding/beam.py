"""Batched beam search that records its whole tree.

Notation (decoding.md §1): S(y) = Σ_t log p(y_t | y_<t, x) is the cumulative log-probability, |Y|
the number of emitted tokens (end-of-sentence included), α_ij the attention of target step j on
source word i (last layer, mean over heads). Finished hypotheses are ranked by

- ``none``: S
- ``avg``:  S / |Y|^a
- ``gnmt``: S / ((5 + |Y|) / 6)^a                                   (Wu et al. 2016, §7)

plus, when β ≠ 0, the GNMT coverage penalty β · cp with cp = Σ_i log min(max(Σ_j α_ij, ε), 1),
ε = 1e-6 (the clamp keeps an unattended word from giving -inf). Live hypotheses all have the same
length, so they are ranked by S alone and the penalties only decide among finished ones.

Each step: one model call for every live hypothesis of every sentence; a top-K over beam × V with
K = 2·beam (so beam non-EOS continuations exist even when EOS takes top slots, as in fairseq). An
EOS candidate ranked inside the beam finishes; the best ``beam`` non-EOS candidates stay live. At
the length limit every candidate ranked inside the beam finishes. At step 0 only one hypothesis is
live. Stopping: ``exhausted`` runs until nothing is live; ``bound`` stops as soon as no live
hypothesis can beat the n-th best finished one. For S the bound is the best live S (scores only
fall). With a penalty the naive bound is not admissible (OpenNMT-py #1320), so the safe bound is
used: a completion of length L ≤ max_len scores at most S_live / lp(L) + 0, maximised over L.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from explorer.seq2seq.decoding.decode import (
    DecodeError,
    Source,
    as_source,
    default_max_len,
    encoder_fields,
    greedy,
    inference,
    pad_sources,
    step_records,
    target_ids,
    within_positions,
)
from explorer.seq2seq.decoding.trace import BeamNode, BeamTree, DecodeStep, Fate, Trace
from explorer.seq2seq.models.base import BOS, EOS, Seq2Seq

PENALTIES = ("none", "avg", "gnmt")
STOPS = ("bound", "exhausted")
COVERAGE_EPS = 1e-6


@dataclass(frozen=True)
class Scorer:
    """The score finished hypotheses are ranked by: S / lp(|Y|) + β · cp."""

    length_penalty: str = "none"
    alpha: float = 0.0
    beta: float = 0.0

    def __post_init__(self) -> None:
        if self.length_penalty not in PENALTIES:
            raise DecodeError(
                f"length_penalty must be one of {', '.join(PENALTIES)}; got {self.length_penalty!r}"
            )
        if not self.beta >= 0:  # the stopping bounds rely on β·cp ≤ 0
            raise DecodeError(f"beta must be >= 0, got {self.beta!r}")

    def lp(self, length: int | np.ndarray) -> float | np.ndarray:
        """The length divisor lp(|Y|)."""
        L = np.asarray(length, dtype=np.float64)
        if self.length_penalty == "avg":
            return L**self.alpha
        if self.length_penalty == "gnmt":
            return ((5.0 + L) / 6.0) ** self.alpha
        return np.ones_like(L)

    def cp(self, coverage: np.ndarray | None) -> float:
        """Σ_i log min(max(coverage_i, ε), 1) over the real source words."""
        if coverage is None:
            return 0.0
        return float(np.log(np.clip(coverage, COVERAGE_EPS, 1.0)).sum())

    def __call__(self, S: float, length: int, coverage: np.ndarray | None) -> float:
        score = S / float(self.lp(length)) if self.length_penalty != "none" else S
        return score + self.beta * self.cp(coverage) if self.beta else score

    @property
    def formula(self) -> str:
        a = f"{self.alpha:g}"
        base = {"none": "S", "avg": f"S/|Y|^{a}", "gnmt": f"S/((5+|Y|)/6)^{a}"}
        text = base[self.length_penalty]
        return text + f" + {self.beta:g}·cp" if self.beta else text

    def bound(self, S_live: float, min_length: int, max_length: int) -> float:
        """The best score any completion of a live hypothesis with score S_live can reach."""
        if self.length_penalty == "none" or S_live == float("-inf"):
            return S_live
        lengths = np.arange(min_length, max(min_length, max_length) + 1)
        return float(np.max(S_live / self.lp(lengths)))  # cp ≤ 0, so 0 bounds it


@dataclass(frozen=True, eq=False)
class Hypothesis:
    tokens: tuple[int, ...]  # emitted tokens, end-of-sentence included when emitted
    pieces: tuple[str, ...]
    text: str
    token_logprobs: np.ndarray  # (T,) one per emitted token
    score: float  # S: their sum
    normalized_score: float  # what the search ranked finished hypotheses by
    formula: str
    attention: np.ndarray | None  # (T, S) last layer, mean over heads

    @property
    def finished(self) -> bool:
        return bool(self.tokens) and self.tokens[-1] == EOS


def make_hypothesis(
    tokenizer: Any,
    tokens: Sequence[int],
    logprobs: Sequence[float],
    attention: np.ndarray | None,
    scorer: Scorer,
) -> Hypothesis:
    lps = np.asarray(logprobs, dtype=np.float64)
    S = float(lps.sum())
    coverage = None if attention is None or not scorer.beta else attention.sum(axis=0)
    return Hypothesis(
        tokens=tuple(int(t) for t in tokens),
        pieces=tuple(tokenizer.tgt_pieces(list(tokens))),
        text=tokenizer.decode_tgt(list(tokens)),
        token_logprobs=lps,
        score=S,
        normalized_score=scorer(S, len(lps), coverage),
        formula=scorer.formula,
        attention=attention,
    )


@dataclass(frozen=True, eq=False)
class BeamResult:
    nbest: list[Hypothesis]  # best first
    tree: BeamTree | None  # None when record_tree=False
    greedy: Trace | None
    divergence: int | None  # first step where greedy's tokens differ from the best hypothesis
    stop_reason: str  # "bound" | "exhausted" | "max-length"

    @property
    def best(self) -> Hypothesis:
        return self.nbest[0]


def divergence(a: Sequence[int], b: Sequence[int]) -> int | None:
    """First index where two token sequences differ (the shorter length if one extends the
    other); None when equal."""
    for t, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return t
    return None if len(a) == len(b) else min(len(a), len(b))


@dataclass(frozen=True)
class BeamSettings:
    beam: int = 5
    nbest: int = 1
    max_len: int | None = None
    max_len_a: float = 2.0
    max_len_b: int = 10
    min_len: int = 0
    stop: str = "bound"
    scorer: Scorer = field(default_factory=Scorer)

    def __post_init__(self) -> None:
        for name in ("beam", "nbest"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise DecodeError(f"{name} must be a positive integer, got {v!r}")
        if self.nbest > self.beam:
            raise DecodeError(f"nbest ({self.nbest}) cannot exceed beam ({self.beam})")
        if self.max_len is not None and (int(self.max_len) != self.max_len or self.max_len < 1):
            raise DecodeError(f"max_len must be a positive integer, got {self.max_len!r}")
        if int(self.min_len) != self.min_len or self.min_len < 0:
            raise DecodeError(f"min_len must be a non-negative integer, got {self.min_len!r}")
        if self.stop not in STOPS:
            raise DecodeError(f"stop must be one of {', '.join(STOPS)}; got {self.stop!r}")

    def limit(self, src_len: int, n_forced: int) -> int:
        T = self.max_len or default_max_len(src_len, self.max_len_a, self.max_len_b)
        return max(T, n_forced)

    def as_dict(self, T: int) -> dict:
        s = self.scorer
        bound = "S_live" if s.length_penalty == "none" else "max_L S_live/lp(L) (admissible)"
        return {
            "beam": self.beam,
            "nbest": self.nbest,
            "max_len": T,
            "min_len": self.min_len,
            "length_penalty": s.length_penalty,
            "alpha": s.alpha,
            "beta": s.beta,
            "formula": s.formula,
            "stop": self.stop,
            "bound": bound if self.stop == "bound" else None,
        }


@dataclass(eq=False)
class _Node:
    parent: int
    step: int
    token: int
    logprob: float
    score: float
    normalized: float
    rank: int
    fate: Fate
    coverage: np.ndarray | None  # Σ_j α_j along this hypothesis (None when not needed)
    attn: np.ndarray | None  # (S,) the attention row of the step that emitted this token
    record: DecodeStep | None  # the parent's expansion, shared by siblings


@dataclass(eq=False)
class _Sentence:
    source: Source
    T: int  # length limit
    nodes: list[_Node]
    finished: list[int] = field(default_factory=list)
    stop_reason: str = ""

    def nth_best(self, n: int) -> float:
        scores = sorted((self.nodes[i].normalized for i in self.finished), reverse=True)
        return scores[n - 1] if len(scores) >= n else float("-inf")


@dataclass
class _Candidate:
    rank: int
    row: int
    token: int
    score: float
    logprob: float
    extra: bool = False  # a live row's best continuation, outside the step's top K


def _root() -> _Node:
    return _Node(-1, -1, BOS, 0.0, 0.0, 0.0, 0, Fate.KEPT, None, None, None)


def _assign_fates(cands: list[_Candidate], k: int, last: bool) -> list[tuple[_Candidate, Fate]]:
    """Within the beam: EOS (or anything at the length limit) finishes; the best k non-EOS stay."""
    out, kept = [], 0
    for c in cands:
        final = c.token == EOS or last
        if final and c.rank < k and not c.extra:
            out.append((c, Fate.FINISHED))
        elif not final and kept < k and not c.extra:
            out.append((c, Fate.KEPT))
            kept += 1
        else:
            out.append((c, Fate.PRUNED))
    return out


def _check_stop(sent: _Sentence, live: list[int], t: int, s: BeamSettings) -> bool:
    """Decide whether the sentence is done after step t; sets its stop reason."""
    if t + 1 >= sent.T:
        sent.stop_reason = "max-length"
    elif not live:
        sent.stop_reason = "exhausted"
    elif s.stop == "bound" and len(sent.finished) >= s.nbest:
        best_live = max(sent.nodes[n].score for n in live)
        if sent.nth_best(s.nbest) >= s.scorer.bound(best_live, t + 2, sent.T):
            sent.stop_reason = "bound"
            for n in live:  # never expanded: cut off by the bound
                sent.nodes[n].fate = Fate.PRUNED
    return bool(sent.stop_reason)


def _finish(
    model: Seq2Seq,
    tokenizer: Any,
    sent: _Sentence,
    s: BeamSettings,
    memory_fields: dict | None,
    record_tree: bool,
    greedy_trace: Trace | None,
) -> BeamResult:
    nodes = sent.nodes
    order = sorted(sent.finished, key=lambda i: (-nodes[i].normalized, i))
    if order:
        nodes[order[0]].fate = Fate.CHOSEN
    nbest = []
    for i in order[: s.nbest]:
        path = []
        while i > 0:
            path.append(nodes[i])
            i = nodes[i].parent
        path.reverse()
        attn = None if path[0].attn is None else np.stack([n.attn for n in path]).astype(np.float64)
        nbest.append(
            make_hypothesis(
                tokenizer, [n.token for n in path], [n.logprob for n in path], attn, s.scorer
            )
        )
    div = (
        None
        if greedy_trace is None or not nbest
        else divergence(greedy_trace.tokens, nbest[0].tokens)
    )
    tree = None
    if record_tree:
        beam_nodes = [
            BeamNode(
                id=i,
                parent=n.parent,
                step=n.step,
                token=n.token,
                piece=tokenizer.tgt_piece(n.token),
                logprob=n.logprob,
                score=n.score,
                normalized_score=n.normalized,
                rank=n.rank,
                fate=n.fate,
                record=n.record,
            )
            for i, n in enumerate(nodes)
        ]
        tree = BeamTree(
            source=sent.source.text,
            src_tokens=sent.source.ids,
            src_pieces=tuple(tokenizer.src_pieces(list(sent.source.ids))),
            nodes=tuple(beam_nodes),
            finished=tuple(order),
            arch=getattr(model, "arch", ""),
            eos_id=EOS,
            settings=s.as_dict(sent.T),
            stop_reason=sent.stop_reason,
            greedy=greedy_trace,
            divergence=div,
            **memory_fields,
        )
    return BeamResult(nbest, tree, greedy_trace, div, sent.stop_reason)


def _as_sources(tokenizer: Any, sentences: Any) -> list[Source]:
    if isinstance(sentences, (str, torch.Tensor)) or (
        isinstance(sentences, (Sequence, np.ndarray))
        and len(sentences)
        and isinstance(sentences[0], (int, np.integer))
    ):
        sentences = [sentences]
    if not sentences:
        raise DecodeError("sentences: nothing to decode (empty list)")
    return [as_source(tokenizer, x) for x in sentences]


def beam_search(
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
    record_tree: bool = True,
    with_greedy: bool = True,
) -> list[BeamResult]:
    """Beam search over one sentence or many (one :class:`BeamResult` each, in input order).

    ``max_len`` (or a·|x| + b) caps the emitted tokens; ``min_len`` forbids EOS before that many
    tokens; ``prefix`` forces the first tokens. With ``record_tree`` every candidate considered is
    kept in ``result.tree``: per step the top 2·beam over beam × V, plus each live hypothesis's best
    continuation when none of its own made that list. ``with_greedy`` also decodes greedily (same
    length limit and prefix) and reports where greedy leaves the best hypothesis.
    """
    s = BeamSettings(
        beam,
        nbest,
        max_len,
        max_len_a,
        max_len_b,
        min_len,
        stop,
        Scorer(length_penalty, alpha, beta),
    )
    k, V = int(beam), tokenizer.tgt_vocab_size
    sources = _as_sources(tokenizer, sentences)
    forced = [] if prefix is None else target_ids(tokenizer, prefix, "prefix")
    sents = [
        _Sentence(src, within_positions(model, s.limit(len(src.ids), len(forced))), [_root()])
        for src in sources
    ]
    with inference(model):
        src_t, lengths = pad_sources([x.ids for x in sources], model.device)  # (B, S)
        memory = model.encode(src_t, lengths)
        memory_fields = [encoder_fields(memory, b, len(x.ids)) for b, x in enumerate(sources)]
        device = src_t.device
        active = list(range(len(sents)))  # sentences still searching
        row_index = torch.arange(len(sents), device=device).repeat_interleave(k)  # (B·k,)
        mem = memory.index_select(row_index)
        state = model.start(mem)
        n = len(active) * k
        live_node = [0 if r % k == 0 else -1 for r in range(n)]  # node id per row, -1 = empty
        live_score = torch.full((n,), float("-inf"), dtype=torch.float64, device=device)
        live_score[::k] = 0.0
        y_prev = torch.full((n,), BOS, dtype=torch.long, device=device)
        t = 0
        while active:
            out, state = model.step(mem, state, y_prev)
            logp = F.log_softmax(out.logits.float(), dim=-1)  # (n, V)
            if out.attention is None and beta:
                raise DecodeError("beta: the coverage penalty needs a model with attention")
            search = logp.double()
            if t < len(forced):
                search = torch.full_like(search, float("-inf"))
                search[:, forced[t]] = logp[:, forced[t]].double()
            if t < s.min_len:
                search[:, EOS] = float("-inf")
            cand = live_score[:, None] + search  # (n, V)
            flat = cand.view(len(active), k * V)  # (B_act, k·V)
            K = min(2 * k, k * V)
            top_val, top_idx = flat.topk(K, dim=1)  # (B_act, K)
            top_lp = logp.view(len(active), k * V).gather(1, top_idx)
            best_val, best_tok = cand.max(dim=1)  # (n,)
            best_lp = logp.gather(1, best_tok[:, None])[:, 0]
            top_val, top_idx, top_lp = top_val.tolist(), top_idx.tolist(), top_lp.tolist()
            best_val, best_tok, best_lp = best_val.tolist(), best_tok.tolist(), best_lp.tolist()
            att = None
            if out.attention is not None:
                att = out.attention[:, -1].float().mean(dim=1).cpu().numpy()  # (n, S_max)

            # candidates per sentence, in rank order, plus each expanded row's best as a leaf
            cands_of: list[list[_Candidate]] = []
            for i in range(len(active)):
                cands = []
                for r in range(K):
                    if top_val[i][r] == float("-inf"):
                        break
                    slot, tok = divmod(top_idx[i][r], V)
                    cands.append(_Candidate(r, i * k + slot, tok, top_val[i][r], top_lp[i][r]))
                seen = {c.row for c in cands}
                for row in range(i * k, (i + 1) * k):
                    if row not in seen and live_node[row] >= 0 and best_val[row] > float("-inf"):
                        rank = int((flat[i] > best_val[row]).sum())
                        cands.append(
                            _Candidate(rank, row, best_tok[row], best_val[row], best_lp[row], True)
                        )
                cands_of.append(cands)
            if t < len(forced) and any(not cs for cs in cands_of):
                raise DecodeError(f"prefix: token {forced[t]} has probability 0 under the model")

            records: dict[int, DecodeStep] = {}
            if record_tree:
                rows = sorted({c.row for cs in cands_of for c in cs})
                lens = [len(sents[active[r // k]].source.ids) for r in rows]
                toks = [best_tok[r] for r in rows]
                recs = step_records(
                    out,
                    rows=rows,
                    tokens=toks,
                    position=t,
                    src_lengths=lens,
                    tokenizer=tokenizer,
                    logprobs=logp,
                )
                records = dict(zip(rows, recs, strict=True))

            next_rows, next_nodes, next_tokens, next_scores, still = [], [], [], [], []
            for i, b in enumerate(active):
                sent, S_b = sents[b], len(sents[b].source.ids)
                kept: list[tuple[int, _Candidate]] = []
                for c, fate in _assign_fates(cands_of[i], k, last=t + 1 >= sent.T):
                    if fate is Fate.PRUNED and not record_tree:
                        continue
                    parent = sent.nodes[live_node[c.row]]
                    a_row = None if att is None else att[c.row, :S_b]  # (S_b,)
                    cov = None
                    if beta:
                        prev = 0.0 if parent.coverage is None else parent.coverage
                        cov = prev + a_row.astype(np.float64)
                    normalized = s.scorer(c.score, t + 1, cov)
                    sent.nodes.append(
                        _Node(
                            parent=live_node[c.row],
                            step=t,
                            token=c.token,
                            logprob=c.logprob,
                            score=c.score,
                            normalized=normalized,
                            rank=c.rank,
                            fate=fate,
                            coverage=cov,
                            attn=a_row,
                            record=records.get(c.row),
                        )
                    )
                    if fate is Fate.FINISHED:
                        sent.finished.append(len(sent.nodes) - 1)
                    elif fate is Fate.KEPT:
                        kept.append((len(sent.nodes) - 1, c))
                if _check_stop(sent, [nid for nid, _ in kept], t, s):
                    continue
                still.append(b)
                for slot in range(k):  # empty slots point at any row of this sentence
                    nid, c = kept[slot] if slot < len(kept) else (-1, None)
                    next_nodes.append(nid)
                    next_rows.append(i * k if c is None else c.row)
                    next_tokens.append(EOS if c is None else c.token)
                    next_scores.append(float("-inf") if c is None else c.score)
            if not still:
                break
            index = torch.tensor(next_rows, dtype=torch.long, device=device)
            state = model.reorder(state, index)
            if len(still) != len(active):
                mem = mem.index_select(index)
            active, live_node = still, next_nodes
            live_score = torch.tensor(next_scores, dtype=torch.float64, device=device)
            y_prev = torch.tensor(next_tokens, dtype=torch.long, device=device)
            t += 1

    results = []
    for b, sent in enumerate(sents):
        g = None
        if with_greedy:
            g = greedy(model, tokenizer, sent.source.ids, max_len=sent.T, prefix=forced or None)
        results.append(_finish(model, tokenizer, sent, s, memory_fields[b], record_tree, g))
    return results
