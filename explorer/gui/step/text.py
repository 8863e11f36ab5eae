"""A read-only monospace text of many lines that changes on every step, drawn line by line.

``QPlainTextEdit.setPlainText`` builds a text document and lays every line out again, and a step
of the Step-through panel replaces the arithmetic's whole text (70 lines for a 30-piece sentence).
:class:`TextLines` keeps the lines as strings and its paint event draws only the lines in view.
Text can still be selected with the mouse, copied (Ctrl+C, the context menu) and selected whole
(Ctrl+A); the scroll position stays where the reader left it when a step changes the text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from PySide6 import QtCore, QtGui, QtWidgets

MARGIN = 4  # px round the text, as QPlainTextEdit's document margin
WORD = re.compile(r"[\w.−+-]+")  # a double click selects a number or a name whole


class TextLines(QtWidgets.QAbstractScrollArea):
    """Lines of text, no wrapping; scrolls by lines vertically and by pixels horizontally."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.lines: tuple[str, ...] = ()
        self.drawn: list[str] = []  # the lines the last paint drew, top to bottom (for tests)
        self.anchor: tuple[int, int] | None = None  # (line, column) where the selection began
        self.cursor: tuple[int, int] | None = None  # (line, column) where it ends
        self._widths: dict[str, float] = {}  # the longest line → its width in pixels
        self._laid_out: dict[str, QtGui.QStaticText] = {}  # a line → its glyphs, placed
        self._extent = 0.0  # the widest text since clear_extent: the scroll range only grows
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.WheelFocus)
        self.viewport().setCursor(QtCore.Qt.CursorShape.IBeamCursor)
        self.viewport().setBackgroundRole(QtGui.QPalette.ColorRole.Base)
        self.viewport().setAutoFillBackground(True)
        self.verticalScrollBar().setSingleStep(1)

    # content ------------------------------------------------------------------------------

    def clear_extent(self) -> None:
        """Let the horizontal scroll range shrink to the next text's width. Otherwise it only
        grows: texts that follow each other (steps) then keep the scroll bar as it is."""
        self._extent = 0.0

    def set_lines(self, lines: Sequence[str]) -> None:
        lines = tuple(lines)
        if lines == self.lines:
            return
        self.lines = lines
        self.anchor = self.cursor = None
        self._update_scrollbars()
        self.viewport().update()

    def setPlainText(self, text: str) -> None:  # noqa: N802 (as QPlainTextEdit)
        self.set_lines(text.split("\n"))

    def toPlainText(self) -> str:  # noqa: N802 (as QPlainTextEdit)
        return "\n".join(self.lines)

    # geometry -----------------------------------------------------------------------------

    def _line_height(self) -> float:
        return QtGui.QFontMetricsF(self.font()).lineSpacing()

    def _visible_lines(self) -> int:
        return max(1, int((self.viewport().height() - 2 * MARGIN) // self._line_height()))

    def _text_width(self) -> float:
        if not self.lines:
            return 0.0
        longest = max(self.lines, key=len)
        width = self._widths.get(longest)
        if width is None:
            if len(self._widths) > 512:
                self._widths.clear()
            width = self._widths[longest] = QtGui.QFontMetricsF(self.font()).horizontalAdvance(
                longest
            )
        return width

    def _update_scrollbars(self) -> None:
        """Ranges and steps, each set only when it changes (a change repaints the bar)."""

        def put(bar: QtWidgets.QScrollBar, top: int, page: int, single: int) -> None:
            if bar.pageStep() != page:
                bar.setPageStep(page)
            if bar.singleStep() != single:
                bar.setSingleStep(single)
            if (bar.minimum(), bar.maximum()) != (0, top):
                bar.setRange(0, top)

        shown = self._visible_lines()
        put(self.verticalScrollBar(), max(0, len(self.lines) - shown), shown, 1)
        self._extent = max(self._extent, self._text_width())
        room = max(1, self.viewport().width() - 2 * MARGIN)
        char = max(1, int(QtGui.QFontMetricsF(self.font()).averageCharWidth() * 2))
        put(self.horizontalScrollBar(), max(0, int(self._extent + 1 - room)), room, char)

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._update_scrollbars()

    def changeEvent(self, event: QtCore.QEvent) -> None:  # noqa: N802
        super().changeEvent(event)
        if event.type() == QtCore.QEvent.Type.FontChange:
            self._widths.clear()
            self._laid_out.clear()
            self._extent = 0.0
            self._update_scrollbars()
            self.viewport().update()

    def scrollContentsBy(self, dx: int, dy: int) -> None:  # noqa: N802
        self.viewport().update()

    # painting -----------------------------------------------------------------------------

    def _origin(self) -> QtCore.QPointF:
        """Where line 0, column 0 is, in viewport pixels (the top of its line box)."""
        first = self.verticalScrollBar().value()
        x = MARGIN - self.horizontalScrollBar().value()
        return QtCore.QPointF(x, MARGIN - first * self._line_height())

    def row_top(self, row: int) -> int:
        """The viewport y of the top of line ``row`` (negative above the view)."""
        return int(self._origin().y() + row * self._line_height())

    def _selection(self) -> tuple[tuple[int, int], tuple[int, int]] | None:
        if self.anchor is None or self.cursor is None or self.anchor == self.cursor:
            return None
        return min(self.anchor, self.cursor), max(self.anchor, self.cursor)

    def _static(self, line: str) -> QtGui.QStaticText:
        """The line laid out once: steps revisited while scrubbing, and the lines that every
        step shares, are drawn without shaping their text again."""
        text = self._laid_out.get(line)
        if text is None:
            if len(self._laid_out) > 4096:
                self._laid_out.clear()
            text = self._laid_out[line] = QtGui.QStaticText(line)
            text.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        return text

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:  # noqa: N802
        p = QtGui.QPainter(self.viewport())
        fm = QtGui.QFontMetricsF(self.font())
        h, ascent = fm.lineSpacing(), fm.ascent()
        first = self.verticalScrollBar().value()
        origin = self._origin()
        rect = event.rect()
        top = max(first, int((rect.top() - origin.y()) // h))
        bottom = min(len(self.lines), int((rect.bottom() - origin.y()) // h) + 1)
        pal = self.palette()
        p.setPen(pal.color(QtGui.QPalette.ColorRole.Text))
        selection = self._selection()
        self.drawn = list(self.lines[top:bottom])
        for i in range(top, bottom):
            line = self.lines[i]
            y = origin.y() + i * h
            if selection is None or not selection[0][0] <= i <= selection[1][0]:
                p.drawStaticText(QtCore.QPointF(origin.x(), y), self._static(line))
                continue
            (l0, c0), (l1, c1) = selection
            a = c0 if i == l0 else 0
            b = c1 if i == l1 else len(line)
            x = origin.x()
            p.drawText(QtCore.QPointF(x, y + ascent), line[:a])
            x += fm.horizontalAdvance(line[:a])
            width = fm.horizontalAdvance(line[a:b])
            if i != l1:  # a selected line break shows as a little room after the line
                width += fm.averageCharWidth()
            p.fillRect(QtCore.QRectF(x, y, width, h), pal.color(QtGui.QPalette.ColorRole.Highlight))
            p.setPen(pal.color(QtGui.QPalette.ColorRole.HighlightedText))
            p.drawText(QtCore.QPointF(x, y + ascent), line[a:b])
            p.setPen(pal.color(QtGui.QPalette.ColorRole.Text))
            x += fm.horizontalAdvance(line[a:b])
            p.drawText(QtCore.QPointF(x, y + ascent), line[b:])
        p.end()

    # selection ----------------------------------------------------------------------------

    def position_at(self, point: QtCore.QPoint | QtCore.QPointF) -> tuple[int, int]:
        """(line, column) of the character boundary nearest to a viewport point."""
        if not self.lines:
            return 0, 0
        origin = self._origin()
        row = int((point.y() - origin.y()) // self._line_height())
        row = max(0, min(len(self.lines) - 1, row))
        line, x = self.lines[row], point.x() - origin.x()
        fm = QtGui.QFontMetricsF(self.font())
        lo, hi = 0, len(line)  # the first column whose left edge lies right of x, by halves
        while lo < hi:
            mid = (lo + hi) // 2
            if fm.horizontalAdvance(line[: mid + 1]) - fm.horizontalAdvance(line[mid]) / 2 < x:
                lo = mid + 1
            else:
                hi = mid
        return row, lo

    def selectedText(self) -> str:  # noqa: N802 (as QTextCursor)
        selection = self._selection()
        if selection is None:
            return ""
        (l0, c0), (l1, c1) = selection
        if l0 == l1:
            return self.lines[l0][c0:c1]
        parts = [self.lines[l0][c0:], *self.lines[l0 + 1 : l1], self.lines[l1][:c1]]
        return "\n".join(parts)

    def select(self, start: tuple[int, int], end: tuple[int, int]) -> None:
        self.anchor, self.cursor = start, end
        self.viewport().update()

    def selectAll(self) -> None:  # noqa: N802 (as QPlainTextEdit)
        if self.lines:
            self.select((0, 0), (len(self.lines) - 1, len(self.lines[-1])))

    def copy(self) -> None:
        text = self.selectedText()
        if text:
            QtGui.QGuiApplication.clipboard().setText(text)

    def _offer_selection(self) -> None:
        """X11's primary selection, as other text widgets do after a mouse selection."""
        clipboard = QtGui.QGuiApplication.clipboard()
        text = self.selectedText()
        if text and clipboard.supportsSelection():
            clipboard.setText(text, QtGui.QClipboard.Mode.Selection)

    def mousePressEvent(self, event: QtGui.QMouseEvent) -> None:  # noqa: N802
        if event.button() != QtCore.Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        pos = self.position_at(event.position())
        shift = event.modifiers() & QtCore.Qt.KeyboardModifier.ShiftModifier
        self.select(self.anchor if shift and self.anchor is not None else pos, pos)

    def mouseMoveEvent(self, event: QtGui.QMouseEvent) -> None:  # noqa: N802
        if event.buttons() & QtCore.Qt.MouseButton.LeftButton and self.anchor is not None:
            self.select(self.anchor, self.position_at(event.position()))

    def mouseReleaseEvent(self, event: QtGui.QMouseEvent) -> None:  # noqa: N802
        if event.button() == QtCore.Qt.MouseButton.LeftButton:
            self._offer_selection()
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QtGui.QMouseEvent) -> None:  # noqa: N802
        row, col = self.position_at(event.position())
        if not self.lines:
            return
        for m in WORD.finditer(self.lines[row]):
            if m.start() <= col <= m.end():
                self.select((row, m.start()), (row, m.end()))
                self._offer_selection()
                return

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:  # noqa: N802
        if event.matches(QtGui.QKeySequence.StandardKey.Copy):
            self.copy()
            event.accept()
        elif event.matches(QtGui.QKeySequence.StandardKey.SelectAll):
            self.selectAll()
            event.accept()
        else:
            super().keyPressEvent(event)

    def contextMenuEvent(self, event: QtGui.QContextMenuEvent) -> None:  # noqa: N802
        menu = QtWidgets.QMenu(self)
        copy = menu.addAction("Copy", self.copy)
        copy.setShortcut(QtGui.QKeySequence.StandardKey.Copy)
        copy.setEnabled(bool(self.selectedText()))
        select_all = menu.addAction("Select All", self.selectAll)
        select_all.setShortcut(QtGui.QKeySequence.StandardKey.SelectAll)
        menu.exec(event.globalPos())


class RichLine(QtWidgets.QWidget):
    """Rich text that wraps (the output so far, the current piece highlighted), as a label shows
    it, laid out once per text and width.

    A ``QLabel`` lays its rich text out again on every ``setText``; scrubbing comes back to the
    same few texts (one per step), so each keeps its laid-out document here.
    """

    def __init__(self, text: str = "", parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self._html = text
        self._docs: dict[str, QtGui.QTextDocument] = {}  # text → its document at _width
        self._width = -1

    def text(self) -> str:
        return self._html

    def setText(self, text: str) -> None:  # noqa: N802 (as QLabel)
        if text != self._html:
            self._html = text
            self.update()

    def document(self) -> QtGui.QTextDocument:
        """The shown text laid out at the widget's width."""
        width = self.contentsRect().width()
        if width != self._width:
            self._docs.clear()
            self._width = width
        doc = self._docs.get(self._html)
        if doc is None:
            if len(self._docs) > 256:
                self._docs.clear()
            doc = self._docs[self._html] = QtGui.QTextDocument()
            doc.setDocumentMargin(0)
            doc.setDefaultFont(self.font())
            doc.setHtml(self._html)
            doc.setTextWidth(width)
        return doc

    def changeEvent(self, event: QtCore.QEvent) -> None:  # noqa: N802
        super().changeEvent(event)
        if event.type() == QtCore.QEvent.Type.FontChange:
            self._docs.clear()
            self.update()

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:  # noqa: N802
        rect = self.contentsRect()
        p = QtGui.QPainter(self)
        p.translate(rect.topLeft())
        ctx = QtGui.QAbstractTextDocumentLayout.PaintContext()
        palette = self.palette()  # a label's colours: window text, not an editor's text
        palette.setColor(QtGui.QPalette.ColorRole.Text, palette.color(self.foregroundRole()))
        ctx.palette = palette
        ctx.clip = QtCore.QRectF(0, 0, rect.width(), rect.height())
        p.setClipRect(ctx.clip)
        self.document().documentLayout().draw(p, ctx)
        p.end()
