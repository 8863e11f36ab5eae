"""Attention at step t as bars over the source pieces, and the context vector c_t as a strip."""

from __future__ import annotations

import numpy as np
from PySide6 import QtWidgets

from explorer.gui.step.common import BAR, Heatmap, make_plot, set_ticks, short, symmetric_levels
from explorer.gui.step.items import BarsItem
from explorer.gui.step.readout import marked, marks_note, score_formula, where
from explorer.gui.step.ticks import fit_value_axis, set_title
from explorer.gui.widgets import theme
from explorer.gui.widgets.empty import EmptyNote
from explorer.seq2seq.decoding.trace import Trace


class AttentionBarsView(QtWidgets.QWidget):
    """Bars of e_ti (raw scores) or α_ti (weights) at the current step, and c_t below them."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.empty = EmptyNote(self)
        self.weights_button = QtWidgets.QRadioButton("weights α_ti")
        self.scores_button = QtWidgets.QRadioButton("raw scores e_ti")
        self.weights_button.setChecked(True)
        self.weights_button.setToolTip(
            "② normalise: α_ti = exp(e_ti) / Σ_j exp(e_tj), probabilities that sum to 1."
        )
        self.scores_button.setToolTip(
            "① score: e_ti = score(s, h_i), how relevant each encoder state is."
        )
        self.weights_button.toggled.connect(lambda _: self._draw())
        self.plot = make_plot("Attention at step t")
        self.bars = BarsItem(BAR)  # one bar per source piece, 0.8 wide, centred on it
        self.plot.addItem(self.bars)
        self.context = Heatmap(
            "Context c_t = Σ_i α_ti h_i", cmap="CET-D1", step_axis="col", colorbar=False
        )
        self.context.setToolTip(
            "③ weighted sum: c_t = Σ_i α_ti h_i, each decoder step's own view of the source."
        )
        self.fit_title_size(theme.signals().metrics.title_px)
        # No bottom axis: a tick for each of hundreds of units drew a black band under the strip
        # and took half the widget's height from it.
        self.context.plot.getPlotItem().hideAxis("bottom")
        left = self.context.plot.getPlotItem().getAxis("left")
        left.setWidth(10)
        left.unlinkFromView()  # one row shows at a time: its tick stays put as the rows scroll
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.weights_button)
        row.addWidget(self.scores_button)
        row.addStretch(1)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(row)
        lay.addWidget(self.plot, 3)
        lay.addWidget(self.context, 1)
        self.trace: Trace | None = None
        self.t = 0
        self.layer, self.head = -1, None
        self._alpha = self._scores = self._ctx = None
        self._y_range: tuple[float, float, float] | None = None
        self.marks: tuple[str, ...] | None = None  # as AlignmentView.marks
        self.where = ""  # "layer 2, head 1" for a Transformer
        self.layer_note = ""  # " · layer 2": c_t joins the layer's heads

    @property
    def show_scores(self) -> bool:
        return self.scores_button.isChecked()

    def set_trace(self, trace: Trace | None, layer: int = -1, head: int | None = None) -> None:
        self.trace, self.layer, self.head = trace, layer, head
        self._alpha = self._scores = self._ctx = None
        if trace is None or not trace.steps:
            self.bars.set_bars([], [], [], [])
            return
        S = len(trace.src_pieces)
        labels = marked([short(p) for p in trace.src_pieces], self.marks)
        set_ticks(self.plot.getPlotItem().getAxis("bottom"), labels, 0)
        self.scores_button.setToolTip(
            f"① score: {score_formula(trace.arch)}; how relevant each encoder state is."
        )
        L, H = trace.steps[0].cross_attention.shape[:2] if trace.has_attention else (1, 1)
        self.where = where(trace.arch, layer, L, head, H)
        self.layer_note = self.where and f" · layer {layer % L + 1}"
        note = marks_note(self.marks)
        self.plot.setToolTip(f"Source pieces marked {note}" if note else "")
        self.plot.getPlotItem().setXRange(-0.6, S - 0.4, padding=0)
        self._ctx = np.stack([s.context[layer] for s in trace.steps])  # (T, D_ctx)
        self.context.set_levels(*symmetric_levels(self._ctx))
        self.context.set_matrix(self._ctx)  # every step's c_t; a step scrolls to its own row
        self.context.set_step(None)
        if trace.has_attention:
            self._alpha = trace.attention_matrix(layer, head)  # (T, S)
            sc = trace.score_matrix(layer, head)
            self._scores = np.where(np.isfinite(sc), sc, np.nan)  # (T, S)
            self.weights_button.setEnabled(True)
            self.scores_button.setEnabled(True)
        else:
            self.weights_button.setEnabled(False)
            self.scores_button.setEnabled(False)
        self._draw()

    def fit_title_size(self, title_px: int) -> None:
        """The context strip's height for titles of ``title_px``: its title, then the strip
        below it (at a fixed 110 px, projector titles left the strip a sliver and the title's
        underscores were cut off)."""
        self.context.setMaximumHeight(max(110, int(5.5 * title_px)))

    def set_step(self, t: int) -> None:
        self.t = t
        self._draw()

    def values(self) -> np.ndarray:
        """The bar heights shown (for tests)."""
        return np.asarray(self.bars.height, dtype=np.float64)

    @staticmethod
    def _title(plot, text: str) -> None:
        set_title(plot, text)  # a new title re-lays the plot out: only on change

    def _with_where(self, title: str) -> str:
        # a Transformer's layer and head in place of "at step t" (the title must fit)
        return f"{title.replace(' at step t', '')} · {self.where}" if self.where else title

    def _set_y_range(self, lo: float, hi: float, padding: float) -> None:
        """The same range for every step of a trace: set (and the axis redrawn) on a change."""
        if (lo, hi, padding) != self._y_range:
            self._y_range = (lo, hi, padding)
            self.plot.getPlotItem().setYRange(lo, hi, padding=padding)
            fit_value_axis(self.plot.getPlotItem().getAxis("left"))

    def _draw(self) -> None:
        if self.trace is None or self._ctx is None:
            return
        t = min(self.t, self._ctx.shape[0] - 1)
        p = self.plot.getPlotItem()
        if self._alpha is None:
            self.bars.set_bars([], [], [], [])
            self._title(p, "No attention: every step sees the same fixed c")
        elif self.show_scores:
            h = np.nan_to_num(self._scores[t], nan=0.0)
            self.bars.set_bars(np.arange(h.shape[0]) - 0.4, 0.0, 0.8, h)
            lo, hi = np.nanmin(self._scores), np.nanmax(self._scores)
            self._set_y_range(min(0.0, lo), max(0.0, hi), 0.05)
            self._title(p, self._with_where("Raw scores e_ti at step t"))
        else:
            self.bars.set_bars(np.arange(self._alpha.shape[1]) - 0.4, 0.0, 0.8, self._alpha[t])
            self._set_y_range(0.0, 1.0, 0.02)
            self._title(p, self._with_where("Weights α_ti at step t"))
        title = "Context c_t = Σ_i α_ti h_i" if self._alpha is not None else "Fixed context c"
        numbers = f"({self._ctx.shape[1]} numbers)"
        self._title(self.context.plot.getPlotItem(), f"{title}  {numbers}{self.layer_note}")
        self.context.show_row(t)
