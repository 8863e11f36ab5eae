"""Edit attention in Step-through: click a source piece, re-decode from here; the session holds
the edit, every view shows the edited trace and the output line marks what changed."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.gui.session import Session
from explorer.gui.step.edit import edit_from_sliders, shown_alpha
from explorer.gui.step.panel import StepPanel
from explorer.seq2seq.decoding.decode import greedy
from explorer.seq2seq.decoding.edit import AttentionEdit, edited_greedy

SENTENCE = "the good cow did not laugh"


@pytest.fixture
def panel(qtbot, tiny_models):
    state = Session()
    state.add(tiny_models.bahdanau)
    state.add(tiny_models.transformer)
    state.add(tiny_models.none)
    state.set_current(tiny_models.bahdanau)
    p = StepPanel(state)
    qtbot.addWidget(p)
    p.resize(1400, 900)
    p.set_sentence(SENTENCE)
    assert state.runner.wait_idle(60_000)
    p.tabs.setCurrentWidget(p.editor)
    return p


def _first_change(entry, trace):
    """A (step, source index) whose one-hot edit changes the token written there."""
    for t in range(len(trace) - 1):
        for i in range(len(trace.src_pieces)):
            e = edited_greedy(entry.model, entry.tokenizer, SENTENCE, [AttentionEdit(t, i)])
            if e.tokens[t] != trace.tokens[t]:
                return t, i, e
    raise AssertionError("no one-hot edit changes a token")


def test_click_a_piece_and_re_decode_then_restore(panel, tiny_models):
    entry, s = tiny_models.bahdanau, panel.state
    original = panel.trace
    t, i, expected = _first_change(entry, original)
    panel.set_step(t)
    ed = panel.editor
    np.testing.assert_allclose(
        [v.value() / 1000 for v in ed.sliders], original.steps[t].attention(), atol=1e-3
    )
    ed.buttons[i].click()
    assert [v.value() for v in ed.sliders] == [
        1000 if j == i else 0 for j in range(len(ed.sliders))
    ]
    ed.decode_button.click()
    assert s.runner.wait_idle(60_000)
    assert s.edits == (AttentionEdit(t, source_index=i),)
    assert panel.trace.tokens == expected.tokens and s.original is original
    assert panel.t == t
    np.testing.assert_array_equal(panel.alignment.row(t), np.eye(len(ed.sliders))[i])
    line = panel.output_label.text()
    assert f"Attention edited at step {t + 1}" in line and "Original:" in line
    assert line.count("<u ") >= 2  # the changed token in both decodes
    assert panel.restore_button.isEnabled()
    panel.restore()
    assert panel.trace is original and s.edits == () and "Original" not in panel.output_label.text()


def test_an_edit_then_a_forced_token_keeps_the_edit(panel, tiny_models):
    entry, s = tiny_models.bahdanau, panel.state
    t, i, _ = _first_change(entry, panel.trace)
    s.set_step(t)
    s.edit_attention(AttentionEdit(t, source_index=i))
    assert s.runner.wait_idle(60_000)
    edited = panel.trace
    s.set_step(t + 1)
    token = next(k for k, _ in edited.steps[t + 1].topk(5) if k != edited.steps[t + 1].token)
    s.force(token)
    assert s.runner.wait_idle(60_000)
    want = edited_greedy(entry.model, entry.tokenizer, SENTENCE, [AttentionEdit(t, i)],
                         prefix=[*edited.tokens[: t + 1], token])  # fmt: skip
    assert panel.trace.tokens == want.tokens and s.edits == (AttentionEdit(t, i),)
    assert s.forced == [(t + 1, token)]


def test_transformer_layer_and_head_and_the_model_without_attention(panel, tiny_models):
    s, ed = panel.state, panel.editor
    s.set_current(tiny_models.transformer)
    assert s.runner.wait_idle(60_000)
    assert not ed.layer_box.isHidden() and ed.layer_box.count() == 3 and ed.head_box.count() == 3
    ed.layer_box.setCurrentIndex(2)  # layer 2
    ed.head_box.setCurrentIndex(1)  # head 1
    expected = shown_alpha(panel.trace, 0, 1, 0)
    np.testing.assert_allclose(expected, panel.trace.steps[0].cross_attention[1, 0])
    np.testing.assert_allclose([v.value() / 1000 for v in ed.sliders], expected, atol=1e-3)
    ed.click_piece(1)
    ed.request()
    assert s.runner.wait_idle(60_000)
    assert s.edits == (AttentionEdit(0, source_index=1, layer=1, head=0),)
    np.testing.assert_array_equal(panel.trace.steps[0].cross_attention[1, 0][1], 1.0)
    s.set_current(tiny_models.none)
    assert s.runner.wait_idle(60_000)
    assert "no attention" in ed.note.text() and not ed.decode_button.isEnabled()


def test_sliders_make_weights_or_one_hot():
    assert edit_from_sliders(2, [0, 500, 0], None, None) == AttentionEdit(2, source_index=1)
    e = edit_from_sliders(2, [300, 0, 100], 1, None)
    assert e.weights == (300.0, 0.0, 100.0) and e.layer == 1
    np.testing.assert_allclose(e.alpha(3), [0.75, 0, 0.25])


def test_untouched_edits_reproduce_the_greedy_decode(tiny_models):
    entry = tiny_models.bahdanau
    g = greedy(entry.model, entry.tokenizer, SENTENCE)
    weights = tuple(g.steps[0].cross_attention[0, 0])
    e = edited_greedy(entry.model, entry.tokenizer, SENTENCE, [AttentionEdit(0, weights=weights)])
    assert e.tokens == g.tokens


def test_an_edit_of_a_sampled_decode_keeps_the_sampled_tokens_before_it(panel, tiny_models):
    entry, s = tiny_models.bahdanau, panel.state
    s.set_decode("sample", 3.0, "")
    assert s.runner.wait_idle(60_000)
    sampled = panel.trace
    t = min(2, len(sampled) - 1)
    s.edit_attention(AttentionEdit(t, source_index=0))
    assert s.runner.wait_idle(60_000)
    want = edited_greedy(entry.model, entry.tokenizer, SENTENCE, [AttentionEdit(t, 0)],
                         prefix=sampled.tokens[:t])  # fmt: skip
    assert panel.trace.tokens == want.tokens and panel.trace.tokens[:t] == sampled.tokens[:t]
    assert panel.trace.method == "edited" and s.original is sampled
