"""Hidden states: encoder states h_i, the decoder state s_t over time, and its PCA trajectory."""

from __future__ import annotations

import numpy as np
from PySide6 import QtGui, QtWidgets

from explorer.gui.step.common import ACCENT, FONT_PT, Heatmap, make_plot, short, symmetric_levels
from explorer.gui.step.placement import place_labels
from explorer.gui.step.readout import marked
from explorer.gui.widgets.empty import EmptyNote
from explorer.gui.widgets.plotting import pg
from explorer.seq2seq.decoding.trace import Trace


def place_beside(vb: pg.ViewBox, points: np.ndarray, labels: list[pg.TextItem]) -> np.ndarray:
    """Put each label (anchored at its top left) beside its point of ``points`` (N, 2, data
    units) in ``vb`` with no two overlapping, in pixels at the view's present size: the boxes
    placed, (N, 4) pixels, or none while the view has no size."""
    (x0, _), (_, y1) = vb.viewRange()
    sx, sy = vb.viewPixelSize()  # data units per pixel
    if not (sx > 0 and sy > 0) or not labels:
        return np.zeros((0, 4))
    px = np.column_stack([(points[:, 0] - x0) / sx, (y1 - points[:, 1]) / sy])
    sizes = np.array(
        [(label.textItem.boundingRect().width(), label.textItem.boundingRect().height())
         for label in labels]
    )  # fmt: skip
    inside = (0.0, 0.0, vb.width(), vb.height())  # the labels stay in view where they can
    boxes = place_labels(px, sizes, inside=inside)
    for label, (bx, by, _, _) in zip(labels, boxes):
        label.setPos(x0 + bx * sx, y1 - by * sy)
    return boxes


def pca_2d(x: np.ndarray) -> np.ndarray:
    """(T, D) → (T, 2): the rows projected on their two main directions (numpy SVD)."""
    x = np.asarray(x, dtype=np.float64)
    centred = x - x.mean(axis=0, keepdims=True)
    if x.shape[0] < 2:
        return np.zeros((x.shape[0], 2))
    _, _, vt = np.linalg.svd(centred, full_matrices=False)  # vt (min(T, D), D)
    out = centred @ vt[:2].T  # (T, ≤2)
    if out.shape[1] < 2:
        out = np.pad(out, ((0, 0), (0, 2 - out.shape[1])))
    return out


class HiddenStatesView(QtWidgets.QWidget):
    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.empty = EmptyNote(self)
        self.trace: Trace | None = None
        self.encoder = Heatmap(
            "Encoder states h_i", cmap="CET-D1", step_axis="col", x_label="source", y_label="unit"
        )
        self.encoder.setToolTip(
            "Every encoder state h_i (a column per source piece): what attention can look back at."
        )
        self.decoder = Heatmap(
            "Decoder state s_t", cmap="CET-D1", step_axis="col", x_label="step", y_label="unit"
        )
        self.decoder.setToolTip("The decoder's hidden state after each step (a column per step).")
        self.pca = make_plot("Decoder trajectory (PCA)")
        self.pca.setToolTip(
            "The decoder states projected on their two main directions: how the state moves as "
            "each word is written, up to the current step."
        )
        self.path = pg.PlotDataItem(
            pen=pg.mkPen((120, 120, 120), width=2),
            symbol="o",
            symbolSize=7,
            symbolBrush=(60, 110, 200),
        )
        # The current step's point: a 16-pixel disc that Qt moves. A scatter item told the view
        # its bounds had changed on every step, and the view worked out its auto range again
        # over every label of the trajectory, then repainted all of them.
        self.current = QtWidgets.QGraphicsEllipseItem(-8, -8, 16, 16)
        self.current.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.current.setBrush(pg.mkBrush(ACCENT))
        self.current.setPen(pg.mkPen("k"))
        self.current.setZValue(10)
        self.current.setVisible(False)
        vb = self.pca.getPlotItem().getViewBox()
        vb.addItem(self.path, ignoreBounds=True)  # the view's range is set once per trace
        vb.addItem(self.current, ignoreBounds=True)
        vb.sigResized.connect(lambda _vb: self.place())
        self.t = 0
        self.labels: list[pg.TextItem] = []
        self.marks: tuple[str, ...] | None = None  # as AlignmentView.marks
        self.boxes = np.zeros((0, 4))  # the labels' places in pixels (x0, y0, x1, y1), y down
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.encoder, 1)
        lay.addWidget(self.decoder, 1)
        lay.addWidget(self.pca, 1)
        self.points = np.zeros((0, 2))
        self.font = QtGui.QFont()
        self.font.setPointSizeF(FONT_PT)

    def set_font_scale(self, scale: float) -> None:
        self.font.setPointSizeF(FONT_PT * scale)
        for label in self.labels:
            label.setFont(self.font)
        self.place()

    def set_trace(self, trace: Trace | None) -> None:
        self.trace = trace
        for item in self.labels:
            self.pca.getPlotItem().getViewBox().removeItem(item)
        self.labels = []
        if trace is None or not trace.steps:
            self.points = np.zeros((0, 2))
            self.path.setData([], [])
            self.current.setVisible(False)
            return
        enc = trace.encoder_states.T  # (D_enc, S)
        dec = trace.hidden_matrix().T  # (D, T)
        self.encoder.set_matrix(
            enc,
            None,
            marked([short(p, 6) for p in trace.src_pieces], self.marks),
            symmetric_levels(enc),
        )
        self.decoder.set_matrix(
            dec, None, [short(p, 6) for p in trace.pieces], symmetric_levels(dec)
        )
        self.points = pca_2d(dec.T)  # (T, 2)
        for piece in trace.pieces:
            label = pg.TextItem(short(piece, 8), color="k", anchor=(0, 0))
            label.setFont(self.font)
            self.pca.getPlotItem().getViewBox().addItem(label, ignoreBounds=True)
            self.labels.append(label)
        # Room round the path for the labels (most sit up and to the right of their points),
        # or the last words were cut at the plot's edge.
        lo, hi = self.points.min(axis=0), self.points.max(axis=0)
        span = np.maximum(hi - lo, 1e-6)
        self.pca.getPlotItem().getViewBox().setRange(
            xRange=(lo[0] - 0.06 * span[0], hi[0] + 0.22 * span[0]),
            yRange=(lo[1] - 0.08 * span[1], hi[1] + 0.16 * span[1]),
            padding=0,
        )
        self.place()
        self.set_step(self.t)

    def place(self) -> None:
        """Put every label beside its point with no two overlapping (in pixels at the view's
        present size; again when it is resized). Labels of later steps keep their places."""
        if not self.labels:
            return
        self.boxes = place_beside(self.pca.getPlotItem().getViewBox(), self.points, self.labels)

    def set_step(self, t: int) -> None:
        """Steps up to t: the path so far, their labels, t's point (later steps are not shown,
        as in the heatmap beside it)."""
        self.t = t
        self.decoder.set_step(t)
        if self.points.shape[0]:
            t = min(t, self.points.shape[0] - 1)
            self.path.setData(self.points[: t + 1, 0], self.points[: t + 1, 1])
            for i, label in enumerate(self.labels):
                label.setVisible(i <= t)
            self.current.setPos(float(self.points[t, 0]), float(self.points[t, 1]))
            self.current.setVisible(True)
