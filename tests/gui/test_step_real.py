"""Step-through with real models: every view shows the numbers of the decoded trace at step t."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.gui.session import Session
from explorer.gui.step.panel import StepPanel
from explorer.seq2seq.decoding import decode

SENTENCE = "the good cow did not laugh"
REFERENCE = "la bonne vache n'a pas ri"


@pytest.fixture
def make_panel(qtbot, tiny_models):
    def make(*archs: str) -> StepPanel:
        state = Session()
        for arch in archs:
            state.add(getattr(tiny_models, arch))
        panel = StepPanel(state)
        qtbot.addWidget(panel)
        panel.resize(1400, 900)
        return panel

    return make


def decoded(panel: StepPanel, text: str):
    """Type a sentence and wait for the session's decode of it (a worker)."""
    panel.set_sentence(text)
    assert panel.state.runner.wait_idle(60_000)
    return panel.trace


def forced(panel: StepPanel, token: int):
    panel.force_token(token)
    assert panel.state.runner.wait_idle(60_000)
    return panel.trace


def check_views_at(panel: StepPanel, t: int) -> None:
    tr = panel.trace
    step = tr.steps[t]
    assert panel.t == t
    assert panel.slider.value() == t + 1
    alpha = step.attention()  # (S,) last layer, heads averaged
    np.testing.assert_allclose(panel.alignment.row(t), alpha, atol=1e-6)
    np.testing.assert_allclose(panel.bars.values(), alpha, atol=1e-6)
    k = panel.topk.k_spin.value()
    assert panel.topk.entries[:k] == step.topk(k)
    assert panel.topk.pieces[0] == panel.piece_of(step.topk(1)[0][0])
    w = panel.arithmetic.worked
    np.testing.assert_allclose(w.scores, step.scores[-1, 0], atol=1e-6)
    np.testing.assert_allclose(w.alpha, step.cross_attention[-1, 0], atol=1e-5)
    # Step 3: c_t = Σ_i α_ti h_i from the recorded weights and encoder states is the model's c_t.
    np.testing.assert_allclose(w.context, step.context[-1], atol=1e-5)
    np.testing.assert_allclose(w.context, alpha @ tr.encoder_states, atol=1e-5)
    assert f"Step {t + 1}/{len(tr)}" in panel.output_label.text()


def test_views_show_the_trace_at_every_step_forward_and_back(make_panel, tiny_models):
    panel = make_panel("bahdanau")
    trace = decoded(panel, SENTENCE)
    expected = decode.greedy(tiny_models.bahdanau.model, tiny_models.bahdanau.tokenizer, SENTENCE)
    assert trace.tokens == expected.tokens and len(trace) >= 3
    for t in range(len(trace)):
        if t:
            panel.forward()
        check_views_at(panel, t)
    panel.forward()  # clamped at the last step
    assert panel.t == len(trace) - 1
    for t in reversed(range(len(trace) - 1)):
        panel.back()
        check_views_at(panel, t)


def test_forcing_a_candidate_continues_greedily_and_restore_brings_back(make_panel, tiny_models):
    entry = tiny_models.bahdanau
    panel = make_panel("bahdanau")
    original = decoded(panel, SENTENCE)
    t = 1
    panel.set_step(t)
    chosen = original.steps[t].token
    token = next(i for i, _ in original.steps[t].topk(5) if i != chosen)
    new = forced(panel, token)
    prefix = [*original.tokens[:t], token]
    assert new.tokens[: t + 1] == prefix
    assert new.tokens != original.tokens
    expected = decode.greedy(entry.model, entry.tokenizer, SENTENCE, prefix=prefix)
    assert new.tokens == expected.tokens
    for a, b in zip(new.steps, expected.steps):
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-5)
    assert panel.t == t and panel.trace is new
    assert panel.topk.entries[0][0] != token or original.steps[t].topk(1)[0][0] == token
    assert token in [i for i, _ in panel.topk.entries]  # the forced token is shown and marked
    assert "Forced at step 2" in panel.output_label.text()
    assert panel.restore_button.isEnabled()
    panel.restore()
    assert panel.trace is original and panel.t == t
    assert not panel.restore_button.isEnabled()
    check_views_at(panel, t)


def test_teacher_forced_mode_shows_the_loss_of_the_reference_token(make_panel, tiny_models):
    entry = tiny_models.bahdanau
    panel = make_panel("bahdanau")
    panel.mode_box.setCurrentText("teacher-forced")
    panel.reference.setText(REFERENCE)
    trace = decoded(panel, SENTENCE)
    expected = decode.teacher_forced(entry.model, entry.tokenizer, SENTENCE, REFERENCE)
    assert trace.method == "teacher-forced" and trace.tokens == expected.tokens
    for t in (0, len(trace) // 2, len(trace) - 1):
        panel.set_step(t)
        loss = -expected.steps[t].logprob
        assert f"= <b>{loss:.3f}</b>" in panel.output_label.text()


def test_transformer_pickers_open_on_the_last_layer_and_switch_attention(make_panel):
    panel = make_panel("transformer")
    panel.tabs.setCurrentWidget(panel.transformer)
    trace = decoded(panel, SENTENCE)
    view = panel.transformer
    L, H, S = trace.steps[0].cross_attention.shape
    assert (L, H) == (2, 2)
    assert view.layer == L - 1 and view.head is None
    t = len(trace) - 1
    panel.set_step(t)
    np.testing.assert_allclose(panel.alignment.row(t), trace.steps[t].attention(L - 1), atol=1e-6)
    view.layer_box.setCurrentIndex(0)
    view.head_box.setCurrentIndex(2)  # head 2
    a = trace.steps[t].cross_attention[0, 1]
    assert not np.allclose(a, trace.steps[t].attention(L - 1), atol=1e-3)
    np.testing.assert_allclose(panel.alignment.row(t), a, atol=1e-6)
    np.testing.assert_allclose(panel.bars.values(), a, atol=1e-6)
    np.testing.assert_allclose(view.cross.pixel(t, 0), a[0], atol=1e-6)
    enc = trace.encoder_self_attention[0, 1]
    np.testing.assert_allclose(view.encoder.pixel(0, S - 1), enc[0, S - 1], atol=1e-6)
    dec = trace.steps[t].self_attention[0, 1]
    np.testing.assert_allclose(view.self_attn.pixel(t, 0), dec[0], atol=1e-6)
    panel.tabs.setCurrentWidget(panel.arithmetic)  # a hidden tab catches up when shown
    worked = panel.arithmetic.worked  # worked out from this head's q and k_i, as recorded
    np.testing.assert_allclose(worked.query, trace.steps[t].query[0, 1])
    np.testing.assert_allclose(worked.keys_scored, trace.cross_keys[0, 1])
    np.testing.assert_allclose(worked.scores, trace.steps[t].scores[0, 1], atol=1e-4)
    assert worked.score_error < 1e-4
    np.testing.assert_allclose(worked.alpha, a, atol=1e-5)
    text = panel.arithmetic.text.toPlainText()
    assert "q = [" in text and "e_i = q · k_i / √d_k" in text and "as the model computed" in text
    # A new decode keeps the chosen layer and head.
    decoded(panel, "your ducks slept")
    assert (view.layer, view.head) == (0, 1)


def test_no_attention_model_shows_the_bottleneck(make_panel, tiny_models):
    entry = tiny_models.none
    panel = make_panel("none")
    trace = decoded(panel, SENTENCE)
    assert not trace.has_attention and panel.alignment.matrix is None
    panel.set_step(1)
    text = panel.arithmetic.text.toPlainText()
    n, d_embed, d_hidden = len(trace.src_tokens), 32, trace.steps[1].context.shape[-1]
    assert f"Input = n × d_embed = {n} × {d_embed} = {n * d_embed} numbers" in text
    assert f"Context = d_hidden = {d_hidden} numbers" in text
    assert entry.config["emb_dim"] == d_embed
    assert panel.bars.plot.getPlotItem().titleLabel.text.startswith("No attention")


def test_show_trace_of_a_model_not_loaded_names_it_in_the_picker(make_panel, tiny_models):
    panel = make_panel("none")
    entry = tiny_models.bahdanau
    trace = decode.greedy(entry.model, entry.tokenizer, SENTENCE)
    panel.show_trace(entry, trace)
    assert panel.model_box.currentText() == entry.name
    assert panel.entry is entry and panel.trace.tokens == trace.tokens
    assert panel.trace.origin.model == entry.name  # the session names what it shows
    check_views_at(panel, 0)


@pytest.fixture
def projector():
    from PySide6.QtWidgets import QApplication

    from explorer.gui.widgets import theme

    def switch(on: bool) -> None:
        theme.apply(QApplication.instance(), "light", on)

    yield switch
    switch(False)


def test_projector_mode_leaves_the_plots_their_room(make_panel, projector, qtbot):
    """The hand exercise's form set the least height of every bottom tab: in projector mode at
    1400 × 900 it took two thirds of the column and squeezed the plots to a strip."""
    panel = make_panel("bahdanau")
    panel.show()
    projector(True)
    panel.resize(1400, 760)  # the panel's share of a 1400 × 900 window
    qtbot.wait(50)
    plots, tabs = panel.tabs.parentWidget().sizes()
    assert plots >= tabs


def test_projector_mode_scales_the_plot_fonts(make_panel, projector):
    from explorer.gui.widgets import theme

    panel = make_panel("bahdanau")
    decoded(panel, SENTENCE)
    projector(False)

    def sizes() -> tuple[float, float, float]:
        axis = panel.alignment.plot.getPlotItem().getAxis("left")
        return (
            axis.style["tickFont"].pixelSize(),
            panel.arithmetic.text.font().pointSizeF(),
            panel.hidden.labels[0].textItem.font().pointSizeF(),
        )

    small, scale = sizes(), theme.signals().scale
    assert small[0] == theme.signals().metrics.plot_px
    projector(True)
    big, m = sizes(), theme.signals().metrics
    assert big[0] == m.plot_px > small[0]
    assert big[1:] == pytest.approx(tuple(v * m.scale / scale for v in small[1:]))
    title = panel.topk.plot.getPlotItem().titleLabel.item.toHtml()
    assert f"font-size:{m.title_px}px" in title.replace(" ", "")


def test_every_plot_title_keeps_its_descenders_in_projector_mode(make_panel, projector, qtbot):
    """pyqtgraph gives a title a 30 px row, which cut the underscores off "c_t" and "p(y_t)"
    once titles were 29 px; each row is as tall as its text, also after a new step's title."""
    from PySide6.QtWidgets import QApplication

    from explorer.gui.widgets import theme
    from explorer.gui.widgets.plotting import pg

    panel = make_panel("bahdanau")
    panel.show()
    decoded(panel, SENTENCE)
    for on in (True, False):  # the fonts of a 1920 x 1080 projector (29 px titles), then not
        theme.apply(QApplication.instance(), "light", on, (1920, 1080))
        panel.set_step(1)  # titles set again for the new step
        qtbot.wait(50)  # laid out again
        shown = [w for w in panel.findChildren(pg.PlotWidget) if w.isVisible()]
        items = [w.getPlotItem() for w in shown]
        titled = [p for p in items if p.titleLabel.isVisible() and p.titleLabel.text]
        assert len(titled) >= 4
        for p in titled:
            text = p.titleLabel.item.boundingRect().height()
            assert p.titleLabel.size().height() >= text - 0.5, p.titleLabel.text
            assert p.layout.rowMaximumHeight(0) >= text - 0.5, p.titleLabel.text
        context = panel.bars.context  # a strip under its title: room for both
        title_row = context.plot.getPlotItem().layout.rowMaximumHeight(0)
        assert context.maximumHeight() - title_row >= 70


def test_a_classroom_model_opens_on_the_lectures_first_example(make_panel, qtbot):
    from explorer.seq2seq.data.classroom import EXAMPLES

    panel = make_panel("bahdanau")  # the state's current model is there before the panel
    qtbot.waitUntil(lambda: panel.trace is not None, timeout=30_000)
    assert panel.sentence.text() == EXAMPLES[0][0]
    assert panel.reference.text() == EXAMPLES[0][1]
    # another sentence: the example's French no longer applies to it (teacher forcing would
    # force a translation of something else)
    decoded(panel, "the cat sleeps on the mat")
    assert panel.reference.text() == ""


def test_the_exported_trace_holds_each_heads_query_keys_and_values(make_panel, tmp_path):
    import json

    panel = make_panel("transformer")
    trace = decoded(panel, SENTENCE)
    panel.export_data(tmp_path / "trace.json")
    data = json.loads((tmp_path / "trace.json").read_text())
    L, H, S, d_k = trace.cross_keys.shape
    assert np.array(data["cross_keys"]).shape == np.array(data["cross_values"]).shape
    assert np.array(data["cross_keys"]).shape == (L, H, S, d_k)
    np.testing.assert_allclose(np.array(data["steps"][0]["query"]), trace.steps[0].query)


def test_the_compare_column_writes_pieces_as_words(qtbot):
    """The French pieces s ' est (the apostrophe a piece of its own) read "s'est" in Compare's
    output line, as in the main one."""
    from explorer import assets
    from explorer.gui.step.compare import CompareColumn
    from explorer.gui.step.sync import word_starts
    from explorer.seq2seq.checkpoint import load_checkpoint

    ck = load_checkpoint(assets.models_dir() / "classroom-none.safetensors")
    trace = decode.greedy(ck.model, ck.tokenizer, "the black cat sat on the mat")
    assert trace.pieces[3:6] == ["s", "'", "est"]
    column = CompareColumn()
    qtbot.addWidget(column)
    column.set_trace(trace, ck.tokenizer.tgt_piece, word_starts(ck.tokenizer, trace.tokens))
    assert column.output.text().startswith("→ le chat noir s&#x27;est assis")
    column.set_trace(trace, ck.tokenizer.tgt_piece)  # a tokenizer that does not say: apart
    assert "s &#x27; est" in column.output.text()
