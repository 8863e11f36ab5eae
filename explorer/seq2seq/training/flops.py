"""Model FLOPs of a training step, and the model FLOPs utilisation (MFU) of a run.

Counted as PaLM counts them (Chowdhery et al. 2022, appendix B): the multiply-adds of the matrix
products the model needs for the batch's real tokens, two FLOPs each, forward and backward (the
backward pass takes two products for each one of the forward pass: the gradients of the input
and of the weight), so a step is three forward passes. Padding, softmax, normalisation and the
products of the recomputation some attention kernels do in the backward pass are not counted:
MFU says how much of the accelerator's peak went into the model itself, whatever the kernels.

For the Transformer (``models/transformer.py``) with d = d_model, f = d_ff, V target pieces, a
pair of s source and t target tokens costs, forward:

    encoder layer, per source token    2 · (4 d² + 2 d f)      W^Q W^K W^V W^O, W_1 W_2
    decoder layer, per target token    2 · (6 d² + 2 d f)      self W^Q W^K W^V W^O, cross W^Q W^O
    decoder layer, per source token    2 · 2 d²                cross W^K W^V on the encoder output
    output layer, per target token     2 · d V
    attention, per layer               4 s² d (encoder), 4 t² d + 4 t s d (decoder)

(Q Kᵀ and α V are 2 · L_q · L_k · d each; the decoder's causal mask is counted whole, as PaLM
does.) ``tests/test_flops.py`` checks the sum against torch's own FLOP counter.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from explorer.seq2seq.models.base import Seq2Seq


@dataclass(frozen=True)
class Lengths:
    """A batch's sentence pairs summed: source and target tokens (Σs, Σt) and the products the
    attention costs (Σs², Σt², Σst)."""

    s: int = 0
    t: int = 0
    ss: int = 0
    tt: int = 0
    st: int = 0

    @classmethod
    def of(cls, pairs: list[tuple[int, int]]) -> Lengths:
        return cls(
            s=sum(s for s, _ in pairs),
            t=sum(t for _, t in pairs),
            ss=sum(s * s for s, _ in pairs),
            tt=sum(t * t for _, t in pairs),
            st=sum(s * t for s, t in pairs),
        )


def forward_flops(model: Seq2Seq, n: Lengths) -> int | None:
    """The forward pass's model FLOPs on a batch of pairs summed as ``n`` (teacher forcing, the
    output layer on the target tokens only); None for a family this module does not count."""
    c = getattr(model, "config", None)
    if getattr(model, "arch", None) != "transformer" or c is None:
        return None
    d, f, V = c.d_model, c.d_ff, c.tgt_vocab
    encoder = c.enc_layers * (2 * (4 * d * d + 2 * d * f) * n.s + 4 * d * n.ss)
    decoder = c.dec_layers * (
        2 * (6 * d * d + 2 * d * f) * n.t + 2 * 2 * d * d * n.s + 4 * d * (n.tt + n.st)
    )
    return encoder + decoder + 2 * d * V * n.t


def step_flops(model: Seq2Seq, n: Lengths) -> int | None:
    """A training step's model FLOPs: the forward pass and the backward pass (twice as many)."""
    forward = forward_flops(model, n)
    return None if forward is None else 3 * forward


# Dense peaks in FLOP/s from NVIDIA's data sheets, per GPU: 16-bit products (bfloat16 or float16,
# float32 accumulation) and TF32. The first name contained in the device's name wins.
_PEAKS: tuple[tuple[str, float, float], ...] = (
    ("H200", 989e12, 494.7e12),
    ("H100 PCIe", 756e12, 378e12),
    ("H100 NVL", 835.5e12, 417.5e12),
    ("H100", 989e12, 494.7e12),  # SXM
    ("A100", 312e12, 156e12),
    ("L40S", 362e12, 183e12),
    ("L4", 121e12, 60e12),
)


def peak_flops(device: torch.device, amp_dtype: torch.dtype | None) -> float | None:
    """The device's dense peak for the products a run does: 16-bit under autocast, TF32 in
    float32 when torch allows TF32 products. None where the device is not in the table (every
    CPU: there a run reports its achieved FLOP/s and no utilisation)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, half, tf32 in _PEAKS:
        if key in name:
            if amp_dtype in (torch.bfloat16, torch.float16):
                return half
            return tf32 if torch.backends.cuda.matmul.allow_tf32 else None
    return None
