"""Dropout whose random mask is cheap on a CPU.

Training zeroes each element with probability p and scales the rest by 1/(1-p), as
``nn.Dropout`` does. On a CPU torch draws every mask element on its own from the Mersenne
Twister (``bernoulli_``), which made dropout 4 % of a float32 Transformer training step and 7 %
of a bfloat16 one. Here 64-bit random words are cut into four 16-bit numbers r, and an element is
kept where r ≥ p·2¹⁶ (shifted to int16): one draw serves four elements. A 64 × 14 × 256 mask,
forward and backward on one core: 1.1 ms against 3.6 ms for ``F.dropout``.

p is thus rounded to a multiple of 2⁻¹⁶ (0.1 becomes 0.100006). The mask comes from torch's
default generator, so ``torch.manual_seed`` makes a run repeatable as before. Other devices,
evaluation, p = 0 and p = 1 are ``nn.Dropout`` unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


def keep_mask(shape: torch.Size, p: float) -> torch.Tensor:
    """A CPU bool mask of ``shape``, each element True with probability 1 - p (p in [0, 1))."""
    n = shape.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None)  # all 64 bits
    threshold = round(p * 2**16) - 2**15  # r is uniform on [-2^15, 2^15)
    return words.view(torch.int16)[:n].view(shape) >= threshold


class Dropout(nn.Dropout):
    """``nn.Dropout`` with :func:`keep_mask` on a CPU while training."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not 0 < self.p < 1 or x.device.type != "cpu" or self.inplace:
            return super().forward(x)
        scale = keep_mask(x.shape, self.p).to(x.dtype).mul_(1.0 / (1.0 - self.p))
        return x * scale  # autograd keeps the scaled mask for the backward pass
