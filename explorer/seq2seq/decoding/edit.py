"""Edited attention: replace α_t at chosen steps and decode on greedily from there.

An :class:`AttentionEdit` names a target step t (0-based, as ``DecodeStep.position``) and the
attention the decoder must use there: one-hot on a source index, or a weight vector that is
renormalised to sum to 1. At that step:

- RNN families (Bahdanau, Luong): α_t is replaced and c_t = Σ_i α_ti h_i recomputed, so the
  decoder state (Bahdanau), the attentional state h~_t (Luong) and the prediction follow it;
- Transformer: the cross-attention weights of one layer (every layer when ``layer`` is None), one
  head or all heads, are replaced; each replaced head's output Σ_i α_i v_i and the layer's W^O
  projection are recomputed, and every layer above sees the result.

The raw scores e_t stay as the model computed them; the recorded ``cross_attention`` and
``context`` are the edited ones. Every later step is the model's own greedy choice, from the
state the edited step left. The edit is applied through a forward hook on the attention module
for the length of one ``step()`` call; nothing is left on the model afterwards.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from explorer.seq2seq.decoding.decode import DecodeError, as_source, check_max_len, greedy
from explorer.seq2seq.decoding.trace import Trace

if TYPE_CHECKING:
    from explorer.seq2seq.data.tokenizer import TokenizerLike
    from explorer.seq2seq.models.base import Seq2Seq


class EditError(DecodeError):
    """An attention edit does not fit the model, the source or the decode."""


@dataclass(frozen=True)
class AttentionEdit:
    """At target step ``step``, attend one-hot to ``source_index`` or with ``weights``.

    ``layer`` and ``head`` pick the Transformer's cross-attention to replace: ``layer`` None is
    every decoder layer, ``head`` None every head of it. An RNN has one layer and one head (0).
    """

    step: int
    source_index: int | None = None
    weights: tuple[float, ...] | None = None
    layer: int | None = None
    head: int | None = None

    def __post_init__(self) -> None:
        if (self.source_index is None) == (self.weights is None):
            raise EditError(f"edit at step {self.step}: give a source index or weights, not both")
        if self.weights is not None:
            object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))

    def alpha(self, src_len: int) -> np.ndarray:
        """The (S,) weights this edit puts in place of α_t, summing to 1."""
        if self.weights is None:
            a = np.zeros(src_len, dtype=np.float32)
            a[self.source_index] = 1.0
            return a
        w = np.asarray(self.weights, dtype=np.float64)
        return (w / w.sum()).astype(np.float32)

    def describe(self) -> str:
        target = f"source {self.source_index}" if self.weights is None else "the weights given"
        where = "" if self.layer is None else f" in layer {self.layer}"
        if self.head is not None:
            where += f" head {self.head}"
        return f"step {self.step} → {target}{where}"


def _attention_shape(model: Seq2Seq) -> tuple[int, int]:
    """(layers, heads) of the model's cross-attention; an error for a model without one."""
    if getattr(model, "arch", "") == "none" or (
        getattr(model, "attention", None) is None and not hasattr(model, "decoder")
    ):
        raise EditError(
            "this model has no attention (it reads one fixed context vector): there is nothing "
            "to edit"
        )
    if getattr(model, "arch", "") == "transformer":
        return model.config.dec_layers, model.config.heads
    return 1, 1


def check_edits(model: Seq2Seq, edits: Sequence[AttentionEdit], src_len: int, max_len: int) -> None:
    """Raise :class:`EditError` with a one-line message for the first edit that does not fit."""
    layers, heads = _attention_shape(model)
    seen: set[tuple[int, int | None, int | None]] = set()
    for e in edits:
        if not 0 <= e.step < max_len:
            raise EditError(
                f"edit step {e.step}: must be from 0 to {max_len - 1} (the length limit)"
            )
        if e.source_index is not None and not 0 <= e.source_index < src_len:
            raise EditError(
                f"edit at step {e.step}: source index {e.source_index} is outside the "
                f"source's {src_len} pieces (0 to {src_len - 1}, end-of-sentence included)"
            )
        if e.weights is not None:
            _check_weights(e, src_len)
        if e.layer is not None and not 0 <= e.layer < layers:
            raise EditError(f"edit at step {e.step}: layer {e.layer} is not in 0..{layers - 1}")
        if e.head is not None and not 0 <= e.head < heads:
            raise EditError(f"edit at step {e.step}: head {e.head} is not in 0..{heads - 1}")
        key = (e.step, e.layer, e.head)
        if key in seen:
            raise EditError(f"edit at step {e.step}: given twice for the same layer and head")
        seen.add(key)


def _check_weights(e: AttentionEdit, src_len: int) -> None:
    w = np.asarray(e.weights, dtype=np.float64)
    if len(w) != src_len:
        raise EditError(f"edit at step {e.step}: {len(w)} weights for a source of {src_len} pieces")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise EditError(f"edit at step {e.step}: weights must be finite and non-negative")
    if w.sum() <= 0:
        raise EditError(f"edit at step {e.step}: the weights are all zero")


# ------------------------------------------------------------------------------------- hooks


def _rnn_hook(alpha: torch.Tensor):
    """Forward hook on an RNN score function: (c, α, e) → (α' H, α', e)."""

    def hook(module, args, output):
        keys = args[1]  # (B, S, D_k), also the values
        a = alpha.to(keys.dtype).expand(keys.shape[0], -1)  # (B, S)
        context = torch.bmm(a.unsqueeze(1), keys).squeeze(1)  # (B, D_k)
        return context, a, output[2]

    return hook


def _transformer_hook(alpha: torch.Tensor, head: int | None):
    """Forward hook on a cross-attention MultiHeadAttention: the chosen heads' weights replaced,
    the heads' outputs and W^O recomputed."""

    def hook(module, args, output):
        x, v = args[0], args[2]  # (B, T_q, d_model), (B, H, S, d_k)
        weights = output[1].clone()  # (B, H, T_q, S)
        w = alpha.to(weights.dtype)
        if head is None:
            weights[:] = w
        else:
            weights[:, head] = w
        B, T_q, D = x.shape
        heads = torch.matmul(weights, v)  # (B, H, T_q, d_k)
        out = module.W_o(heads.transpose(1, 2).reshape(B, T_q, D))  # (B, T_q, d_model)
        return out, weights, output[2], output[3]

    return hook


@contextlib.contextmanager
def _applied(model: Seq2Seq, edits: Sequence[AttentionEdit], src_len: int) -> Iterator[None]:
    handles = []
    try:
        for e in edits:
            alpha = torch.from_numpy(e.alpha(src_len)).to(model.device)  # (S,)
            if getattr(model, "arch", "") == "transformer":
                layers = range(len(model.decoder)) if e.layer is None else [e.layer]
                for l in layers:
                    module = model.decoder[l].cross_attn
                    handles.append(module.register_forward_hook(_transformer_hook(alpha, e.head)))
            else:
                handles.append(model.attention.register_forward_hook(_rnn_hook(alpha)))
        yield
    finally:
        for h in handles:
            h.remove()


def edited_greedy(
    model: Seq2Seq,
    tokenizer: TokenizerLike,
    src: str | Sequence[int],
    edits: Sequence[AttentionEdit],
    *,
    max_len: int | None = None,
    prefix: str | Sequence[int] | None = None,
) -> Trace:
    """Greedy decoding with the attention replaced at the edited steps.

    The trace's method is "edited", ``extras["edits"]`` describes the edits and
    ``extras["edited_steps"]`` lists their steps; a forced ``prefix`` works as in :func:`greedy`
    (``extras["forced_steps"]`` says how many). An edit at a step the decode never reaches (it
    ended earlier) is an error.
    """
    source = as_source(tokenizer, src)
    S = len(source.ids)
    check_edits(model, edits, S, check_max_len(max_len, S))
    by_step: dict[int, list[AttentionEdit]] = {}
    for e in edits:
        by_step.setdefault(e.step, []).append(e)

    def around_step(t: int):
        return _applied(model, by_step.get(t, ()), S)

    trace = greedy(
        model, tokenizer, source, max_len=max_len, prefix=prefix, around_step=around_step
    )
    late = sorted(t for t in by_step if t >= len(trace.steps))
    if late:
        raise EditError(
            f"edit at step {late[0]}: the decode ended after {len(trace.steps)} steps "
            f"(0 to {len(trace.steps) - 1})"
        )
    extras = dict(trace.extras, edits=[e.describe() for e in edits], edited_steps=sorted(by_step))
    if trace.method == "greedy":
        extras["then"] = "greedy"
    return replace(trace, method="edited", extras=extras)


# ------------------------------------------------------------------------------ command line

_SPEC = re.compile(r"^\s*(\d+)\s*=\s*(\d+)\s*(?:@\s*(\d+)\s*(?::\s*(\d+|\*)\s*)?)?$")


def parse_edit(spec: str) -> AttentionEdit:
    """``STEP=SRC_INDEX``, ``STEP=SRC_INDEX@LAYER`` (all heads of a layer) or
    ``STEP=SRC_INDEX@LAYER:HEAD``; every number 0-based."""
    m = _SPEC.match(spec)
    if m is None:
        raise EditError(
            f"--edit-attention {spec!r}: expected STEP=SRC_INDEX, optionally followed by @LAYER "
            "or @LAYER:HEAD (0-based numbers), e.g. 3=1 or 3=1@2:0"
        )
    step, index, layer, head = m.groups()
    return AttentionEdit(
        step=int(step),
        source_index=int(index),
        layer=None if layer is None else int(layer),
        head=None if head in (None, "*") else int(head),
    )
