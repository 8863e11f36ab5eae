"""The Transformer's training path (``logits``: torch's fused scaled_dot_product_attention, no
weights formed) against the explicit softmax(QKᵀ/√d)V path every app view uses."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explorer.seq2seq.models import transformer as transformer_module
from explorer.seq2seq.models.attention import fused_scaled_dot_product, scaled_dot_product
from explorer.seq2seq.models.base import BOS, PAD
from explorer.seq2seq.models.transformer import TransformerConfig, TransformerSeq2Seq
from explorer.seq2seq.training.batch import scheduled_logits

# Marian / opus-mt's options (see models/marian.py): post-norm, [sin | cos] positions, SiLU, no
# embedding scale, an output bias, and PAD and BOS never emitted (-inf logits).
MARIAN = {
    "norm": "post",
    "positions": "sinusoidal-halves",
    "activation": "silu",
    "scale_embeddings": False,
    "output_bias": True,
    "never_pad_bos": True,
    "tie_embeddings": True,
}
VARIANTS = {
    "pre-norm": {"norm": "pre"},
    "post-norm": {"norm": "post", "tie_embeddings": False},
    "marian": MARIAN,
}


def model_of(variant: str) -> TransformerSeq2Seq:
    torch.manual_seed(3)
    config = TransformerConfig(
        src_vocab=40, tgt_vocab=30, d_model=32, heads=4, enc_layers=2, dec_layers=2, d_ff=64,
        dropout=0.0, **VARIANTS[variant],
    )  # fmt: skip
    model = TransformerSeq2Seq(config).double().eval()
    if model.b_out is not None:  # a bias that is not zero, so that it counts
        nn.init.normal_(model.b_out)
    return model


def padded_batch():
    """Three sentences of 7, 3 and 1 source tokens and 6, 2 and 4 target tokens, padded."""
    g = torch.Generator().manual_seed(5)
    src = torch.randint(4, 40, (3, 7), generator=g)
    src_len = torch.tensor([7, 3, 1])
    src[1, 3:] = PAD
    src[2, 1:] = PAD
    tgt = torch.randint(4, 30, (3, 7), generator=g)
    tgt[:, 0] = BOS
    for row, n in enumerate([6, 2, 4]):
        tgt[row, n + 1 :] = PAD
    return src, src_len, tgt[:, :-1], tgt[:, 1:]


def loss_and_grads(model, logits_of) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    src, src_len, tgt_in, tgt_out = padded_batch()
    # label smoothing spreads weight over every column, so -inf logits (Marian's) would make it inf
    smoothing = 0.0 if model.config.never_pad_bos else 0.1
    model.zero_grad()
    logits = logits_of(model, src, src_len, tgt_in)
    loss = nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1), ignore_index=PAD,
        label_smoothing=smoothing,
    )  # fmt: skip
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def explicit(model, src, src_len, tgt_in):
    return model(src, src_len, tgt_in).logits


def fused(model, src, src_len, tgt_in):
    return model.logits(src, src_len, tgt_in)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_fused_loss_and_gradients_equal_the_explicit_path(variant):
    model = model_of(variant)
    want_loss, want_grads = loss_and_grads(model, explicit)
    got_loss, got_grads = loss_and_grads(model, fused)
    assert torch.isfinite(want_loss)
    assert abs(float(got_loss - want_loss)) < 1e-5
    assert want_grads.keys() == got_grads.keys()
    for name, want in want_grads.items():
        assert (got_grads[name] - want).abs().max() < 1e-5, name
    # every parameter took part: a gradient that is zero everywhere would compare equal anyway
    assert all(g.abs().max() > 0 for n, g in want_grads.items() if "pos" not in n)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_fused_logits_equal_the_explicit_ones_in_float32(variant):
    model = model_of(variant).float()
    src, src_len, tgt_in, _ = padded_batch()
    want = model(src, src_len, tgt_in).logits
    got = model.logits(src, src_len, tgt_in)
    finite = torch.isfinite(want)
    assert torch.equal(finite, torch.isfinite(got))  # Marian's PAD and BOS columns: -inf in both
    assert (got[finite] - want[finite]).abs().max() < 1e-5


@pytest.mark.parametrize("mask_kind", ["padding", "causal"])
def test_fused_attention_is_the_explicit_output(mask_kind):
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 3, 5, 8, generator=g, dtype=torch.float64) for _ in range(3))
    if mask_kind == "padding":
        mask = torch.tensor([[True] * 5, [True, True, False, False, False]])[:, None, None, :]
    else:
        mask = torch.ones(5, 5, dtype=torch.bool).tril()
    out, alpha, _ = scaled_dot_product(q, k, v, mask)
    assert torch.allclose(fused_scaled_dot_product(q, k, v, mask), out, atol=1e-12)
    assert (
        float(alpha[1, :, :, 2:].abs().max() if mask_kind == "padding" else alpha[..., 0, 1:].max())
        == 0
    )


@pytest.mark.parametrize("mask_kind", ["padding", "causal"])
def test_bfloat16_attention_on_the_cpu_is_the_float64_output_to_bfloat16s_precision(
    mask_kind, monkeypatch
):
    """Mixed-precision training on a CPU: products in bfloat16, the softmax in float32, and not
    torch's fused kernel (four times slower there in bfloat16)."""
    from explorer.seq2seq.models import attention as attention_module

    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(4, 2, 6, 16, generator=g, dtype=torch.float64) for _ in range(3))
    if mask_kind == "padding":
        mask = torch.ones(4, 1, 1, 6, dtype=torch.bool)
        mask[1, ..., 3:] = False
    else:
        mask = torch.ones(6, 6, dtype=torch.bool).tril()
    want, _, _ = scaled_dot_product(q, k, v, mask)

    def refuse(*args, **kwargs):
        raise AssertionError("torch's fused kernel ran in bfloat16 on the CPU")

    monkeypatch.setattr(attention_module.F, "scaled_dot_product_attention", refuse)
    half = [t.to(torch.bfloat16).requires_grad_() for t in (q, k, v)]
    got = fused_scaled_dot_product(*half, mask)
    assert got.dtype == torch.bfloat16
    assert (got.double() - want).abs().max() < 0.05  # bfloat16: 8 bits of mantissa
    assert (got.double() - want).abs().max() > 0  # it did compute in bfloat16
    got.float().square().sum().backward()
    assert all(t.grad is not None and torch.isfinite(t.grad.float()).all() for t in half)
    moved = v.clone()  # values behind the mask change nothing
    if mask_kind == "padding":
        moved[1, :, 3:] += 100
    again = fused_scaled_dot_product(q.bfloat16(), k.bfloat16(), moved.bfloat16(), mask)
    assert torch.equal(again, got.detach())


def test_training_forward_takes_the_fused_path_and_the_app_the_explicit_one(monkeypatch):
    """A training step's logits (scheduled_logits at teacher forcing 1) form no weights; the
    forward pass the views draw still returns every attention weight."""
    model = model_of("pre-norm")
    src, src_len, tgt_in, _ = padded_batch()
    want = model(src, src_len, tgt_in)
    assert want.attention is not None and want.self_attention is not None
    assert want.memory.self_attention is not None

    def refuse(*args):
        raise AssertionError("the explicit attention ran in a training step")

    monkeypatch.setattr(transformer_module, "scaled_dot_product", refuse)
    got = scheduled_logits(model, src, src_len, tgt_in, 1.0)
    assert torch.allclose(got, want.logits, atol=1e-10)
