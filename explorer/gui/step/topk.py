"""Next-token probabilities at step t: the top-k bars, the chosen token marked, the entropy."""

from __future__ import annotations

import math

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.gui.step.common import ACCENT, BAR, LabelBox, make_plot, short
from explorer.gui.step.items import BarsItem, RowLabels
from explorer.gui.step.readout import topk_display
from explorer.gui.step.ticks import fit_value_axis, set_title
from explorer.gui.widgets import theme
from explorer.gui.widgets.empty import EmptyNote
from explorer.gui.widgets.plotting import pg
from explorer.seq2seq.decoding.trace import Trace

AXIS_MARGIN_PX = 8  # a plot's margins and an axis's ticks, beside its text


def rows_height(rows: int, line: float, title: float) -> int:
    """The least height of a top-k plot that gives each of ``rows`` labels (``line`` px high)
    a row of its own at full size, with its title (``title`` px high) and value axis (a line of
    labels, its ticks and margins)."""
    axis = line + 2 * AXIS_MARGIN_PX
    return math.ceil(rows * line + title + axis + AXIS_MARGIN_PX)


class TopKView(QtWidgets.QWidget):
    """Horizontal bars of the k most probable next tokens; click one to force it (what if)."""

    candidate_clicked = QtCore.Signal(int)  # token id

    def __init__(self, parent: QtWidgets.QWidget | None = None, k: int = 8, compact: bool = False):
        super().__init__(parent)
        self.compact = compact  # Compare's column: k fixed, no scale controls
        self.empty = EmptyNote(self)
        self.k_spin = QtWidgets.QSpinBox()
        self.k_spin.setRange(1, 30)
        self.k_spin.setValue(k)
        self.k_spin.setPrefix("k = ")
        self.k_spin.setToolTip("How many of the most probable next tokens to show.")
        self.k_spin.valueChanged.connect(lambda _: self._draw())
        self._build_scale()
        self.entropy_label = QtWidgets.QLabel()
        # plain text: a piece such as "</s>" made Qt guess rich text, which a label lays out
        # only when it paints and then paints a second time
        self.entropy_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.entropy_label.setToolTip(
            "Entropy H = −Σ p log p of the next-token distribution, in nats: 0 when the model is "
            "sure, log V when it has no idea."
        )
        self.plot = make_plot("Next token p(y_t)", invert_y=True)
        self.plot.setToolTip(
            "The decoder's softmax over the vocabulary; greedy decoding takes the top bar. "
            "Click a candidate (its bar or its name) to force that token here and decode on "
            "from it."
        )
        self.bars = BarsItem(BAR)  # one bar per candidate, 0.75 high, centred on its row
        item = self.plot.getPlotItem()
        item.addItem(self.bars)
        item.setXRange(0, 1, padding=0.02)
        item.getAxis("left").setWidth(120)
        # "piece  p" beside each bar: labels of their own, not axis ticks that re-lay out
        self.labels = RowLabels(item.getAxis("left"), item.getViewBox())
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        top = QtWidgets.QHBoxLayout()
        if not compact:
            top.addWidget(self.k_spin)
            top.addWidget(self.log_check)
            top.addWidget(self.display_t)
        top.addStretch(1)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        if not compact:  # the scale's controls, then the step's line below them
            lay.addLayout(top)
        lay.addWidget(LabelBox(self.entropy_label))  # its text changes every step
        lay.addWidget(self.plot, 1)
        self.trace: Trace | None = None
        self.t = 0
        self.entries: list[tuple[int, float]] = []  # (token id, probability) shown, best first
        self.pieces: list[str] = []
        self.piece_of = lambda i: str(i)
        self.reference_token: int | None = None
        self.bar_brush, self.chosen_brush = pg.mkBrush(BAR), pg.mkBrush(ACCENT)
        self._y_range: tuple[float, float] | None = None
        self._x_range: tuple[float, float] = (0.0, 1.0)
        self._shown: dict[tuple[int, int], tuple] = {}  # (t, k) → what _work_out gives

    def _build_scale(self) -> None:
        """The display scale: log p or p, and a display temperature."""
        self.log_check = QtWidgets.QCheckBox("log p")
        self.log_check.setToolTip(
            "Show log p in nats (from −20 up to 0) instead of p: a model that is sure of its "
            "top token still shows how it ranks the others."
        )
        self.display_t = QtWidgets.QDoubleSpinBox()
        self.display_t.setRange(0.1, 10.0)
        self.display_t.setSingleStep(0.5)
        self.display_t.setValue(1.0)
        self.display_t.setPrefix("display T = ")
        self.display_t.setToolTip(
            "Display temperature: the bars show p^(1/T) renormalised. Only the picture changes; "
            "the decode itself used the model's own p (T = 1)."
        )
        self.log_check.toggled.connect(self._rescale)
        self.display_t.valueChanged.connect(self._rescale)

    def restyle(self, scale: float) -> None:
        """Follow the theme's sizes (after the plot's fonts are set): the labels' axis widens
        with the font; a compact view (fixed k) keeps room for every row's label at full size."""
        axis = self.plot.getPlotItem().getAxis("left")
        axis.setWidth(int(120 * scale))
        self.labels.update()  # drawn in the axis's font and colour, which just changed
        fit_value_axis(self.plot.getPlotItem().getAxis("bottom"))  # p or log p, never touching
        if self.compact:
            m = theme.signals().metrics
            line = QtGui.QFontMetricsF(axis.style.get("tickFont") or axis.font()).height()
            title = QtGui.QFontMetricsF(theme.plot_font()).height() * m.title_px / m.plot_px
            self.plot.setMinimumHeight(rows_height(self.k_spin.value(), line, title))

    def set_trace(self, trace: Trace | None, piece_of=None) -> None:
        """``piece_of(token id) -> str`` names candidates that were not emitted."""
        self.trace = trace
        self._shown.clear()
        if piece_of is not None:
            self.piece_of = piece_of
        self._draw()

    def set_step(self, t: int) -> None:
        self.t = t
        self._draw()

    @property
    def scale(self) -> tuple[float, bool]:
        """(display temperature, log scale): how the bars show the next-token distribution."""
        return round(self.display_t.value(), 3), self.log_check.isChecked()

    def _rescale(self, *_args) -> None:
        self._shown.clear()
        self._draw()

    def _draw(self) -> None:
        tr = self.trace
        if tr is None or not tr.steps:
            self.entries = []
            self.bars.set_bars([], [], [], [])
            self.labels.set_texts([])
            self.entropy_label.setText("")
            return
        t = min(self.t, len(tr) - 1)
        k = self.k_spin.value()
        shown = self._shown.get((t, k))
        if shown is None:
            shown = self._shown[(t, k)] = self._work_out(t, k)
        self.entries, self.pieces, bars, brushes, labels, line = shown
        n = len(self.entries)
        self.bars.set_bars(bars.start, [i - 0.375 for i in range(n)], bars.length, 0.75, brushes)
        self.labels.set_texts(labels)
        item = self.plot.getPlotItem()
        if bars.x_range != self._x_range:  # only when the scale changes
            self._x_range = bars.x_range
            item.setXRange(*bars.x_range, padding=0.02)
        set_title(item, bars.title)
        y_range = (-0.6, max(n, k) - 0.4)
        if y_range != self._y_range:  # a new range redraws the axis: only when k changes
            self._y_range = y_range
            self.plot.getPlotItem().setYRange(*y_range, padding=0)
        self.entropy_label.setText(line)

    def _work_out(self, t: int, k: int) -> tuple:
        """What step t shows with k candidates: (token, p) best first, their pieces, p, bar
        brushes, labels and the entropy line. Kept per (t, k): a trace never changes."""
        step = self.trace.steps[t]
        entries = step.topk(k)
        if step.token not in [i for i, _ in entries]:  # the chosen token is always shown
            entries.append((step.token, float(np.exp(step.logprobs[step.token]))))
        pieces = [step.piece if i == step.token else self.piece_of(i) for i, _ in entries]
        temperature, log_scale = self.scale
        bars = topk_display(step.logprobs, [i for i, _ in entries], temperature, log_scale)
        brushes = [self.chosen_brush if i == step.token else self.bar_brush for i, _ in entries]
        labels = [f"{short(piece, 12)}  {q}" for piece, q in zip(pieces, bars.numbers)]
        # short enough for the view's width in projector mode (the step is the slider's);
        # Compare's narrow column leaves out the words (the tooltip gives H's unit)
        p, h = f"p = {np.exp(step.logprob):.3f}", f"H = {step.entropy:.3f}"
        line = (
            f"“{step.piece}” {p} · {h}" if self.compact else f"chose “{step.piece}” {p} · {h} nats"
        )
        if temperature != 1.0:
            line += f"   (bars at display T = {temperature:g}; the decode used T = 1)"
        return entries, pieces, bars, brushes, labels, line

    def _clicked(self, event) -> None:
        """A click on a candidate's row forces it: on its bar, beside it, or on its name."""
        if not self.entries:
            return
        item = self.plot.getPlotItem()
        scene = event.scenePos()
        rows = (
            item.getViewBox().sceneBoundingRect().united(item.getAxis("left").sceneBoundingRect())
        )
        if not rows.contains(scene):  # the title, the bottom axis
            return
        rank = int(round(item.getViewBox().mapSceneToView(scene).y()))
        if 0 <= rank < len(self.entries):
            self.candidate_clicked.emit(self.entries[rank][0])
