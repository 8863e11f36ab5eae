"""Neighbours: the training-set states nearest to the current step's state, and where it sits
among them.

For the session's current model the index of its training states is built on first use, in a
worker, and kept for the model (in memory) while the window is open. The view then asks it, at
every step, for the k nearest states of the kind chosen (s_t, h_i of a chosen source piece, c_t)
and draws them as sentences with the position highlighted and the distance, beside a PCA of the
neighbours with the current state placed among them. The lookup itself is
``explorer.seq2seq.neighbours.lookup``; this module only draws it.
"""

from __future__ import annotations

import html
import weakref
from collections.abc import Callable

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.gui.runner import runner
from explorer.gui.state import LoadedModel
from explorer.gui.step.common import ACCENT, BAR, FONT_PT, make_plot, short
from explorer.gui.step.hidden import place_beside
from explorer.gui.widgets import theme
from explorer.gui.widgets.empty import EmptyNote
from explorer.gui.widgets.plotting import pg
from explorer.seq2seq.neighbours import (
    KINDS,
    LABELS,
    METRICS,
    Lookup,
    Neighbour,
    NeighboursError,
    build_index,
    lookup,
    training_pairs,
)

# States of each kind the window indexes per model: a bundled RNN's states are 256 to 512 numbers,
# so 20,000 of each kind take about 100 MB of memory (50,000, the largest sample, about 250 MB)
# and well under half the time to compute.
WINDOW_STATES = 20_000
HIGHLIGHT = "<span style='background:#f6c0c0; color:#1c1c1c'><b>{}</b></span>"


def default_pairs(entry: LoadedModel) -> list[tuple[str, str]]:
    """The training split the model's stored options regenerate (built-in corpora only)."""
    return training_pairs(entry.card.get("options"), entry.corpus)


def index_job(entry: LoadedModel, pairs_fn: Callable, cap: int, seed: int):
    """In a worker: the model's training pairs, then its index (yields the fraction done)."""
    pairs = pairs_fn(entry)
    yield 0.0
    return (yield from build_index(entry.model, entry.tokenizer, pairs, cap=cap, seed=seed,
                                   name=entry.name))  # fmt: skip


def sentence_html(
    pieces: tuple[str, ...], position: int = -1, words: tuple[int, ...] | None = None
) -> str:
    """The pieces, the one at ``position`` highlighted; with ``words`` (the word of each piece,
    -1 for a special) pieces of one word are written together ("s'est"), else all apart."""
    out = []
    for i, p in enumerate(pieces):
        if i and (words is None or words[i] < 0 or words[i] != words[i - 1]):
            out.append(" ")
        out.append(HIGHLIGHT.format(html.escape(p)) if i == position else html.escape(p))
    return "".join(out)


def neighbour_html(rank: int, n: Neighbour, metric: str) -> str:
    where = "source" if n.side == "source" else "output"
    return (
        f"<p><b>{rank}.</b> d = {n.distance:.4f} ({metric}) · sentence {n.sentence}, {where} "
        f"position {n.position + 1}<br>{sentence_html(n.pieces, n.position, n.words)}<br>"
        f"<span style='color:#777'>{sentence_html(n.other, -1, n.other_words)}</span></p>"
    )


class NeighboursView(QtWidgets.QWidget):
    """The Neighbours tab of Step-through; follows the session by itself."""

    index_ready = QtCore.Signal(object)  # the LoadedModel whose index arrived

    def __init__(self, session, pairs_fn: Callable = default_pairs, cap: int = WINDOW_STATES,
                 seed: int = 0, parent: QtWidgets.QWidget | None = None):  # fmt: skip
        super().__init__(parent)
        self.session, self.pairs_fn, self.cap, self.seed = session, pairs_fn, cap, seed
        self.indexes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # entry → index
        self.failed: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # entry → why
        self.building: weakref.WeakSet = weakref.WeakSet()  # models whose index is under way
        self.progress: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model → done
        self.result: Lookup | None = None
        self.trace = None  # the decode whose state ``result`` looked up (names model, sentence)
        self._build_controls()
        self._build_plot()
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(self.controls)
        body = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        body.addWidget(self.text)
        body.addWidget(self.plot)
        body.setSizes([700, 400])
        holder = QtWidgets.QWidget()  # the note covers the list and the plot, not the controls
        QtWidgets.QVBoxLayout(holder).setContentsMargins(0, 0, 0, 0)
        holder.layout().addWidget(body)
        lay.addWidget(holder, 1)
        self.empty = EmptyNote(holder)  # (a splitter would take it for one more pane)
        session.changed.connect(self._on_session)
        session.current_changed.connect(lambda _: self.refresh())
        theme.signals().changed.connect(self.restyle)
        self.restyle("", theme.signals().scale)

    def _build_controls(self) -> None:
        self.kind = QtWidgets.QComboBox()
        for kind in KINDS:
            self.kind.addItem(LABELS[kind], kind)
        self.kind.setToolTip(
            "Which state to look up: the decoder state s_t of this step, an encoder state h_i "
            "of a source piece, or the context c_t this step read."
        )
        self.piece = QtWidgets.QComboBox()
        self.piece.setToolTip("The source piece whose encoder state h_i is looked up.")
        self.k = QtWidgets.QSpinBox()
        self.k.setRange(1, 30)
        self.k.setValue(8)
        self.k.setPrefix("k = ")
        self.distance = QtWidgets.QComboBox()
        self.distance.addItems(METRICS)
        self.distance.setToolTip("Cosine distance (1 − cos) or Euclidean distance.")
        self.status = QtWidgets.QLabel()
        for box in (self.kind, self.piece, self.distance):
            box.currentIndexChanged.connect(lambda _: self.refresh())
        self.k.valueChanged.connect(lambda _: self.refresh())
        self.controls = QtWidgets.QHBoxLayout()
        for w in (self.kind, self.piece, self.k, self.distance):
            self.controls.addWidget(w)
        self.controls.addWidget(self.status, 1)

    def _build_plot(self) -> None:
        self.text = QtWidgets.QTextBrowser()
        self.text.setToolTip(
            "The training sentences whose states are nearest to this one: the position of the "
            "state highlighted, its distance, and the other side of the pair below."
        )
        self.plot = make_plot("Neighbours on their two main directions (PCA)")
        self.label_points = np.zeros((0, 2))
        self.plot.getPlotItem().getViewBox().sigResized.connect(lambda _vb: self.place())
        self.plot.setToolTip("Each neighbour (numbered as in the list) and the current state ★.")
        self.points = pg.ScatterPlotItem(size=10, brush=pg.mkBrush(BAR), pen=pg.mkPen("k"))
        self.here = pg.ScatterPlotItem(size=18, symbol="star", brush=pg.mkBrush(ACCENT),
                                       pen=pg.mkPen("k"))  # fmt: skip
        self.plot.addItem(self.points)
        self.plot.addItem(self.here)
        self.labels: list[pg.TextItem] = []
        self.label_font = QtGui.QFont()
        self.label_font.setPointSizeF(FONT_PT)

    # -- following the session ---------------------------------------------------------------
    def _on_session(self, part: str) -> None:
        if part in ("trace", "step"):
            self.refresh()

    def showEvent(self, event: QtGui.QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> None:
        """Draw the lookup for the current step, building the model's index first if needed."""
        if not self.isVisible():
            return  # a hidden tab catches up when it is shown
        s = self.session
        entry, trace = s.current, s.trace
        self._fill_pieces(trace)
        self.piece.setEnabled(self.kind.currentData() == "encoder")
        if entry is None or trace is None or not trace.steps:
            self._say(s.why("trace") or "decode a sentence to look up its states")
            return
        if entry in self.failed:
            self._say(f"No neighbours for this model: {self.failed[entry]}")
            return
        index = self.indexes.get(entry)
        if index is None:
            self._start(entry)
            return
        self.status.setText(
            f"{len(index.sentences):,} training sentences, {index.size(self.kind.currentData()):,}"
            f" states (sample of at most {index.cap:,}, seed {index.seed})"
        )
        self.result = lookup(index, trace, self.kind.currentData(), s.step,
                             max(0, self.piece.currentIndex()), self.k.value(),
                             self.distance.currentText())  # fmt: skip
        self.trace = trace
        self._draw(self.result)

    def _fill_pieces(self, trace) -> None:
        pieces = list(trace.src_pieces) if trace is not None else []
        if [self.piece.itemText(i) for i in range(self.piece.count())] != pieces:
            keep = self.piece.currentIndex()
            self.piece.blockSignals(True)
            self.piece.clear()
            self.piece.addItems(pieces)
            self.piece.setCurrentIndex(min(max(keep, 0), len(pieces) - 1))
            self.piece.blockSignals(False)

    def _say(self, why: str) -> None:
        self.result = self.trace = None
        self.empty.say(why)
        self.status.setText("")

    def _start(self, entry: LoadedModel) -> None:
        if entry in self.building:
            self._say(f"indexing the training set… {self.progress.get(entry, 0.0):.0%}")
            return
        self.building.add(entry)
        self._say("indexing the training set…")

        def progress(fraction: float) -> None:
            self.progress[entry] = fraction
            if self.session.current is entry:
                self._say(f"indexing the training set… {fraction:.0%}")

        # one kind per model: an index under way goes on when another model is shown
        runner().run(
            f"neighbours {id(entry)}", index_job, entry, self.pairs_fn, self.cap, self.seed,
            yielded=progress, returned=lambda index: self._ready(entry, index),
            errored=lambda e: self._failed(entry, e),
        )  # fmt: skip

    def _ready(self, entry: LoadedModel, index) -> None:
        self.indexes[entry] = index
        self.building.discard(entry)
        self.index_ready.emit(entry)
        self.refresh()

    def _failed(self, entry: LoadedModel, error: BaseException) -> None:
        self.building.discard(entry)
        if not isinstance(error, NeighboursError):
            self.session.error.emit(f"Neighbours: {error}")
        self.failed[entry] = str(error).strip().splitlines()[0] if str(error).strip() else "?"
        self.refresh()

    # -- drawing -------------------------------------------------------------------------------
    def _draw(self, result: Lookup) -> None:
        self.empty.say("")
        trace = self.trace
        where = (
            f"h_{result.position + 1} of “{trace.src_pieces[result.position]}”"
            if result.kind == "encoder"
            else f"{LABELS[result.kind].split()[-1]} at step {result.position + 1} "
            f"(writing “{trace.pieces[result.position]}”)"
        )
        rows = [neighbour_html(i + 1, n, result.metric) for i, n in enumerate(result.found)]
        self.text.setHtml(f"<p>Nearest training states to <b>{html.escape(where)}</b>:</p>"
                          + "".join(rows))  # fmt: skip
        p = result.projection
        self.points.setData(p.points[:, 0], p.points[:, 1])
        self.here.setData([p.query[0]], [p.query[1]])
        for item in self.labels:
            self.plot.removeItem(item)
        self.labels = []
        for i, (n, (x, y)) in enumerate(zip(result.found, p.points, strict=True)):
            label = pg.TextItem(f"{i + 1} {short(n.pieces[n.position], 10)}", color="k",
                                anchor=(0, 0))  # fmt: skip
            label.setFont(self.label_font)
            label.setPos(float(x), float(y))
            self.plot.addItem(label, ignoreBounds=True)
            self.labels.append(label)
        everything = np.vstack([p.points, p.query[None]])
        lo, hi = everything.min(axis=0), everything.max(axis=0)
        span = np.maximum(hi - lo, 1e-6)
        self.plot.getPlotItem().getViewBox().setRange(
            xRange=(lo[0] - 0.08 * span[0], hi[0] + 0.3 * span[0]),
            yRange=(lo[1] - 0.1 * span[1], hi[1] + 0.2 * span[1]), padding=0,
        )  # fmt: skip
        self.label_points = p.points
        self.place()

    def place(self) -> None:
        """The labels beside their points, none over another (again when the plot is resized)."""
        if getattr(self, "labels", None):
            vb = self.plot.getPlotItem().getViewBox()
            place_beside(vb, self.label_points, self.labels)

    def restyle(self, _theme: str, scale: float) -> None:
        """Projector mode: the list's and the labels' fonts follow the scale."""
        self.label_font.setPointSizeF(FONT_PT * scale)
        for label in self.labels:
            label.setFont(self.label_font)
        self.place()
        font = self.text.font()
        font.setPointSizeF(FONT_PT * scale)
        self.text.setFont(font)
