"""Plot building blocks of the step-through views: a heatmap that follows the current step.

Every item is built once; a new trace feeds new arrays (``set_matrix``) and a new step only moves
two rectangles (``set_step``): the mask over the steps not reached yet and the outline of the
current one. Images are fed transposed (pyqtgraph's default axis order is x first) so that a
(rows, cols) matrix shows rows top to bottom.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["set_ticks"]  # (from .ticks) the train panel's maps label their axes with it too

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets  # noqa: F401  (PySide6 before pyqtgraph)

from explorer.gui.step.ticks import FittedAxis, set_ticks
from explorer.gui.train.axes import plain_colorbar
from explorer.gui.widgets import theme
from explorer.gui.widgets.plotting import pg

FONT_PT = 11
BACKGROUND = "w"
ACCENT = QtGui.QColor(220, 40, 40)  # current step, chosen token
BAR = QtGui.QColor(60, 110, 200)


def axis_font(scale: float = 1.0) -> QtGui.QFont:
    f = QtGui.QFont()
    f.setPointSizeF(FONT_PT * scale)
    return f


def cache_text(*items: QtWidgets.QGraphicsItem) -> None:
    """Keep these items (axes, titles: text that rarely changes) as pixmaps between their
    changes: a step then repaints them by copying pixels instead of laying out every label
    again. ``update()`` (new ticks, a new range, a new title) discards the pixmap."""
    mode = QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache
    for item in items:
        item.setCacheMode(mode)
        for child in item.childItems():  # an axis's label, a title's text item
            child.setCacheMode(mode)


def make_plot(title: str, *, invert_y: bool = False) -> pg.PlotWidget:
    """A white plot with readable axes and no mouse zoom (the views are fixed, not explored)."""
    w = pg.PlotWidget(background=BACKGROUND, axisItems={"bottom": FittedAxis("bottom")})
    # No cached background: the background is one colour, and the cache's pixmap was copied
    # into every repainted area by Qt's thread pool, which the UI thread then waited for (a
    # third of a step's time on a busy machine); a plain fill costs less.
    w.setCacheMode(QtWidgets.QGraphicsView.CacheModeFlag.CacheNone)
    p = w.getPlotItem()
    p.setTitle(title, size=f"{FONT_PT + 2}pt", color="k")
    p.setMenuEnabled(False)
    p.hideButtons()
    p.setMouseEnabled(x=False, y=False)
    for name in ("left", "bottom"):
        ax = p.getAxis(name)
        ax.setPen("k")
        ax.setTextPen("k")
        ax.setTickFont(axis_font())
    if invert_y:
        p.invertY(True)
    cache_text(*(p.getAxis(name) for name in ("left", "bottom", "top", "right")), p.titleLabel)
    return w


class LabelBox(QtWidgets.QWidget):
    """A box that holds one label whose text changes on every step.

    Each ``QLabel.setText`` asks the parent's layout to recompute, and that request ripples up
    through every splitter to the panel. Here the label's parent is this box, which has no
    layout, so the request stops at the box; the panel's layout sizes the box (one line high
    unless given a fixed height) and the box gives the label its whole area.
    """

    def __init__(self, label: QtWidgets.QLabel, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.label = label
        label.setParent(self)
        policy = QtWidgets.QSizePolicy.Policy
        self.setSizePolicy(policy.Ignored, policy.Fixed)

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802
        m = self.label.contentsMargins()
        return QtCore.QSize(0, self.label.fontMetrics().height() + m.top() + m.bottom())

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802
        return self.sizeHint()

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802
        self.label.setGeometry(self.rect())
        super().resizeEvent(event)


def short(piece: str, n: int = 10) -> str:
    return piece if len(piece) <= n else piece[: n - 1] + "…"


class Heatmap(QtWidgets.QWidget):
    """A labelled matrix with a fixed colour scale; the current step is a row or a column.

    ``step_axis`` is ``"row"`` (target steps × source: alignment) or ``"col"`` (units × time).
    """

    def __init__(
        self,
        title: str,
        *,
        cmap: str = "viridis",
        levels: tuple[float, float] | None = (0.0, 1.0),
        step_axis: str = "row",
        colorbar: bool = True,
        x_label: str = "",
        y_label: str = "",
        parent: QtWidgets.QWidget | None = None,
    ):
        super().__init__(parent)
        self.step_axis = step_axis
        self.plot = make_plot(title, invert_y=True)
        p = self.plot.getPlotItem()
        if x_label:
            p.setLabel("bottom", x_label, color="k", size=f"{FONT_PT}pt")
        if y_label:
            p.setLabel("left", y_label, color="k", size=f"{FONT_PT}pt")
        self.image = pg.ImageItem()
        # Kept as a pixmap at screen size: a new step only moves the mask and the outline, so
        # the scaled image is drawn once per matrix, not on every repaint.
        self.image.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
        p.addItem(self.image)
        self.cmap = pg.colormap.get(cmap)
        self.levels = levels or (0.0, 1.0)
        self.colorbar = None
        if colorbar:
            self.colorbar = pg.ColorBarItem(
                values=self.levels, colorMap=self.cmap, interactive=False, width=16
            )
            self.colorbar.setImageItem(self.image, insert_in=p)
            self.colorbar.axis.setTextPen("k")
            self.colorbar.axis.setTickFont(axis_font(0.9))
            plain_colorbar(self.colorbar)  # labels that never touch on a short bar
            cache_text(self.colorbar.axis)
        else:
            self.image.setLookupTable(self.cmap.getLookupTable(nPts=256))
        # One mask per step not reached yet: a new step shows or hides one of them, and only
        # that row (or column) is painted again, where one mask over them all changed size and
        # repainted every row below the current one.
        self.masks: list[QtWidgets.QGraphicsRectItem] = []
        self.mask_brush = pg.mkBrush(theme.color("mask"))
        theme.signals().changed.connect(self._follow_theme)
        self.cursor = QtWidgets.QGraphicsRectItem()
        self.cursor.setPen(pg.mkPen(ACCENT, width=3))
        self.cursor.setZValue(6)
        p.addItem(self.cursor)
        self.shape = (0, 0)
        self._row_view = False  # show_row's one-row view is set
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot)

    def _follow_theme(self, _theme: str, _scale: float) -> None:
        """The masks take the theme's colour (near white on a dark plot was a glaring block)."""
        self.mask_brush = pg.mkBrush(theme.color("mask"))
        for mask in self.masks:
            mask.setBrush(self.mask_brush)

    def set_levels(self, lo: float, hi: float) -> None:
        self.levels = (float(lo), float(hi))
        if self.colorbar is not None:
            self.colorbar.setLevels(self.levels)
        else:
            self.image.setLevels(self.levels)

    def set_matrix(
        self,
        matrix: np.ndarray,  # (R, C)
        row_labels: Sequence[str] | None = None,
        col_labels: Sequence[str] | None = None,
        levels: tuple[float, float] | None = None,
    ) -> None:
        m = np.nan_to_num(np.asarray(matrix, dtype=np.float32), neginf=0.0, posinf=0.0)
        if m.ndim != 2 or m.size == 0:
            m = np.zeros((1, 1), np.float32)
        if levels is not None:
            self.set_levels(*levels)
        self.image.setImage(m.T, levels=self.levels, autoLevels=False)
        self.image.setPos(0, 0)
        self._row_view = False
        self.shape = m.shape
        R, C = m.shape
        p = self.plot.getPlotItem()
        set_ticks(p.getAxis("left"), row_labels if row_labels is not None else [""] * R)
        set_ticks(p.getAxis("bottom"), col_labels if col_labels is not None else [""] * C)
        p.setRange(xRange=(0, C), yRange=(0, R), padding=0.02)
        self._fit_masks()

    def _fit_masks(self) -> None:
        """A mask per step (row or column), each reaching half a step into the next one, so
        that neighbours leave no anti-aliased seam between them (only the steps after a masked
        one are masked too)."""
        R, C = self.shape
        n = R if self.step_axis == "row" else C
        vb = self.plot.getPlotItem().getViewBox()
        while len(self.masks) > n:
            vb.removeItem(self.masks.pop())
        while len(self.masks) < n:
            mask = QtWidgets.QGraphicsRectItem()
            mask.setBrush(self.mask_brush)
            mask.setPen(pg.mkPen(None))
            mask.setZValue(5)
            mask.setVisible(False)
            vb.addItem(mask, ignoreBounds=True)
            self.masks.append(mask)
        for i, mask in enumerate(self.masks):
            reach = min(1.5, n - i)
            if self.step_axis == "row":
                mask.setRect(0, i, C, reach)
            else:
                mask.setRect(i, 0, reach, R)

    def show_row(self, t: int) -> None:
        """Show only row t: a view one row high, and the image moved up by t rows, so that a
        strip follows the step with the pixels it already has (the image keeps every row; a
        new step draws no new image, and moving an item costs less than a new view range)."""
        if not self._row_view:
            vb = self.plot.getPlotItem().getViewBox()
            vb.setYRange(0, 1, padding=0)
            vb.updateMatrix()  # now, not while painting: that would ask for a second paint
            self._row_view = True
        self.image.setPos(0, -t)

    def update_values(self, matrix: np.ndarray) -> None:
        """New numbers, same shape and labels: only the image changes."""
        m = np.nan_to_num(np.asarray(matrix, dtype=np.float32), neginf=0.0, posinf=0.0)
        if m.shape != self.shape:
            self.set_matrix(m)
            return
        self.image.setImage(m.T, levels=self.levels, autoLevels=False)

    def set_step(self, t: int | None) -> None:
        """Show steps 0..t, outline step t; None shows everything without a cursor."""
        R, C = self.shape
        for i, mask in enumerate(self.masks):
            hide = t is not None and i > t
            if mask.isVisible() != hide:
                mask.setVisible(hide)
        self.cursor.setVisible(t is not None)
        if t is None:
            return
        if self.step_axis == "row":
            self.cursor.setRect(0, t, C, 1)
        else:
            self.cursor.setRect(t, 0, 1, R)

    def masked_steps(self) -> list[int]:
        """The steps (rows or columns) under the mask, for tests."""
        return [i for i, mask in enumerate(self.masks) if mask.isVisible()]

    def pixel(self, row: int, col: int) -> float:
        """The value shown at (row, col), for tests."""
        return float(self.image.image[col, row])


def symmetric_levels(*arrays: np.ndarray | None) -> tuple[float, float]:
    vals = [np.abs(a[np.isfinite(a)]).max() for a in arrays if a is not None and np.size(a)]
    m = float(max(vals)) if vals else 1.0
    m = m if m > 0 else 1.0
    return -m, m
