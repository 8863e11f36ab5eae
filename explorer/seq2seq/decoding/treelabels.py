"""Where the beam tree's labels go, in pixels: headless, so a test can check them.

Every drawn node gets a box with its token (never shortened) over its score S, and on its top
right corner a small "+n" when n candidates are folded into it; every edge gets its
log-probability on the edge, just right of its parent's column. ``place_labels`` measures the
texts (with a function the caller passes: the GUI uses its font metrics) and gives each step
column the least width, and the rows the least height, at which no two boxes can meet: a
column's boxes and the labels of the edges leaving it fit before the next column, and two nodes
of one column are at least one row apart. The view never zooms out beyond that spacing, and
zooming in only moves boxes apart, so a placement checked once holds at every zoom the view
allows.

Edge labels are placed best first (the caller's priority: the chosen path, then greedy); one that
would still meet a box already placed (where the greedy path leaves the tree and crosses the
rows below) is left out, its log-probability still in the node's tooltip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from explorer.seq2seq.decoding.trace import BeamTree
from explorer.seq2seq.decoding.treelayout import GreedyOverlay, TreeLayout

# (text, small) -> (width, height) in pixels
Measure = Callable[[str, bool], tuple[float, float]]
PAD = 4.0  # inside a node's box, round the text
GAP = 4.0  # the least free space between two boxes
NODE, EDGE = 0, 1


@dataclass(frozen=True, eq=False)
class TreeLabels:
    """Row i describes one label: a node's (kind NODE) or an edge's (kind EDGE)."""

    px_step: float  # pixels per unit of x at the least spacing: the mean width of a step
    px_row: float  # least pixels per row
    column_x: np.ndarray  # (steps + 1,) x of each step column (the root's is 0)
    x: np.ndarray  # (k,) anchor: the node, or a point on the edge (x in column_x units)
    y: np.ndarray  # (k,)
    box: np.ndarray  # (k, 4) left, top, right, bottom, in pixels from the anchor
    lines: tuple[tuple[str, ...], ...]  # node: (token, score); edge: (log p,)
    badge: tuple[str, ...]  # "+n" over a node with n folded candidates, else ""
    kind: np.ndarray  # (k,) NODE or EDGE
    shown: np.ndarray  # (k,) False for an edge label that would meet another box

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def rects(self, px_step: float | None = None, px_row: float | None = None) -> np.ndarray:
        """(k, 4) boxes in pixels (left, top, right, bottom) at the given spacing (the least
        spacing by default)."""
        sx = self.px_step if px_step is None else px_step
        sy = self.px_row if px_row is None else px_row
        return _rects(self.x, self.y, self.box, sx, sy)


def _rects(x: np.ndarray, y: np.ndarray, box: np.ndarray, sx: float, sy: float) -> np.ndarray:
    return np.stack([x * sx, y * sy, x * sx, y * sy], axis=1) + box


def overlapping(rects: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, of boxes that share some area (touching edges do not count)."""
    r = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
    out = []
    for i in range(len(r) - 1):
        rest = r[i + 1 :]
        hit = (
            (rest[:, 0] < r[i, 2])
            & (r[i, 0] < rest[:, 2])
            & (rest[:, 1] < r[i, 3])
            & (r[i, 1] < rest[:, 3])
        )
        out.extend((i, i + 1 + int(j)) for j in np.flatnonzero(hit))
    return out


def number(x: float) -> str:
    """A score as written on the tree: two decimals and a real minus sign."""
    return f"{x:.2f}".replace("-", "−")


def _node_boxes(
    pieces: Sequence[str], scores: Sequence[float], folded: Sequence[int], measure: Measure
) -> tuple[np.ndarray, list[tuple[str, str]], list[str]]:
    boxes, lines, badges = [], [], []
    for piece, score, n in zip(pieces, scores, folded, strict=True):
        s = number(score)
        w1, h1 = measure(piece, False)
        w2, h2 = measure(s, True)
        badge = f"+{int(n)}" if n else ""
        wb, hb = measure(badge, True) if badge else (0.0, 0.0)
        w, h = max(w1, w2) + 2 * PAD, h1 + h2 + PAD
        # the "+n" sits on the box's top right corner, above it
        boxes.append((min(-w / 2, w / 2 - wb - PAD), -h / 2 - hb, w / 2, h / 2))
        lines.append((piece, s))
        badges.append(badge)
    return np.array(boxes, dtype=np.float64).reshape(-1, 4), lines, badges


def _edge_boxes(logps: Sequence[float], measure: Measure) -> tuple[np.ndarray, list[tuple[str]]]:
    boxes, lines = [], []
    for lp in logps:
        s = number(lp)
        w, h = measure(s, True)
        boxes.append((-w / 2 - 2, -h / 2 - 1, w / 2 + 2, h / 2 + 1))
        lines.append((s,))
    return np.array(boxes, dtype=np.float64).reshape(-1, 4), lines


@dataclass(frozen=True)
class _Columns:
    """Where each step column goes: ``at`` (n,) its position in pixels at the least spacing,
    ``t`` (n,) where along the edges leaving it their labels sit (0 at the parent, 1 at the
    child), and the least pixels per row."""

    at: np.ndarray
    t: np.ndarray
    px_row: float


def _col_max(values: np.ndarray, cols: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n)
    np.maximum.at(out, cols, values)
    return out


def _columns(nbox: np.ndarray, ncol: np.ndarray, ebox: np.ndarray, ecol: np.ndarray) -> _Columns:
    """Each step column as wide as its own labels need: from column s to s + 1, the widest right
    part of a node box in s, a gap, the widest label of an edge leaving s, a gap, the widest left
    part of a box in s + 1. Per row: a node's height, and room for two edge labels of one column
    (their anchors are at least min(t, 1 − t) rows apart: parents are ordered like children)."""
    n = int(max(ncol.max(initial=0), ecol.max(initial=-1) + 1)) + 1
    right = _col_max(nbox[:, 2], ncol, n)
    left = _col_max(-nbox[:, 0], ncol, n)
    edge_w = _col_max(ebox[:, 2] - ebox[:, 0], ecol, n)
    has_edge = np.bincount(ecol, minlength=n)[:n] > 0
    gaps = right[:-1] + GAP + left[1:] + np.where(has_edge[:-1], GAP + edge_w[:-1], 0.0)
    at = np.concatenate([[0.0], np.cumsum(gaps)])
    t = np.full(n, 0.5)
    t[:-1] = np.where(has_edge[:-1], (right[:-1] + GAP + edge_w[:-1] / 2) / gaps, 0.5)
    node_h = float(np.max(nbox[:, 3] - nbox[:, 1], initial=0.0))
    edge_h = float(np.max(ebox[:, 3] - ebox[:, 1], initial=0.0))
    near = np.minimum(t, 1 - t)[np.flatnonzero(has_edge)]
    px_row = max(node_h + GAP, float(np.max((edge_h + GAP) / near, initial=0.0)))
    return _Columns(at, t, px_row)


def _accept(rects: np.ndarray, columns: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Place boxes in ``order``; a box meeting one already placed is left out. Only boxes in
    the same or a neighbouring column can meet (the spacing sees to that)."""
    shown = np.zeros(len(rects), dtype=bool)
    placed: dict[int, list[int]] = {}
    for i in order:
        c = int(columns[i])
        near = [j for k in (c - 1, c, c + 1) for j in placed.get(k, ())]
        if near:
            r, o = rects[i], rects[near]
            hit = (o[:, 0] < r[2]) & (r[0] < o[:, 2]) & (o[:, 1] < r[3]) & (r[1] < o[:, 3])
            if hit.any():
                continue
        shown[i] = True
        placed.setdefault(c, []).append(int(i))
    return shown


def place_labels(
    nodes: tuple[np.ndarray, np.ndarray, Sequence[str], Sequence[float], Sequence[int]],
    edges: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Sequence[float]],
    measure: Measure,
    edge_priority: np.ndarray | None = None,
) -> TreeLabels:
    """Labels for nodes ``(x, y, pieces, scores, folded)`` and edges ``(x0, y0, x1, y1, logp)``
    (from parent to child, in tree coordinates).

    Nodes are always placed; edges in ``edge_priority`` order (lower first; default: as given).
    """
    nx, ny, pieces, scores, folded = nodes
    x0, y0, x1, y1, logps = (np.asarray(v, float) for v in edges)
    ncol = np.round(np.asarray(nx, float)).astype(np.int64)
    ecol = np.round(x0).astype(np.int64)
    nbox, nlines, badges = _node_boxes(pieces, scores, folded, measure)
    ebox, elines = _edge_boxes(logps, measure)
    cols = _columns(nbox, ncol, ebox, ecol)
    n, m = len(nbox), len(ebox)
    # one unit of the view's x is the mean step, so x still reads as "tokens emitted"
    px_step = float(cols.at[-1] / (len(cols.at) - 1)) if len(cols.at) > 1 else 100.0
    column_x = cols.at / px_step
    t = cols.t[ecol]
    ex = column_x[ecol] + t * (column_x[np.round(x1).astype(np.int64)] - column_x[ecol])
    x = np.concatenate([column_x[ncol], ex])
    y = np.concatenate([np.asarray(ny, float), y0 + t * (y1 - y0)])
    box = np.concatenate([nbox, ebox])
    prio = np.arange(m) if edge_priority is None else np.asarray(edge_priority)
    order = np.concatenate([np.arange(n), n + np.argsort(prio, kind="stable")]).astype(np.int64)
    # nodes of step column s on 2s, the labels of edges leaving it on 2s + 1
    columns = np.concatenate([2 * ncol, 2 * ecol + 1])
    shown = _accept(_rects(x, y, box, px_step, cols.px_row), columns, order)
    return TreeLabels(
        px_step=px_step,
        px_row=cols.px_row,
        column_x=column_x,
        x=x,
        y=y,
        box=box,
        lines=tuple(nlines) + tuple(elines),
        badge=tuple(badges) + ("",) * m,
        kind=np.array([NODE] * n + [EDGE] * m, dtype=np.int64),
        shown=shown,
    )


def label_tree(
    tree: BeamTree, layout: TreeLayout, overlay: GreedyOverlay | None, measure: Measure
) -> TreeLabels:
    """Labels for a laid-out tree (``layout``, in step coordinates) and greedy's own chain of
    nodes where it leaves the tree: the first ``len(layout)`` node labels are the layout's rows,
    the rest greedy's. Edge labels of the chosen path are placed first, then greedy's."""
    nodes = tree.nodes
    off = np.flatnonzero(overlay.off_tree) + 1 if overlay is not None else np.zeros(0, int)
    ox = overlay.x[off] if len(off) else np.zeros(0)
    oy = overlay.y[off] if len(off) else np.zeros(0)
    gx0 = overlay.x[off - 1] if len(off) else np.zeros(0)
    gy0 = overlay.y[off - 1] if len(off) else np.zeros(0)
    glogp = np.diff(np.concatenate([[0.0], overlay.scores]))[off - 1] if len(off) else []
    e = layout.edges
    node_args = (
        np.concatenate([layout.x, ox]),
        np.concatenate([layout.y, oy]),
        [nodes[i].piece for i in layout.ids] + [overlay.pieces[i - 1] for i in off],
        [nodes[i].score for i in layout.ids] + [float(overlay.scores[i - 1]) for i in off],
        np.concatenate([layout.folded, np.zeros(len(off), dtype=np.int64)]),
    )
    edge_args = (
        np.concatenate([layout.x[e[:, 0]], gx0]),
        np.concatenate([layout.y[e[:, 0]], gy0]),
        np.concatenate([layout.x[e[:, 1]], ox]),
        np.concatenate([layout.y[e[:, 1]], oy]),
        np.concatenate([layout.edge_logprob, glogp]),
    )
    chosen = {n.id for n in tree.path(tree.chosen.id)} if tree.chosen is not None else set()
    greedy = set(overlay.node_ids.tolist()) if overlay is not None else set()
    child = layout.ids[e[:, 1]].tolist()
    prio = [0 if c in chosen else 1 if c in greedy else 2 for c in child] + [1] * len(off)
    return place_labels(node_args, edge_args, measure, np.array(prio, dtype=np.int64))
