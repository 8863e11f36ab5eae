"""Live training curves and the probe sentence's attention map, replayable over the run.

Both widgets are fed :class:`explorer.seq2seq.training.train.Progress` records; plot items are
built once and given new arrays on :meth:`redraw`, which the panel calls at most ~10 times a second.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget
from superqt import QLabeledSlider

from explorer.gui.step.common import set_ticks
from explorer.gui.train.axes import plain_axes, plain_colorbar
from explorer.gui.train.probemap import MIN_CELL_PX, probe_map
from explorer.gui.widgets import theme
from explorer.gui.widgets.plotting import pg

# name: (title, y label, [(series key, legend)], log y)
PLOTS = {
    "loss": ("Loss", "cross-entropy (nats)", [("loss", "train"), ("val_loss", "validation")], 0),
    "ppl": (
        "Perplexity",
        "exp(loss)",
        [("perplexity", "train"), ("val_perplexity", "validation")],
        1,
    ),
    "bleu": ("Validation BLEU", "BLEU", [("val_bleu", "greedy")], 0),
    "lr": ("Learning rate", "lr", [("lr", "lr")], 0),
    "grad": ("Gradient norm", "‖g‖ before clipping", [("grad_norm", "‖g‖")], 0),
    "tps": ("Throughput", "target tokens / s", [("tokens_per_second", "tok/s")], 0),
}


class LiveCurves(pg.GraphicsLayoutWidget):
    """Six small plots: loss, perplexity, BLEU, learning rate, gradient norm, tokens per second."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.data: dict[str, tuple[list[float], list[float]]] = {}
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        for i, (name, (title, ylabel, series, logy)) in enumerate(PLOTS.items()):
            p = self.addPlot(row=i // 3, col=i % 3, title=title, axisItems=plain_axes())
            p.setLabel("left", ylabel)
            p.setLabel("bottom", "step")
            p.showGrid(x=True, y=True, alpha=0.25)
            p.setLogMode(y=bool(logy))
            if len(series) > 1:
                legend = p.addLegend()
                legend.anchor(itemPos=(1, 0), parentPos=(1, 0), offset=(-5, 5))
            for k, (key, legend) in enumerate(series):
                pen = pg.mkPen(theme.SERIES[k], width=2.5 if k else 1.5)
                symbol = "o" if key.startswith("val") else None
                self.curves[key] = p.plot(
                    [], [], pen=pen, name=legend, symbol=symbol, symbolSize=6,
                    symbolBrush=theme.SERIES[k],
                )  # fmt: skip
                self.data[key] = ([], [])
            self.plots[name] = p
        self.plots["bleu"].setYRange(0.0, 100.0, padding=0)  # BLEU's whole scale, as reported
        self.plots["bleu"].enableAutoRange(y=False)
        self._pinned: set[str] = set()  # plots whose x range _fit_lone_points set
        self.restyle()

    def clear_data(self) -> None:
        for xs, ys in self.data.values():
            xs.clear()
            ys.clear()
        self.redraw()

    def _put(self, key: str, step: int, value: float | None) -> None:
        if value is None or not math.isfinite(value):
            return
        xs, ys = self.data[key]
        xs.append(step)
        ys.append(value)

    def add(self, ev) -> None:
        """Record one Progress event (kinds ``step`` and ``eval``)."""
        if ev.kind == "step":
            for key in ("loss", "perplexity", "lr", "grad_norm", "tokens_per_second"):
                self._put(key, ev.step, getattr(ev, key))
        elif ev.kind == "eval":
            self._put("val_loss", ev.step, ev.val_loss)
            self._put("val_perplexity", ev.step, ev.perplexity)
            self._put("val_bleu", ev.step, ev.val_bleu)

    def redraw(self) -> None:
        for key, (xs, ys) in self.data.items():
            self.curves[key].setData(np.asarray(xs, float), np.asarray(ys, float))
        lr = self.data["lr"][1]
        if lr:  # from 0, so a constant or decaying rate reads as such
            self.plots["lr"].setYRange(0.0, 1.15 * max(lr), padding=0)
        self._fit_lone_points()

    def _fit_lone_points(self) -> None:
        """A plot whose points all sit at one step (the evaluation before training, while
        training runs on) spans the steps run so far, not ±0.5 around its point; from its second
        step on it ranges by itself again."""
        last = max((xs[-1] for xs, _ in self.data.values() if xs), default=0)
        for name, (_, _, series, _) in PLOTS.items():
            ends: set[float] = set()  # each series' steps ascend: its first and last suffice
            for key, _ in series:
                xs = self.data[key][0]
                if xs:
                    ends.update((xs[0], xs[-1]))
            p = self.plots[name]
            if len(ends) == 1 and last > min(ends):
                p.setXRange(min(ends), last, padding=0.02)
                self._pinned.add(name)
            elif name in self._pinned:
                p.enableAutoRange(x=True)
                self._pinned.discard(name)

    def points(self, key: str) -> np.ndarray:
        """The (N, 2) points a curve shows (as drawn, before any log scaling)."""
        x, y = self.curves[key].getOriginalDataset()
        if x is None:
            return np.zeros((0, 2))
        return np.stack([x, y], axis=1)

    def restyle(self) -> None:
        self.setBackground(theme.color("plot_bg"))
        for p in self.plots.values():
            theme.style_plot(p)


class AttentionReplay(QWidget):
    """The probe sentence's attention (target × source) at each evaluation, with a slider that
    replays the run: random → an alignment emerges → sharp."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.probes: list = []
        self.view = pg.GraphicsLayoutWidget()
        self.plot = self.view.addPlot(title="Probe attention α(target, source)")
        self.plot.invertY(True)
        self.plot.setAspectLocked(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLevels((0.0, 1.0))
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.plot.addItem(self.image)
        self.bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap="viridis", interactive=False)
        self.bar.setImageItem(self.image, insert_in=self.plot)
        plain_colorbar(self.bar)
        self.slider = QLabeledSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setEnabled(False)
        self.slider.setToolTip(
            "Replay the probe's attention from the first evaluation to the last: at first it is "
            "spread at random, then the alignment emerges, then it becomes sharp."
        )
        self.step_label = QLabel("No evaluation yet")
        self.step_label.setWordWrap(True)
        self.entropy_label = QLabel("")
        self.entropy_label.setObjectName("entropy")
        self.entropy_label.setToolTip(
            "Mean entropy of the attention rows, in nats: log(S) when attention is uniform over "
            "the S source pieces, 0 when each target word looks at exactly one source word."
        )
        self.output_label = QLabel("")
        self.output_label.setWordWrap(True)
        self.setMinimumWidth(340)
        self.output_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        info = QVBoxLayout()
        info.addWidget(self.step_label)
        info.addWidget(self.entropy_label)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.slider)
        lay.addLayout(info)
        lay.addWidget(self.output_label)
        self.slider.valueChanged.connect(self.show_index)
        self.shown = None  # the ProbeMap drawn
        self.view.installEventFilter(self)  # a new size may fit the pieces, or no longer
        self.clear_data()
        self.restyle()

    def clear_data(self) -> None:
        self.probes = []
        self.slider.setRange(0, 0)
        self.slider.setEnabled(False)
        self.image.clear()
        for name in ("bottom", "left"):
            self.plot.getAxis(name).setTicks([[]])
        self.step_label.setText("No evaluation yet")
        self.entropy_label.setText("")
        self.output_label.setText("")

    def add(self, probe) -> None:
        """Append one evaluation's probe; follow it when the slider was at the latest one."""
        if probe is None:
            return
        follow = not self.probes or self.slider.value() == len(self.probes) - 1
        self.probes.append(probe)
        self.slider.setEnabled(True)
        self.slider.setRange(0, len(self.probes) - 1)
        if follow:
            if self.slider.value() == len(self.probes) - 1:
                self.show_index(len(self.probes) - 1)
            else:
                self.slider.setValue(len(self.probes) - 1)

    def eventFilter(self, obj, event) -> bool:
        if obj is self.view and event.type() == QEvent.Type.Resize and self.probes:
            self.show_index(self.slider.value())
        return False

    def current(self):
        return self.probes[self.slider.value()] if self.probes else None

    def show_index(self, i: int) -> None:
        if not 0 <= i < len(self.probes):
            return
        p = self.probes[i]
        n = len(self.probes)
        self.step_label.setText(f"Evaluation {i + 1} of {n} · step {p.step}")
        self.step_label.setToolTip("")
        self.output_label.setText(f"Greedy output: {p.output}")
        if p.attention is None:
            self.image.clear()
            self.entropy_label.setText("no attention (the model has none)")
            return
        # the cells' room: the view less its axes, colour bar and title (not the plot's own
        # box, whose size follows the labels drawn: deciding on it could swing back and forth)
        room = (self.view.width() - 150, self.view.height() - 90)
        min_cell = MIN_CELL_PX * theme.signals().scale  # projector fonts need larger cells
        m = probe_map(p, *room, min_cell)  # per word when the pieces do not fit
        self.shown = m
        a = m.attention  # (T, S), or (target words, source words)
        self.image.setImage(a, levels=(0.0, 1.0), autoLevels=False)
        self.image.setRect(0, 0, a.shape[1], a.shape[0])
        self.plot.setRange(xRange=(0, a.shape[1]), yRange=(0, a.shape[0]), padding=0)
        bottom, left = self.plot.getAxis("bottom"), self.plot.getAxis("left")
        set_ticks(bottom, m.source_labels)  # staggered on two rows when crowded
        set_ticks(left, m.target_labels)
        if m.merged:
            s, t = m.pieces
            self.step_label.setText(f"{self.step_label.text()} · per word ({s} × {t} pieces)")
            self.step_label.setToolTip(
                f"The probe's {s} source and {t} target pieces are too many to show one by one "
                "at this size: each source word's column sums its pieces' attention, each target "
                "word's row is the mean of its pieces' rows. A larger window shows the pieces."
            )
        uniform = math.log(max(2, p.attention.shape[1]))
        ent = "n/a" if p.entropy is None else f"{p.entropy:.2f}"
        self.entropy_label.setText(f"mean entropy {ent} nats (uniform {uniform:.2f})")

    def restyle(self) -> None:
        self.view.setBackground(theme.color("plot_bg"))
        theme.style_plot(self.plot)
        if self.probes:  # another font scale: the pieces may fit, or no longer
            self.show_index(self.slider.value())
