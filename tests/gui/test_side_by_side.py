"""Side by side: three models on one sentence follow the one step control; the output lines mark
the tokens the decodes do not share."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.gui.session import Session
from explorer.gui.step.panel import StepPanel
from explorer.gui.step.readout import DIFFERS
from explorer.gui.step.sync import NONE, differences, output_html, word_starts
from explorer.seq2seq.decoding.decode import greedy
from explorer.seq2seq.decoding.tokendiff import differing

SENTENCE = "the good cow did not laugh"


@pytest.fixture
def panel(qtbot, tiny_models):
    state = Session()
    for entry in (tiny_models.bahdanau, tiny_models.transformer, tiny_models.none):
        state.add(entry)
    state.set_current(tiny_models.bahdanau)
    p = StepPanel(state)
    qtbot.addWidget(p)
    p.resize(1400, 900)
    p.show()
    p.tabs.setCurrentWidget(p.sync)
    p.set_sentence(SENTENCE)
    assert state.runner.wait_idle(60_000)
    return p


def test_three_models_step_in_sync(panel, tiny_models):
    s, cols = panel.state, panel.sync.columns
    assert "pick a second model" in cols[1].output.text()
    for col, entry in zip(cols[1:], (tiny_models.transformer, tiny_models.none), strict=True):
        col.model_box.setCurrentText(entry.name)
        col.model_box.activated.emit(col.model_box.currentIndex())
    assert s.runner.wait_idle(60_000)
    traces = panel.sync.traces()
    for tr, entry in zip(traces, (tiny_models.bahdanau, tiny_models.transformer, tiny_models.none)):
        assert tr.origin.model == entry.name
        assert tr.tokens == greedy(entry.model, entry.tokenizer, SENTENCE).tokens
    marks = differing([tr.pieces for tr in traces])
    tok = tiny_models.bahdanau.tokenizer  # the three share one tokenizer
    for t in (0, 2, 1):
        panel.set_step(t)
        for col, tr, differ in zip(cols, traces, marks, strict=True):
            starts = word_starts(tok, tr.tokens)
            u = min(t, len(tr) - 1)
            assert col.topk.entries[:5] == tr.steps[u].topk(5)
            assert col.output.text() == output_html(tr, t, differ, starts)
            if tr.has_attention:
                np.testing.assert_allclose(col.alignment.row(u), tr.steps[u].attention(), atol=1e-6)
    assert "no attention" in cols[2].alignment.empty.text()
    cols[2].model_box.setCurrentText(NONE)
    cols[2].model_box.activated.emit(cols[2].model_box.currentIndex())
    assert s.records["compare2"] is None and "third model" in cols[2].output.text()


def test_marks_and_lines_known_answers():
    class T:  # the fields output_html and differences read
        def __init__(self, pieces):
            self.pieces = pieces

        def __len__(self):
            return len(self.pieces)

    a, b = T(["le", "chat", "noir"]), T(["le", "chien", "noir"])
    assert differences([a, None, b]) == [[False, True, False], [], [False, True, False]]
    line = output_html(a, 0, [False, True, False])
    assert line.startswith("<span style='background")
    assert DIFFERS.format("chat") in line
    assert output_html(a, 9, [False] * 3).endswith("<b>noir</b></span>")  # clamped to the end
    c = T(["s", "'", "est"])
    assert output_html(c, 2, [False] * 3, [True, False, False]).startswith("s&#x27;<span")
    assert output_html(c, 2, [False] * 3).startswith("s &#x27; <span")
