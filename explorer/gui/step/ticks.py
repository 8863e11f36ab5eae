"""Tick labels of the step-through views fitted to the pixels each cell has.

:func:`set_ticks` gives an axis one label per cell; :func:`fit_ticks` fits them with
``placement.fit_labels`` in the axis's own font, again whenever the view is resized or its
range changes. :class:`FittedAxis` can draw its labels upright, a quarter turn, for a long
sentence under a narrow matrix.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import shiboken6
from PySide6 import QtCore, QtGui  # noqa: F401  (PySide6 before pyqtgraph)

from explorer.gui.step.placement import ELLIPSIS, fit_labels
from explorer.gui.widgets import theme
from explorer.gui.widgets.plotting import pg


class FittedAxis(pg.AxisItem):
    """A pyqtgraph axis whose tick labels may stand upright (``rotated``), read bottom to top,
    each ending at its tick."""

    rotated = False

    def drawPicture(self, p, axisSpec, tickSpecs, textSpecs):  # noqa: N802 (pyqtgraph's name)
        if not self.rotated:
            super().drawPicture(p, axisSpec, tickSpecs, textSpecs)
            return
        super().drawPicture(p, axisSpec, tickSpecs, [])  # the line and the ticks
        if self.style["tickFont"] is not None:
            p.setFont(self.style["tickFont"])
        p.setPen(self.textPen())
        fm = QtGui.QFontMetricsF(p.font())
        middle = (fm.ascent() - fm.descent()) / 2  # the baseline that centres a line on a tick
        for rect, _flags, text in textSpecs:
            p.save()
            p.translate(rect.center().x(), rect.top())
            p.rotate(-90)  # x now points up the screen: the text ends at the tick
            p.drawText(QtCore.QPointF(-fm.horizontalAdvance(text), middle), text)
            p.restore()


def set_ticks(axis: pg.AxisItem, labels: Sequence[str], offset: float = 0.5) -> None:
    """One tick per label, centred on its cell, fitted to the pixels each cell has (see
    :func:`fit_ticks`), and fitted again whenever the view is resized or its range changes."""
    axis.all_labels = ([str(s) for s in labels], offset)
    view = axis.linkedView()
    if view is not None and not getattr(axis, "follows_view", False):
        axis.follows_view = True
        refit = lambda *_: fit_ticks(axis) if shiboken6.isValid(axis) else None  # noqa: E731
        view.sigResized.connect(refit)
        # a new font (projector mode) measures anew, once the views' restyles have set it
        theme.signals().changed.connect(lambda *_: QtCore.QTimer.singleShot(0, refit))
        (view.sigXRangeChanged if _horizontal(axis) else view.sigYRangeChanged).connect(refit)
    fit_ticks(axis)


def _horizontal(axis: pg.AxisItem) -> bool:
    return axis.orientation in ("bottom", "top")


def fit_ticks(axis: pg.AxisItem) -> None:
    """The axis's labels as ``placement.fit_labels`` fits them, measured in the axis's font: a
    horizontal axis whole, on two alternating rows, upright, abbreviated or thinned; a vertical one
    whole or thinned. New ticks (and a new height) only when they change."""
    labels, offset = getattr(axis, "all_labels", ([], 0.5))
    view = axis.linkedView()
    fm = QtGui.QFontMetricsF(axis.style.get("tickFont") or axis.font())
    horizontal = _horizontal(axis)
    size = view.viewPixelSize() if view is not None else (0.0, 0.0)  # data units per pixel
    unit = size[0] if horizontal else size[1]
    extent = 0 if view is None else (view.width() if horizontal else view.height())
    if view is not None and view.width() > 1 and extent <= 1:
        cell = 0.0  # laid out, but squeezed to nothing this way: one label at most
    else:
        cell = 1.0 / unit if unit > 0 and extent > 1 else float("inf")
    if horizontal:
        # upright labels: as thick as their ink is high, at most a third of the plot long
        ink = lambda s: fm.tightBoundingRect(s).height() + 1 if s else 0.0  # noqa: E731
        room = (view.height() + axis.height()) / 3 if view is not None else float("inf")
        upright = ink if isinstance(axis, FittedAxis) else None
        plan = fit_labels(
            labels, cell, fm.horizontalAdvance, upright=upright, upright_room=max(room, 1.0)
        )
    else:
        plan = fit_labels(labels, cell, lambda s: fm.height() if s else 0.0, gap=0, two_rows=False)
    ticks = [
        (i + offset, ("\n" + s) if plan.rows == 2 and i % 2 else s)
        for i, s in enumerate(plan.texts)
    ]
    axis.plan = plan
    if axis._tickLevels != [ticks, []]:  # new ticks redraw the axis: only when they change
        axis.setTicks([ticks, []])
    if horizontal:
        # room for both rows, or the longest upright label (and the axis label, if any)
        label = fm.lineSpacing() + 4 if axis.label.isVisible() else 0
        text = plan.rows * fm.lineSpacing()
        if plan.how == "rotated":
            text = max((fm.horizontalAdvance(s) for s in plan.texts), default=0.0)
        if isinstance(axis, FittedAxis) and axis.rotated != (plan.how == "rotated"):
            axis.rotated = plan.how == "rotated"
            # pyqtgraph hides a label whose flat box reaches past the axis's ends: an upright
            # one does not (the first and last words were missing); drawn again either way
            reach = max((fm.horizontalAdvance(s) for s in plan.texts), default=0.0) / 2 + 2
            axis.setStyle(hideOverlappingLabels=int(reach) if axis.rotated else True)
        height = int(text + 16 + label)
        if axis.fixedHeight != height:
            axis.setHeight(height)


def set_title(item: pg.PlotItem, text: str) -> None:
    """A plot's title (only when it changes) that never widens the plot: a title longer than
    the plot (a Transformer's layer and head, projector fonts) is cut with "…" at its end."""
    label = item.titleLabel
    if not getattr(label, "shrinks", False):  # once per label, for every later change too
        label.shrinks = True
        measured = label.updateMin

        def update_min() -> None:
            measured()
            label.setMinimumWidth(0)
            hints = label._sizeHint  # pyqtgraph's LabelItem answers sizeHint from this table
            for which in (QtCore.Qt.SizeHint.MinimumSize, QtCore.Qt.SizeHint.PreferredSize):
                hints[which] = (0, hints[which][1])
            label.updateGeometry()

        label.updateMin = update_min
        refit = lambda *_: fit_title(label) if shiboken6.isValid(label) else None  # noqa: E731
        label.geometryChanged.connect(refit)
        theme.signals().changed.connect(refit)  # restyled in a new size: measured again
    if getattr(label, "whole", None) != text or not label.isVisible():
        label.whole = text
        item.setTitle(text)
        theme.fit_title_row(item)
        fit_title(label)


def fit_title(label: pg.LabelItem) -> None:
    """The label's whole text, or its longest start with "…" that fits the label's width."""
    whole = getattr(label, "whole", label.text)
    room = label.width() - 2 * label.item.document().documentMargin()

    def put(text: str) -> bool:
        if label.text != text:
            label.setText(text)  # in the label's own colour and size
        return label.item.document().idealWidth() <= room + 0.5

    if room <= 0 or put(whole):
        return
    lo, hi = 0, len(whole)  # the longest start that fits with "…", by halves
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if put(whole[:mid].rstrip() + ELLIPSIS) else (lo, mid - 1)
    put(whole[:lo].rstrip() + ELLIPSIS)


def set_axis_label(item: pg.PlotItem, side: str, text: str) -> None:
    """An axis's label as plain text (a "<unk>" in it is not taken for markup), on a change."""
    axis = item.getAxis(side)
    escaped = html.escape(text)
    if axis.labelText != escaped:
        axis.setLabel(escaped)


NICE_STEPS = (1.0, 2.0, 2.5, 5.0)  # a value axis's spacing: one of these times a power of ten


def value_step(
    lo: float, hi: float, pixels: float, line: float, nice: tuple[float, ...] = NICE_STEPS
) -> float:
    """The smallest nice spacing of a value axis from ``lo`` to ``hi`` drawn ``pixels`` long whose
    labels, ``line`` pixels tall, stand a line apart."""
    span = hi - lo
    if not (span > 0 and pixels > 0 and line > 0):
        return 1.0
    most = max(1, int(pixels // (2 * line)))  # intervals that fit: a label and a gap each
    exp = math.floor(math.log10(span / most))
    for power in (exp, exp + 1, exp + 2):
        for factor in nice:
            step = factor * 10.0**power
            if span / step <= most:
                return step
    return span


def fit_value_axis(axis: pg.AxisItem) -> None:
    """A value axis's tick spacing from its length and font, so its labels never touch
    (pyqtgraph always draws its first tick level, however crowded); again on every resize. A
    vertical axis's labels stand a line apart; a horizontal one's a label's width and a space."""
    view = axis.linkedView()
    if view is None:
        return
    across = axis.orientation in ("bottom", "top")
    lo, hi = view.viewRange()[0 if across else 1]
    fm = QtGui.QFontMetricsF(axis.style.get("tickFont") or axis.font())
    if across:  # the widest label such a range shows, and a space: half of it per interval
        widest = max(fm.horizontalAdvance(f"{v:g}") for v in (round(lo, 1), round(hi, 1), 0.25))
        gap = (widest + fm.horizontalAdvance(" ")) / 2
        step = value_step(lo, hi, view.width(), gap, nice=(1.0, 2.0, 5.0))
    else:
        step = value_step(lo, hi, view.height(), fm.height())
    if getattr(axis, "value_step", None) != step:
        axis.value_step = step
        # across, no minor level: pyqtgraph labels it too where it fits (0.25 printed "0.2")
        axis.setTickSpacing(major=step, minor=step if across else step / 2)
    if not getattr(axis, "follows_length", False):
        axis.follows_length = True
        refit = lambda *_: fit_value_axis(axis) if shiboken6.isValid(axis) else None  # noqa: E731
        view.sigResized.connect(refit)
        (view.sigXRangeChanged if across else view.sigYRangeChanged).connect(refit)
        theme.signals().changed.connect(lambda *_: QtCore.QTimer.singleShot(0, refit))
