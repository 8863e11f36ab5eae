"""Edit attention: at the current step, set α_t by hand and decode on from there.

One slider per source piece holds the weight it gets; clicking a piece puts all the weight on it
(one-hot), dragging sliders sets any mix (renormalised to sum 1 when the decode runs). For a
Transformer, the edit replaces one head of one layer, all heads of a layer, or every layer's.
"Re-decode from here" hands the session an :class:`AttentionEdit`; the session decodes in the
background and every view follows the edited trace. The output line shows the original decode
under the edited one, the tokens that differ marked (:func:`what_if_html`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PySide6 import QtCore, QtWidgets

from explorer.gui.step.common import short
from explorer.seq2seq.decoding.edit import AttentionEdit
from explorer.seq2seq.decoding.tokendiff import differing
from explorer.seq2seq.decoding.trace import Trace

SLIDER_MAX = 1000
# A token that differs from the other decode: bold, underlined, in orange (legible in both themes)


def shown_alpha(trace: Trace, t: int, layer: int | None, head: int | None) -> np.ndarray:
    """The (S,) attention step t used where an edit would go: one layer's head, the mean of its
    heads, or (layer None) the mean over every layer's heads."""
    a = trace.steps[t].cross_attention  # (L, H, S)
    rows = a if layer is None else a[layer : layer + 1]
    return rows.mean(axis=(0, 1)) if head is None else rows[:, head].mean(axis=0)


def edit_from_sliders(
    step: int, values: Sequence[int], layer: int | None, head: int | None
) -> AttentionEdit:
    """The edit the sliders describe: one-hot when a single slider is up, else their weights."""
    up = [i for i, v in enumerate(values) if v > 0]
    if len(up) == 1:
        return AttentionEdit(step, source_index=up[0], layer=layer, head=head)
    return AttentionEdit(step, weights=tuple(float(v) for v in values), layer=layer, head=head)


def what_if_html(
    original: Trace,
    trace: Trace,
    words: Callable[[Trace, int | None, Sequence[bool]], str],
    forced: Sequence[tuple[int, int]],
    edits: Sequence[AttentionEdit],
) -> str:
    """The line under the decode on show: what was changed, and the original decode with the
    tokens that differ from it marked. ``words(trace, mark, differ)`` writes a decode out."""
    said = []
    if forced:
        said.append(f"Forced at step {forced[0][0] + 1}")
    if edits:
        steps = sorted({e.step + 1 for e in edits})
        said.append("attention edited at step " + ", ".join(map(str, steps)))
    marks = differing([original.pieces, trace.pieces])[0]
    text = "; ".join(said) if said else "Changed"
    text = text[:1].upper() + text[1:]
    return f"{text}. Original: {words(original, None, marks)}"


class AttentionEditor(QtWidgets.QWidget):
    """Sliders for α_t over the source pieces, the layer and head to replace, and the button."""

    edit_requested = QtCore.Signal(object)  # an AttentionEdit

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.trace: Trace | None = None
        self.t = 0
        self.note = QtWidgets.QLabel()
        self.note.setWordWrap(True)
        self.layer_box = QtWidgets.QComboBox()
        self.layer_box.setToolTip("Transformer: which decoder layer's cross-attention to replace.")
        self.head_box = QtWidgets.QComboBox()
        self.head_box.setToolTip("Transformer: one head, or every head of the layer.")
        for box in (self.layer_box, self.head_box):
            box.currentIndexChanged.connect(lambda _: self._load())
        self.decode_button = QtWidgets.QPushButton("Re-decode from here")
        self.decode_button.setToolTip(
            "Replace α_t at this step by the weights above (renormalised to sum 1), recompute the "
            "context c_t and everything after it, and decode on greedily."
        )
        self.decode_button.clicked.connect(self.request)
        self.reset_button = QtWidgets.QPushButton("Model's weights")
        self.reset_button.setToolTip("Put the sliders back to the attention the model computed.")
        self.reset_button.clicked.connect(self._load)
        bar = QtWidgets.QHBoxLayout()
        bar.addWidget(self.note, 1)
        bar.addWidget(self.layer_box)
        bar.addWidget(self.head_box)
        bar.addWidget(self.reset_button)
        bar.addWidget(self.decode_button)
        # one column per source piece, scrolled sideways: a long sentence must not widen the
        # panel past the screen
        holder = QtWidgets.QWidget()
        self.columns = QtWidgets.QHBoxLayout(holder)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidget(holder)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addWidget(scroll, 1)
        self.sliders: list[QtWidgets.QSlider] = []
        self.buttons: list[QtWidgets.QPushButton] = []
        self.values: list[QtWidgets.QLabel] = []
        self.set_trace(None)

    # the session's trace and step ------------------------------------------------------------
    def set_trace(self, trace: Trace | None) -> None:
        self.trace = trace
        can = trace is not None and trace.has_attention
        if trace is None:
            self.note.setText("Decode a sentence to edit its attention.")
        elif not can:
            self.note.setText(
                "This model has no attention (it reads one fixed context vector): nothing to edit."
            )
        self._fill_boxes(trace if can else None)
        self._build_columns(list(trace.src_pieces) if can else [])
        self.decode_button.setEnabled(can)
        self.reset_button.setEnabled(can)
        self.t = 0
        if can:
            self._load()

    def set_step(self, t: int) -> None:
        if self.trace is None or not self.trace.has_attention:
            return
        self.t = min(t, len(self.trace) - 1)
        self._load()

    @property
    def layer(self) -> int | None:
        i = self.layer_box.currentIndex()
        return None if i <= 0 else i - 1

    @property
    def head(self) -> int | None:
        i = self.head_box.currentIndex()
        return None if i <= 0 else i - 1

    def click_piece(self, i: int) -> None:
        """One-hot on source piece i."""
        for j, s in enumerate(self.sliders):
            s.setValue(SLIDER_MAX if j == i else 0)

    def request(self) -> None:
        if self.trace is None or not self.sliders:
            return
        values = [s.value() for s in self.sliders]
        if not any(values):
            self.note.setText("Every weight is zero: raise at least one slider.")
            return
        self.edit_requested.emit(edit_from_sliders(self.t, values, self.layer, self.head))

    # construction ------------------------------------------------------------------------------
    def _fill_boxes(self, trace: Trace | None) -> None:
        L, H = (0, 0) if trace is None else trace.steps[0].cross_attention.shape[:2]
        many = L > 1 or H > 1
        for box, items in (
            (self.layer_box, ["every layer"] + [f"layer {i + 1}" for i in range(L)]),
            (self.head_box, ["all heads"] + [f"head {h + 1}" for h in range(H)]),
        ):
            box.blockSignals(True)
            keep = box.currentIndex()
            box.clear()
            box.addItems(items)
            box.setCurrentIndex(keep if 0 <= keep < len(items) else 0)
            box.blockSignals(False)
            box.setVisible(many)

    def _build_columns(self, pieces: list[str]) -> None:
        if [b.text() for b in self.buttons] == [short(p) for p in pieces]:
            return
        while self.columns.count():
            item = self.columns.takeAt(0)
            if item.layout() is not None:
                while item.layout().count():
                    item.layout().takeAt(0).widget().deleteLater()
        self.sliders, self.buttons, self.values = [], [], []
        for i, piece in enumerate(pieces):
            slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Vertical)
            slider.setRange(0, SLIDER_MAX)
            slider.setToolTip(f"The weight α_t gives “{piece}”.")
            value = QtWidgets.QLabel()
            value.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
            slider.valueChanged.connect(lambda _: self._show_values())
            button = QtWidgets.QPushButton(short(piece))
            button.setToolTip(f"Attend only to “{piece}” at this step.")
            button.clicked.connect(lambda _=False, i=i: self.click_piece(i))
            col = QtWidgets.QVBoxLayout()
            col.addWidget(value)
            col.addWidget(slider, 1, QtCore.Qt.AlignmentFlag.AlignHCenter)
            col.addWidget(button)
            self.columns.addLayout(col)
            self.sliders.append(slider)
            self.buttons.append(button)
            self.values.append(value)

    def _load(self) -> None:
        """The sliders show the attention the model computed at step t."""
        if self.trace is None or not self.trace.has_attention or not self.sliders:
            return
        alpha = shown_alpha(self.trace, self.t, self.layer, self.head)
        for s, a in zip(self.sliders, alpha, strict=True):
            s.blockSignals(True)
            s.setValue(int(round(float(a) * SLIDER_MAX)))
            s.blockSignals(False)
        step = self.trace.steps[self.t]
        self.note.setText(
            f"Step {self.t + 1} wrote “{step.piece}”. Click a source piece to attend only to it, "
            "or drag the weights; then re-decode from here."
        )
        self._show_values()

    def _show_values(self) -> None:
        total = sum(s.value() for s in self.sliders) or 1
        for s, label in zip(self.sliders, self.values, strict=True):
            label.setText(f"{s.value() / total:.2f}")
