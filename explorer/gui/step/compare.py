"""A second model beside the first, on the same sentence, stepped in sync."""

from __future__ import annotations

from PySide6 import QtWidgets

from explorer.gui.step.alignment import AlignmentView
from explorer.gui.step.sync import output_html
from explorer.gui.step.topk import TopKView
from explorer.gui.widgets.empty import EmptyNote
from explorer.seq2seq.decoding.trace import Trace


class CompareColumn(QtWidgets.QGroupBox):
    """Its own model picker, alignment matrix and top-k at the same step index."""

    def __init__(self, parent=None):
        super().__init__("Compare with", parent)
        self.empty = EmptyNote(self)
        self.model_box = QtWidgets.QComboBox()
        self.model_box.setToolTip(
            "A second model on the same sentence, e.g. no attention against Bahdanau against the "
            "Transformer: the fixed-size bottleneck against a dynamic context c_t."
        )
        self.output = QtWidgets.QLabel()
        self.output.setWordWrap(True)
        self.alignment = AlignmentView()
        item = self.alignment.plot.getPlotItem()
        for side in ("left", "bottom"):  # "source" and "target": the first model's view says so
            item.getAxis(side).showLabel(False)
        self.topk = TopKView(k=5, compact=True)  # its rows keep their labels' height
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(self.model_box)
        lay.addWidget(self.output)
        lay.addWidget(self.alignment, 3)
        lay.addWidget(self.topk, 2)
        self.trace: Trace | None = None

    def set_trace(self, trace: Trace | None, piece_of=None, starts=None) -> None:
        """``starts`` (does piece i begin a word?) writes the pieces as words ("s'est")."""
        self.trace = trace
        self.alignment.set_trace(trace)
        self.topk.set_trace(trace, piece_of)
        if trace is None:
            self.output.setText("")
        else:
            self.output.setText("→ " + output_html(trace, -1, [False] * len(trace), starts))

    def set_step(self, t: int) -> None:
        if self.trace is None or not self.trace.steps:
            return
        t = min(t, len(self.trace) - 1)
        if self.trace.has_attention:
            self.alignment.set_step(t)
        self.topk.set_step(t)
