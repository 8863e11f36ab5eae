"""The beam-search tree drawn with a handful of pyqtgraph items, greedy path over it.

One ScatterPlotItem holds every node, a few PlotCurveItems (connect="pairs") hold the edges by
style, and one painter item writes the labels of the nodes inside the view, only when the zoom
leaves room for them. So a tree of beam 16 over 40 steps stays a few items, not thousands.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPen
from PySide6.QtWidgets import QLabel

from explorer.gui.widgets import theme
from explorer.gui.widgets.plotting import pg
from explorer.seq2seq.decoding.trace import BeamTree, Fate, Trace
from explorer.seq2seq.decoding.treelabels import NODE, PAD, TreeLabels, label_tree
from explorer.seq2seq.decoding.treelayout import (
    FATE_CODES,
    ROOT_CODE,
    GreedyOverlay,
    TreeLayout,
    greedy_node_ids,
    greedy_overlay,
    layout_tree,
)

# Colours by FATE_CODES value: kept, pruned, finished, chosen, root.
FATE_COLOURS = ("#3b75af", "#c4c4c4", "#ef8636", "#2ca02c", "#555555")
FATE_SIZES = np.array([13.0, 8.0, 15.0, 20.0, 13.0])
GREEDY_COLOUR = "#c2187a"
SELECT_COLOUR = "#f2b600"
EMPTY = "Type a source sentence above (or pick a lecture example):\nthe search runs as you type."
FADED = QColor(FATE_COLOURS[1])
FATE_NAMES = {v: k.value for k, v in FATE_CODES.items()} | {ROOT_CODE: "start"}
ZOOM_IN = 4.0  # the most the view zooms in, relative to the labels' own spacing


def result_parts(result: Any) -> tuple[BeamTree, Trace | None, int | None]:
    """(tree, greedy trace, divergence step) from a BeamResult or a bare BeamTree."""
    if isinstance(result, BeamTree):
        return result, result.greedy, result.divergence
    tree = result.tree
    greedy = getattr(result, "greedy", None) or tree.greedy
    div = getattr(result, "divergence", None)
    return tree, greedy, tree.divergence if div is None else div


def densest_centre(rows: np.ndarray, span: float) -> float:
    """The centre of a window ``span`` rows tall that holds the most of ``rows``."""
    r = np.sort(np.asarray(rows, dtype=float))
    inside = np.searchsorted(r, r + span * 0.8, side="right") - np.arange(len(r))
    i = int(np.argmax(inside))  # the window starting at r[i] holds the most
    return 0.5 * (r[i] + r[i + inside[i] - 1])


class _Labels(pg.GraphicsObject):
    """Paints a :class:`TreeLabels` placement: each node's token over its score, the "+n" of
    folded candidates beside it, each edge's log-probability. Boxes keep their size in pixels
    at any zoom (the view never zooms out past the spacing they were placed for), so no word is
    shortened and no two labels meet."""

    def __init__(self) -> None:
        super().__init__()
        self.placed: TreeLabels | None = None
        self.colours: list[QColor] = []
        self._bounds = QRectF()
        self.font = QFont()
        self.font.setPointSizeF(11)
        self.painted = 0  # node labels painted by the last paint (for tests)
        self.badges_painted = 0  # "+n" notes painted by the last paint
        self.edges_painted = 0  # edge log-probabilities painted by the last paint
        self.edge_boxes: list[QRectF] = []  # where, in the view's pixels

    def small(self) -> QFont:
        f = QFont(self.font)
        f.setPointSizeF(self.font.pointSizeF() * 0.8)
        return f

    def measure(self, text: str, small: bool) -> tuple[float, float]:
        fm = QFontMetricsF(self.small() if small else self.font)
        return fm.horizontalAdvance(text), fm.height()

    def set_labels(self, placed: TreeLabels | None, colours: list[QColor]) -> None:
        self.prepareGeometryChange()
        self.placed, self.colours = placed, list(colours)
        if placed is not None and len(placed):
            x, y = placed.x, placed.y
            self._bounds = QRectF(
                float(x.min()) - 1, float(y.min()) - 1, float(np.ptp(x)) + 2, float(np.ptp(y)) + 2
            )
        else:
            self._bounds = QRectF()
        self.update()

    def boundingRect(self) -> QRectF:
        return self._bounds

    def _node(self, p, i: int, anchor: QPointF, small: QFont) -> None:
        """The token over the score in a box round the node; "+n" on the box's corner."""
        token, score = self.placed.lines[i]
        badge = self.placed.badge[i]
        fm, fs = QFontMetricsF(self.font), QFontMetricsF(small)
        w = max(fm.horizontalAdvance(token), fs.horizontalAdvance(score)) + 2 * PAD
        h = fm.height() + fs.height() + PAD
        box = QRectF(anchor.x() - w / 2, anchor.y() - h / 2, w, h)
        colour = self.colours[i]
        p.setPen(QPen(colour, 2))
        p.setBrush(QColor(255, 255, 255, 240))
        p.drawRoundedRect(box, 4, 4)
        p.setFont(self.font)
        p.setPen(QColor("#999999") if colour == FADED else QColor("#111111"))
        top = box.top() + PAD / 2
        p.drawText(QRectF(box.left(), top, w, fm.height()), Qt.AlignCenter, token)
        p.setFont(small)
        p.setPen(QColor("#555555"))
        p.drawText(QRectF(box.left(), top + fm.height(), w, fs.height()), Qt.AlignCenter, score)
        if badge:
            wb = fs.horizontalAdvance(badge)
            tag = QRectF(box.right() - wb - PAD, box.top() - fs.height(), wb + PAD, fs.height())
            p.setPen(Qt.NoPen)
            p.setBrush(QColor(235, 235, 235, 240))
            p.drawRoundedRect(tag, 3, 3)
            p.setPen(QColor("#555555"))
            p.drawText(tag, Qt.AlignCenter, badge)
            self.badges_painted += 1
        self.painted += 1

    def paint(self, p, *args) -> None:
        self.painted = self.badges_painted = self.edges_painted = 0
        self.edge_boxes = []
        placed, view = self.placed, self.viewRect()
        if placed is None or not len(placed) or view is None:
            return
        x, y = placed.x, placed.y
        inside = (
            placed.shown
            & (x >= view.left() - 1)
            & (x <= view.right() + 1)
            & (y >= view.top() - 1)
            & (y <= view.bottom() + 1)
        )
        tr = p.transform()
        p.save()
        p.resetTransform()
        small = self.small()
        edge_bg, edge_fg = QColor(theme.color("plot_bg")), QColor(theme.color("muted"))
        edge_bg.setAlpha(220)  # the edge beneath still shows through, faintly
        for i in np.flatnonzero(inside):
            pt = tr.map(QPointF(x[i], y[i]))
            if placed.kind[i] == NODE:
                self._node(p, int(i), pt, small)
            else:
                left, top, right, bottom = placed.box[i]
                r = QRectF(pt.x() + left, pt.y() + top, right - left, bottom - top)
                p.setPen(Qt.NoPen)
                p.setBrush(edge_bg)
                p.drawRect(r)
                p.setFont(small)
                p.setPen(edge_fg)
                p.drawText(r, Qt.AlignCenter, placed.lines[i][0])
                self.edges_painted += 1
                self.edge_boxes.append(r)
        p.restore()


class BeamTreeView(pg.PlotWidget):
    """Pan and zoom with the mouse; click a node to select its path."""

    node_clicked = Signal(int)  # tree node id
    greedy_clicked = Signal()  # a node of the greedy chain outside the tree

    def __init__(self, parent=None) -> None:
        super().__init__(parent=parent, background="w")
        self.tree: BeamTree | None = None
        self.greedy: Trace | None = None
        self.divergence: int | None = None
        self.layout: TreeLayout | None = None
        self.overlay: GreedyOverlay | None = None
        self.selected: int | None = None
        self.show_pruned = False
        self.show_dead = False
        self.placed: TreeLabels | None = None
        self.auto_view = True  # until the user pans or zooms, a resize re-fits the view
        pi = self.getPlotItem()
        pi.hideAxis("left")
        pi.setLabel("bottom", "target position (tokens emitted)")
        pi.getViewBox().invertY(True)
        pi.setMenuEnabled(False)
        pi.hideButtons()
        self._build_items()
        self._brushes = np.array([pg.mkBrush(c) for c in FATE_COLOURS], dtype=object)
        self._pens = np.array([pg.mkPen("w", width=1)] * 5, dtype=object)
        self._colours = [QColor(c) for c in FATE_COLOURS]
        self.nodes.sigClicked.connect(self._on_click)
        self.greedy_nodes.sigClicked.connect(lambda *_: self.greedy_clicked.emit())
        vb = pi.getViewBox()
        vb.sigResized.connect(self._on_resized)
        vb.sigRangeChangedManually.connect(self._on_manual_range)
        self.set_font_scale(1.0)
        self.clear_tree()

    def _build_items(self) -> None:
        """The plot items, made once; a new tree only feeds them new arrays."""
        pen = pg.mkPen
        self.pruned_edges = pg.PlotCurveItem(connect="pairs", pen=pen("#d6d6d6", width=1))
        self.kept_edges = pg.PlotCurveItem(connect="pairs", pen=pen("#7f9fc0", width=1.5))
        self.chosen_edges = pg.PlotCurveItem(connect="pairs", pen=pen(FATE_COLOURS[3], width=4))
        self.selected_edges = pg.PlotCurveItem(connect="pairs", pen=pen(SELECT_COLOUR, width=7))
        self.greedy_line = pg.PlotCurveItem(
            pen=pen(GREEDY_COLOUR, width=3, style=Qt.DashLine), connect="all"
        )
        self.nodes = pg.ScatterPlotItem(
            pxMode=True,
            hoverable=True,
            tip=self._tip,
            hoverPen=pen("k", width=2),
        )
        self.greedy_nodes = pg.ScatterPlotItem(
            pxMode=True, symbol="d", size=16, brush=pg.mkBrush(GREEDY_COLOUR), pen=pen("w")
        )
        self.labels = _Labels()
        self.divergence_line = pg.InfiniteLine(
            angle=90, pen=pen("#d62728", width=2, style=Qt.DotLine), movable=False
        )
        # Above the tree, not on it (where it covered the start of the tree): the panel
        # places this label, which says where greedy leaves the beam, with both scores.
        self.divergence_text = QLabel("")
        self.divergence_text.setStyleSheet("color: #d62728;")
        self.divergence_text.setWordWrap(True)
        for item in (
            self.selected_edges,
            self.pruned_edges,
            self.kept_edges,
            self.chosen_edges,
            self.greedy_line,
            self.nodes,
            self.greedy_nodes,
            self.labels,
            self.divergence_line,
        ):
            self.addItem(item)
        self.empty_text = pg.TextItem(EMPTY, color="#777777", anchor=(0.5, 0.5))
        self.addItem(self.empty_text)
        self.divergence_line.setZValue(-5)
        self.labels.setZValue(10)

    # ---------------------------------------------------------------- public
    def set_font_scale(self, scale: float) -> None:
        self.labels.font.setPointSizeF(11 * scale)
        f = QFont()
        f.setPointSizeF(11 * scale)
        self.empty_text.setFont(f)
        axis = self.getPlotItem().getAxis("bottom")
        axis.setStyle(tickFont=f)
        axis.label.setFont(f)
        if self.tree is not None:  # boxes are measured in the new font and placed again
            self._redraw()
            self.reset_view()
        self.labels.update()

    def clear_tree(self) -> None:
        self.tree = self.greedy = self.layout = self.overlay = None
        self.divergence = self.selected = None
        for item in (self.pruned_edges, self.kept_edges, self.chosen_edges, self.selected_edges):
            item.setData(x=np.zeros(0), y=np.zeros(0))
        self.greedy_line.setData(x=np.zeros(0), y=np.zeros(0))
        self.nodes.setData(x=[], y=[])
        self.greedy_nodes.setData(x=[], y=[])
        self.placed = None
        self.column_x = np.zeros(0)
        self.labels.set_labels(None, [])
        self.getPlotItem().getAxis("bottom").setTicks(None)
        self._apply_limits()
        self.divergence_line.hide()
        self.divergence_text.setText("")
        # Nothing to lay out: a sentence of what to do, no axis with nothing on it.
        pi = self.getPlotItem()
        pi.hideAxis("bottom")
        self.empty_text.setPos(0, 0)
        self.empty_text.show()
        pi.getViewBox().setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)

    def draw_tree(self, result: Any) -> None:
        """Lay out and draw a BeamResult (or a BeamTree with its greedy trace)."""
        tree, greedy, divergence = result_parts(result)
        self.tree, self.greedy, self.divergence = tree, greedy, divergence
        if self.selected is not None and self.selected >= len(tree.nodes):
            self.selected = None
        self.empty_text.hide()
        self.getPlotItem().showAxis("bottom")
        self._redraw()
        self.reset_view()

    def set_show_pruned(self, show: bool) -> None:
        """Draw every candidate (pruned and dropped ones too), or only finished paths."""
        self.show_pruned = bool(show)
        if self.tree is not None:
            self._redraw()
            self.reset_view()

    def set_show_dead(self, show: bool) -> None:
        """Draw the hypotheses the beam kept for a while and dropped, or fold them."""
        self.show_dead = bool(show)
        if self.tree is not None:
            self._redraw()
            self.reset_view()

    def select(self, node_id: int | None) -> None:
        """Highlight the path from the root to ``node_id`` (None clears)."""
        self.selected = node_id
        if self.tree is None:
            return
        if node_id is not None and self.layout is not None and self.layout.row_of[node_id] < 0:
            self._redraw()
            return
        self._draw_selection()

    def node_at_row(self, row: int) -> int:
        return int(self.layout.ids[row])

    def node_position(self, node_id: int) -> tuple[float, float]:
        r = self.layout.row_of[node_id]
        return float(self.layout.x[r]), float(self.layout.y[r])

    # ---------------------------------------------------------------- drawing
    def _redraw(self) -> None:
        tree = self.tree
        always: list[int] = []
        if self.greedy is not None:
            always.extend(int(i) for i in greedy_node_ids(tree, self.greedy.tokens) if i >= 0)
        if self.selected is not None:
            always.append(self.selected)
        lay = layout_tree(
            tree,
            show_pruned=self.show_pruned,
            show_dead=self.show_dead or self.show_pruned,
            always_show=tuple(always),
        )
        ov = greedy_overlay(tree, self.greedy, lay) if self.greedy is not None else None
        self.layout, self.overlay = lay, ov
        self._draw_labels()  # places the labels, which decide where each step column goes
        cx = self.column_x = self.placed.column_x
        lay = self.layout = replace(lay, x=cx[np.round(lay.x).astype(np.int64)])
        if ov is not None:
            self.overlay = replace(ov, x=cx[np.round(ov.x).astype(np.int64)])
        self.getPlotItem().getAxis("bottom").setTicks([[(x, str(s)) for s, x in enumerate(cx)]])
        codes = lay.fate.astype(np.int64)
        self.nodes.setData(
            x=lay.x,
            y=lay.y,
            brush=self._brushes[codes],
            pen=self._pens[codes],
            size=FATE_SIZES[codes],
            data=lay.ids,
        )
        child_fate = codes[lay.edges[:, 1]]
        pruned = child_fate == FATE_CODES[Fate.PRUNED]
        self.pruned_edges.setData(*lay.segments(np.flatnonzero(pruned)))
        self.kept_edges.setData(*lay.segments(np.flatnonzero(~pruned)))
        self._draw_chosen()
        self._draw_greedy()
        self._draw_selection()

    def _path_segments(self, node_id: int) -> tuple[np.ndarray, np.ndarray]:
        lay = self.layout
        ids = [0] + [n.id for n in self.tree.path(node_id)]
        rows = lay.row_of[np.array(ids)]
        rows = rows[rows >= 0]
        xs = np.repeat(lay.x[rows], 2)[1:-1]
        ys = np.repeat(lay.y[rows], 2)[1:-1]
        return xs, ys

    def _draw_chosen(self) -> None:
        chosen = self.tree.chosen
        if chosen is None:
            self.chosen_edges.setData(x=np.zeros(0), y=np.zeros(0))
        else:
            self.chosen_edges.setData(*self._path_segments(chosen.id))

    def _draw_selection(self) -> None:
        if self.selected is None or self.layout is None:
            self.selected_edges.setData(x=np.zeros(0), y=np.zeros(0))
        else:
            self.selected_edges.setData(*self._path_segments(self.selected))

    def _draw_labels(self) -> None:
        """Place every label (the tree's, then greedy's own chain) and hand the placement to
        the painter; the view's zoom limits follow its spacing."""
        lay, ov = self.layout, self.overlay
        self.placed = label_tree(self.tree, lay, ov, self.labels.measure)
        n_greedy = int(np.sum(self.placed.kind == NODE)) - len(lay)
        colours = [self._colours[c] for c in lay.fate] + [QColor(GREEDY_COLOUR)] * n_greedy
        self.labels.set_labels(self.placed, colours)
        self._apply_limits()

    # ---------------------------------------------------------------- zoom
    def _apply_limits(self) -> None:
        """The view may zoom in (up to ZOOM_IN times), never out past the labels' spacing."""
        vb = self.getPlotItem().getViewBox()
        if self.placed is None:
            vb.setLimits(maxXRange=None, maxYRange=None, minXRange=None, minYRange=None)
            return
        w, h = max(vb.width(), 1.0), max(vb.height(), 1.0)
        sx, sy = w / self.placed.px_step, h / self.placed.px_row
        vb.setLimits(maxXRange=sx, maxYRange=sy, minXRange=sx / ZOOM_IN, minYRange=sy / ZOOM_IN)

    def spans(self) -> tuple[float, float]:
        """How many steps and rows the view holds at the labels' own spacing."""
        vb = self.getPlotItem().getViewBox()
        return (
            max(vb.width(), 1.0) / self.placed.px_step,
            max(vb.height(), 1.0) / self.placed.px_row,
        )

    def reset_view(self) -> None:
        """Back to the labels' own size, from the start symbol, the chosen path in the middle."""
        self.auto_view = True
        if self.layout is None or self.placed is None:
            return
        self._apply_limits()
        span_x, span_y = self.spans()
        x0 = -0.6
        ys = self.layout.y
        if self.overlay is not None:
            ys = np.concatenate([ys, self.overlay.y])
        top, bottom = float(ys.min()) - 0.7, float(ys.max()) + 0.7
        if bottom - top <= span_y:
            yc = 0.5 * (top + bottom)
        else:  # as much of the chosen (else greedy) path as the view's first steps can hold
            yc = densest_centre(self._path_rows(x0 + span_x), span_y)
        vb = self.getPlotItem().getViewBox()
        vb.setRange(xRange=(x0, x0 + span_x), yRange=(yc - span_y / 2, yc + span_y / 2), padding=0)

    def _path_rows(self, x_end: float) -> np.ndarray:
        lay, tree = self.layout, self.tree
        if tree.chosen is not None:
            rows = lay.row_of[[0] + [n.id for n in tree.path(tree.chosen.id)]]
            rows = rows[rows >= 0]
            xs, ys = lay.x[rows], lay.y[rows]
        elif self.overlay is not None:
            xs, ys = self.overlay.x, self.overlay.y
        else:
            xs, ys = lay.x, lay.y
        return ys[xs <= x_end] if np.any(xs <= x_end) else ys

    def zoom(self, factor: float) -> None:
        """Zoom about the view's centre: factor > 1 zooms in (labels keep their size)."""
        self.auto_view = False
        self.getPlotItem().getViewBox().scaleBy(s=(1 / factor, 1 / factor))

    def _on_resized(self, *_: Any) -> None:
        self._apply_limits()
        if self.auto_view:
            self.reset_view()

    def _on_manual_range(self, *_: Any) -> None:
        self.auto_view = False

    def _draw_greedy(self) -> None:
        self.divergence_line.hide()
        self.divergence_text.setText("")
        ov = self.overlay
        if ov is None:
            self.greedy_line.setData(x=np.zeros(0), y=np.zeros(0))
            self.greedy_nodes.setData(x=[], y=[])
            return
        self.greedy_line.setData(ov.x, ov.y)
        off = np.flatnonzero(ov.off_tree) + 1
        self.greedy_nodes.setData(
            x=ov.x[off],
            y=ov.y[off],
            data=off - 1,
        )
        d = self.divergence
        if d is None:
            return
        chosen = self.tree.chosen
        beam_path = self.tree.path(chosen.id) if chosen is not None else []
        g = f"{ov.scores[d]:.2f}" if d < len(ov.scores) else "—"
        b = f"{beam_path[d].score:.2f}" if d < len(beam_path) else "—"
        self.divergence_line.setValue(float(self.column_x[d + 1]))
        note = f"step {d + 1}: greedy leaves the beam (greedy S = {g}, beam S = {b})"
        self.divergence_text.setText(note.replace("-", "−"))
        self.divergence_line.show()

    # ---------------------------------------------------------------- events
    def _tip(self, x: float, y: float, data: Any) -> str:
        if self.tree is None or data is None:
            return ""
        n = self.tree.nodes[int(data)]
        more = ""
        if self.layout is not None:
            row = int(self.layout.row_of[n.id])
            hidden = int(self.layout.hidden_pruned[row]) if row >= 0 else 0
            folded = int(self.layout.folded[row]) if row >= 0 else 0
            if hidden:
                more += f"\n{hidden} pruned candidates after it"
            if folded:
                more += (
                    f"\n+{folded}: candidates folded into this node (pruned, or kept and "
                    "dropped later); tick 'show dropped' or 'show pruned' to see them"
                )
        if n.parent < 0:
            return "start symbol <s>" + more
        return (
            f"{n.piece!r}  (step {n.step + 1}, {n.fate.value})\n"
            f"log p = {n.logprob:.3f}\nscore S = {n.score:.3f}\n"
            f"normalised = {n.normalized_score:.3f}\nrank at step = {n.rank}{more}"
        )

    def _on_click(self, _item, points, _ev=None) -> None:
        if len(points):
            self.node_clicked.emit(int(points[0].data()))
