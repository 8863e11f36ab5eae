"""The contract every model family follows, and the tensors it exchanges.

Teacher forcing::

    out = model(src, src_lengths, tgt_in)          # ForwardOutput, logits (B, T, V)

Incremental decoding (what greedy, sampling and beam search use)::

    memory = model.encode(src, src_lengths)        # Memory
    state = model.start(memory)                    # family-specific decoder state
    out, state = model.step(memory, state, y_prev) # StepOutput, logits (B, V)
    state = model.reorder(state, index)            # beam search: pick rows of the batch
    memory = memory.index_select(index)

The test that proves the step API faithful: stacking ``step()`` outputs over a target prefix
equals ``forward()`` on that prefix, for every family and configuration.

Token ids are fixed for every vocabulary: PAD=0, UNK=1, BOS=2, EOS=3.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIAL_PIECES = ("<pad>", "<unk>", "<s>", "</s>")


def _select(x: Any, index: torch.Tensor) -> Any:
    if x is None:
        return None
    if isinstance(x, torch.Tensor):
        return x.index_select(0, index)
    if isinstance(x, (tuple, list)):
        return type(x)(_select(v, index) for v in x)
    if isinstance(x, dict):
        return {k: _select(v, index) for k, v in x.items()}
    raise TypeError(f"cannot select rows of {type(x).__name__}")


def select_rows(x: Any, index: torch.Tensor) -> Any:
    """Pick rows (dimension 0) of every tensor in a nested tuple/list/dict structure."""
    return _select(x, index)


@dataclass(frozen=True)
class Memory:
    """What the encoder hands the decoder. Every tensor has the batch on dimension 0."""

    states: torch.Tensor  # (B, S, D_enc) top-layer encoder outputs h_i
    mask: torch.Tensor  # (B, S) bool, True at real (non-pad) source positions
    extra: dict[str, Any]  # family-specific tensors (final states, projected keys, ...)
    self_attention: torch.Tensor | None = None  # (B, L, H, S, S) encoder self-attention
    layers: torch.Tensor | None = None  # (B, L, S, D) every encoder layer's outputs

    def index_select(self, index: torch.Tensor) -> Memory:
        return Memory(**{f.name: _select(getattr(self, f.name), index) for f in fields(self)})

    @property
    def lengths(self) -> torch.Tensor:
        return self.mask.sum(dim=1)


@dataclass(frozen=True)
class StepOutput:
    """One decoder step for a batch. Attention fields are None for a model without attention."""

    logits: torch.Tensor  # (B, V)
    scores: torch.Tensor | None  # (B, L, H, S) before the softmax (masked positions: -inf)
    attention: torch.Tensor | None  # (B, L, H, S) after it
    hidden: torch.Tensor  # (B, L, D)
    context: torch.Tensor  # (B, L, D_ctx)
    self_attention: torch.Tensor | None = None  # (B, L, H, t+1)
    query: torch.Tensor | None = None  # (B, L, H, D_q) what attention scored the keys against


@dataclass(frozen=True)
class ForwardOutput:
    """Teacher-forced outputs over a whole target prefix; step t is index t on dimension 1."""

    logits: torch.Tensor  # (B, T, V)
    scores: torch.Tensor | None  # (B, T, L, H, S)
    attention: torch.Tensor | None  # (B, T, L, H, S)
    hidden: torch.Tensor  # (B, T, L, D)
    context: torch.Tensor  # (B, T, L, D_ctx)
    self_attention: torch.Tensor | None = None  # (B, T, L, H, T) row t zero beyond t
    query: torch.Tensor | None = None  # (B, T, L, H, D_q)
    memory: Memory | None = None


class Seq2Seq(nn.Module):
    """Base class of the model families. Subclasses set ``config`` and implement the contract."""

    arch: str = ""
    config: Any

    def forward(
        self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor
    ) -> ForwardOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> Memory:  # pragma: no cover
        raise NotImplementedError

    def logits(
        self,
        src: torch.Tensor,
        src_lengths: torch.Tensor,
        tgt_in: torch.Tensor,
        keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher forcing's logits alone, for a loss: (B, T, V), or (N, V) at the N positions
        where ``keep`` (B, T) is True (the real target tokens, so that the output layer, a
        step's costliest product, skips the padding). ``forward(...).logits`` here; the model
        families override it with faster paths that keep no attention weights."""
        logits = self(src, src_lengths, tgt_in).logits
        return logits if keep is None else logits[keep]

    def start(self, memory: Memory) -> Any:  # pragma: no cover
        raise NotImplementedError

    def step(
        self, memory: Memory, state: Any, y_prev: torch.Tensor
    ) -> tuple[StepOutput, Any]:  # pragma: no cover
        raise NotImplementedError

    def score_weights(self) -> dict[str, Any]:
        """The attention score function's weights as numpy arrays, for working its arithmetic
        out by hand (``arithmetic.from_step``); empty when the score needs none or the trace
        records what it needs (the Transformer's q and k)."""
        return {}

    def reorder(self, state: Any, index: torch.Tensor) -> Any:
        """Rows of the decoder state picked by ``index`` (B',). Works for nested tensors."""
        return select_rows(state, index)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device
