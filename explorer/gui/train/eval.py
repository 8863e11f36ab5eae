"""The Evaluate view: BLEU by source-length bucket for every loaded model on the classroom test set
(the bottleneck lecture's plot: without attention, BLEU falls as sentences grow)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from explorer.gui.runner import runner
from explorer.gui.widgets import theme
from explorer.gui.widgets.plotting import pg

BUCKETS = ("2–10", "11–20", "21–30", "31–40")


class EvaluateView(QWidget):
    """Run ``evaluate_pairs`` for the loaded models in a worker; one line per model."""

    error = Signal(str)
    finished = Signal()

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.results: dict[str, dict] = {}
        self.skipped: dict[str, str] = {}  # model name → why it is not on the classroom test set
        self.bleu_steps: dict = {}  # model name → BleuSteps of its corpus BLEU
        self.worker = None
        self.run_button = QPushButton("Evaluate loaded models")
        self.run_button.setToolTip(
            "Translate the classroom test set with every loaded model (greedy) and plot BLEU by "
            "source length: a fixed-size context vector forgets long sentences, attention does not."
        )
        self.limit = QSpinBox()
        self.limit.setRange(20, 100_000)
        self.limit.setValue(1000)
        self.limit.setSingleStep(100)
        self.limit.setToolTip("How many test sentences to translate (fewer is faster).")
        self.status = QLabel("")
        self.view = pg.GraphicsLayoutWidget()
        self.plot = self.view.addPlot(title="BLEU by source length (classroom test set)")
        self.plot.setLabel("left", "BLEU")
        self.plot.setLabel("bottom", "source length (words)")
        self.plot.getAxis("bottom").setTicks([list(enumerate(BUCKETS))])
        self.plot.setXRange(-0.3, len(BUCKETS) - 0.7)
        self.plot.setYRange(0, 100)
        self.plot.showGrid(x=False, y=True, alpha=0.25)
        # under the plot, not in it: the attention models' lines run along BLEU 100, where a
        # legend in the corner covered them
        self.legend = pg.LegendItem(colCount=2)
        self.view.addItem(self.legend, row=1, col=0)
        row = QHBoxLayout()
        row.addWidget(self.run_button)
        row.addWidget(QLabel("sentences"))
        row.addWidget(self.limit)
        row.addWidget(self.status, 1)
        self.status.setWordWrap(True)  # a long status wraps instead of widening the window
        self.steps_button = QPushButton("BLEU step by step…")  # each model's corpus BLEU
        self.steps_button.clicked.connect(self.open_steps)
        row.addWidget(self.steps_button)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addWidget(self.view, 1)
        self.run_button.clicked.connect(self.run)
        self.restyle()

    def run(self) -> None:
        if self.worker is not None:
            return
        from explorer.seq2seq.evaluate import not_for_classroom

        if not self.state.models:
            self.status.setText("No model loaded: train one or open a checkpoint first.")
            return
        self.skipped = {
            m.name: why for m in self.state.models if (why := not_for_classroom(m.corpus))
        }
        models = [m for m in self.state.models if m.name not in self.skipped]
        self.results, self.bleu_steps = {}, {}
        self.redraw()
        if not models:
            self.status.setText(self._skipped_note().lstrip("; "))
            return
        from explorer.gui.train.jobs import evaluate_job

        self.run_button.setEnabled(False)
        self.status.setText(f"evaluating {len(models)} model(s)…")
        self.worker = runner().run(
            "evaluate", evaluate_job, models, self.limit.value(), yielded=self._add,
            errored=lambda e: self.error.emit(f"evaluation failed: {e}"), finished=self._done,
        )  # fmt: skip

    def open_steps(self):
        from explorer.gui.beam.bleu_walkthrough import open_walkthrough

        return open_walkthrough(self, corpus=list(self.bleu_steps.items()))

    def _add(self, item) -> None:
        name, result = item
        self.bleu_steps[name] = result.pop("bleu_steps")  # results stay plain data (JSON)
        self.results[name] = result
        self.status.setText(f"{name}: BLEU {result['bleu']:.1f} on {result['sentences']} pairs")
        self.redraw()

    def _done(self) -> None:
        self.worker = None
        self.run_button.setEnabled(True)
        if self.results:
            self.status.setText(f"{len(self.results)} model(s) evaluated{self._skipped_note()}")
        self.finished.emit()

    def _skipped_note(self) -> str:
        """The models left out, and why: "; not evaluated: NAME (translates de→en, ...)"."""
        if not self.skipped:
            return ""
        return "; not evaluated: " + "; ".join(f"{n} ({why})" for n, why in self.skipped.items())

    def series(self, name: str) -> list[float | None]:
        """BLEU per bucket for one model, None for a bucket with no sentence."""
        return [b["bleu"] for b in self.results[name]["by_length"]]

    def redraw(self) -> None:
        self.plot.clear()
        self.legend.clear()
        for k, name in enumerate(self.results):
            pts = [(i, v) for i, v in enumerate(self.series(name)) if v is not None]
            c = theme.SERIES[k % len(theme.SERIES)]
            line = self.plot.plot(
                [x for x, _ in pts], [y for _, y in pts], pen=pg.mkPen(c, width=3),
                symbol="o", symbolSize=10, symbolBrush=c,
            )  # fmt: skip
            self.legend.addItem(line, name)
        self.restyle()

    def restyle(self) -> None:
        self.view.setBackground(theme.color("plot_bg"))
        theme.style_plot(self.plot)
        self.legend.setLabelTextSize(f"{theme.signals().metrics.plot_px}px")
        self.legend.setLabelTextColor(theme.color("plot_fg"))
        for _, label in self.legend.items:
            label.setText(label.text)  # the new size and colour are drawn at the next text
