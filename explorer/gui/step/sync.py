"""Side by side: two or three models on the sentence, stepped in sync by the one step control.

The first column is the session's current model and trace; the second and third are the
session's comparison parts ("compare", "compare2"), each decoded greedily by the model picked
above it. Each column shows its output line, its alignment and its top-k at the session's step t
(a decode that ended earlier stays on its last step). The tokens that not every decode shares
(a longest-common-subsequence alignment, :func:`tokendiff.differing`) are marked in each line.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from PySide6 import QtCore, QtWidgets

from explorer.gui.session import COMPARES, Session
from explorer.gui.step.alignment import AlignmentView
from explorer.gui.step.readout import CURRENT, DIFFERS
from explorer.gui.step.topk import TopKView
from explorer.seq2seq.decoding.tokendiff import differing
from explorer.seq2seq.decoding.trace import Trace

NONE = "—"
IGNORED = QtWidgets.QSizePolicy.Policy.Ignored


def output_html(
    trace: Trace, t: int, differ: Sequence[bool], starts: Sequence[bool] | None = None
) -> str:
    """The decode's pieces: the one at step t highlighted, those that differ marked. Pieces are
    written apart, or, with ``starts`` (does piece i begin a word?), as words ("s'est")."""
    t = min(t, len(trace) - 1)
    out = []
    for i, piece in enumerate(trace.pieces):
        text = html.escape(piece)
        if i and (starts is None or starts[i]):
            out.append(" ")
        out.append(CURRENT.format(text) if i == t else DIFFERS.format(text) if differ[i] else text)
    return "".join(out)


def word_starts(tokenizer, tokens: Sequence[int]) -> list[bool] | None:
    """Which target tokens begin a word (sentencepiece's "▁"; special pieces do), or None for a
    tokenizer that does not say."""
    raw = getattr(tokenizer, "raw_piece", None)
    if raw is None:
        return None

    def starts(token: int) -> bool:
        try:
            p = raw(token, "tgt")
        except (ValueError, IndexError):  # not a piece of this vocabulary: written apart
            return True
        return p.startswith("\u2581") or (p.startswith("<") and p.endswith(">"))

    return [starts(token) for token in tokens]


def differences(traces: Sequence[Trace | None]) -> list[list[bool]]:
    """Per trace, which tokens differ from the other shown decodes (none for a missing one)."""
    shown = [tr for tr in traces if tr is not None]
    marks = iter(differing([tr.pieces for tr in shown]))
    return [[] if tr is None else next(marks) for tr in traces]


class SyncColumn(QtWidgets.QWidget):
    """One model's output line, alignment and top-k."""

    def __init__(self, picker: bool, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.name = QtWidgets.QLabel()
        self.model_box = QtWidgets.QComboBox() if picker else None
        self.output = QtWidgets.QLabel()
        self.output.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.output.setWordWrap(True)
        self.alignment = AlignmentView()
        self.topk = TopKView(k=5, compact=True)
        views = QtWidgets.QHBoxLayout()
        self.topk.plot.getPlotItem().getAxis("left").setWidth(90)  # "piece  p" in a third
        for view, stretch in ((self.alignment, 1), (self.topk, 1)):
            view.setSizePolicy(IGNORED, QtWidgets.QSizePolicy.Policy.Preferred)  # share the width
            views.addWidget(view, stretch)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.model_box if picker else self.name)
        lay.addWidget(self.output)
        lay.addLayout(views, 1)
        self.trace: Trace | None = None

    def draw(self, trace: Trace | None, why: str, entry, t: int, differ) -> None:
        piece_of = entry.tokenizer.tgt_piece if entry is not None else None
        if trace is not self.trace:
            self.trace = trace
            self.alignment.set_trace(trace)
            self.topk.set_trace(trace, piece_of)
        if trace is None or not trace.steps:
            self.alignment.empty.say(why)
            self.topk.empty.say(why)
            self.output.setText(html.escape(why))
            return
        self.topk.empty.say("")
        t = min(t, len(trace) - 1)
        if trace.has_attention:
            self.alignment.set_step(t)
        self.topk.set_step(t)
        starts = word_starts(entry.tokenizer, trace.tokens) if entry is not None else None
        self.output.setText(output_html(trace, t, differ, starts))


class SideBySide(QtWidgets.QWidget):
    """The current model and up to two more, following the session's step."""

    def __init__(self, state: Session, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.columns = [SyncColumn(picker=i > 0) for i in range(1 + len(COMPARES))]
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for col in self.columns:  # equal thirds, whatever each column's text asks for
            col.setSizePolicy(IGNORED, QtWidgets.QSizePolicy.Policy.Preferred)
            lay.addWidget(col, 1)
        for part, col in zip(COMPARES, self.columns[1:], strict=True):
            col.model_box.setToolTip(
                "Another model on the same sentence, decoded greedily and stepped with the first."
            )
            col.model_box.activated.connect(lambda _, part=part, col=col: self._pick(part, col))
        state.models_changed.connect(self._fill_models)
        state.changed.connect(self._on_session)
        state.want(*COMPARES)
        self._fill_models()

    def _fill_models(self) -> None:
        names = [m.name for m in self.state.models]
        for part, col in zip(COMPARES, self.columns[1:], strict=True):
            box = col.model_box
            box.blockSignals(True)
            box.clear()
            box.addItems([NONE, *names])
            chosen = self.state.compare_names[part]
            box.setCurrentIndex(names.index(chosen) + 1 if chosen in names else 0)
            box.blockSignals(False)

    def _pick(self, part: str, col: SyncColumn) -> None:
        name = col.model_box.currentText()
        self.state.set_compare(None if name == NONE else name, part)

    def _on_session(self, part: str) -> None:
        if part in ("trace", "step", *COMPARES) and self.isVisible():
            self.redraw()
        if part in COMPARES:
            self._fill_models()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self.redraw()

    def traces(self) -> list[Trace | None]:
        return [self.state.trace, *(self.state.records[p] for p in COMPARES)]

    def redraw(self) -> None:
        """Every column at the session's step."""
        s = self.state
        traces = self.traces()
        marks = differences(traces)
        entries = [s.current, *(s.compare_entry(p) for p in COMPARES)]
        whys = [s.why(p) for p in ("trace", *COMPARES)]
        self.columns[0].name.setText(f"<b>{s.current.name}</b>" if s.current else "")
        for col, tr, why, entry, differ in zip(
            self.columns, traces, whys, entries, marks, strict=True
        ):
            col.draw(tr, why, entry, s.step, differ)
