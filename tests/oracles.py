"""Reference oracles for the tests and the benchmarks: not part of the product.

:func:`beam_search_reference` is the search :func:`explorer.seq2seq.decoding.beam.beam_search`
does, written plainly, one sentence and one hypothesis per model call. :func:`synthetic_beam_tree`
runs a small beam search on a random prefix-conditioned toy model, for benchmarks and tests that
need a tree of a given size without a trained model. ``attention-explorer bench`` loads this file
from a source checkout (``explorer.tools.oracles``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from explorer.seq2seq.decoding.beam import BeamResult, BeamSettings, _as_sources
from explorer.seq2seq.decoding.decode import DecodeError, inference, target_ids
from explorer.seq2seq.decoding.scoring import Scorer
from explorer.seq2seq.decoding.search import _encode_one, _hypothesis, _Path
from explorer.seq2seq.decoding.trace import BeamNode, BeamTree, DecodeStep, Fate
from explorer.seq2seq.models.base import BOS, EOS, Seq2Seq


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
            T = s.limit(len(source.ids), len(forced))
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


def synthetic_beam_tree(
    beam: int = 5,
    steps: int = 40,
    vocab: int = 24,
    src_len: int = 8,
    seed: int = 0,
    eos_from: int | None = None,
) -> BeamTree:
    """Beam search (no length penalty) on a random toy model, recorded as a BeamTree.

    Every live hypothesis proposes its ``beam`` best tokens; the best ``beam`` of all proposals
    survive. End-of-sentence (id 3) is forbidden before step ``eos_from`` (default: the last step),
    so the tree is ``steps`` deep. The search runs to the length limit.
    """
    rng = np.random.default_rng(seed)
    eos_from = steps - 1 if eos_from is None else eos_from
    pieces = [f"w{i}" for i in range(vocab)]
    pieces[:4] = ["<pad>", "<unk>", "<s>", "</s>"]
    src_pieces = tuple(f"s{i}" for i in range(src_len - 1)) + ("</s>",)
    enc = rng.standard_normal((src_len, 4))

    def record(step: int) -> DecodeStep:
        z = rng.standard_normal(vocab) * 2.0
        z[:3] = -1e9
        if step < eos_from:
            z[3] = -1e9
        logp = z - np.logaddexp.reduce(z)
        a = rng.dirichlet(np.ones(src_len) * 0.5)[None, None, :]
        zero = np.zeros((1, 4))
        return DecodeStep(step, -1, "", logp, np.log(a), a, None, zero, zero)

    nodes: list[BeamNode] = [BeamNode(0, -1, -1, 2, "<s>", 0.0, 0.0, 0.0, 0, Fate.KEPT, None)]
    live = [0]
    finished: list[int] = []
    for t in range(steps):
        cands = []  # (score, parent, token, logprob, record)
        for p in live:
            rec = record(t)
            top = np.argsort(-rec.logprobs, kind="stable")[:beam]
            for tok in top:
                lp = float(rec.logprobs[tok])
                if lp < -1e8:
                    continue
                cands.append((nodes[p].score + lp, p, int(tok), lp, rec))
        cands.sort(key=lambda c: (-c[0], c[1], c[2]))
        live = []
        for r, (s, p, tok, lp, rec) in enumerate(cands):
            nid = len(nodes)
            if r >= beam:
                fate = Fate.PRUNED
            elif tok == 3 or t == steps - 1:
                fate = Fate.FINISHED
                finished.append(nid)
            else:
                fate = Fate.KEPT
                live.append(nid)
            nodes.append(BeamNode(nid, p, t, tok, pieces[tok], lp, s, s, r, fate, rec))
        if not live:
            break
    finished.sort(key=lambda i: -nodes[i].normalized_score)
    if finished:
        best = nodes[finished[0]]
        nodes[best.id] = replace(best, fate=Fate.CHOSEN)
    return BeamTree(
        source=" ".join(src_pieces[:-1]),
        src_tokens=tuple(range(4, 4 + src_len)),
        src_pieces=src_pieces,
        nodes=tuple(nodes),
        finished=tuple(finished),
        encoder_states=enc,
        arch="toy",
        settings={"beam": beam, "length_penalty": "none", "alpha": 0.0, "beta": 0.0},
        stop_reason="max-length",
    )
