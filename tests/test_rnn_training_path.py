"""The RNN families' training path (``logits``: the target embeddings' share of the decoder's
input projection for all steps at once, torch's cell functions, no attention weights kept) against
``forward``, the step-by-step recurrence every app view draws; the padding left out of the output
layer; Adam as one fused kernel."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from explorer.seq2seq.models.base import BOS, PAD
from explorer.seq2seq.models.rnn import ARCHS, CELLS, RNNConfig, RNNSeq2Seq
from explorer.seq2seq.models.transformer import TransformerConfig, TransformerSeq2Seq
from explorer.seq2seq.training.options import fused_adam


def batch():
    """Three sentences of 7, 3 and 1 source tokens and 5, 2 and 4 target tokens, padded."""
    g = torch.Generator().manual_seed(5)
    src = torch.randint(4, 40, (3, 7), generator=g)
    src_len = torch.tensor([7, 3, 1])
    tgt = torch.randint(4, 30, (3, 6), generator=g)
    tgt[:, 0] = BOS
    for row, n in enumerate([5, 2, 4]):
        src[row, src_len[row] :] = PAD
        tgt[row, n + 1 :] = PAD
    return src, src_len, tgt[:, :-1], tgt[:, 1:]


def rnn(arch: str, cell: str, layers: int = 1) -> RNNSeq2Seq:
    torch.manual_seed(3)
    config = RNNConfig(arch, 40, 30, emb_dim=8, hidden_dim=16, layers=layers, cell=cell)
    return RNNSeq2Seq(config)


def logits_and_grads(model, logits_of):
    """The logits and every weight's gradient of their squares' sum, dropout drawn from seed 1."""
    torch.manual_seed(1)
    logits = logits_of(model)
    grads = torch.autograd.grad(logits.square().sum(), list(model.parameters()), allow_unused=True)
    return logits.detach(), grads


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("arch", ARCHS)
def test_the_training_path_is_forward_with_dropout_on(arch, cell):
    """In training mode, with the same random draws: the same logits and the same gradients, so
    the dropout masks fall where forward's do."""
    model = rnn(arch, cell).train()
    src, src_len, tgt_in, _ = batch()
    want, want_grads = logits_and_grads(model, lambda m: m(src, src_len, tgt_in).logits)
    got, got_grads = logits_and_grads(model, lambda m: m.logits(src, src_len, tgt_in))
    assert got.shape == want.shape == (3, 5, 30)
    assert (got - want).abs().max() < 1e-5
    for (name, _), g_want, g_got in zip(model.named_parameters(), want_grads, got_grads):
        assert (g_want is None) == (g_got is None), name
        if g_want is not None:
            assert (g_got - g_want).abs().max() < 1e-5, name
    used = [g for g in want_grads if g is not None]
    assert len(used) >= 8 and all(g.abs().max() > 0 for g in used)


@pytest.mark.parametrize("arch", ["bahdanau", "luong-general"])
def test_in_bfloat16_mixed_precision_the_training_path_is_forward_to_its_precision(arch):
    """Under the CPU's bfloat16 autocast (--cpu-amp) the step's products run in bfloat16, the
    decoder's input-projection slice cast once: the logits and gradients stay those of forward
    (in float32) to bfloat16's precision, and every decoder weight gets its gradient."""
    model = rnn(arch, "gru").train()
    src, src_len, tgt_in, _ = batch()
    want, want_grads = logits_and_grads(model, lambda m: m(src, src_len, tgt_in).logits)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, got_grads = logits_and_grads(model, lambda m: m.logits(src, src_len, tgt_in))
    assert got.dtype == torch.bfloat16
    assert 0 < (got.float() - want).abs().max() < 0.05 * want.abs().max()
    for (name, _), g_want, g_got in zip(model.named_parameters(), want_grads, got_grads):
        assert (g_want is None) == (g_got is None), name
        if g_want is not None:
            assert g_got.dtype == torch.float32, name  # the weights' own type
            cosine = F.cosine_similarity(g_got.flatten(), g_want.flatten(), dim=0)
            # the same direction to bfloat16's rounding; the attention query's gradient, a
            # thousand times smaller than the rest, is the least exact
            assert cosine > (0.999 if name.startswith("decoder.") else 0.95), name
    rest = dict(zip([n for n, _ in model.named_parameters()], got_grads))["decoder.weight_ih_l0"]
    assert rest[:, 8:].abs().max() > 0  # the context's columns, through the cast slice


def test_a_deeper_decoder_takes_forward():
    model = rnn("bahdanau", "gru", layers=2).eval()
    src, src_len, tgt_in, _ = batch()
    assert torch.equal(model.logits(src, src_len, tgt_in), model(src, src_len, tgt_in).logits)


def transformer() -> TransformerSeq2Seq:
    torch.manual_seed(3)
    config = TransformerConfig(
        src_vocab=40, tgt_vocab=30, d_model=16, heads=2, enc_layers=1, dec_layers=1, d_ff=32
    )
    return TransformerSeq2Seq(config)


@pytest.mark.parametrize(
    "make", [lambda: rnn("bahdanau", "gru"), lambda: rnn("luong-general", "lstm"), transformer]
)
def test_keep_gives_the_logits_of_the_real_target_tokens_alone(make):
    model = make().eval()
    src, src_len, tgt_in, tgt_out = batch()
    keep = tgt_out != PAD
    got = model.logits(src, src_len, tgt_in, keep)
    assert got.shape == (5 + 2 + 4, 30)
    assert (got - model(src, src_len, tgt_in).logits[keep]).abs().max() < 1e-5


def adam_updates(make_optimizer, steps: int = 3) -> list[torch.Tensor]:
    torch.manual_seed(0)
    weights = [torch.randn(5, 4, requires_grad=True), torch.randn(7, requires_grad=True)]
    opt = make_optimizer(weights)
    for k in range(steps):
        for w in weights:
            w.grad = torch.full_like(w, 0.5) * (k + 1) - w.detach()
        opt.step()
    return [w.detach() for w in weights]


def test_fused_adam_makes_the_per_tensor_update():
    loop = adam_updates(lambda w: torch.optim.Adam(w, lr=0.1, betas=(0.9, 0.98), foreach=False))
    fused = adam_updates(lambda w: fused_adam(w, 0.1))
    for a, b in zip(loop, fused):
        assert (a - b).abs().max() < 1e-6
    # three steps of 0.1 moved them: an update that did nothing would compare equal too
    torch.manual_seed(0)
    assert (loop[0] - torch.randn(5, 4)).abs().max() > 0.25


def test_a_state_saved_by_the_per_tensor_loop_resumes_fused():
    weight = torch.zeros(3, requires_grad=True)
    saved = torch.optim.Adam([weight], lr=0.1, foreach=True)
    weight.grad = torch.ones(3)
    saved.step()
    resumed = fused_adam([weight], 0.1, saved.state_dict())
    assert resumed.param_groups[0]["fused"] and not resumed.param_groups[0]["foreach"]
    assert resumed.state_dict()["state"][0]["step"] == 1
    weight.grad = torch.ones(3)
    resumed.step()
    assert torch.allclose(weight.detach(), torch.full((3,), -0.2), atol=1e-4)
