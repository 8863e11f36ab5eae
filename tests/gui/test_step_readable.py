"""Step-through read from the back of the room: the top-k scale and clicks, the forced decode's
difference, which state and head each view shows, the trajectory so far, labels that fit."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPointF, Qt  # noqa: E402
from PySide6.QtGui import QFontMetricsF  # noqa: E402
from test_step_panel import entry, make_trace  # noqa: E402
from test_step_real import decoded, forced  # noqa: E402

from explorer.gui.session import Session  # noqa: E402
from explorer.gui.state import LoadedModel  # noqa: E402
from explorer.gui.step.panel import StepPanel  # noqa: E402
from explorer.gui.step.placement import boxes_overlap, plan_overlaps  # noqa: E402
from explorer.gui.step.readout import LOG_FLOOR, at_temperature  # noqa: E402
from explorer.seq2seq.decoding.tokendiff import differing  # noqa: E402

MODELS = Path(__file__).resolve().parents[2] / "models"
LONG = "the good cow did not laugh at the small black cat on the mat and the dog saw it yesterday"


@pytest.fixture
def panel(qtbot):
    p = StepPanel(Session())
    qtbot.addWidget(p)
    p.resize(1280, 720)
    return p


def _real_panel(qtbot, *entries) -> StepPanel:
    state = Session()
    for e in entries:
        state.add(e)
    p = StepPanel(state)
    qtbot.addWidget(p)
    p.resize(1280, 720)
    p.show()
    qtbot.waitExposed(p)
    return p


def test_clicking_a_candidates_word_forces_it(panel, qtbot):
    panel.show_trace(entry(), make_trace())
    panel.show()
    qtbot.waitExposed(panel)
    view = panel.topk
    item = view.plot.getPlotItem()
    clicked = []
    view.candidate_clicked.connect(clicked.append)
    for rank in (2, 0):
        # the middle of the candidate's name, left of the plot: no bar there
        y = item.getViewBox().mapViewToScene(QPointF(0, rank)).y()
        x = item.getAxis("left").sceneBoundingRect().center().x()
        where = view.plot.mapFromScene(QPointF(x, y))
        qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=where)
    assert clicked == [view.entries[2][0], view.entries[0][0]]
    # the title above the rows forces nothing
    title = view.plot.mapFromScene(item.titleLabel.sceneBoundingRect().center())
    qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=title)
    assert len(clicked) == 2


def test_topk_log_scale_and_display_temperature_change_only_the_picture(panel):
    tr = make_trace()
    panel.show_trace(entry(), tr)
    before = panel.trace
    panel.set_step(1)
    view, step = panel.topk, tr.steps[1]
    ids = [i for i, _ in view.entries]
    view.log_check.setChecked(True)
    assert [i for i, _ in view.entries] == ids  # the same candidates, the same order
    np.testing.assert_allclose(view.bars.x0, LOG_FLOOR)
    np.testing.assert_allclose(view.bars.x0 + view.bars.width, step.logprobs[ids])
    assert view.labels.texts[0].endswith(f"{step.logprobs[ids[0]]:.2f}".replace("-", "−"))
    assert "log p(y_t)" in view.plot.getPlotItem().titleLabel.whole
    view.log_check.setChecked(False)
    view.display_t.setValue(3.0)
    shown = np.exp(at_temperature(step.logprobs, 3.0))[ids]
    np.testing.assert_allclose(view.bars.width, shown)
    assert "display T = 3" in view.plot.getPlotItem().titleLabel.whole
    assert "the decode used T = 1" in view.entropy_label.text()
    assert panel.trace is before  # nothing was decoded again


def test_each_family_says_which_state_its_scores_use(panel):
    for arch, state in (("luong-dot", "s_t"), ("bahdanau", "s_{t−1}")):
        panel.show_trace(entry(arch), make_trace(arch))
        panel.set_step(2)
        assert "score: e_ti = " in panel.bars.scores_button.toolTip()
        assert state in panel.bars.scores_button.toolTip()
        text = panel.arithmetic.text.toPlainText()
        assert f"scores with {state}:" in text
        assert "① score" in text and "② softmax" in text and "Step 1" not in text
    assert "s_{t−1}" not in make_trace_tip(panel, "luong-dot")


def make_trace_tip(panel, arch: str) -> str:
    panel.show_trace(entry(arch), make_trace(arch))
    return panel.bars.scores_button.toolTip()


def test_transformer_titles_and_arithmetic_show_the_bars_head(panel):
    tr = make_trace("transformer", L=2, H=2)
    panel.show_trace(entry("transformer"), tr)
    panel.tabs.setCurrentWidget(panel.arithmetic)
    panel.set_step(1)
    title = panel.alignment.plot.getPlotItem().titleLabel.whole
    assert "layer 2, mean of heads" in title
    assert "layer 2, mean of heads" in panel.bars.plot.getPlotItem().titleLabel.whole
    assert "mean of heads" in panel.transformer.cross.plot.getPlotItem().titleLabel.whole
    context = panel.bars.context.plot.getPlotItem().titleLabel.whole
    assert context.endswith("numbers) · layer 2")  # one c_t per layer: W^O joins the heads
    lines = panel.arithmetic.text.toPlainText().split("\n")
    average = next(line for line in lines if line.endswith("average (as the bars)"))
    numbers = [float(x) for x in re.findall(r"\d+\.\d+", average)]
    np.testing.assert_allclose(numbers, panel.bars.values(), atol=5e-4)
    panel.transformer.head_box.setCurrentIndex(2)  # head 2
    for plot in (panel.alignment.plot, panel.bars.plot, panel.transformer.cross.plot):
        assert "layer 2, head 2" in plot.getPlotItem().titleLabel.whole
    np.testing.assert_allclose(panel.arithmetic.worked.alpha, panel.bars.values(), atol=1e-9)
    assert "layer 2, head 2, as the bars" in panel.arithmetic.text.toPlainText()


def test_hand_exercise_names_the_rows_by_the_typed_words(panel):
    ex = panel.arithmetic.exercise
    ex.fields["words"].setText("The, black, cat")
    assert ex.compute() is None
    assert "words: 3 given for 4 rows of h" in ex.output.toPlainText()
    ex.fields["words"].setText("")
    ex.compute()
    assert "e_2 (2) = " in ex.output.toPlainText()  # no words: numbered


def test_the_trajectory_shows_steps_so_far_with_labels_apart(panel, qtbot):
    tr = make_trace("luong-dot")
    panel.show_trace(entry(), tr)
    panel.show()
    panel.tabs.setCurrentWidget(panel.hidden)
    qtbot.waitExposed(panel)
    view = panel.hidden
    for t in (0, 2, 1, 3):
        panel.set_step(t)
        x, _ = view.path.getData()
        assert len(x) == t + 1  # the path so far, as the heatmap beside it
        assert [label.isVisible() for label in view.labels] == [i <= t for i in range(len(tr))]
    rects = [label.sceneBoundingRect() for label in view.labels]
    boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects])
    assert not boxes_overlap(boxes + [[0.5, 0.5, -0.5, -0.5]])  # drawn apart (sub-pixel slack)


def _check_fitted(axis) -> None:
    fm = QFontMetricsF(axis.style.get("tickFont") or axis.font())
    cell = 1.0 / axis.linkedView().viewPixelSize()[0]
    assert not plan_overlaps(axis.plan, cell, fm.horizontalAdvance), (axis.plan, cell)


def test_long_sentences_labels_fit_at_1280_and_in_compare(qtbot, tiny_models):
    panel = _real_panel(qtbot, tiny_models.bahdanau, tiny_models.transformer)
    tr = decoded(panel, LONG)
    assert len(tr.src_pieces) > 20
    bottom = panel.alignment.plot.getPlotItem().getAxis("bottom")
    _check_fitted(bottom)
    assert bottom.plan.how != "whole"  # 21 words do not fit a third of 1280 px whole
    _check_fitted(panel.bars.plot.getPlotItem().getAxis("bottom"))
    panel.compare.model_box.setCurrentIndex(1)
    panel.compare_check.setChecked(True)
    assert panel.state.runner.wait_idle(60_000)
    qtbot.wait(50)
    narrow = panel.compare.alignment.plot.getPlotItem().getAxis("bottom")
    _check_fitted(narrow)
    drawn = [t for t in narrow.plan.texts if t]
    assert drawn and "".join(drawn) != "".join(tr.src_pieces)  # not run together
    panel.resize(1920, 1080)  # more room: fitted again
    qtbot.wait(50)
    _check_fitted(bottom)


def test_forcing_marks_the_tokens_that_differ(qtbot, tiny_models):
    panel = _real_panel(qtbot, tiny_models.bahdanau)
    original = decoded(panel, "the good cow did not laugh")
    panel.set_step(1)
    token = next(i for i, _ in original.steps[1].topk(5) if i != original.steps[1].token)
    new = forced(panel, token)
    in_old, in_new = tuple(differing([original.tokens, new.tokens]))
    html = panel.output_label.text()
    now, before = html.split("Original:")
    assert now.count("<u ") == sum(in_new[:1] + in_new[2:])  # the current step is highlighted
    assert before.count("<u ") == sum(in_old)
    assert sum(in_old) + sum(in_new) >= 1  # the forced token changed the decode


def test_words_outside_the_models_world_are_marked_on_the_views(qtbot):
    from explorer.seq2seq.checkpoint import load_checkpoint

    bahdanau = LoadedModel.from_checkpoint(
        load_checkpoint(MODELS / "classroom-bahdanau.safetensors")
    )
    panel = _real_panel(qtbot, bahdanau)
    decoded(panel, "I like pizza")
    # i l i ke pi <unk> a </s>: "like" and "pizza" never seen, the "zz" of pizza is <unk>
    axis = panel.alignment.plot.getPlotItem().getAxis("bottom")
    assert [label.strip() for _, label in axis._tickLevels[0]] == [
        "i", "l*", "i*", "ke*", "pi*", "<unk>?", "a*", "</s>"
    ]  # fmt: skip
    label = panel.alignment.plot.getPlotItem().getAxis("bottom").label.toPlainText()
    assert " ".join(label.split()) == "source (* never seen in training, ? became <unk>)"
    bars = [
        label.strip() for _, label in panel.bars.plot.getPlotItem().getAxis("bottom")._tickLevels[0]
    ]
    assert "<unk>?" in bars and "pi*" in bars
    hidden = panel.hidden.encoder.plot.getPlotItem().getAxis("bottom")
    assert "pi*" in [label.strip() for _, label in hidden._tickLevels[0]]


def test_a_title_longer_than_its_plot_is_cut_at_its_end(panel, qtbot):
    tr = make_trace("transformer", L=2, H=2)
    panel.show_trace(entry("transformer"), tr)
    panel.show()
    qtbot.waitExposed(panel)
    label = panel.bars.plot.getPlotItem().titleLabel
    full = label.text
    assert full == "Weights α_ti · layer 2, mean of heads"
    assert label.item.toPlainText() == full  # room enough at 1280 px
    panel.bars.setFixedWidth(180)
    qtbot.waitUntil(lambda: label.item.toPlainText() != full)
    shown = label.item.toPlainText()
    assert shown.endswith("…") and full.startswith(shown[:-1].rstrip())
    assert label.item.document().idealWidth() <= label.width()
    assert panel.bars.plot.getPlotItem().width() <= 180  # the plot stays in its pane
    panel.bars.setFixedWidth(600)
    qtbot.waitUntil(lambda: label.item.toPlainText() == full)


def test_upright_labels_are_all_drawn_to_the_axis_ends(panel, qtbot):
    """pyqtgraph hides a tick label whose flat box passes the axis's ends: upright, none is."""
    from PySide6.QtGui import QImage, QPainter

    panel.show_trace(entry(), make_trace("luong-dot"))
    panel.show()
    qtbot.waitExposed(panel)
    panel.bars.setFixedWidth(135)  # about 19 px a piece: neither flat nor on two rows
    axis = panel.bars.plot.getPlotItem().getAxis("bottom")
    qtbot.waitUntil(lambda: axis.plan.how == "rotated")
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    _, _, texts = axis.generateDrawSpecs(painter)  # what the axis will draw
    painter.end()
    assert [text for _, _, text in texts] == list(axis.plan.texts)
    assert len(texts) == len(panel.trace.src_pieces)


def test_topk_names_shrink_rather_than_overlap_in_short_rows(panel, qtbot):
    from PySide6.QtGui import QFontMetricsF

    panel.show_trace(entry(), make_trace())
    panel.show()
    qtbot.waitExposed(panel)
    view = panel.topk
    view.grab()
    assert view.labels.shrink == 1.0  # 8 rows in a 1280×720 panel: room enough
    view.setFixedHeight(130)  # about 10 px a row
    qtbot.waitUntil(lambda: view.plot.getPlotItem().getViewBox().height() < 100)
    view.grab()
    axis = view.plot.getPlotItem().getAxis("left")
    line = QFontMetricsF(axis.style.get("tickFont") or axis.font()).height()
    row = view.plot.getPlotItem().getViewBox().height() / (8 + 0.2)
    assert view.labels.shrink == pytest.approx(max(0.6, row / line), rel=0.05)
    assert view.labels.shrink < 1.0


def test_topk_names_in_rows_too_short_for_projector_fonts_skip_rows_rather_than_overlap(
    panel, qtbot
):
    """The theme's fonts are set in pixels, which the shrinking once ignored: Side by side's
    five names at 24 px were drawn over each other in a 40-px plot."""
    from PySide6.QtGui import QFontMetricsF
    from PySide6.QtWidgets import QApplication

    from explorer.gui.widgets import theme

    panel.show_trace(entry(), make_trace())
    panel.show()
    qtbot.waitExposed(panel)
    view = panel.topk
    try:
        theme.apply(QApplication.instance(), "light", True, (1920, 1080))
        panel.restyle()
        view.setFixedHeight(150)
        qtbot.waitUntil(lambda: view.plot.getPlotItem().getViewBox().height() < 60)
        view.grab()
        axis = view.plot.getPlotItem().getAxis("left")
        assert axis.style["tickFont"].pixelSize() == theme.signals().metrics.plot_px
        font = theme.scaled_font(axis.style["tickFont"], view.labels.shrink)
        assert view.labels.shrink < 1.0 and font.pixelSize() < axis.style["tickFont"].pixelSize()
        row = view.plot.getPlotItem().getViewBox().height() / (8 + 0.2)
        assert view.labels.every > 1  # some rows' names left out ...
        assert view.labels.every * row >= QFontMetricsF(font).height() - 0.5  # ... none touch
    finally:
        theme.apply(QApplication.instance(), "light", False)
