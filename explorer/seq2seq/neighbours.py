"""Nearest training-set neighbours of a hidden state.

The index holds the states a model produces on its training pairs under teacher forcing: every
decoder state s_t and context c_t (at target step t) and every encoder state h_i (at source
piece i), each with the id of its sentence and its position there. A lookup returns the k states
nearest to a query (cosine or Euclidean distance) as sentences with the position to highlight.

Large corpora are sampled: the sentences are visited in an order drawn from ``seed`` and states
are kept until each kind has ``cap`` of them (50,000 by default), so an index is reproducible for
a seed and never larger than its cap. Everything is numpy and torch matrix work; nothing here
imports Qt.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from explorer.seq2seq.decoding.decode import inference, pad_sources, target_ids, within_positions
from explorer.seq2seq.models.base import BOS, EOS, PAD

KINDS = ("decoder", "encoder", "context")
LABELS = {"decoder": "decoder state s_t", "encoder": "encoder state h_i", "context": "context c_t"}
METRICS = ("cosine", "euclidean")
MAX_STATES = 50_000
BUILTIN_CORPORA = ("classroom", "reverse", "copy")


class NeighboursError(ValueError):
    """An index cannot be built or asked (no training corpus to read, a query of the wrong size)."""


@dataclass(frozen=True)
class StateTable:
    """The states of one kind: row r is ``vectors[r]``, from ``sentence[r]`` at ``position[r]``."""

    vectors: np.ndarray  # (N, D) float32
    sentence: np.ndarray  # (N,) int: sentence id
    position: np.ndarray  # (N,) int: target step (decoder, context) or source piece (encoder)
    norms: np.ndarray = field(repr=False, default=None)  # (N,) float32, worked out once

    def __post_init__(self) -> None:
        if self.norms is None:
            object.__setattr__(self, "norms", np.linalg.norm(self.vectors, axis=1))

    def __len__(self) -> int:
        return int(self.vectors.shape[0])


@dataclass(frozen=True)
class Sentence:
    """One training pair as the model reads it: source pieces, and the target pieces it writes
    (end-of-sentence included: the last decoder step writes it)."""

    source: tuple[str, ...]
    target: tuple[str, ...]
    # the word each piece belongs to (specials: -1), to write pieces as words; None when the
    # tokenizer does not say
    source_words: tuple[int, ...] | None = None
    target_words: tuple[int, ...] | None = None


@dataclass(frozen=True)
class NeighbourIndex:
    model: str  # the model's name, so a view can tell an index is its model's
    sentences: tuple[Sentence, ...]
    tables: dict[str, StateTable]
    seed: int
    cap: int

    def size(self, kind: str) -> int:
        return len(self.tables[kind])


@dataclass(frozen=True)
class Neighbour:
    """A state near the query: its sentence, the position to highlight, and how far it is."""

    sentence: int
    position: int
    distance: float
    side: str  # "source" (an encoder state) or "target"
    pieces: tuple[str, ...]  # the side the position is on
    other: tuple[str, ...]  # the other side of the pair
    row: int  # the state's row in its table
    words: tuple[int, ...] | None = None  # the word of each of ``pieces`` (see Sentence)
    other_words: tuple[int, ...] | None = None


def training_pairs(options: Any, corpus: dict | None = None) -> list[tuple[str, str]]:
    """The training split a model's stored options regenerate. Only a built-in corpus is
    generated again: a corpus file named by a checkpoint is never opened (a stranger's file
    could name any path), so such a model has no neighbours here."""
    from explorer.seq2seq.training.options import TrainOptionError, TrainOptions, load_splits

    if not isinstance(options, dict):
        raise NeighboursError("the model does not record the options it was trained with")
    try:
        o = TrainOptions.from_dict(options)
    except TrainOptionError as e:
        raise NeighboursError(f"the model's stored training options: {e}") from None
    if o.corpus not in BUILTIN_CORPORA:
        name = (corpus or {}).get("name") or "a corpus file"
        raise NeighboursError(
            f"the model was trained on {name}, a file: neighbours are found in the built-in "
            "corpora only (a checkpoint never chooses the files read)"
        )
    _, (train, _, _) = load_splits(o)
    return list(train.pairs)


def _encode(model, tokenizer, pair: tuple[str, str]) -> tuple[list[int], list[int]]:
    """The source ids the encoder reads and the target ids the decoder writes (end-of-sentence
    included), each cut to the positions the model has."""
    src = list(tokenizer.encode_src(pair[0]))
    y = target_ids(tokenizer, pair[1], "target") + [EOS]
    return src[: within_positions(model, len(src))], y[: within_positions(model, len(y))]


def _sample(model, tokenizer, pairs, cap: int, seed: int) -> list[tuple[list, list, dict]]:
    """Pairs in the seed's order until every kind has ``cap`` states: (source ids, target ids,
    how many states of each kind to keep) for each."""
    counts = dict.fromkeys(KINDS, 0)
    chosen = []
    for i in np.random.default_rng(seed).permutation(len(pairs)):
        src, tgt = _encode(model, tokenizer, pairs[int(i)])
        sizes = {"decoder": len(tgt), "context": len(tgt), "encoder": len(src)}
        keep = {k: min(n, cap - counts[k]) for k, n in sizes.items()}
        chosen.append((src, tgt, keep))
        counts = {k: counts[k] + keep[k] for k in KINDS}
        if all(c >= cap for c in counts.values()):
            break
    return chosen


def _forward(model, srcs: list[list[int]], tgts: list[list[int]]):
    """Teacher-forced forward of a batch: (B, T, D) s_t, (B, T, Dc) c_t, (B, S, De) h_i."""
    src_t, lengths = pad_sources(srcs, model.device)
    tgt_in = torch.full((len(tgts), max(len(y) for y in tgts)), PAD, dtype=torch.long)
    for b, y in enumerate(tgts):
        tgt_in[b, : len(y)] = torch.tensor([BOS, *y[:-1]], dtype=torch.long)
    fwd = model(src_t, lengths, tgt_in.to(src_t.device))
    memory = fwd.memory if fwd.memory is not None else model.encode(src_t, lengths)
    return (
        fwd.hidden[:, :, -1].float().cpu().numpy(),
        fwd.context[:, :, -1].float().cpu().numpy(),
        memory.states.float().cpu().numpy(),
    )


def build_index(
    model,
    tokenizer,
    pairs: Sequence[tuple[str, str]],
    *,
    cap: int = MAX_STATES,
    seed: int = 0,
    batch_size: int = 64,
    name: str = "",
) -> Iterator[float]:
    """Yields the fraction done and returns the :class:`NeighbourIndex` (a generator, for a
    worker; :func:`make_index` runs it to the end). Sentence ids follow the seed's order; the
    forward passes take the chosen pairs by length, so a batch holds little padding."""
    if isinstance(cap, bool) or int(cap) != cap or cap < 1:
        raise NeighboursError(f"the sample size must be a positive whole number, not {cap!r}")
    if not pairs:
        raise NeighboursError("no training pairs to index")
    chosen = _sample(model, tokenizer, pairs, int(cap), seed)
    words = getattr(tokenizer, "word_index", None)
    sentences = tuple(
        Sentence(
            tuple(tokenizer.src_pieces(s)),
            tuple(tokenizer.tgt_pieces(t)),
            None if words is None else tuple(words(s, "src")),
            None if words is None else tuple(words(t, "tgt")),
        )  # fmt: skip
        for s, t, _ in chosen
    )
    by_length = sorted(range(len(chosen)), key=lambda i: (len(chosen[i][1]), len(chosen[i][0])))
    blocks: dict[str, list] = {k: [] for k in KINDS}  # (sentence id, vectors) per kind
    work = [len(src) + len(tgt) for src, tgt, _ in chosen]  # progress counts tokens, not batches
    total, done = sum(work), 0
    with inference(model):
        for start in range(0, len(by_length), batch_size):
            ids = by_length[start : start + batch_size]
            states = _forward(model, [chosen[i][0] for i in ids], [chosen[i][1] for i in ids])
            for b, sid in enumerate(ids):
                for kind, matrix in zip(("decoder", "context", "encoder"), states, strict=True):
                    n = chosen[sid][2][kind]
                    if n:
                        blocks[kind].append((sid, matrix[b, :n]))
            done += sum(work[i] for i in ids)
            yield min(1.0, done / total)
    tables = {k: _table(sorted(blocks[k], key=lambda b: b[0])) for k in KINDS}
    return NeighbourIndex(name, sentences, tables, int(seed), int(cap))


def _table(blocks: list[tuple[int, np.ndarray]]) -> StateTable:
    """One table from (sentence id, its states) blocks, in sentence order."""
    return StateTable(
        np.concatenate([v for _, v in blocks]).astype(np.float32),
        np.concatenate([np.full(len(v), sid) for sid, v in blocks]).astype(np.int64),
        np.concatenate([np.arange(len(v)) for _, v in blocks]).astype(np.int64),
    )


def make_index(model, tokenizer, pairs, **kwargs) -> NeighbourIndex:
    """:func:`build_index` run to its end."""
    gen = build_index(model, tokenizer, pairs, **kwargs)
    while True:
        try:
            next(gen)
        except StopIteration as done:
            return done.value


def _distances(table: StateTable, rows: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    """Exact distances (float64) from q to the given rows."""
    v = table.vectors[rows].astype(np.float64)
    if metric == "euclidean":
        return np.sqrt(((v - q) ** 2).sum(axis=1))
    denom = np.linalg.norm(v, axis=1) * np.linalg.norm(q)
    cos = np.divide(v @ q, denom, out=np.zeros(len(rows)), where=denom > 0)
    return np.clip(1.0 - cos, 0.0, 2.0)


def nearest(
    index: NeighbourIndex, kind: str, query: np.ndarray, k: int = 5, metric: str = "cosine"
) -> list[Neighbour]:
    """The k states of ``kind`` nearest to ``query``, nearest first (ties: lower row first).

    One matrix product ranks every state; the best few are then measured again exactly in
    float64, so a state equal to the query is at distance 0."""
    if kind not in KINDS:
        raise NeighboursError(f"unknown kind of state {kind!r}; expected one of {', '.join(KINDS)}")
    if metric not in METRICS:
        raise NeighboursError(f"unknown distance {metric!r}; expected one of {', '.join(METRICS)}")
    table = index.tables[kind]
    q = np.asarray(query, dtype=np.float64).ravel()
    if q.shape[0] != table.vectors.shape[1]:
        raise NeighboursError(
            f"a {LABELS[kind]} of {q.shape[0]} numbers, but the index holds "
            f"{table.vectors.shape[1]}"
        )
    dots = table.vectors @ q.astype(np.float32)  # (N,)
    if metric == "euclidean":
        rough = table.norms**2 - 2 * dots
    else:
        rough = -dots / np.maximum(table.norms, 1e-12)
    k = max(0, min(int(k), len(table)))
    if k == 0:
        return []
    wide = min(len(table), 4 * k + 16)  # candidates re-measured exactly
    rows = np.argpartition(rough, wide - 1)[:wide] if wide < len(table) else np.arange(wide)
    exact = _distances(table, rows, q, metric)
    ranked = sorted(zip(exact.tolist(), rows.tolist()))[:k]
    return [_neighbour(index, kind, row, d) for d, row in ranked]


def _neighbour(index: NeighbourIndex, kind: str, row: int, distance: float) -> Neighbour:
    table = index.tables[kind]
    s = index.sentences[int(table.sentence[row])]
    side = "source" if kind == "encoder" else "target"
    pieces, other = (s.source, s.target) if side == "source" else (s.target, s.source)
    words, other_words = (
        (s.source_words, s.target_words) if side == "source" else (s.target_words, s.source_words)
    )
    return Neighbour(
        int(table.sentence[row]), int(table.position[row]), float(distance), side, pieces, other,
        int(row), words, other_words,
    )  # fmt: skip


def query_state(trace, kind: str, step: int, source_index: int = 0) -> np.ndarray:
    """The state of a decode (``Trace``) to look up: s_t or c_t of step ``step`` (top layer),
    or h_i of source piece ``source_index``."""
    if kind == "encoder":
        i = max(0, min(int(source_index), trace.encoder_states.shape[0] - 1))
        return np.asarray(trace.encoder_states[i])
    t = max(0, min(int(step), len(trace.steps) - 1))
    record = trace.steps[t].hidden if kind == "decoder" else trace.steps[t].context
    return np.asarray(record[-1])


@dataclass(frozen=True)
class Projection:
    """The neighbours and the query on the two main directions of the neighbours' states."""

    points: np.ndarray  # (k, 2)
    query: np.ndarray  # (2,)


def project(
    index: NeighbourIndex, kind: str, query: np.ndarray, found: Sequence[Neighbour]
) -> Projection:
    """PCA of the found states (numpy SVD), with the query placed in the same plane."""
    rows = [n.row for n in found]
    v = index.tables[kind].vectors[rows].astype(np.float64)  # (k, D)
    q = np.asarray(query, dtype=np.float64).ravel()
    mean = v.mean(axis=0) if len(v) else q
    axes = np.zeros((2, q.shape[0]))
    if len(v) > 1:
        _, _, vt = np.linalg.svd(v - mean, full_matrices=False)  # vt (min(k, D), D)
        axes[: min(2, vt.shape[0])] = vt[:2]
    return Projection((v - mean) @ axes.T, (q - mean) @ axes.T)


@dataclass(frozen=True)
class Lookup:
    """One question to the index and its answer: the current decode's state of ``kind`` at
    ``position`` (a target step, or a source piece for h_i), its neighbours and their PCA."""

    kind: str
    position: int
    metric: str
    query: np.ndarray
    found: tuple[Neighbour, ...]
    projection: Projection


def lookup(
    index: NeighbourIndex,
    trace,
    kind: str,
    step: int,
    source_index: int = 0,
    k: int = 8,
    metric: str = "cosine",
) -> Lookup:
    """The k neighbours of a decode's state: s_t or c_t at ``step``, or h_i of ``source_index``."""
    query = query_state(trace, kind, step, source_index)
    found = tuple(nearest(index, kind, query, k, metric))
    limit = trace.encoder_states.shape[0] if kind == "encoder" else len(trace.steps)
    position = max(0, min(int(source_index if kind == "encoder" else step), limit - 1))
    return Lookup(kind, position, metric, query, found, project(index, kind, query, found))
