"""Edited attention: the bundled Bahdanau model's "noir" pointed at "cat", an edit that puts back
what the model computed reproducing the decode, the recomputed context, and the checks."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from explorer.seq2seq.decoding.decode import greedy
from explorer.seq2seq.decoding.edit import (
    AttentionEdit,
    EditError,
    check_edits,
    edited_greedy,
    parse_edit,
)
from explorer.seq2seq.models.base import BOS, EOS
from tests.toymodels import WIDE_TOK, tiny_real_model

SENTENCE = "the black cat sat on the mat"
SRC_SYMBOLS = "pqrstuvw"


def _reverse_pairs(n: int, g: torch.Generator) -> list[tuple[list[int], list[int]]]:
    """Source symbols p..w, target the same positions' a..h, reversed: a task attention helps."""
    pairs = []
    for _ in range(n):
        length = int(torch.randint(2, 6, (1,), generator=g))
        idx = torch.randint(0, len(SRC_SYMBOLS), (length,), generator=g).tolist()
        src = [WIDE_TOK.piece_to_id(SRC_SYMBOLS[i], "src") for i in idx] + [EOS]
        tgt = [WIDE_TOK.piece_to_id("abcdefgh"[i], "tgt") for i in reversed(idx)]
        pairs.append((src, tgt))
    return pairs


@functools.cache
def _trained(arch: str) -> torch.nn.Module:
    """A tiny model of ``arch`` trained for a few seconds on the reverse task."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model trains fastest on one thread
    try:
        return _train(tiny_real_model(arch))
    finally:
        torch.set_num_threads(threads)


def _train(model: torch.nn.Module) -> torch.nn.Module:
    from explorer.seq2seq.training.train import pad_batch

    g = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=0)
    model.train()
    for _ in range(60):
        batch = _reverse_pairs(16, g)
        src, src_len = pad_batch([s for s, _ in batch], torch.device("cpu"))
        tgt, _ = pad_batch([[BOS] + t + [EOS] for _, t in batch], torch.device("cpu"))
        logits = model(src, src_len, tgt[:, :-1]).logits  # (B, T, V)
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module", params=["bahdanau", "luong-dot", "luong-general", "transformer"])
def trained(request):
    return _trained(request.param)


def test_bundled_bahdanau_noir_pointed_at_cat_writes_something_else():
    from explorer.assets import checkpoint_path
    from explorer.seq2seq.checkpoint import load_checkpoint

    ck = load_checkpoint(checkpoint_path("classroom-bahdanau"))
    original = greedy(ck.model, ck.tokenizer, SENTENCE)
    t = next(i for i, p in enumerate(original.pieces) if p.lstrip("▁") == "noir")
    step = original.steps[t]
    black = original.src_pieces.index("black")
    cat = original.src_pieces.index("cat")
    assert int(np.argmax(step.cross_attention[0, 0])) == black  # "noir" looks at "black"

    edited = edited_greedy(ck.model, ck.tokenizer, SENTENCE, [AttentionEdit(t, source_index=cat)])
    assert edited.pieces[:t] == original.pieces[:t]  # the steps before the edit are untouched
    assert edited.pieces[t] != original.pieces[t]
    np.testing.assert_array_equal(edited.steps[t].cross_attention[0, 0], np.eye(8)[cat])
    assert edited.extras["edited_steps"] == [t]


def test_putting_back_the_computed_attention_reproduces_the_decode(trained):
    """Each step's α_t set to what the model computed (renormalised, so to float rounding) gives
    the same tokens, and the same log-probabilities to rounding, for every attention family."""
    src = "p r t v w"
    original = greedy(trained, WIDE_TOK, src, max_len=8)
    assert len(original.steps) >= 2
    L, H, _ = original.steps[0].cross_attention.shape
    for t in range(len(original.steps)):
        edits = [
            AttentionEdit(
                t, weights=original.steps[t].cross_attention[layer, head], layer=layer, head=head
            )
            for layer in range(L)
            for head in range(H)
        ]
        if trained.arch != "transformer":
            edits = [AttentionEdit(t, weights=original.steps[t].cross_attention[0, 0])]
        again = edited_greedy(trained, WIDE_TOK, src, edits, max_len=8)
        assert again.tokens == original.tokens
        np.testing.assert_allclose(again.token_logprobs, original.token_logprobs, atol=1e-5)


def test_an_edit_changes_the_context_and_what_follows(trained):
    """At the edited step α_t is the edit, and for an RNN c_t = Σ_i α_ti h_i with the new α."""
    src = "p r t v w"
    original = greedy(trained, WIDE_TOK, src, max_len=8)
    weights = (0.0, 3.0, 0.0, 1.0, 0.0, 0.0)  # renormalised to 0.75 / 0.25
    edited = edited_greedy(trained, WIDE_TOK, src, [AttentionEdit(1, weights=weights)], max_len=8)
    want = np.array([0, 0.75, 0, 0.25, 0, 0], dtype=np.float32)
    step = edited.steps[1]
    np.testing.assert_allclose(step.cross_attention[-1].mean(0), want, atol=1e-6)
    assert not np.allclose(step.logprobs, original.steps[1].logprobs, atol=1e-3)
    np.testing.assert_allclose(edited.steps[0].logprobs, original.steps[0].logprobs, atol=1e-6)
    if trained.arch != "transformer":
        np.testing.assert_allclose(step.context[0], want @ edited.encoder_states, atol=1e-5)


def test_one_head_of_one_layer_leaves_the_other_heads():
    model = _trained("transformer")
    original = greedy(model, WIDE_TOK, "p q r", max_len=6)
    edit = AttentionEdit(0, source_index=2, layer=1, head=0)
    edited = edited_greedy(model, WIDE_TOK, "p q r", [edit], max_len=6)
    a, b = original.steps[0].cross_attention, edited.steps[0].cross_attention
    np.testing.assert_array_equal(b[1, 0], [0, 0, 1, 0])
    np.testing.assert_allclose(b[1, 1], a[1, 1], atol=1e-6)
    np.testing.assert_allclose(b[0], a[0], atol=1e-6)  # the layer below does not see the edit


@pytest.mark.parametrize(
    "edit, message",
    [
        (AttentionEdit(9, source_index=0), "step 9: must be from 0 to 5"),
        (AttentionEdit(0, source_index=4), "source index 4 is outside the source's 4 pieces"),
        (AttentionEdit(0, weights=(0, 0, 0, 0)), "all zero"),
        (AttentionEdit(0, weights=(1, -1, 0, 1)), "non-negative"),
        (AttentionEdit(0, weights=(1, 1)), "2 weights for a source of 4 pieces"),
        (AttentionEdit(0, source_index=0, layer=2), "layer 2 is not in 0..0"),
    ],
)
def test_bad_edits_get_one_line_messages(edit, message):
    model = tiny_real_model("bahdanau")
    with pytest.raises(EditError, match=message):
        edited_greedy(model, WIDE_TOK, "p q r", [edit], max_len=6)


def test_the_model_without_attention_says_so_and_late_steps_are_caught():
    with pytest.raises(EditError, match="has no attention"):
        check_edits(tiny_real_model("none"), [AttentionEdit(0, source_index=0)], 4, 6)
    model = _trained("bahdanau")
    n = len(greedy(model, WIDE_TOK, "p q", max_len=20).steps)
    with pytest.raises(EditError, match=f"ended after {n} steps"):
        edited_greedy(model, WIDE_TOK, "p q", [AttentionEdit(n + 2, source_index=0)], max_len=20)


def test_edits_given_as_both_or_neither_are_refused():
    with pytest.raises(EditError, match="not both"):
        AttentionEdit(0, source_index=1, weights=(1.0,))
    with pytest.raises(EditError, match="not both"):
        AttentionEdit(0)


@pytest.mark.parametrize(
    "spec, want",
    [
        ("3=1", AttentionEdit(3, source_index=1)),
        ("3=1@2", AttentionEdit(3, source_index=1, layer=2)),
        ("3=1@2:0", AttentionEdit(3, source_index=1, layer=2, head=0)),
        (" 0 = 5 @ 1 : * ", AttentionEdit(0, source_index=5, layer=1)),
    ],
)
def test_command_line_form(spec, want):
    assert parse_edit(spec) == want


@pytest.mark.parametrize("spec", ["3", "3=x", "=1", "3=1@", "3=-1", "3=1@2:0:1"])
def test_command_line_form_refused(spec):
    with pytest.raises(EditError, match="expected STEP=SRC_INDEX"):
        parse_edit(spec)
