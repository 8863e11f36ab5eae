"""Figure and data export shared by the panels.

PNG: the widget rendered with ``QWidget.grab``. SVG: the widget painted into a ``QSvgGenerator``
(pyqtgraph 0.14's own SVGExporter fails with Qt 6.12, so it is not used). Data: JSON and CSV.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QPoint, QRect, QSize
from PySide6.QtGui import QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QGraphicsItem, QGraphicsView, QWidget


def save_png(widget: QWidget, path: str | Path) -> Path:
    path = Path(path)
    if not widget.grab().save(str(path), "PNG"):
        raise OSError(f"could not write {path}")
    return path


@contextmanager
def uncached(widget: QWidget) -> Iterator[None]:
    """Graphics items kept as pixmaps between repaints (cached axes, titles) paint themselves
    directly while inside: a vector export gets their text and lines, not a bitmap of them."""
    items = [
        item
        for view in widget.findChildren(QGraphicsView)
        if view.scene() is not None
        for item in view.scene().items()
        if item.cacheMode() != QGraphicsItem.CacheMode.NoCache
    ]
    modes = [item.cacheMode() for item in items]
    for item in items:
        item.setCacheMode(QGraphicsItem.CacheMode.NoCache)
    try:
        yield
    finally:
        for item, mode in zip(items, modes):
            item.setCacheMode(mode)


def save_svg(widget: QWidget, path: str | Path, title: str = "Attention Explorer") -> Path:
    path = Path(path)
    size = widget.size()
    gen = QSvgGenerator()
    gen.setFileName(str(path))
    gen.setSize(QSize(size.width(), size.height()))
    gen.setViewBox(QRect(0, 0, size.width(), size.height()))
    gen.setTitle(title)
    painter = QPainter()
    if not painter.begin(gen):
        raise OSError(f"could not write {path}")
    try:
        # QWidget's own overload, also for views (QGraphicsView.render means something else);
        # the painter overload needs an explicit offset.
        with uncached(widget):
            QWidget.render(widget, painter, QPoint())
    finally:
        painter.end()
    if not path.exists() or path.stat().st_size == 0:
        raise OSError(f"could not write {path}")
    return path


def save_figure(widget: QWidget, path: str | Path) -> Path:
    """PNG or SVG, by the file's extension."""
    suffix = Path(path).suffix.lower()
    if suffix == ".svg":
        return save_svg(widget, path)
    if suffix == ".png":
        return save_png(widget, path)
    raise ValueError(f"{path}: figures export as .png or .svg, not {suffix or 'no extension'}")


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    raise TypeError(f"cannot write {type(x).__name__} as JSON")


def save_json(data: Any, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(data, default=_jsonable, ensure_ascii=False, indent=1), "utf-8")
    return path


def save_matrix_csv(
    matrix: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str], path: str | Path
) -> Path:
    """A labelled matrix (e.g. target × source attention) as CSV."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["", *col_labels])
        for label, row in zip(row_labels, np.asarray(matrix)):
            w.writerow([label, *(f"{float(v):.6g}" for v in row)])
    return path


def trace_to_dict(trace: Any) -> dict[str, Any]:
    """A Trace as plain JSON-able data (every step's numbers included)."""
    return {
        "source": trace.source,
        "src_pieces": list(trace.src_pieces),
        "arch": trace.arch,
        "method": trace.method,
        "encoder_states": trace.encoder_states,
        "cross_keys": trace.cross_keys,  # Transformer: (layers, heads, source, d_k)
        "cross_values": trace.cross_values,
        "steps": [
            {
                "position": s.position,
                "token": s.token,
                "piece": s.piece,
                "logprob": s.logprob,
                "top": s.topk(10),
                "scores": s.scores,
                "cross_attention": s.cross_attention,
                "self_attention": s.self_attention,
                "hidden": s.hidden,
                "context": s.context,
                "query": s.query,
            }
            for s in trace.steps
        ],
    }
