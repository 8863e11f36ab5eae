"""Graphics items that change on every step, made cheap to change.

pyqtgraph's ``BarGraphItem`` works out its padded bounding rectangle in Python several times per
repaint, and an axis whose tick labels change lays every label out again in Python. A step of the
Step-through panel changes both (the top-k bars and their names), so the views draw them with
these two items instead: :class:`BarsItem` keeps its bounding rectangle between repaints and
draws its bars in one call; :class:`RowLabels` draws one label per row in an axis's area, which
stays an empty, cached axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import shiboken6
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.gui.step.placement import row_font_scale
from explorer.gui.widgets.plotting import pg
from explorer.gui.widgets.theme import scaled_font


def _column(a, n: int) -> list[float]:
    """n floats: a sequence as it is, or one number repeated."""
    a = np.asarray(a, dtype=float)
    return a.tolist() if a.ndim else [float(a)] * n


class BarsItem(QtWidgets.QGraphicsObject):
    """Rectangles (x0, y0, width, height) in data coordinates, each with its brush, one pen.

    Each bar is a child rectangle item of its own (drawn by Qt, no Python per paint): new bars
    repaint only the bars that changed, where one item for all of them repainted their whole
    bounding rectangle, most of the plot, on every step.
    """

    def __init__(self, brush, pen=None):
        super().__init__()
        self.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemHasNoContents)
        self.brush = pg.mkBrush(brush)
        # As BarGraphItem: a one-pixel outline in the foreground colour. Width 0 is Qt's
        # one-pixel pen: a rectangle item adds half its pen's width to its bounding rectangle
        # in data units, and half a data unit is half the plot.
        self.pen = pg.mkPen(pg.getConfigOption("foreground") if pen is None else pen)
        self.pen.setWidthF(0)
        self.items: list[QtWidgets.QGraphicsRectItem] = []
        self.rects: list[tuple[float, float, float, float]] = []  # shown: x, y, w ≥ 0, h ≥ 0
        self.brushes: list[QtGui.QBrush] = []
        self.x0 = self.y0 = self.width = self.height = np.zeros(0)  # as given, signs kept

    def set_bars(
        self,
        x0: np.ndarray,  # (n,)
        y0: np.ndarray,  # (n,)
        width: np.ndarray,  # (n,) or one for all
        height: np.ndarray,  # (n,) or one for all
        brushes: Sequence[QtGui.QBrush] | None = None,
    ) -> None:
        n = len(x0)
        x0, y0, width, height = (_column(a, n) for a in (x0, y0, width, height))
        self.x0, self.y0, self.width, self.height = (np.array(a) for a in (x0, y0, width, height))
        rects = [
            (min(x, x + w), min(y, y + h), abs(w), abs(h))
            for x, y, w, h in zip(x0, y0, width, height)
        ]
        brushes = list(brushes) if brushes is not None else [self.brush] * n
        while len(self.items) < n:
            item = QtWidgets.QGraphicsRectItem(self)
            item.setPen(self.pen)
            item.setBrush(self.brush)
            item.setVisible(False)
            self.items.append(item)
        # Qt repaints what a change covers, old and new: set only what changed
        old, old_brushes = self.rects, self.brushes
        for i in range(n):
            item = self.items[i]
            if i >= len(old):
                item.setRect(*rects[i])
                item.setBrush(brushes[i])
                item.setVisible(True)
                continue
            if rects[i] != old[i]:
                item.setRect(*rects[i])
            if brushes[i] is not old_brushes[i]:
                item.setBrush(brushes[i])
        for item in self.items[n : len(old)]:
            item.setVisible(False)
        self.rects, self.brushes = rects, brushes

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 (Qt's name)
        return QtCore.QRectF()  # no contents of its own: the bars are children

    def paint(self, p: QtGui.QPainter, *args) -> None:
        pass


class RowLabels(QtWidgets.QGraphicsObject):
    """One text per row y = 0, 1, … of a view, right-aligned in the area of a vertical axis.

    A child of the axis: the axis itself keeps no ticks (and its cached pixmap), while a new step
    repaints only this item. Font and colour are the axis's, so theme and projector mode apply.
    """

    def __init__(self, axis: pg.AxisItem, view: pg.ViewBox):
        super().__init__(axis)
        self.axis, self.view = axis, view
        self.texts: list[str] = []
        self.shrink = 1.0  # the font's scale at the last paint (rows shorter than a line)
        self.every = 1  # at the last paint, a text on every row (1), every second (2), ...
        self._laid_out: dict[str, QtGui.QStaticText] = {}
        self._font_key = ""
        axis.setTicks([[], []])
        self._rect = self._area()
        axis.geometryChanged.connect(self._follow_axis)
        view.sigTransformChanged.connect(lambda _view: self.update())

    def set_texts(self, texts: Sequence[str]) -> None:
        texts = [str(t) for t in texts]
        if texts != self.texts:
            self.texts = texts
            self.update()

    def _area(self) -> QtCore.QRectF:
        """The axis's area, and the tick marks' reach into the plot (a negative tick length)."""
        return QtCore.QRectF(self.axis.rect()).adjusted(
            0, 0, -min(0, self.axis.style["tickLength"]), 0
        )

    def _follow_axis(self) -> None:
        if not shiboken6.isValid(self.axis):  # the axis being torn down with its plot
            return
        self.prepareGeometryChange()
        self._rect = self._area()

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 (Qt's name)
        return self._rect

    def _static(self, text: str, font: QtGui.QFont) -> QtGui.QStaticText:
        """The label laid out once per font (a candidate's name and probability recur)."""
        key = font.key()
        if key != self._font_key or len(self._laid_out) > 2048:
            self._laid_out, self._font_key = {}, key
        st = self._laid_out.get(text)
        if st is None:
            st = self._laid_out[text] = QtGui.QStaticText(text)
            st.setTextFormat(QtCore.Qt.TextFormat.PlainText)
            st.prepare(QtGui.QTransform(), font)
        return st

    def paint(self, p: QtGui.QPainter, *args) -> None:
        if not self.texts:
            return
        # data row y → this item's y: the view's child group to the scene, the scene to the axis
        to_axis = self.view.childGroup.sceneTransform() * self.sceneTransform().inverted()[0]
        y0 = to_axis.map(QtCore.QPointF(0.0, 0.0)).y()
        step = to_axis.map(QtCore.QPointF(0.0, 1.0)).y() - y0
        font = self.axis.style.get("tickFont") or self.axis.font()
        # rows shorter than a line (a short plot, projector fonts): a smaller font, in the unit
        # the font was set in (the theme's are in pixels); rows shorter still than the smallest
        # font: every second (third, ...) row's text, from the top candidate on, not overlap
        shrink = self.shrink = row_font_scale(abs(step), QtGui.QFontMetricsF(font).height())
        if shrink < 1.0:
            font = scaled_font(font, shrink)
        line = QtGui.QFontMetricsF(font).height()
        self.every = max(1, math.ceil(line / abs(step) - 1e-6)) if step else 1
        p.setFont(font)
        p.setPen(self.axis.textPen())
        edge = self.axis.rect().right()  # the axis line
        tick = -self.axis.style["tickLength"]  # as the axis draws ticks: into the plot if > 0
        right = edge - max(0, -tick) - self.axis.style["tickTextOffset"][0]
        for i, text in enumerate(self.texts):
            if i % self.every:
                continue
            st = self._static(text, font)
            size = st.size()
            y = y0 + i * step  # the row's centre
            p.drawStaticText(QtCore.QPointF(right - size.width(), y - size.height() / 2), st)
        p.setPen(self.axis.pen())
        for i in range(len(self.texts)):
            y = y0 + i * step
            p.drawLine(QtCore.QPointF(edge, y), QtCore.QPointF(edge + tick, y))
