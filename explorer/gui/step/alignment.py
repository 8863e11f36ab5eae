"""The alignment matrix: target steps × source pieces, filled up to the current step."""

from __future__ import annotations

import numpy as np
from PySide6 import QtWidgets

from explorer.gui.step.common import Heatmap, short
from explorer.gui.step.readout import marked, marks_note, where
from explorer.gui.step.ticks import set_axis_label, set_title
from explorer.gui.widgets.empty import EmptyNote
from explorer.seq2seq.decoding.trace import Trace

NO_ATTENTION = "this model has no attention: it reads one fixed context vector"


class AlignmentView(Heatmap):
    """Cross-attention α_ti of every step so far; the current row outlined; fixed 0–1 scale."""

    def __init__(self, title: str = "Alignment α_ti", parent: QtWidgets.QWidget | None = None):
        super().__init__(title, x_label="source", y_label="target", parent=parent)
        self.setToolTip(
            "Row t is where the decoder looked when it wrote target word t: "
            "α_ti = exp(e_ti) / Σ_j exp(e_tj), on a fixed 0–1 colour scale."
        )
        self.matrix: np.ndarray | None = None
        self.trace: Trace | None = None
        self.title = title
        # one per source token: "unseen" (never seen in training), "unk" (became <unk>) or "";
        # None when not known (see readout.source_marks)
        self.marks: tuple[str, ...] | None = None
        self.empty = EmptyNote(self)

    def set_trace(self, trace: Trace | None, layer: int = -1, head: int | None = None) -> None:
        self.trace = trace
        if trace is None or not trace.steps or not trace.has_attention:
            # no matrix at all: a drawn one (zeros) would read as "attention is zero"
            self.matrix = None
            self.set_matrix(np.full((1, 1), np.nan), [], [])
            set_title(self.plot.getPlotItem(), "Alignment: this model has no attention")
            if trace is not None:
                self.empty.say(NO_ATTENTION)
            return
        self.empty.say("")
        L, H, _ = trace.steps[0].cross_attention.shape
        item = self.plot.getPlotItem()
        parts = [self.title, where(trace.arch, layer, L, head, H)]
        set_title(item, " · ".join(p for p in parts if p))
        set_axis_label(item, "bottom", f"source  {marks_note(self.marks)}".strip())
        self.matrix = trace.attention_matrix(layer, head)  # (T, S)
        self.set_matrix(
            self.matrix,
            [short(p) for p in trace.pieces],
            marked([short(p) for p in trace.src_pieces], self.marks),
        )

    def row(self, t: int) -> np.ndarray:
        """The α row shown for step t (for tests)."""
        return np.array([self.pixel(t, i) for i in range(self.shape[1])])
