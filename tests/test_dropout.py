"""Dropout from 16-bit pieces of random words (``explorer.seq2seq.models.dropout``): the
probability, the scale, the gradient and the seed behave as ``nn.Dropout``'s."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explorer.seq2seq.models.dropout import Dropout, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_the_mask_keeps_each_element_with_probability_one_minus_p(p):
    torch.manual_seed(0)
    n = 1_000_003  # not a multiple of four: the last word is cut
    kept = keep_mask(torch.Size([n]), p).float().mean().item()
    assert abs(kept - (1 - p)) < 5 * (p * (1 - p) / n) ** 0.5  # within five standard errors


def test_neighbouring_elements_are_independent():
    """Four elements share a random word: each is its own 16 bits, so whether one is kept
    says nothing about its neighbour (P(both) = P(one)²)."""
    torch.manual_seed(1)
    m = keep_mask(torch.Size([400_000, 4]), 0.5).float()
    for a, b in [(0, 1), (1, 2), (2, 3), (0, 3)]:
        both = (m[:, a] * m[:, b]).mean().item()
        assert abs(both - 0.25) < 0.004


def test_training_zeroes_or_scales_each_element_and_the_gradient_follows():
    torch.manual_seed(2)
    x = torch.randn(64, 14, 256, requires_grad=True)
    y = Dropout(0.3).train()(x)
    dropped = y == 0
    assert 0.28 < dropped.float().mean().item() < 0.32
    torch.testing.assert_close(y[~dropped], x[~dropped] / 0.7)
    y.backward(torch.ones_like(y))
    assert torch.equal(x.grad == 0, dropped)
    torch.testing.assert_close(x.grad[~dropped], torch.full_like(x.grad[~dropped], 1 / 0.7))


def test_the_seed_repeats_the_mask_and_evaluation_is_the_identity():
    d, x = Dropout(0.1).train(), torch.randn(1000)
    torch.manual_seed(3)
    a = d(x)
    torch.manual_seed(3)
    assert torch.equal(a, d(x))
    assert not torch.equal(a, d(x))  # the generator moved on
    assert torch.equal(d.eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
def test_other_types_keep_their_type(dtype):
    x = torch.randn(8, 300, dtype=dtype)
    y = Dropout(0.2).train()(x)
    assert y.dtype == dtype
    kept = y != 0
    torch.testing.assert_close(y[kept], (x[kept].double() / 0.8).to(dtype))


def test_p_of_one_drops_everything_as_nn_dropout_does():
    x = torch.randn(100)
    assert torch.equal(Dropout(1.0).train()(x), nn.Dropout(1.0).train()(x))
