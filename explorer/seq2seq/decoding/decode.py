"""Greedy decoding, sampling, forced prefixes and teacher forcing, recorded as step-API traces.

Every function takes a model (the :mod:`base` contract), a tokenizer and a source: a sentence or its
already encoded ids (end-of-sentence included). Each emitted token becomes one :class:`DecodeStep`
built by :func:`step_records`, the single place where decoder outputs turn into numpy records (beam
search uses it too). Attention rows are trimmed to the sentence's real source length, so a
sentence decoded inside a padded batch yields the same records as one decoded alone.

Notation: logits z_t (V,), temperature τ, p_t = softmax(z_t / τ). ``DecodeStep.logprobs`` is always
log p_t over the whole vocabulary, before any top-k / top-p filtering: the record shows what the
model believes, and the filters can be drawn over it (:func:`top_k_filter`, :func:`top_p_filter`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from explorer.seq2seq.decoding.trace import DecodeStep, Trace
from explorer.seq2seq.models.base import BOS, EOS, PAD, UNK, Memory, Seq2Seq, StepOutput

if TYPE_CHECKING:
    from explorer.seq2seq.data.tokenizer import TokenizerLike

WORD_START = "\u2581"  # sentencepiece's word-start marker "▁"


MIN_TEMPERATURE, MAX_TEMPERATURE = 1e-3, 1e3


class DecodeError(ValueError):
    """A decoding argument is out of range or a source / prefix cannot be encoded."""


@dataclass(frozen=True)
class Source:
    """A source sentence and the ids fed to the encoder (end-of-sentence included)."""

    text: str
    ids: tuple[int, ...]


def as_source(tokenizer: TokenizerLike, src: str | Sequence[int] | Source) -> Source:
    """Encode a sentence, or check and wrap ids that are already encoded.

    A :class:`Source` (``inputs.prepare_source`` makes one) is taken as it is."""
    if isinstance(src, Source):
        return src
    if isinstance(src, str):
        ids = tuple(int(i) for i in tokenizer.encode_src(src))
        if not ids:
            raise DecodeError(f"source {src!r}: the tokenizer returned no ids")
        return Source(src, ids)
    if isinstance(src, torch.Tensor):
        src = src.tolist()
    try:
        ids = tuple(int(i) for i in src)
    except (TypeError, ValueError) as e:
        raise DecodeError(f"source: expected a string or a list of token ids, got {src!r}") from e
    if not ids:
        raise DecodeError("source: the list of token ids is empty")
    if min(ids) < 0:
        raise DecodeError(f"source: negative token id {min(ids)} in {list(ids)}")
    return Source(" ".join(tokenizer.src_pieces(list(ids))), ids)


def target_ids(
    tokenizer: TokenizerLike, target: str | Sequence[int], what: str = "prefix"
) -> list[int]:
    """Target ids from a list of ids, or from text.

    Text is encoded with ``tokenizer.encode_tgt`` when the tokenizer has one (a trailing
    end-of-sentence is dropped). Otherwise text is read as space-separated target pieces, as
    ``tgt_pieces`` shows them; a word not in the vocabulary is tried once more with the word-start
    marker "▁" in front (so "le chat" finds "▁le ▁chat").
    """
    V = tokenizer.tgt_vocab_size
    if not isinstance(target, str):
        ids = [int(i) for i in target]
        bad = [i for i in ids if not 0 <= i < V]
        if bad:
            raise DecodeError(
                f"{what}: token id {bad[0]} is outside the target vocabulary [0, {V})"
            )
        return ids
    encode = getattr(tokenizer, "encode_tgt", None)
    if encode is not None:
        ids = [int(i) for i in encode(target)]
        return ids[:-1] if ids and ids[-1] == EOS else ids
    unk_piece = tokenizer.tgt_piece(UNK)
    ids = []
    for piece in target.split():
        i = tokenizer.piece_to_id(piece, "tgt")
        if i == UNK and piece != unk_piece:
            i = tokenizer.piece_to_id(WORD_START + piece, "tgt")
        if i == UNK and piece != unk_piece:
            raise DecodeError(f"{what}: piece {piece!r} is not in the target vocabulary")
        ids.append(int(i))
    return ids


def default_max_len(src_len: int, a: float = 2.0, b: int = 10) -> int:
    """The length limit used when none is given: a·|x| + b target tokens (at least 1)."""
    return max(1, int(a * src_len + b))


def check_max_len(max_len: int | None, src_len: int) -> int:
    if max_len is None:
        return default_max_len(src_len)
    if int(max_len) != max_len or max_len < 1:
        raise DecodeError(f"max_len must be a positive integer, got {max_len!r}")
    return int(max_len)


def within_positions(model: Seq2Seq, T: int) -> int:
    """``T`` target steps, at most the positions the model has (a Transformer's ``max_len``)."""
    positions = getattr(getattr(model, "config", None), "max_len", None)
    return min(T, positions) if isinstance(positions, int) and positions > 0 else T


def pad_sources(
    ids: Sequence[Sequence[int]], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, S) padded id tensor and (B,) lengths."""
    lengths = torch.tensor([len(x) for x in ids], dtype=torch.long)
    src = torch.full((len(ids), int(lengths.max())), PAD, dtype=torch.long)
    for b, x in enumerate(ids):
        src[b, : len(x)] = torch.tensor(x, dtype=torch.long)
    return src.to(device), lengths.to(device)


@contextlib.contextmanager
def inference(model: Seq2Seq) -> Iterator[None]:
    """Eval mode (no dropout) and no autograd for the duration; the training flag is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _numpy(x: torch.Tensor | None, rows: torch.Tensor) -> np.ndarray | None:
    if x is None:
        return None
    return x.index_select(0, rows).detach().float().cpu().numpy()


def step_records(
    out: StepOutput,
    *,
    rows: Sequence[int],
    tokens: Sequence[int],
    position: int,
    src_lengths: Sequence[int],
    tokenizer: TokenizerLike,
    logprobs: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> list[DecodeStep]:
    """One :class:`DecodeStep` per selected batch row of a decoder step.

    ``rows`` picks rows of ``out``; ``tokens[i]`` is the token emitted from row ``rows[i]`` and
    ``src_lengths[i]`` that row's real source length (attention is trimmed to it). ``logprobs``
    (B, V) may be passed when already computed; otherwise it is log_softmax(logits / τ) in float32.
    """
    if logprobs is None:
        logprobs = F.log_softmax(out.logits.float() / temperature, dim=-1)  # (B, V)
    idx = torch.as_tensor(list(rows), dtype=torch.long, device=out.logits.device)
    lp = _numpy(logprobs, idx)  # (n, V)
    scores = _numpy(out.scores, idx)  # (n, L, H, S) or None
    attn = _numpy(out.attention, idx)
    self_attn = _numpy(out.self_attention, idx)  # (n, L, H, t+1) or None
    hidden = _numpy(out.hidden, idx)  # (n, L, D)
    context = _numpy(out.context, idx)  # (n, L, D_ctx)
    query = _numpy(out.query, idx)  # (n, L, H, D_q) or None
    records = []
    for i, (tok, S) in enumerate(zip(tokens, src_lengths, strict=True)):
        records.append(
            DecodeStep(
                position=position,
                token=int(tok),
                piece=tokenizer.tgt_piece(int(tok)),
                logprobs=lp[i],
                scores=None if scores is None else scores[i, :, :, :S],
                cross_attention=None if attn is None else attn[i, :, :, :S],
                self_attention=None if self_attn is None else self_attn[i],
                hidden=hidden[i],
                context=context[i],
                query=None if query is None else query[i],
            )
        )
    return records


def encoder_fields(memory: Memory, row: int, src_len: int) -> dict[str, np.ndarray | None]:
    """The encoder side of a Trace for one batch row, trimmed to its real source length."""

    def pick(x: torch.Tensor | None) -> np.ndarray | None:
        return None if x is None else x[row].detach().float().cpu().numpy()

    states = pick(memory.states)  # (S, D)
    self_attn = pick(memory.self_attention)  # (L, H, S, S)
    layers = pick(memory.layers)  # (L, S, D)
    cross_k = pick(memory.extra.get("cross_k"))  # (L, H, S, d_k) Transformer
    cross_v = pick(memory.extra.get("cross_v"))
    return {
        "encoder_states": states[:src_len],
        "encoder_self_attention": None
        if self_attn is None
        else self_attn[:, :, :src_len, :src_len],
        "encoder_layers": None if layers is None else layers[:, :src_len],
        "cross_keys": None if cross_k is None else cross_k[:, :, :src_len],
        "cross_values": None if cross_v is None else cross_v[:, :, :src_len],
    }


def make_trace(
    model: Seq2Seq,
    tokenizer: TokenizerLike,
    source: Source,
    memory: Memory,
    steps: Sequence[DecodeStep],
    method: str,
    row: int = 0,
    extras: dict | None = None,
) -> Trace:
    return Trace(
        source=source.text,
        src_tokens=source.ids,
        src_pieces=tuple(tokenizer.src_pieces(list(source.ids))),
        steps=tuple(steps),
        arch=getattr(model, "arch", ""),
        method=method,
        eos_id=EOS,
        extras=extras or {},
        **encoder_fields(memory, row, len(source.ids)),
    )


# ------------------------------------------------------------------------------------- filters


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of the last dimension, set the rest to -inf (k = 0: keep all)."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most probable tokens whose mass is ≥ p.

    A token is kept when the mass of the tokens ranked above it is still < p, so the most probable
    token is always kept. Removed tokens get logit -inf.
    """
    if p >= 1.0:
        return logits
    probs = torch.softmax(logits.float(), dim=-1)
    sorted_p, order = torch.sort(probs, dim=-1, descending=True)
    mass_before = torch.cumsum(sorted_p, dim=-1) - sorted_p  # exclusive cumulative sum
    remove_sorted = mass_before >= p
    remove_sorted[..., 0] = False  # a p below float32's smallest number would remove every token
    remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


# ------------------------------------------------------------------------------------- decoders

Picker = Callable[[torch.Tensor], int]  # (1, V) tempered log-probs -> token id
StepHook = Callable[[int], contextlib.AbstractContextManager]  # entered around step t's step()


def _decode(
    model: Seq2Seq,
    tokenizer: TokenizerLike,
    src: str | Sequence[int],
    *,
    max_len: int | None,
    prefix: str | Sequence[int] | None,
    pick: Picker,
    method: str,
    temperature: float = 1.0,
    extras: dict | None = None,
    around_step: StepHook | None = None,
) -> Trace:
    source = as_source(tokenizer, src)
    forced = [] if prefix is None else target_ids(tokenizer, prefix, "prefix")
    T = within_positions(model, max(check_max_len(max_len, len(source.ids)), len(forced)))
    S = len(source.ids)
    with inference(model):
        src_t, lengths = pad_sources([source.ids], model.device)  # (1, S), (1,)
        memory = model.encode(src_t, lengths)
        state = model.start(memory)
        y_prev = torch.full((1,), BOS, dtype=torch.long, device=src_t.device)
        steps: list[DecodeStep] = []
        for t in range(T):
            with around_step(t) if around_step else contextlib.nullcontext():
                out, state = model.step(memory, state, y_prev)
            logp = F.log_softmax(out.logits.float() / temperature, dim=-1)  # (1, V)
            token = forced[t] if t < len(forced) else pick(logp)
            steps += step_records(
                out,
                rows=[0],
                tokens=[token],
                position=t,
                src_lengths=[S],
                tokenizer=tokenizer,
                logprobs=logp,
            )
            if token == EOS:
                break
            y_prev = torch.full((1,), token, dtype=torch.long, device=src_t.device)
    info = dict(extras or {})
    if forced:
        info.update(forced_steps=len(forced), then=method)
        method = "forced"
    return make_trace(model, tokenizer, source, memory, steps, method, extras=info)


def greedy(
    model: Seq2Seq,
    tokenizer: TokenizerLike,
    src: str | Sequence[int],
    *,
    max_len: int | None = None,
    prefix: str | Sequence[int] | None = None,
    around_step: StepHook | None = None,
) -> Trace:
    """y_t = argmax_w log p(w | y_<t, x) until end-of-sentence or ``max_len`` tokens.

    ``max_len`` defaults to 2·|x| + 10. A ``prefix`` (ids, or text: see :func:`target_ids`) is
    fed first; those steps are recorded too, and the trace's method is then "forced" with
    ``extras["forced_steps"]`` saying how many steps were forced. ``around_step(t)``, when given,
    is a context manager entered around the model's step t (``edit.edited_greedy`` replaces the
    attention that way).
    """
    return _decode(
        model,
        tokenizer,
        src,
        max_len=max_len,
        prefix=prefix,
        pick=lambda logp: int(logp[0].argmax()),
        method="greedy",
        around_step=around_step,
    )


def sample(
    model: Seq2Seq,
    tokenizer: TokenizerLike,
    src: str | Sequence[int],
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int = 0,
    max_len: int | None = None,
    prefix: str | Sequence[int] | None = None,
) -> Trace:
    """Ancestral sampling from softmax(z / τ), optionally restricted by top-k and top-p.

    Reproducible: the same seed gives the same output. The recorded ``logprobs`` are the tempered
    distribution before filtering; the token was drawn from its top-k / top-p renormalisation.
    """
    if not MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE:  # z / τ overflows beyond these
        raise DecodeError(
            f"temperature must be from {MIN_TEMPERATURE:g} to {MAX_TEMPERATURE:g} (lower is greedy "
            f"decoding in effect), got {temperature!r}"
        )
    if int(top_k) != top_k or top_k < 0:
        raise DecodeError(f"top_k must be a non-negative integer, got {top_k!r}")
    if not 0.0 < top_p <= 1.0:
        raise DecodeError(f"top_p must be in (0, 1], got {top_p!r}")
    gen = torch.Generator(device=model.device)
    gen.manual_seed(int(seed))

    def pick(logp: torch.Tensor) -> int:
        z = top_p_filter(top_k_filter(logp, int(top_k)), top_p)  # (1, V) tempered log-probs
        return int(torch.multinomial(torch.softmax(z, dim=-1), 1, generator=gen)[0, 0])

    settings = {"temperature": temperature, "top_k": int(top_k), "top_p": top_p, "seed": seed}
    return _decode(
        model,
        tokenizer,
        src,
        max_len=max_len,
        prefix=prefix,
        pick=pick,
        method="sample",
        temperature=temperature,
        extras=settings,
    )


def teacher_forced(
    model: Seq2Seq,
    tokenizer: TokenizerLike,
    src: str | Sequence[int],
    reference: str | Sequence[int],
) -> Trace:
    """The model's log-probabilities and attention along a reference translation.

    One ``forward()`` call on [BOS] + y; the trace has |y| + 1 steps (end-of-sentence included),
    each recording the distribution the model predicted at that position. A reference given as
    ids may end with EOS or not.
    """
    source = as_source(tokenizer, src)
    y = target_ids(tokenizer, reference, "reference")
    if y and y[-1] == EOS:
        y = y[:-1]
    targets = y + [EOS]
    S = len(source.ids)
    with inference(model):
        src_t, lengths = pad_sources([source.ids], model.device)
        tgt_in = torch.tensor([[BOS] + y], dtype=torch.long, device=src_t.device)  # (1, T)
        fwd = model(src_t, lengths, tgt_in)
        memory = fwd.memory if fwd.memory is not None else model.encode(src_t, lengths)
        steps: list[DecodeStep] = []
        for t, token in enumerate(targets):
            out = StepOutput(
                logits=fwd.logits[:, t],
                scores=None if fwd.scores is None else fwd.scores[:, t],
                attention=None if fwd.attention is None else fwd.attention[:, t],
                hidden=fwd.hidden[:, t],
                context=fwd.context[:, t],
                self_attention=None
                if fwd.self_attention is None
                else fwd.self_attention[:, t, :, :, : t + 1],
                query=None if fwd.query is None else fwd.query[:, t],
            )
            steps += step_records(
                out, rows=[0], tokens=[token], position=t, src_lengths=[S], tokenizer=tokenizer
            )
    text = reference if isinstance(reference, str) else tokenizer.decode_tgt(y)
    return make_trace(
        model, tokenizer, source, memory, steps, "teacher-forced", extras={"reference": text}
    )


def greedy_batch(
    model: Seq2Seq,
    tokenizer: TokenizerLike,
    sentences: Sequence[str | Sequence[int]],
    *,
    batch_size: int = 64,
    max_len: int | None = None,
) -> list[list[int]]:
    """Greedy token ids for many sentences (EOS included when emitted), without records.

    Sentences are sorted by length and decoded ``batch_size`` at a time; finished rows leave the
    batch. The result is in input order and equals :func:`greedy` token for token.
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise DecodeError(f"batch_size must be a positive integer, got {batch_size!r}")
    sources = [as_source(tokenizer, s) for s in sentences]
    order = sorted(range(len(sources)), key=lambda i: -len(sources[i].ids))
    results: list[list[int]] = [[] for _ in sources]
    with inference(model):
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            ids = [sources[i].ids for i in chunk]
            limits = [within_positions(model, check_max_len(max_len, len(x))) for x in ids]
            src_t, lengths = pad_sources(ids, model.device)  # (B, S)
            memory = model.encode(src_t, lengths)
            state = model.start(memory)
            device = src_t.device
            alive = list(range(len(chunk)))  # chunk positions of the rows still decoding
            y_prev = torch.full((len(chunk),), BOS, dtype=torch.long, device=device)
            for t in range(max(limits)):
                out, state = model.step(memory, state, y_prev)
                y = F.log_softmax(out.logits.float(), dim=-1).argmax(dim=-1)  # (B_alive,)
                keep = []
                for r, (j, tok) in enumerate(zip(alive, y.tolist(), strict=True)):
                    results[chunk[j]].append(tok)
                    if tok != EOS and t + 1 < limits[j]:
                        keep.append(r)
                if not keep:
                    break
                if len(keep) < len(alive):
                    index = torch.tensor(keep, dtype=torch.long, device=device)
                    memory = memory.index_select(index)
                    state = model.reorder(state, index)
                    y = y.index_select(0, index)
                    alive = [alive[r] for r in keep]
                y_prev = y
    return results
