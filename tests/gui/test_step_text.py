"""The arithmetic text of the Step-through panel: drawn line by line, selectable, copyable."""

import html
import re

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtGui import QColor, QGuiApplication  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from test_step_panel import SRC, entry, make_trace  # noqa: E402

from explorer.gui.session import Session  # noqa: E402
from explorer.gui.step.panel import StepPanel  # noqa: E402
from explorer.gui.step.text import MARGIN, TextLines  # noqa: E402
from explorer.gui.widgets import theme  # noqa: E402
from explorer.gui.widgets.export import save_svg  # noqa: E402


def number(x: float) -> str:
    return f"{x:.3f}".replace("-", "−")


@pytest.fixture
def panel(qtbot):
    p = StepPanel(Session())
    qtbot.addWidget(p)
    p.resize(1400, 900)
    p.show()
    qtbot.waitExposed(p)
    return p


def drawn_after_paint(text: TextLines) -> list[str]:
    text.drawn = []
    text.viewport().grab()  # a paint of the whole viewport
    return text.drawn


def test_the_lines_drawn_are_this_steps_numbers(panel):
    tr = make_trace("luong-dot")
    panel.show_trace(entry(), tr)
    text = panel.arithmetic.text
    for t in (1, 3, 0, 1):
        panel.set_step(t)
        step = tr.steps[t]
        drawn = drawn_after_paint(text)
        shown = text.verticalScrollBar().pageStep()  # whole lines in view (and part of one)
        assert drawn == text.toPlainText().split("\n")[: len(drawn)]  # in order from the top
        assert shown <= len(drawn) <= shown + 1
        assert drawn[0] == f"Step {t + 1}: writing “{step.piece}”   (luong-dot)"
        best = int(np.argmax(step.cross_attention[-1, 0]))
        for i, e in enumerate(step.scores[-1, 0]):  # step 1: e_ti = s_t · h_i, the recorded ones
            mark = "▶" if i == best else " "
            line = next(x for x in drawn if x.startswith(f" {mark}e_{i + 1} ({SRC[i]}) = "))
            assert line.endswith(" = " + number(e))


def test_a_scrolled_text_draws_the_lines_in_view(panel):
    panel.show_trace(entry(), make_trace("luong-dot"))
    text = panel.arithmetic.text
    lines = text.toPlainText().split("\n")
    assert text.verticalScrollBar().maximum() > 0  # more lines than fit
    text.verticalScrollBar().setValue(3)
    drawn = drawn_after_paint(text)
    assert drawn == lines[3 : 3 + len(drawn)] and len(drawn) >= 5
    panel.set_step(2)  # a new step keeps the place the reader scrolled to
    assert text.verticalScrollBar().value() == 3
    assert drawn_after_paint(text)[0] == text.toPlainText().split("\n")[3]


def test_revisited_steps_and_a_new_focus_write_the_right_numbers(panel):
    tr = make_trace("luong-dot")
    panel.show_trace(entry(), tr)
    view = panel.arithmetic
    panel.set_step(2)
    first = view.text.toPlainText()
    panel.set_step(1)
    panel.set_step(2)
    assert view.text.toPlainText() == first
    np.testing.assert_allclose(view.worked.alpha, tr.steps[2].cross_attention[-1, 0])
    best = int(np.argmax(tr.steps[2].cross_attention[-1, 0]))
    assert f" ▶e_{best + 1} ({SRC[best]}) = " in first  # the highest α is written out
    other = (best + 1) % len(SRC)
    view.focus_box.setCurrentIndex(other + 1)  # write out another position term by term
    assert f" ▶e_{other + 1} ({SRC[other]}) = " in view.text.toPlainText()
    assert f" ▶e_{best + 1} " not in view.text.toPlainText()


def test_mouse_selection_double_click_and_copy(panel, qtbot):
    panel.show_trace(entry(), make_trace("luong-dot"))
    text = panel.arithmetic.text
    first = text.lines[0]
    fm = text.fontMetrics()
    y = MARGIN + fm.height() // 2
    start = QPoint(MARGIN + 1, y)
    end = QPoint(MARGIN + fm.horizontalAdvance(first[:6]), y)  # just right of "Step 1"
    qtbot.mousePress(text.viewport(), Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(text.viewport(), end)
    qtbot.mouseRelease(text.viewport(), Qt.MouseButton.LeftButton, pos=end)
    assert text.selectedText() == "Step 1"
    text.setFocus()
    qtbot.keyClick(text, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == "Step 1"
    # a double click takes a whole number: the score of the line it is on
    row = next(i for i, x in enumerate(text.lines) if x.startswith("  e_2"))
    value = text.lines[row].rsplit(" ", 1)[-1]
    x = MARGIN + fm.horizontalAdvance(text.lines[row][:-2])
    qtbot.mouseDClick(
        text.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, text.row_top(row) + 2)
    )
    assert text.selectedText() == value
    qtbot.keyClick(text, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    text.copy()
    assert QGuiApplication.clipboard().text() == text.toPlainText()


def test_dark_theme_and_projector_mode(panel):
    panel.show_trace(entry(), make_trace("luong-dot"))
    text = panel.arithmetic.text
    size, scale = text.font().pointSizeF(), theme.signals().scale
    try:
        theme.apply(QApplication.instance(), "dark", True)
        QApplication.processEvents()  # the palette reaches the widgets through events
        image = text.viewport().grab().toImage()
        assert image.pixelColor(1, 1) == QColor(theme.COLORS["dark"]["base"])
        assert text.font().pointSizeF() == pytest.approx(size * theme.signals().scale / scale)
        glyphs = {image.pixelColor(x, y).name() for x in range(200) for y in range(20)}
        assert any(QColor(c).lightness() > 150 for c in glyphs)  # light text on dark
    finally:
        theme.apply(QApplication.instance(), "light", False)
    assert text.font().pointSizeF() == pytest.approx(size)


def test_svg_export_writes_the_lines_in_view_as_text(panel, tmp_path):
    tr = make_trace("luong-dot")
    panel.show_trace(entry(), tr)
    panel.set_step(2)
    svg = save_svg(panel.arithmetic, tmp_path / "a.svg").read_text("utf-8")
    texts = [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]
    assert f"Step 3: writing “{tr.steps[2].piece}”   (luong-dot)" in texts


def test_the_output_line_highlights_this_steps_piece(panel):
    from PySide6.QtGui import QFont

    tr = make_trace("luong-dot")
    panel.show_trace(entry(), tr)
    line = panel.output_label
    for t in (2, 0, 2):  # a text shown before comes back from its cache, laid out the same
        panel.set_step(t)
        doc = line.document()
        words = " ".join(tr.pieces)  # FakeTokenizer: every piece starts a word
        assert doc.toPlainText() == f"Step {t + 1}/{len(tr)} ({tr.method}): {words}"
        marked = []
        block = doc.begin()
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            fmt = fragment.charFormat()
            if fmt.background().color() == QColor("#f6c0c0"):
                assert fmt.fontWeight() == QFont.Weight.Bold
                marked.append(fragment.text())
            it += 1
        assert marked == [tr.pieces[t]]
    image = line.grab().toImage()
    highlight = QColor("#f6c0c0").rgb()
    drawn = {image.pixel(x, y) for x in range(image.width()) for y in range(image.height())}
    assert highlight in drawn  # the current piece's background is painted
