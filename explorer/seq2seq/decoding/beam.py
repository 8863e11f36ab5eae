"""Batched beam search that records its whole tree.

Finished hypotheses are ranked by S / lp(|Y|) + β · cp (:mod:`scoring`, decoding.md §1). Live
hypotheses all have the same length, so they are ranked by S alone and the penalties only decide
among finished ones.

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
from typing import TYPE_CHECKING, Any

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
from explorer.seq2seq.decoding.scoring import Hypothesis, Scorer, make_hypothesis
from explorer.seq2seq.decoding.trace import BeamNode, BeamTree, DecodeStep, Fate, Trace
from explorer.seq2seq.models.base import BOS, EOS, Seq2Seq, StepOutput

if TYPE_CHECKING:
    from explorer.seq2seq.data.tokenizer import TokenizerLike

STOPS = ("bound", "exhausted")


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


def _nbest(
    tokenizer: TokenizerLike, sent: _Sentence, order: list[int], s: BeamSettings
) -> list[Hypothesis]:
    """The best ``s.nbest`` finished hypotheses, each read back along its parents."""
    nodes, out = sent.nodes, []
    for i in order[: s.nbest]:
        path = []
        while i > 0:
            path.append(nodes[i])
            i = nodes[i].parent
        path.reverse()
        attn = None if path[0].attn is None else np.stack([n.attn for n in path]).astype(np.float64)
        tokens, logprobs = [n.token for n in path], [n.logprob for n in path]
        out.append(make_hypothesis(tokenizer, tokens, logprobs, attn, s.scorer))
    return out


def _beam_tree(
    model: Seq2Seq,
    tokenizer: TokenizerLike,
    sent: _Sentence,
    s: BeamSettings,
    order: list[int],
    **fields,
) -> BeamTree:
    """The recorded search as an immutable tree; ``fields``: greedy, divergence, encoder fields."""
    nodes = [
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
        for i, n in enumerate(sent.nodes)
    ]
    return BeamTree(
        source=sent.source.text,
        src_tokens=sent.source.ids,
        src_pieces=tuple(tokenizer.src_pieces(list(sent.source.ids))),
        nodes=tuple(nodes),
        finished=tuple(order),
        arch=getattr(model, "arch", ""),
        eos_id=EOS,
        settings=s.as_dict(sent.T),
        stop_reason=sent.stop_reason,
        **fields,
    )


def _finish(
    model: Seq2Seq,
    tokenizer: TokenizerLike,
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
    nbest = _nbest(tokenizer, sent, order, s)
    div = (
        None
        if greedy_trace is None or not nbest
        else divergence(greedy_trace.tokens, nbest[0].tokens)
    )
    tree = None
    if record_tree:
        extra = dict(greedy=greedy_trace, divergence=div, **memory_fields)
        tree = _beam_tree(model, tokenizer, sent, s, order, **extra)
    return BeamResult(nbest, tree, greedy_trace, div, sent.stop_reason)


def _as_sources(tokenizer: TokenizerLike, sentences: Any) -> list[Source]:
    if isinstance(sentences, (str, torch.Tensor, Source)) or (
        isinstance(sentences, (Sequence, np.ndarray))
        and len(sentences)
        and isinstance(sentences[0], (int, np.integer))
    ):
        sentences = [sentences]
    if not sentences:
        raise DecodeError("sentences: nothing to decode (empty list)")
    return [as_source(tokenizer, x) for x in sentences]


@dataclass(frozen=True, eq=False)
class _Expansion:
    """One step of the model for every live row (k rows per active sentence)."""

    out: StepOutput
    logp: torch.Tensor  # (n, V) log p(y | prefix, x), float32
    cand: torch.Tensor  # (n, V) float64: S of each continuation (forced / min_len masks applied)
    att: np.ndarray | None  # (n, S_max) attention of this step, last layer, mean over heads


class _Beam:
    """The live state of a batched search and its three moves: ``expand`` runs the model on every
    live hypothesis, ``select`` ranks the candidates of each sentence, ``advance`` records them as
    nodes, decides their fates and reorders the decoder state for the next step."""

    def __init__(
        self,
        model: Seq2Seq,
        tokenizer: TokenizerLike,
        sents: list[_Sentence],
        s: BeamSettings,
        forced: list[int],
        record_tree: bool,
    ) -> None:
        self.model, self.tokenizer, self.sents, self.s = model, tokenizer, sents, s
        self.forced, self.record_tree = forced, record_tree
        self.k, self.V = int(s.beam), tokenizer.tgt_vocab_size
        k, sources = self.k, [x.source for x in sents]
        src_t, lengths = pad_sources([x.ids for x in sources], model.device)  # (B, S)
        memory = model.encode(src_t, lengths)
        self.memory_fields = [encoder_fields(memory, b, len(x.ids)) for b, x in enumerate(sources)]
        self.device = src_t.device
        self.active = list(range(len(sents)))  # sentences still searching
        row_index = torch.arange(len(sents), device=self.device).repeat_interleave(k)  # (B·k,)
        self.mem = memory.index_select(row_index)
        self.state = model.start(self.mem)
        n = len(sents) * k
        self.live_node = [0 if r % k == 0 else -1 for r in range(n)]  # node id, -1 = empty row
        self.live_score = torch.full((n,), float("-inf"), dtype=torch.float64, device=self.device)
        self.live_score[::k] = 0.0
        self.y_prev = torch.full((n,), BOS, dtype=torch.long, device=self.device)
        self.t = 0

    def expand(self) -> _Expansion:
        out, self.state = self.model.step(self.mem, self.state, self.y_prev)
        logp = F.log_softmax(out.logits.float(), dim=-1)  # (n, V)
        if out.attention is None and self.s.scorer.beta:
            raise DecodeError("beta: the coverage penalty needs a model with attention")
        search = logp.double()
        if self.t < len(self.forced):
            forced = self.forced[self.t]
            search = torch.full_like(search, float("-inf"))
            search[:, forced] = logp[:, forced].double()
        if self.t < self.s.min_len:
            search[:, EOS] = float("-inf")
        att = None
        if out.attention is not None:
            att = out.attention[:, -1].float().mean(dim=1).cpu().numpy()  # (n, S_max)
        return _Expansion(out, logp, self.live_score[:, None] + search, att)

    def select(self, exp: _Expansion) -> tuple[list[list[_Candidate]], list[int]]:
        """Per active sentence its candidates in rank order (the top 2·k over k × V), plus each
        expanded row's best continuation as a leaf; and each row's best token."""
        k, V, B = self.k, self.V, len(self.active)
        flat = exp.cand.view(B, k * V)  # (B_act, k·V)
        top_val, top_idx = flat.topk(min(2 * k, k * V), dim=1)  # (B_act, K)
        top_lp = exp.logp.view(B, k * V).gather(1, top_idx)
        best_val, best_tok = exp.cand.max(dim=1)  # (n,)
        best_lp = exp.logp.gather(1, best_tok[:, None])[:, 0]
        best = (best_val.tolist(), best_tok.tolist(), best_lp.tolist())
        tops = zip(top_val.tolist(), top_idx.tolist(), top_lp.tolist(), strict=True)
        cands_of = [self._candidates(i, flat[i], top, best) for i, top in enumerate(tops)]
        if self.t < len(self.forced) and any(not cs for cs in cands_of):
            raise DecodeError(
                f"prefix: token {self.forced[self.t]} has probability 0 under the model"
            )
        return cands_of, best[1]

    def _candidates(self, i: int, flat: torch.Tensor, top: tuple, best: tuple) -> list[_Candidate]:
        k, V = self.k, self.V
        cands = []
        for r, (val, idx, lp) in enumerate(zip(*top, strict=True)):
            if val == float("-inf"):
                break
            slot, tok = divmod(idx, V)
            cands.append(_Candidate(r, i * k + slot, tok, val, lp))
        seen = {c.row for c in cands}
        best_val, best_tok, best_lp = best
        for row in range(i * k, (i + 1) * k):
            if row not in seen and self.live_node[row] >= 0 and best_val[row] > float("-inf"):
                rank = int((flat > best_val[row]).sum())
                cands.append(
                    _Candidate(rank, row, best_tok[row], best_val[row], best_lp[row], True)
                )
        return cands

    def records(
        self, exp: _Expansion, cands_of: list[list[_Candidate]], best_tok: list[int]
    ) -> dict[int, DecodeStep]:
        """The step record of every row that has a candidate, for the tree."""
        rows = sorted({c.row for cs in cands_of for c in cs})
        recs = step_records(
            exp.out,
            rows=rows,
            tokens=[best_tok[r] for r in rows],
            position=self.t,
            src_lengths=[len(self.sents[self.active[r // self.k]].source.ids) for r in rows],
            tokenizer=self.tokenizer,
            logprobs=exp.logp,
        )
        return dict(zip(rows, recs, strict=True))

    def _grow(
        self, sent: _Sentence, cands: list[_Candidate], exp: _Expansion, records: dict
    ) -> list[tuple[int, _Candidate]]:
        """Add the sentence's candidates as nodes with their fates; return the kept ones."""
        S_b, kept = len(sent.source.ids), []
        for c, fate in _assign_fates(cands, self.k, last=self.t + 1 >= sent.T):
            if fate is Fate.PRUNED and not self.record_tree:
                continue
            parent = sent.nodes[self.live_node[c.row]]
            a_row = None if exp.att is None else exp.att[c.row, :S_b]  # (S_b,)
            cov = None
            if self.s.scorer.beta:
                prev = 0.0 if parent.coverage is None else parent.coverage
                cov = prev + a_row.astype(np.float64)
            normalized = self.s.scorer(c.score, self.t + 1, cov)
            sent.nodes.append(
                _Node(
                    parent=self.live_node[c.row],
                    step=self.t,
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
        return kept

    def advance(self, exp: _Expansion, cands_of: list[list[_Candidate]], records: dict) -> bool:
        """Record this step's candidates and move the live rows on; False once all are done."""
        rows, nodes, tokens, scores, still = [], [], [], [], []
        for i, b in enumerate(self.active):
            kept = self._grow(self.sents[b], cands_of[i], exp, records)
            if _check_stop(self.sents[b], [nid for nid, _ in kept], self.t, self.s):
                continue
            still.append(b)
            for slot in range(self.k):  # empty slots point at any row of this sentence
                nid, c = kept[slot] if slot < len(kept) else (-1, None)
                nodes.append(nid)
                rows.append(i * self.k if c is None else c.row)
                tokens.append(EOS if c is None else c.token)
                scores.append(float("-inf") if c is None else c.score)
        if not still:
            return False
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        self.state = self.model.reorder(self.state, index)
        if len(still) != len(self.active):
            self.mem = self.mem.index_select(index)
        self.active, self.live_node = still, nodes
        self.live_score = torch.tensor(scores, dtype=torch.float64, device=self.device)
        self.y_prev = torch.tensor(tokens, dtype=torch.long, device=self.device)
        self.t += 1
        return True


def beam_search(
    model: Seq2Seq,
    tokenizer: TokenizerLike,
    sentences: str | Sequence[int] | Source | Sequence[str | Sequence[int] | Source],
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
    sources = _as_sources(tokenizer, sentences)
    forced = [] if prefix is None else target_ids(tokenizer, prefix, "prefix")
    sents = [
        _Sentence(src, within_positions(model, s.limit(len(src.ids), len(forced))), [_root()])
        for src in sources
    ]
    with inference(model):
        search = _Beam(model, tokenizer, sents, s, forced, record_tree)
        while True:
            exp = search.expand()
            cands_of, best_tok = search.select(exp)
            records = search.records(exp, cands_of, best_tok) if record_tree else {}
            if not search.advance(exp, cands_of, records):
                break
    results = []
    for b, sent in enumerate(sents):
        g = None
        if with_greedy:
            g = greedy(model, tokenizer, sent.source.ids, max_len=sent.T, prefix=forced or None)
        fields = search.memory_fields[b]
        results.append(_finish(model, tokenizer, sent, s, fields, record_tree, g))
    return results
