"""Figure and data export: every view on its own (right-click menu), and the panels' whole figure.

A view is exportable when it is registered with :func:`exportable`: it names the widget to draw
and a function that returns its :class:`ViewData` (what it shows, as a table and as JSON fields,
with the model, the source sentence and the step it shows). Its right-click menu then offers
"Save image (PNG, 2×)", "Save SVG", "Save data as CSV" and "Save data as JSON".

PNG: the widget rendered at twice its size, with the model, source and step as PNG text fields.
SVG: see :mod:`explorer.gui.widgets.svg` (renders the same as the screen in other renderers), the
same three in its title and description. CSV: ``#`` comment lines name them, then a header row.
JSON: an object with ``view``, ``model``, ``source``, ``step`` and the view's fields.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QPoint, QSize, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QFileDialog, QGraphicsView, QMenu, QMessageBox, QWidget

from explorer.gui.widgets.svg import save_widget_svg, uncached

PNG_SCALE = 2
ACTIONS = ("Save image (PNG, 2×)", "Save SVG", "Save data as CSV", "Save data as JSON")
SUFFIXES = (".png", ".svg", ".csv", ".json")


@dataclass(frozen=True)
class ViewData:
    """What one view shows, in numbers: a table (CSV) and the fields of its JSON file."""

    view: str  # "alignment", "top-k", …
    model: str
    source: str
    step: int | None  # the step shown, 1-based; None for a view of no single step
    steps: int | None  # how many steps the decode has
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    fields: dict[str, Any] = field(default_factory=dict)  # more JSON fields (matrices…)

    @property
    def caption(self) -> str:
        step = "" if self.step is None else f" · step {self.step}/{self.steps}"
        return f"{self.view} · {self.model or 'unnamed model'} · “{self.source}”{step}"

    def header(self) -> dict[str, Any]:
        return {"view": self.view, "model": self.model, "source": self.source,
                "step": self.step, "steps": self.steps}  # fmt: skip


@dataclass
class Exportable:
    """A registered view: its name, the widget its figure draws, and its data."""

    name: str
    widget: QWidget
    data: Callable[[], ViewData]  # raises ValueError when the view shows nothing yet

    def save(self, path: str | Path) -> Path:
        """Write the figure or the data, by the file's extension."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in SUFFIXES:
            raise ValueError(
                f"{path}: a view exports as {', '.join(SUFFIXES)}, not {suffix or 'no extension'}"
            )
        data = self.data()
        if suffix == ".png":
            return render_png(self.widget, path, data.caption, data.header())
        if suffix == ".svg":
            return save_widget_svg(self.widget, path, data.caption, _describe(data.header()))
        if suffix == ".csv":
            return save_view_csv(data, path)
        return save_view_json(data, path)


def exportable(
    view: QWidget, name: str, data: Callable[[], ViewData], widget: QWidget | None = None
) -> Exportable:
    """Register ``view``: its right-click menu saves ``widget`` (default: the view) and data."""
    entry = Exportable(name, widget if widget is not None else view, data)
    view.setProperty("export_name", name)
    view._exportable = entry  # the menu and tests find it here
    view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
    view.customContextMenuRequested.connect(lambda pos: _show_menu(view, entry, pos))
    plots = [v for v in (view, *view.findChildren(QGraphicsView)) if isinstance(v, QGraphicsView)]
    for plot in plots:
        # a plot inside the view hands the right click up to the view (text keeps its own menu)
        if export_of(plot) is None:
            plot.setContextMenuPolicy(Qt.ContextMenuPolicy.NoContextMenu)
        # and pyqtgraph's own menu (whose SVG export fails) gives way to this one
        for item in plot.scene().items() if plot.scene() is not None else ():
            if callable(getattr(item, "setMenuEnabled", None)):
                item.setMenuEnabled(False)
    return entry


def export_of(view: QWidget) -> Exportable | None:
    return getattr(view, "_exportable", None)


def export_menu(view: QWidget, entry: Exportable) -> QMenu:
    """The four actions, each asking for a file and writing it."""
    menu = QMenu(view)
    for text, suffix in zip(ACTIONS, SUFFIXES):
        action = menu.addAction(text)
        action.setData(suffix)
        action.triggered.connect(lambda _=False, s=suffix: _ask_and_save(view, entry, s))
    return menu


def _show_menu(view: QWidget, entry: Exportable, pos: QPoint) -> None:
    export_menu(view, entry).exec(view.mapToGlobal(pos))


def _ask_and_save(view: QWidget, entry: Exportable, suffix: str) -> Path | None:
    kind = suffix[1:].upper()
    path, _ = QFileDialog.getSaveFileName(
        view, f"Save {entry.name} as {kind}", f"{entry.name}{suffix}", f"{kind} (*{suffix})"
    )
    if not path:
        return None
    if not path.lower().endswith(suffix):
        path += suffix
    try:
        return entry.save(path)
    except (ValueError, OSError) as e:
        QMessageBox.warning(view, "Export", f"{entry.name}: {e}")
        return None


def _describe(header: dict[str, Any]) -> str:
    return "; ".join(f"{k}: {v}" for k, v in header.items() if v is not None)


# -- figures -------------------------------------------------------------------------------------


def render_image(widget: QWidget, scale: float = PNG_SCALE) -> QImage:
    """The widget drawn at ``scale`` times its size (its text and lines drawn anew at that size,
    not enlarged pixels), on its own background colour."""
    size = widget.size()
    image = QImage(
        QSize(math.ceil(size.width() * scale), math.ceil(size.height() * scale)),
        QImage.Format.Format_ARGB32_Premultiplied,
    )
    image.setDevicePixelRatio(scale)
    image.fill(widget.palette().window().color())
    painter = QPainter(image)
    try:
        with uncached(widget):
            QWidget.render(widget, painter, QPoint())
    finally:
        painter.end()
    return image


def render_png(
    widget: QWidget,
    path: str | Path,
    caption: str = "",
    header: dict[str, Any] | None = None,
    scale: float = PNG_SCALE,
) -> Path:
    path = Path(path)
    image = render_image(widget, scale)
    if caption:
        image.setText("Title", caption)
    for key, value in (header or {}).items():
        if value is not None:
            image.setText(key, str(value))
    if not image.save(str(path), "PNG"):
        raise OSError(f"could not write {path}")
    return path


def save_png(widget: QWidget, path: str | Path) -> Path:
    return render_png(widget, path, scale=1)


def save_svg(widget: QWidget, path: str | Path, title: str = "Attention Explorer") -> Path:
    return save_widget_svg(widget, path, title, "")


def save_figure(widget: QWidget, path: str | Path) -> Path:
    """PNG or SVG, by the file's extension."""
    suffix = Path(path).suffix.lower()
    if suffix == ".svg":
        return save_svg(widget, path)
    if suffix == ".png":
        return save_png(widget, path)
    raise ValueError(f"{path}: figures export as .png or .svg, not {suffix or 'no extension'}")


# -- data ----------------------------------------------------------------------------------------


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    raise TypeError(f"cannot write {type(x).__name__} as JSON")


def _write(path: Path, text: str) -> Path:
    try:
        path.write_text(text, "utf-8")
    except OSError as e:
        raise OSError(f"could not write {path}: {e.strerror or e}") from None
    return path


def save_json(data: Any, path: str | Path) -> Path:
    return _write(Path(path), json.dumps(data, default=_jsonable, ensure_ascii=False, indent=1))


def save_view_json(data: ViewData, path: str | Path) -> Path:
    # rows as lists: two source words may be the same word ("the … the"), and so two columns
    return save_json({**data.header(), "columns": list(data.columns),
                      "rows": [list(r) for r in data.rows], **data.fields}, path)  # fmt: skip


def _cell(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    return v


def save_view_csv(data: ViewData, path: str | Path) -> Path:
    """``# key: value`` lines naming the view, model, source and step, then the table."""
    import io

    out = io.StringIO()
    for key, value in data.header().items():
        if value is not None:
            out.write(f"# {key}: {value}\n")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(data.columns)
    for row in data.rows:
        w.writerow([_cell(v) for v in row])
    return _write(Path(path), out.getvalue())


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
