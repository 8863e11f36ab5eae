"""The step API: immutable numpy records of what a decoder computed.

Everything the GUI draws comes from these records, never from tensors or from state left on
modules. One :class:`DecodeStep` per emitted token, with the same shapes for every model family
(an RNN reports one layer and one head):

========================  ==============  =====================================================
field                     shape           meaning
========================  ==============  =====================================================
``probs``, ``logprobs``   (V,)            next-token distribution at this step
``scores``                (L, H, S)       attention scores e_ti before the softmax
``cross_attention``       (L, H, S)       attention weights α_ti after the softmax
``self_attention``        (L, H, t+1)     decoder self-attention (Transformer only, else None)
``hidden``                (L, D)          decoder hidden state(s) after this step
``context``               (L, D_ctx)      context vector(s) c_t = Σ_i α_ti h_i
========================  ==============  =====================================================

A model without attention has ``scores`` and ``cross_attention`` set to None; its ``context`` is
the fixed vector the encoder handed over.

A :class:`BeamTree` holds every candidate a beam search considered. Candidates that share a parent
share that parent's :class:`DecodeStep` arrays (they were all predicted from the same state), so
recording the whole tree costs one record per expanded hypothesis, not one per candidate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

import numpy as np


def _frozen(a: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return None
    a = np.asarray(a)
    if a.flags.writeable:
        a = a.copy() if not a.flags.owndata else a
        a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class DecodeStep:
    """What the decoder computed when it emitted the token at ``position`` (0-based)."""

    position: int
    token: int
    piece: str
    logprobs: np.ndarray  # (V,) log-softmax of the logits (after temperature, if sampled)
    scores: np.ndarray | None  # (L, H, S)
    cross_attention: np.ndarray | None  # (L, H, S)
    self_attention: np.ndarray | None  # (L, H, position + 1)
    hidden: np.ndarray  # (L, D)
    context: np.ndarray  # (L, D_ctx)
    query: np.ndarray | None = None  # (L, H, D_q) what attention scored the keys against

    def __post_init__(self) -> None:
        for name in (
            "logprobs",
            "scores",
            "cross_attention",
            "self_attention",
            "hidden",
            "context",
            "query",
        ):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    @property
    def probs(self) -> np.ndarray:
        """(V,) probabilities; exp of ``logprobs``."""
        return np.exp(self.logprobs)

    @property
    def logprob(self) -> float:
        """Log-probability of the emitted token."""
        return float(self.logprobs[self.token])

    @property
    def entropy(self) -> float:
        """Entropy of the next-token distribution, in nats."""
        p = self.probs
        nz = p > 0
        return float(-(p[nz] * self.logprobs[nz]).sum())

    def topk(self, k: int) -> list[tuple[int, float]]:
        """The k most probable tokens as (token id, probability), most probable first."""
        k = max(1, min(k, self.logprobs.shape[0]))
        idx = np.argpartition(-self.logprobs, k - 1)[:k]
        idx = idx[np.argsort(-self.logprobs[idx], kind="stable")]
        return [(int(i), float(math.exp(self.logprobs[i]))) for i in idx]

    def attention(self, layer: int = -1, head: int | None = None) -> np.ndarray | None:
        """(S,) attention weights of one layer; one head, or the mean over heads when None."""
        if self.cross_attention is None:
            return None
        a = self.cross_attention[layer]
        return a.mean(axis=0) if head is None else a[head]


@dataclass(frozen=True)
class SourceRecord:
    """Which model read which source: the record every drawn number names. ``Trace.origin`` and
    ``BeamTree.origin`` give it, so two records (or a record and what the screen should show)
    compare with ``==``."""

    model: str  # the model's name as the GUI lists it; "" when the decode was not stamped
    text: str  # the source sentence as the model read it
    pieces: tuple[str, ...]  # one display string per source token


class _HasSource:
    """The source side shared by :class:`Trace` and :class:`BeamTree`."""

    model: str
    source: str
    src_pieces: tuple[str, ...]

    @property
    def origin(self) -> SourceRecord:
        return SourceRecord(self.model, self.source, tuple(self.src_pieces))

    def named(self, model: str):
        """This record stamped with the name of the model that computed it."""
        return replace(self, model=model)


# The encoder side a Trace (and a BeamTree) carries, as ``decode.encoder_fields`` gives it.
_ENCODER_FIELDS = (
    "encoder_states",
    "encoder_self_attention",
    "encoder_layers",
    "cross_keys",
    "cross_values",
)


@dataclass(frozen=True, eq=False)
class Trace(_HasSource):
    """A source sentence and the steps of one decode of it."""

    source: str
    src_tokens: tuple[int, ...]  # ids as fed to the encoder (end-of-sentence included)
    src_pieces: tuple[str, ...]  # one display string per source token
    steps: tuple[DecodeStep, ...]
    encoder_states: np.ndarray  # (S, D_enc) top-layer encoder outputs h_i
    encoder_self_attention: np.ndarray | None = None  # (L, H, S, S) Transformer only
    encoder_layers: np.ndarray | None = None  # (L, S, D) every encoder layer's outputs, if known
    cross_keys: np.ndarray | None = None  # (L, H, S, d_k) Transformer: k_i = W^K h_i per layer
    cross_values: np.ndarray | None = None  # (L, H, S, d_k) Transformer: v_i = W^V h_i
    arch: str = ""
    method: str = "greedy"  # greedy | sample | forced | edited | beam | teacher-forced
    eos_id: int = 3
    extras: dict = field(default_factory=dict)
    model: str = ""  # the name of the model that decoded it (see SourceRecord)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        object.__setattr__(self, "src_tokens", tuple(int(t) for t in self.src_tokens))
        object.__setattr__(self, "src_pieces", tuple(self.src_pieces))
        for name in _ENCODER_FIELDS:
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def tokens(self) -> list[int]:
        return [s.token for s in self.steps]

    @property
    def pieces(self) -> list[str]:
        return [s.piece for s in self.steps]

    @property
    def finished(self) -> bool:
        return bool(self.steps) and self.steps[-1].token == self.eos_id

    @property
    def token_logprobs(self) -> np.ndarray:
        return np.array([s.logprob for s in self.steps], dtype=np.float64)

    @property
    def score(self) -> float:
        """Sum of the emitted tokens' log-probabilities (end-of-sentence included)."""
        return float(self.token_logprobs.sum())

    @property
    def has_attention(self) -> bool:
        return bool(self.steps) and self.steps[0].cross_attention is not None

    def attention_matrix(self, layer: int = -1, head: int | None = None) -> np.ndarray | None:
        """(T, S) cross-attention, target steps × source tokens; heads averaged when None."""
        if not self.has_attention:
            return None
        return np.stack([s.attention(layer, head) for s in self.steps])

    def score_matrix(self, layer: int = -1, head: int | None = None) -> np.ndarray | None:
        """(T, S) raw attention scores e_ti; heads averaged when None."""
        if not self.has_attention:
            return None
        rows = [s.scores[layer] for s in self.steps]
        return np.stack([r.mean(axis=0) if head is None else r[head] for r in rows])

    def hidden_matrix(self, layer: int = -1) -> np.ndarray:
        """(T, D) decoder hidden states over steps."""
        return np.stack([s.hidden[layer] for s in self.steps])

    def truncated(self, n: int) -> Trace:
        """The first n steps of this trace."""
        return replace(self, steps=self.steps[:n])


class Fate(str, Enum):
    """What became of a beam-search candidate."""

    KEPT = "kept"  # survived the step's top-k and was extended
    PRUNED = "pruned"  # considered, ranked outside the beam
    FINISHED = "finished"  # ended with end-of-sentence (or at the length limit) inside the beam
    CHOSEN = "chosen"  # the finished hypothesis the search returned first


@dataclass(frozen=True, eq=False)
class BeamNode:
    """One candidate the search considered: the token appended to its parent's hypothesis."""

    id: int
    parent: int  # -1 for the root (the start symbol)
    step: int  # target position of ``token`` (0-based); the root has step -1
    token: int
    piece: str
    logprob: float  # log p(token | parent's hypothesis)
    score: float  # cumulative log-probability of the hypothesis ending here
    normalized_score: float  # the score the search ranked finished hypotheses by
    rank: int  # rank among all candidates of this step (0 = best)
    fate: Fate
    record: DecodeStep | None  # what the decoder computed when it scored this candidate


@dataclass(frozen=True, eq=False)
class BeamTree(_HasSource):
    """Every node a beam search expanded, and how the search ended."""

    source: str
    src_tokens: tuple[int, ...]
    src_pieces: tuple[str, ...]
    nodes: tuple[BeamNode, ...]
    finished: tuple[int, ...]  # node ids of finished hypotheses, best first
    encoder_states: np.ndarray
    encoder_self_attention: np.ndarray | None = None
    encoder_layers: np.ndarray | None = None
    cross_keys: np.ndarray | None = None  # as in Trace
    cross_values: np.ndarray | None = None
    arch: str = ""
    eos_id: int = 3
    settings: dict = field(default_factory=dict)  # beam size, penalty name, alpha, beta, ...
    stop_reason: str = ""  # "exhausted" | "bound" | "max-length"
    greedy: Trace | None = None
    divergence: int | None = None  # first target step where greedy leaves the chosen path
    model: str = ""  # as in Trace

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "finished", tuple(self.finished))
        for name in _ENCODER_FIELDS:
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def root(self) -> BeamNode:
        return self.nodes[0]

    @property
    def chosen(self) -> BeamNode | None:
        return self.nodes[self.finished[0]] if self.finished else None

    def children(self, node_id: int) -> list[BeamNode]:
        return [n for n in self.nodes if n.parent == node_id]

    def path(self, node_id: int) -> list[BeamNode]:
        """Nodes from the first emitted token down to ``node_id`` (the root excluded)."""
        out: list[BeamNode] = []
        n = self.nodes[node_id]
        while n.parent >= 0:
            out.append(n)
            n = self.nodes[n.parent]
        return out[::-1]

    def trace(self, node_id: int) -> Trace:
        """The hypothesis ending at ``node_id`` as a :class:`Trace` of its steps."""
        steps = []
        for n in self.path(node_id):
            if n.record is None:
                raise ValueError(f"node {n.id} has no step record")
            steps.append(replace(n.record, token=n.token, piece=n.piece, position=n.step))
        return Trace(
            source=self.source,
            src_tokens=self.src_tokens,
            src_pieces=self.src_pieces,
            steps=tuple(steps),
            encoder_states=self.encoder_states,
            encoder_self_attention=self.encoder_self_attention,
            encoder_layers=self.encoder_layers,
            cross_keys=self.cross_keys,
            cross_values=self.cross_values,
            arch=self.arch,
            method="beam",
            eos_id=self.eos_id,
            model=self.model,
        )

    def to_dict(self) -> dict:
        """The tree as plain JSON-able data: its nodes' numbers, not their step records."""
        return {
            "source": self.source,
            "src_pieces": list(self.src_pieces),
            "settings": dict(self.settings),
            "stop_reason": self.stop_reason,
            "divergence": self.divergence,
            "finished": list(self.finished),
            "nodes": [
                {
                    "id": n.id,
                    "parent": n.parent,
                    "step": n.step,
                    "token": n.token,
                    "piece": n.piece,
                    "logprob": float(n.logprob),
                    "score": float(n.score),
                    "normalized_score": float(n.normalized_score),
                    "rank": n.rank,
                    "fate": n.fate.value,
                }
                for n in self.nodes
            ],
        }

    def fates(self) -> dict[str, int]:
        """How many nodes ended with each fate."""
        out = {f.value: 0 for f in Fate}
        for n in self.nodes[1:]:
            out[n.fate.value] += 1
        return out


def stack_steps(steps: Sequence[DecodeStep], name: str) -> np.ndarray:
    """Stack one field of several steps into one array (for export and plotting)."""
    return np.stack([getattr(s, name) for s in steps])
