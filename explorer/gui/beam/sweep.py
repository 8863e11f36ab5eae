"""BLEU and output length over a test set for beam sizes 1 to 16: "larger beam, shorter output".

The session runs the sweep in the background, one point per beam size, so the plot fills in as it
goes and the class can watch it; this widget draws the session's sweep record, which names the
model and the test set it belongs to.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from explorer.gui.widgets.empty import EmptyNote
from explorer.gui.widgets.plotting import pg
from explorer.seq2seq.metrics import corpus_bleu

BEAMS = (1, 2, 4, 8, 16)
# The least height of each axis, so that a change of a fraction of a point does not fill it.
MIN_SPAN_BLEU = 5.0
MIN_SPAN_LENGTH = 2.0

# decode(sources, beam) -> one output string per source
Decoder = Callable[[list[str], int], list[str]]


class SweepInputError(ValueError):
    """A test-set TSV line without a tab-separated source and reference."""


def read_pairs_tsv(path: str | Path) -> list[tuple[str, str]]:
    pairs = []
    with Path(path).open(encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.reader(f, delimiter="\t"), start=1):
            if not row or not any(c.strip() for c in row):
                continue
            if len(row) < 2 or not row[0].strip():
                raise SweepInputError(f"{path}:{lineno}: expected 'source<TAB>reference'")
            pairs.append((row[0].strip(), row[1].strip()))
    return pairs


def axis_range(
    values, min_span: float, lo: float | None = None, hi: float | None = None
) -> tuple[float, float]:
    """A y range holding every value with a margin, at least ``min_span`` tall (centred on the
    values), kept inside [lo, hi] where given (BLEU stays within 0–100)."""
    v = np.asarray(values, dtype=float)
    top, bottom = float(v.max()), float(v.min())
    span = max(top - bottom, min_span) * 1.15
    a, b = 0.5 * (top + bottom) - span / 2, 0.5 * (top + bottom) + span / 2
    if lo is not None and a < lo:
        a, b = lo, b + (lo - a)
    if hi is not None and b > hi:
        a, b = a - (b - hi), hi
        a = a if lo is None else max(a, lo)
    return a, b


def beam_ticks(beams=BEAMS) -> list[tuple[float, str]]:
    """One labelled tick per beam size on a log10 axis (16 included)."""
    return [(float(np.log10(k)), str(k)) for k in beams]


def run_sweep(
    decode: Decoder, pairs: list[tuple[str, str]], beams: tuple[int, ...] = BEAMS
) -> Iterator[tuple[int, float, float]]:
    """(beam, corpus BLEU, average output length in words) for each beam size."""
    sources = [s for s, _ in pairs]
    refs = [r for _, r in pairs]
    for k in beams:
        outputs = decode(sources, k)
        yield k, corpus_bleu(outputs, refs), float(np.mean([len(o.split()) for o in outputs]))


def sweep_job(
    decode: Decoder, load_pairs: Callable[[], list[tuple[str, str]]], beams: tuple[int, ...]
) -> Iterator[tuple[int, float, float]]:
    """The worker's generator: read the test set (in the worker: the classroom split takes
    seconds to build), then sweep."""
    pairs = load_pairs()
    if not pairs:
        raise SweepInputError("the test set has no pairs")
    yield from run_sweep(decode, pairs, beams)


class SweepWidget(QWidget):
    """Run the sweep and plot BLEU and average length against beam size."""

    error = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        # run_sweep(load_pairs, test set name): the session's, set by the panel
        self.run_sweep: Callable[[Callable[[], list], str], bool] | None = None
        self.default_pairs: Callable[[int], list[tuple[str, str]]] | None = None
        self.tsv: Path | None = None
        self.count = QSpinBox()
        self.count.setRange(1, 10000)
        self.count.setValue(50)
        self.count.setToolTip("How many test pairs (from the start of the set) to translate.")
        self.tsv_button = QPushButton("Test set: classroom")
        self.tsv_button.setToolTip("Pick a TSV file of 'source<TAB>reference' lines.")
        self.tsv_button.clicked.connect(self._pick_tsv)
        self.run_button = QPushButton("Run sweep")
        self.run_button.setToolTip(
            "Translate the test set with beam sizes 1, 2, 4, 8 and 16: a larger beam finds "
            "higher-probability outputs, which are often shorter."
        )
        self.run_button.clicked.connect(self.start)
        self.status = QLabel("")
        # BLEU and average length side by side, each with its own axes (not two y axes on one)
        self.plot = self._make_plot("BLEU", "#3b75af")
        self.len_plot = self._make_plot("average length (words)", "#ef8636")
        self.len_plot.setXLink(self.plot)
        self.bleu_curve = self.plot.getPlotItem().plot(
            pen=pg.mkPen("#3b75af", width=3), symbol="o", symbolSize=10, symbolBrush="#3b75af"
        )
        self.len_curve = self.len_plot.getPlotItem().plot(
            pen=pg.mkPen("#ef8636", width=3, style=Qt.DashLine),
            symbol="s",
            symbolSize=10,
            symbolBrush="#ef8636",
        )
        row = QHBoxLayout()
        row.addWidget(QLabel("pairs:"))
        row.addWidget(self.count)
        row.addWidget(self.tsv_button)
        row.addWidget(self.run_button)
        row.addWidget(self.status, 1)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        self.plots = QWidget()  # the empty note covers both
        plots = QHBoxLayout(self.plots)
        plots.setContentsMargins(0, 0, 0, 0)
        plots.addWidget(self.plot, 1)
        plots.addWidget(self.len_plot, 1)
        lay.addWidget(self.plots, 1)
        self.points: list[tuple[int, float, float]] = []
        self.record = None  # the session's SweepRecord on show
        self.empty = EmptyNote(self.plots)

    @staticmethod
    def _make_plot(label: str, colour: str):
        plot = pg.PlotWidget(background="w")
        pi = plot.getPlotItem()
        pi.setLabel("left", label, color=colour)
        pi.setLabel("bottom", "beam size (log scale)")
        pi.setLogMode(x=True, y=False)
        pi.showGrid(x=True, y=True, alpha=0.2)
        pi.getAxis("bottom").setTicks([beam_ticks()])
        pi.setXRange(np.log10(BEAMS[0]) - 0.1, np.log10(BEAMS[-1]) + 0.1, padding=0)
        pi.setMouseEnabled(False, False)
        pi.setMenuEnabled(False)
        pi.hideButtons()
        return plot

    def _pick_tsv(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Test set", "", "TSV (*.tsv *.txt)")
        if path:
            self.tsv = Path(path)
            self.tsv_button.setText(f"Test set: {self.tsv.name}")

    def pairs_loader(self) -> Callable[[], list[tuple[str, str]]]:
        """Reads the test pairs the controls name; safe to call from the worker thread."""
        n, tsv, default = self.count.value(), self.tsv, self.default_pairs

        def load() -> list[tuple[str, str]]:
            if tsv is not None:
                return read_pairs_tsv(tsv)[:n]
            if default is None:
                raise SweepInputError("no test set: load a model or pick a TSV file")
            return default(n)

        return load

    def test_set(self) -> str:
        source = self.tsv.name if self.tsv is not None else "the classroom test set"
        return f"{self.count.value()} pairs of {source}"

    def start(self) -> None:
        if self.run_sweep is None:
            self.error.emit("Beam sweep: load or train a model first")
            return
        self.run_sweep(self.pairs_loader(), self.test_set())

    def show_record(self, record, why: str) -> None:
        """Draw a SweepRecord (its points so far), or say why there is none."""
        self.record = record
        self.points = list(record.points) if record is not None else []
        self.empty.say("" if record is not None else why)
        running = record is not None and not record.done
        self.run_button.setEnabled(not running)
        if record is None:
            self.status.setText("")
        else:
            model, test_set = record.origin.model, record.origin.text
            last = self.points[-1] if self.points else None
            done = (
                f"beam {last[0]}: BLEU {last[1]:.1f}, length {last[2]:.1f}"
                if last
                else "translating…"
            )
            self.status.setText(f"{model} on {test_set}: {done}")
        self._plot()

    def _plot(self) -> None:
        if not self.points:
            self.bleu_curve.setData([], [])
            self.len_curve.setData([], [])
            return
        k, bleu, length = (np.array(v, dtype=float) for v in zip(*self.points))
        self.bleu_curve.setData(k, bleu)
        self.len_curve.setData(k, length)
        self.plot.setYRange(*axis_range(bleu, MIN_SPAN_BLEU, 0.0, 100.0), padding=0)
        self.len_plot.setYRange(*axis_range(length, MIN_SPAN_LENGTH, 0.0), padding=0)
