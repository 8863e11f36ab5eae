"""The beam-search tree drawn with a handful of pyqtgraph items, greedy path over it.

One ScatterPlotItem holds every node, a few PlotCurveItems (connect="pairs") hold the edges by
style, and one painter item writes the labels of the nodes inside the view, only when the zoom
leaves room for them. So a tree of beam 16 over 40 steps stays a few items, not thousands.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPen

from explorer.gui.widgets.plotting import pg
from explorer.seq2seq.decoding.trace import BeamTree, Fate, Trace
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


def result_parts(result: Any) -> tuple[BeamTree, Trace | None, int | None]:
    """(tree, greedy trace, divergence step) from a BeamResult or a bare BeamTree."""
    if isinstance(result, BeamTree):
        return result, result.greedy, result.divergence
    tree = result.tree
    greedy = getattr(result, "greedy", None) or tree.greedy
    div = getattr(result, "divergence", None)
    return tree, greedy, tree.divergence if div is None else div


class _Labels(pg.GraphicsObject):
    """Token pieces at node positions and log-probabilities at edge midpoints, painted only for
    what is inside the view and only at zoom levels where they do not overlap."""

    def __init__(self) -> None:
        super().__init__()
        self._nodes: tuple[np.ndarray, np.ndarray, list[str], list[QColor]] = (
            np.zeros(0),
            np.zeros(0),
            [],
            [],
        )
        self._edges: tuple[np.ndarray, np.ndarray, list[str]] = (np.zeros(0), np.zeros(0), [])
        self._bounds = QRectF()
        self._badges: list[str] = []
        self.font = QFont()
        self.font.setPointSizeF(11)
        self.painted = 0  # node labels painted by the last paint (for tests)
        self.badges_painted = 0  # "+N pruned" notes painted by the last paint

    def set_labels(self, x, y, texts, colours, ex, ey, etexts, badges=None) -> None:
        self.prepareGeometryChange()
        self._nodes = (np.asarray(x, float), np.asarray(y, float), list(texts), list(colours))
        self._badges = [""] * len(texts) if badges is None else list(badges)
        self._edges = (np.asarray(ex, float), np.asarray(ey, float), list(etexts))
        if len(x):
            self._bounds = QRectF(
                float(np.min(x)) - 1, float(np.min(y)) - 1, float(np.ptp(x)) + 3, np.ptp(y) + 2
            )
        else:
            self._bounds = QRectF()
        self.update()

    def boundingRect(self) -> QRectF:
        return self._bounds

    def _paint_edge_labels(self, p, tr, view, small: QFont) -> None:
        """Each edge's log-probability, where the zoom leaves room for it."""
        ex, ey, etexts = self._edges
        p.setFont(small)
        p.setPen(QColor("#777777"))
        e_in = np.flatnonzero(
            (ex >= view.left())
            & (ex <= view.right())
            & (ey >= view.top() - 1)
            & (ey <= view.bottom() + 1)
        )
        for i in e_in[:4000]:
            pt = tr.map(QPointF(ex[i], ey[i]))
            p.drawText(QRectF(pt.x() - 40, pt.y() - 16, 80, 14), Qt.AlignCenter, etexts[i])
        p.setFont(self.font)

    def paint(self, p, *args) -> None:
        x, y, texts, colours = self._nodes
        self.painted = self.badges_painted = 0
        if not len(x):
            return
        tr = p.transform()
        px_x, px_y = abs(tr.m11()), abs(tr.m22())  # pixels per step, per row
        fm = QFontMetricsF(self.font)
        if px_y < fm.height() * 0.95:
            return
        view = self.viewRect()
        if view is None:
            return
        inside = (
            (x >= view.left() - 1)
            & (x <= view.right() + 1)
            & (y >= view.top() - 1)
            & (y <= view.bottom() + 1)
        )
        rows = np.flatnonzero(inside)
        if len(rows) > 2000:
            return
        p.save()
        p.resetTransform()
        p.setFont(self.font)
        max_w = px_x * 0.95
        small = QFont(self.font)
        small.setPointSizeF(self.font.pointSizeF() * 0.8)
        if px_x > fm.horizontalAdvance("−0.00") * 1.1 and px_y > fm.height() * 1.6:
            self._paint_edge_labels(p, tr, view, small)
        # "+N pruned" under a node only where a row leaves room for it (else it ran into the node
        # below); the count is in the node's tooltip at any zoom.
        badges = px_y > fm.height() * 2.1
        for i in rows:
            pt = tr.map(QPointF(x[i], y[i]))
            text = fm.elidedText(texts[i], Qt.ElideRight, max(max_w, fm.horizontalAdvance("m…")))
            w = fm.horizontalAdvance(text) + 8
            h = fm.height() + 2
            box = QRectF(pt.x() - w / 2, pt.y() - h / 2, w, h)
            p.setPen(QPen(colours[i], 2))
            p.setBrush(QColor(255, 255, 255, 235))
            p.drawRoundedRect(box, 4, 4)
            p.setPen(QColor("#999999") if colours[i] == FADED else QColor("#111111"))
            p.drawText(box, Qt.AlignCenter, text)
            if badges and self._badges[i]:
                p.setFont(small)
                p.setPen(QColor("#888888"))
                below = QPointF(box.left() + 2, box.bottom() + fm.height() * 0.8)
                p.drawText(below, self._badges[i])
                p.setFont(self.font)
                self.badges_painted += 1
            self.painted += 1
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
        self.divergence_text = pg.TextItem(
            color="#d62728", anchor=(0, 0), fill=(255, 255, 255, 220)
        )
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
            self.divergence_text,
        ):
            self.addItem(item)
        self.empty_text = pg.TextItem(EMPTY, color="#777777", anchor=(0.5, 0.5))
        self.addItem(self.empty_text)
        self.divergence_line.setZValue(-5)
        self.divergence_text.setZValue(20)
        self.labels.setZValue(10)

    # ---------------------------------------------------------------- public
    def set_font_scale(self, scale: float) -> None:
        self.labels.font.setPointSizeF(11 * scale)
        f = QFont()
        f.setPointSizeF(11 * scale)
        self.divergence_text.setFont(f)
        self.empty_text.setFont(f)
        axis = self.getPlotItem().getAxis("bottom")
        axis.setStyle(tickFont=f)
        axis.label.setFont(f)
        self.labels.update()

    def clear_tree(self) -> None:
        self.tree = self.greedy = self.layout = self.overlay = None
        self.divergence = self.selected = None
        for item in (self.pruned_edges, self.kept_edges, self.chosen_edges, self.selected_edges):
            item.setData(x=np.zeros(0), y=np.zeros(0))
        self.greedy_line.setData(x=np.zeros(0), y=np.zeros(0))
        self.nodes.setData(x=[], y=[])
        self.greedy_nodes.setData(x=[], y=[])
        self.labels.set_labels([], [], [], [], [], [], [], [])
        self.divergence_line.hide()
        self.divergence_text.hide()
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
        self._fit()

    def _fit(self) -> None:
        vb = self.getPlotItem().getViewBox()
        vb.autoRange(padding=0.04)
        ys = self.layout.y
        if self.overlay is not None:
            ys = np.concatenate([ys, self.overlay.y])
        bottom = 4.0 if self.divergence_text.isVisible() else 0.8
        vb.setRange(
            xRange=(-0.6, float(self.layout.x.max()) + 1.2),
            yRange=(float(ys.min()) - 0.8, float(ys.max()) + bottom),
            padding=0,
        )

    def set_show_pruned(self, show: bool) -> None:
        self.show_pruned = bool(show)
        if self.tree is not None:
            self._redraw()
            self._fit()

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
        lay = layout_tree(tree, show_pruned=self.show_pruned, always_show=tuple(always))
        self.layout = lay
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
        self._draw_labels()
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
        lay, tree = self.layout, self.tree
        nodes = tree.nodes
        texts = [nodes[nid].piece for nid in lay.ids]
        badges = [f"+{k} pruned" if k else "" for k in lay.hidden_pruned]
        colours = [self._colours[c] for c in lay.fate]
        mid_x = 0.5 * (lay.x[lay.edges[:, 0]] + lay.x[lay.edges[:, 1]])
        mid_y = 0.5 * (lay.y[lay.edges[:, 0]] + lay.y[lay.edges[:, 1]])
        etexts = [f"{v:.2f}".replace("-", "−") for v in lay.edge_logprob]
        self.labels.set_labels(lay.x, lay.y, texts, colours, mid_x, mid_y, etexts, badges)

    def _draw_greedy(self) -> None:
        self.overlay = None
        self.divergence_line.hide()
        self.divergence_text.hide()
        if self.greedy is None:
            self.greedy_line.setData(x=np.zeros(0), y=np.zeros(0))
            self.greedy_nodes.setData(x=[], y=[])
            return
        ov = greedy_overlay(self.tree, self.greedy, self.layout)
        self.overlay = ov
        self.greedy_line.setData(ov.x, ov.y)
        off = np.flatnonzero(ov.off_tree) + 1
        self.greedy_nodes.setData(
            x=ov.x[off],
            y=ov.y[off],
            data=off - 1,
        )
        self._greedy_label_extra(ov, off)
        d = self.divergence
        if d is None:
            return
        chosen = self.tree.chosen
        beam_path = self.tree.path(chosen.id) if chosen is not None else []
        g = f"{ov.scores[d]:.2f}" if d < len(ov.scores) else "—"
        b = f"{beam_path[d].score:.2f}" if d < len(beam_path) else "—"
        self.divergence_line.setValue(d + 1)
        self.divergence_text.setText(
            f"step {d + 1}: greedy leaves the beam\ngreedy S = {g}\nbeam S = {b}".replace("-", "−")
        )
        # In the free band below every node (the view keeps room for it), from the view's left
        # edge: placed beside the line, it ran off the view when the tree was narrow.
        self.divergence_text.setAnchor((0, 0))
        lowest = max(float(self.layout.y.max()), float(ov.y.max()))
        self.divergence_text.setPos(-0.5, lowest + 0.6)
        self.divergence_line.show()
        self.divergence_text.show()

    def _greedy_label_extra(self, ov: GreedyOverlay, off: np.ndarray) -> None:
        """Append the greedy chain's own nodes to the label painter."""
        if not len(off):
            return
        x, y, texts, colours = self.labels._nodes
        ex, ey, etexts = self.labels._edges
        badges = self.labels._badges
        g_logp = self.greedy.token_logprobs
        self.labels.set_labels(
            np.concatenate([x, ov.x[off]]),
            np.concatenate([y, ov.y[off]]),
            texts + [ov.pieces[i - 1] for i in off],
            colours + [QColor(GREEDY_COLOUR)] * len(off),
            np.concatenate([ex, 0.5 * (ov.x[off - 1] + ov.x[off])]),
            np.concatenate([ey, 0.5 * (ov.y[off - 1] + ov.y[off])]),
            etexts + [f"{g_logp[i - 1]:.2f}".replace("-", "−") for i in off],
            badges + ["greedy"] * len(off),
        )

    # ---------------------------------------------------------------- events
    def _tip(self, x: float, y: float, data: Any) -> str:
        if self.tree is None or data is None:
            return ""
        n = self.tree.nodes[int(data)]
        hidden = 0
        if self.layout is not None and not self.show_pruned:
            row = int(self.layout.row_of[n.id])
            hidden = int(self.layout.hidden_pruned[row]) if row >= 0 else 0
        more = f"\n{hidden} pruned candidates after it (show pruned to see them)" if hidden else ""
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
