"""Transformer attention: layer and head pickers; cross, decoder self and encoder self maps."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtWidgets

from explorer.gui.step.common import Heatmap, short
from explorer.gui.step.readout import marked, marks_note, where
from explorer.gui.step.ticks import set_axis_label, set_title
from explorer.gui.widgets.empty import EmptyNote
from explorer.seq2seq.decoding.trace import Trace


class TransformerView(QtWidgets.QWidget):
    """Three maps for one layer and one head (or the average over heads)."""

    selection_changed = QtCore.Signal(int, object)  # layer, head (None = average)

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.layer_box = QtWidgets.QComboBox()
        self.layer_box.setToolTip("Which decoder (and encoder) layer's attention to show.")
        self.head_box = QtWidgets.QComboBox()
        self.head_box.setToolTip(
            "One attention head, or the average over heads: each head learns its own "
            "softmax(QKᵀ/√d_k)V pattern."
        )
        self.layer_box.currentIndexChanged.connect(self._changed)
        self.head_box.currentIndexChanged.connect(self._changed)
        self.cross = Heatmap("Cross-attention", x_label="source", y_label="target")
        self.cross.setToolTip("Decoder queries against encoder keys: where each target word looks.")
        self.self_attn = Heatmap(
            "Decoder self-attention", x_label="earlier target", y_label="target"
        )
        self.self_attn.setToolTip(
            "Each target word attends only to itself and earlier words (masked)."
        )
        self.encoder = Heatmap("Encoder self-attention", colorbar=False, x_label="source")
        self.encoder.setToolTip("Every source piece attends to every other source piece.")
        self.note = QtWidgets.QLabel("Transformer views appear when a Transformer is decoded.")
        bar = QtWidgets.QHBoxLayout()
        bar.addWidget(QtWidgets.QLabel("Layer"))
        bar.addWidget(self.layer_box)
        bar.addWidget(QtWidgets.QLabel("Head"))
        bar.addWidget(self.head_box)
        bar.addWidget(self.note, 1)
        maps = QtWidgets.QHBoxLayout()
        for w in (self.cross, self.self_attn, self.encoder):
            maps.addWidget(w, 1)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(bar)
        lay.addLayout(maps, 1)
        self.trace: Trace | None = None
        self.t = 0
        self.empty = EmptyNote(self)
        self.chosen_layer: int | None = None  # None: the last layer, whatever the model's depth
        self.marks: tuple[str, ...] | None = None  # as AlignmentView.marks

    @property
    def layer(self) -> int:
        return max(0, self.layer_box.currentIndex())

    @property
    def head(self) -> int | None:
        i = self.head_box.currentIndex()
        return None if i <= 0 else i - 1

    def set_trace(self, trace: Trace | None) -> None:
        self.trace = trace
        usable = (
            trace is not None and trace.has_attention and trace.steps[0].self_attention is not None
        )
        self.setEnabled(usable)
        self.note.setVisible(not usable)
        if not usable:  # nothing of an earlier Transformer's maps may stay on screen
            for m in (self.cross, self.self_attn, self.encoder):
                m.set_matrix(np.full((1, 1), np.nan), [], [])
            if trace is not None:
                self.empty.say(
                    f"this model ({trace.arch or 'an RNN'}) is not a Transformer: it has no "
                    "layers of heads; its attention is in the alignment matrix above"
                    if trace.has_attention
                    else "this model has no attention: it reads one fixed context vector"
                )
            return
        self.empty.say("")
        L, H, _ = trace.steps[0].cross_attention.shape
        layer = L - 1 if self.chosen_layer is None or self.chosen_layer >= L else self.chosen_layer
        head = self.head if self.head is None or self.head < H else None
        self.layer_box.blockSignals(True)
        self.head_box.blockSignals(True)
        self.layer_box.clear()
        self.layer_box.addItems([f"{i + 1} of {L}" for i in range(L)])
        self.head_box.clear()
        self.head_box.addItems(["average"] + [f"head {h + 1}" for h in range(H)])
        self.layer_box.setCurrentIndex(layer)
        self.head_box.setCurrentIndex(0 if head is None else head + 1)
        self.layer_box.blockSignals(False)
        self.head_box.blockSignals(False)
        self._fill()

    def _changed(self) -> None:
        if self.trace is not None and self.isEnabled():
            last = self.layer_box.currentIndex() == self.layer_box.count() - 1
            self.chosen_layer = None if last else self.layer
            self._fill()
            self.selection_changed.emit(self.layer, self.head)

    def decoder_self_matrix(self) -> np.ndarray:
        """(T, T) decoder self-attention of the chosen layer/head; zero above the diagonal."""
        tr = self.trace
        T = len(tr)
        m = np.zeros((T, T))
        for t, s in enumerate(tr.steps):
            a = s.self_attention[self.layer]  # (H, t+1)
            m[t, : a.shape[1]] = a.mean(axis=0) if self.head is None else a[self.head]
        return m

    def _fill(self) -> None:
        tr = self.trace
        src = marked([short(p, 8) for p in tr.src_pieces], self.marks)
        tgt = [short(p, 8) for p in tr.pieces]
        L, H, _ = tr.steps[0].cross_attention.shape
        which = where(tr.arch, self.layer, L, self.head, H)
        for m, title in (
            (self.cross, "Cross-attention"),
            (self.self_attn, "Decoder self-attention"),
            (self.encoder, "Encoder self-attention"),
        ):
            set_title(m.plot.getPlotItem(), f"{title} · {which}")
        for m in (self.cross, self.encoder):
            set_axis_label(
                m.plot.getPlotItem(), "bottom", f"source  {marks_note(self.marks)}".strip()
            )
        self.cross.set_matrix(tr.attention_matrix(self.layer, self.head), tgt, src)
        self.self_attn.set_matrix(self.decoder_self_matrix(), tgt, tgt)
        enc = tr.encoder_self_attention
        if enc is not None:
            a = enc[self.layer]  # (H, S, S)
            self.encoder.set_matrix(a.mean(axis=0) if self.head is None else a[self.head], src, src)
            self.encoder.set_step(None)
        self.set_step(self.t)

    def set_step(self, t: int) -> None:
        self.t = t
        if self.trace is None or not self.isEnabled():
            return
        self.cross.set_step(t)
        self.self_attn.set_step(t)
