"""Next-token probabilities at step t: the top-k bars, the chosen token marked, the entropy."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtWidgets

from explorer.gui.step.common import ACCENT, BAR, LabelBox, make_plot, short
from explorer.gui.step.items import BarsItem, RowLabels
from explorer.gui.widgets.empty import EmptyNote
from explorer.gui.widgets.plotting import pg
from explorer.seq2seq.decoding.trace import Trace


class TopKView(QtWidgets.QWidget):
    """Horizontal bars of the k most probable next tokens; click one to force it (what if)."""

    candidate_clicked = QtCore.Signal(int)  # token id

    def __init__(self, parent: QtWidgets.QWidget | None = None, k: int = 8, compact: bool = False):
        super().__init__(parent)
        self.empty = EmptyNote(self)
        self.k_spin = QtWidgets.QSpinBox()
        self.k_spin.setRange(1, 30)
        self.k_spin.setValue(k)
        self.k_spin.setPrefix("k = ")
        self.k_spin.setToolTip("How many of the most probable next tokens to show.")
        self.k_spin.valueChanged.connect(lambda _: self._draw())
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
            "Click a bar to force that token here and decode on from it."
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
        top.addWidget(LabelBox(self.entropy_label), 1)  # its text changes every step
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.plot, 1)
        self.trace: Trace | None = None
        self.t = 0
        self.entries: list[tuple[int, float]] = []  # (token id, probability) shown, best first
        self.pieces: list[str] = []
        self.piece_of = lambda i: str(i)
        self.reference_token: int | None = None
        self.bar_brush, self.chosen_brush = pg.mkBrush(BAR), pg.mkBrush(ACCENT)
        self._y_range: tuple[float, float] | None = None
        self._shown: dict[tuple[int, int], tuple] = {}  # (t, k) → what _work_out gives

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
        self.entries, self.pieces, probs, brushes, labels, line = shown
        n = len(self.entries)
        self.bars.set_bars([0.0] * n, [i - 0.375 for i in range(n)], probs, 0.75, brushes)
        self.labels.set_texts(labels)
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
        probs = [p for _, p in entries]
        brushes = [self.chosen_brush if i == step.token else self.bar_brush for i, _ in entries]
        labels = [f"{short(piece, 12)}  {q:.2f}" for piece, q in zip(pieces, probs)]
        line = (
            f"step {t + 1}: chose “{step.piece}” p = {np.exp(step.logprob):.3f}   "
            f"entropy H = {step.entropy:.3f} nats"
        )
        return entries, pieces, probs, brushes, labels, line

    def _clicked(self, event) -> None:
        if not self.entries:
            return
        vb = self.plot.getPlotItem().getViewBox()
        pos = vb.mapSceneToView(event.scenePos())
        rank = int(round(pos.y()))
        if 0 <= rank < len(self.entries) and pos.x() >= -0.05:
            self.candidate_clicked.emit(self.entries[rank][0])
