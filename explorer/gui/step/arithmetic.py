"""The attention arithmetic at step t written out with this step's numbers, and a hand exercise."""

from __future__ import annotations

from PySide6 import QtGui, QtWidgets

from explorer.gui.step.common import FONT_PT
from explorer.gui.step.readout import SCORES_WITH, head_average_lines, where
from explorer.gui.step.text import TextLines
from explorer.gui.widgets.empty import EmptyNote
from explorer.seq2seq.decoding.arithmetic import (
    ArithmeticInputError,
    WorkedAttention,
    attention,
    bottleneck,
    from_step,
    parse_matrix,
    parse_vector,
)
from explorer.seq2seq.decoding.trace import Trace

# The lectures' exercise "Calculate Attention Weights" (generating "noir").
EXERCISE = {
    "words": "The, black, cat, sat",
    "s": "0.7, 0.8",
    "h": "0.1, 0.2; 0.8, 0.9; 0.5, 0.4; 0.3, 0.1",
    "W": "1, 0; 0, 1",
    "W_s": "1, 0; 0, 1",
    "W_h": "1, 0; 0, 1",
    "v": "1, 1",
}


def mono_font() -> QtGui.QFont:
    f = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
    f.setPointSizeF(FONT_PT)
    return f


def mono(parent=None) -> QtWidgets.QPlainTextEdit:
    w = QtWidgets.QPlainTextEdit(parent)
    w.setReadOnly(True)
    w.setFont(mono_font())
    w.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.NoWrap)
    w.document().setUndoRedoEnabled(False)  # read-only: nothing to undo
    return w


class HandExercise(QtWidgets.QGroupBox):
    """Type s and h_i (and the weights) and see the three steps; opens on the lectures' exercise."""

    def __init__(self, parent=None):
        super().__init__("Hand exercise", parent)
        self.family = QtWidgets.QComboBox()
        self.family.addItems(["dot", "general", "additive", "scaled-dot"])
        self.family.setToolTip(
            "Dot: s·h_i.  General: s·W h_i.  Additive (concat): v·tanh(W_s s + W_h h_i).  "
            "Scaled dot-product: q·k_i/√d_k."
        )
        self.fields: dict[str, QtWidgets.QLineEdit] = {}
        form = QtWidgets.QFormLayout()
        form.addRow("score", self.family)
        tips = {
            "words": "The source word of each h_i, separated by commas (names the rows).",
            "s": "The decoder query s (what I'm looking for), numbers separated by commas.",
            "h": "The encoder states h_i (what's available), one row per word, rows split by ';'.",
            "W": "General score matrix W (rows split by ';').",
            "W_s": "Additive: W_s applied to the query.",
            "W_h": "Additive: W_h applied to each encoder state.",
            "v": "Additive: the vector v that turns tanh(...) into one score.",
        }
        for name, text in EXERCISE.items():
            edit = QtWidgets.QLineEdit(text)
            edit.setToolTip(tips[name])
            edit.returnPressed.connect(self.compute)
            self.fields[name] = edit
            form.addRow(name, edit)
        self.button = QtWidgets.QPushButton("Compute")
        self.button.setToolTip("Score, normalise with the softmax, and take the weighted sum.")
        self.button.clicked.connect(self.compute)
        self.family.currentIndexChanged.connect(self._show_fields)
        self.output = mono()
        lay = QtWidgets.QHBoxLayout(self)
        left = QtWidgets.QVBoxLayout()
        left.addLayout(form)
        left.addWidget(self.button)
        left.addStretch(1)
        lay.addLayout(left, 1)
        lay.addWidget(self.output, 2)
        self.result: WorkedAttention | None = None
        self._show_fields()
        self.compute()

    def _show_fields(self) -> None:
        fam = self.family.currentText()
        need = {"W"} if fam == "general" else {"W_s", "W_h", "v"} if fam == "additive" else set()
        for name in ("W", "W_s", "W_h", "v"):
            self.fields[name].setEnabled(name in need)

    def compute(self) -> WorkedAttention | None:
        fam = self.family.currentText()
        try:
            s = parse_vector(self.fields["s"].text(), "s")
            h = parse_matrix(self.fields["h"].text(), "h")
            weights = {}
            if fam == "general":
                weights["W"] = parse_matrix(self.fields["W"].text(), "W")
            if fam == "additive":
                weights["W_s"] = parse_matrix(self.fields["W_s"].text(), "W_s")
                weights["W_h"] = parse_matrix(self.fields["W_h"].text(), "W_h")
                weights["v"] = parse_vector(self.fields["v"].text(), "v")
            words = self.words()
            if words is not None and len(words) != h.shape[0]:
                raise ArithmeticInputError(
                    f"words: {len(words)} given for {h.shape[0]} rows of h (one word per h_i)"
                )
            self.result = attention(fam, s, h, **weights)
        except ArithmeticInputError as e:
            self.result = None
            self.output.setPlainText(f"Cannot compute: {e}")
            return None
        self.output.setPlainText("\n".join(self.result.lines(labels=self.words())))
        return self.result

    def words(self) -> list[str] | None:
        """The typed source words, one per h_i (None when there are none: h_i are numbered)."""
        words = [w.strip() for w in self.fields["words"].text().split(",")]
        return words if any(words) else None


class ArithmeticView(QtWidgets.QWidget):
    """This step's numbers through the three steps; the bottleneck count without attention."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.empty = EmptyNote(self)
        self.focus_box = QtWidgets.QComboBox()
        self.focus_box.setToolTip(
            "Which source position's product e_ti = score(s, h_i) to write out term by term."
        )
        self.focus_box.currentIndexChanged.connect(lambda _: self._draw())
        # drawn line by line: a step replaces the whole text (see step_text)
        self.text = TextLines()
        self.text.setFont(mono_font())
        self.text.setToolTip(
            "① score e_ti, ② softmax α_ti = exp(e_ti)/Σ_j exp(e_tj), "
            "③ weighted sum c_t = Σ_i α_ti h_i, with this decoding step's numbers."
        )
        self.exercise = HandExercise()
        top = QtWidgets.QHBoxLayout()
        top.addWidget(QtWidgets.QLabel("Write out position"))
        top.addWidget(self.focus_box)
        top.addStretch(1)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.text, 1)  # the step panel shows ``exercise`` in a tab of its own
        self.trace: Trace | None = None
        self.d_embed: int | None = None
        self.weights: dict | None = None
        self.t = 0
        self.layer, self.head = -1, None
        self.worked: WorkedAttention | None = None
        # (t, layer, head, focus) → (lines, worked): the trace never changes, and scrubbing
        # back and forth comes back to the same steps
        self._written: dict[tuple, tuple[list[str], WorkedAttention | None]] = {}

    def set_trace(
        self, trace: Trace | None, d_embed: int | None = None, weights: dict | None = None
    ) -> None:
        """``weights``: the model's score weights (``Seq2Seq.score_weights()``), so that Luong
        general and Bahdanau scores are worked out from s and h_i, not taken as recorded."""
        self.trace, self.d_embed, self.weights = trace, d_embed, weights
        self._written.clear()
        self.text.clear_extent()
        self.focus_box.blockSignals(True)
        self.focus_box.clear()
        self.focus_box.addItem("highest α")
        if trace is not None:
            self.focus_box.addItems([f"{i + 1}: {p}" for i, p in enumerate(trace.src_pieces)])
        self.focus_box.blockSignals(False)
        self._draw()

    def set_head(self, layer: int, head: int | None) -> None:
        self.layer, self.head = layer, head
        self._draw()

    def set_step(self, t: int) -> None:
        self.t = t
        self._draw()

    def _draw(self) -> None:
        tr = self.trace
        if tr is None or not tr.steps:
            self.worked = None
            self.text.set_lines(["Decode a sentence to see the arithmetic of each step."])
            return
        t = min(self.t, len(tr) - 1)
        key = (t, self.layer, self.head, self.focus_box.currentIndex() - 1)
        written = self._written.get(key)
        if written is None:
            written = self._written[key] = self._write(t, key[-1])
        lines, self.worked = written
        self.text.set_lines(lines)

    def _write(self, t: int, focus: int) -> tuple[list[str], WorkedAttention | None]:
        """The lines of step t, and its worked arithmetic (None without attention)."""
        tr = self.trace
        step = tr.steps[t]
        head = f"Step {t + 1}: writing “{step.piece}”"
        if not tr.has_attention:
            n, d_hidden = len(tr.src_tokens), step.context.shape[-1]
            lines = [head, "No attention: the whole source is squeezed into one fixed c,"]
            lines.append("the same at every step (c = the encoder's last state).")
            if self.d_embed:
                lines += ["", "The bottleneck:"] + bottleneck(n, self.d_embed, d_hidden).lines()
            return lines, None
        worked = from_step(tr, t, self.layer, self.head, self.weights)
        lines = [head + f"   ({tr.arch})"]
        state = SCORES_WITH.get(tr.arch)
        if state is not None:
            lines.append(f"scores with {state[0]}: {state[1]}")
        if tr.arch == "transformer":
            L, H, _ = step.cross_attention.shape
            if self.head is None:  # as the bars beside it: the average over heads
                lines += head_average_lines(step.cross_attention[self.layer], list(tr.src_pieces))
                lines.append(f"Head 1 of {H} written out (each head has its own q, k_i, v_i):")
            else:
                lines.append(f"{where(tr.arch, self.layer, L, self.head, H)}, as the bars:")
        lines += worked.lines(focus if focus >= 0 else None, list(tr.src_pieces))
        return lines, worked
