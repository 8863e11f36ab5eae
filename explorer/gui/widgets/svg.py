"""A widget as an SVG file that renders the same in any SVG renderer as on the screen.

The widget is painted into Qt's ``QSvgGenerator`` (SVG 1.1, so clipping is written as clip paths:
the tiny profile has none, and an image scrolled inside a plot spilled over the whole figure).
Three things in Qt's output then read differently elsewhere, and :func:`portable` rewrites them:

- strokes that keep their width under a zoomed plot's transform are written as
  ``vector-effect="non-scaling-stroke"`` inside a scaled group; renderers without that effect
  (resvg, ImageMagick) scale the stroke by the plot's zoom, and an outline 3 px wide became a
  block hundreds of pixels wide. The shapes are mapped into the group's parent coordinates here,
  so the stroke is the width the screen shows in every renderer;
- the root's size is written in millimetres; it becomes pixels, the size on the screen;
- the font family is Qt's alias ("Sans Serif"); it becomes the family Qt actually drew with, so a
  renderer lays the text out with the same glyphs.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, QSizeF
from PySide6.QtGui import QFont, QFontInfo, QFontMetricsF, QPainter, QPicture, QRegion
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QGraphicsItem, QGraphicsView, QWidget

SVG = "http://www.w3.org/2000/svg"
XLINK = "http://www.w3.org/1999/xlink"
SHAPES = ("rect", "path", "polyline", "polygon", "line", "ellipse", "circle")
NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
PAIR = re.compile(rf"({NUMBER.pattern})\s*,\s*({NUMBER.pattern})")
MATRIX = re.compile(r"matrix\(([^)]*)\)")

Affine = tuple[float, float, float, float, float, float]  # SVG's matrix(a b c d e f)


@contextmanager
def uncached(widget: QWidget) -> Iterator[None]:
    """While inside, graphics items kept as pixmaps between repaints (cached axes, titles) paint
    themselves directly, so a vector export gets their text and lines, not a bitmap of them; and
    pyqtgraph items are in their export mode (scatter symbols drawn as shapes, not as pieces of
    a pixmap atlas)."""
    items = [
        item
        for view in [widget, *widget.findChildren(QGraphicsView)]
        if isinstance(view, QGraphicsView) and view.scene() is not None
        for item in view.scene().items()
    ]
    cached = [item for item in items if item.cacheMode() != QGraphicsItem.CacheMode.NoCache]
    modes = [item.cacheMode() for item in cached]
    exporting = [item for item in items if callable(getattr(item, "setExportMode", None))]
    for item in cached:
        item.setCacheMode(QGraphicsItem.CacheMode.NoCache)
    for item in exporting:
        item.setExportMode(True, {"antialias": True, "background": None, "painter": None})
    try:
        yield
    finally:
        for item in exporting:
            item.setExportMode(False)
        for item, mode in zip(cached, modes):
            item.setCacheMode(mode)


def widget_svg(widget: QWidget, title: str, description: str) -> str:
    """The widget painted as SVG text, made portable (see the module's docstring)."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    gen = QSvgGenerator(QSvgGenerator.SvgVersion.Svg11)
    gen.setOutputDevice(buffer)
    gen.setSize(widget.size())
    gen.setViewBox(QRect(0, 0, widget.width(), widget.height()))
    gen.setResolution(widget.logicalDpiY())  # fonts sized in points come out as on the screen
    gen.setTitle(title)
    gen.setDescription(description)
    picture = QPicture()
    recorder = QPainter(picture)
    try:
        with uncached(widget):
            paint_widgets(widget, recorder)
    finally:
        recorder.end()
    painter = QPainter()
    if not painter.begin(gen):
        raise OSError("could not start an SVG painter")
    try:
        painter.drawPicture(0, 0, picture)
    finally:
        painter.end()
    buffer.close()
    text = bytes(data.data()).decode("utf-8")
    return portable(text, widget.width(), widget.height(), drawn_family, TextMeasure(widget))


def paint_widgets(widget: QWidget, painter: QPainter, origin: QPoint | None = None) -> None:
    """Paint ``widget`` and its visible children, each at its place under the painter's
    translation. A graphics view (every plot) draws its scene straight into this painter: painted
    as a child widget, it paints with a painter of its own moved by an offset that Qt's SVG engine
    leaves out of clip paths (a plot below a row of buttons was clipped to where the buttons are,
    and its title vanished)."""
    origin = origin or QPoint()
    painter.save()
    painter.translate(origin)
    if isinstance(widget, QGraphicsView):
        viewport = widget.viewport()
        target = QRectF(QPointF(viewport.pos()), QSizeF(viewport.size()))
        QGraphicsView.render(widget, painter, target, viewport.rect())
        painter.restore()
        return
    # QWidget's own overload (QGraphicsView.render means something else); no children
    QWidget.render(widget, painter, QPoint(), QRegion(), QWidget.RenderFlag.DrawWindowBackground)
    painter.restore()
    for child in widget.children():
        if isinstance(child, QWidget) and child.isVisible() and not child.isWindow():
            paint_widgets(child, painter, origin + child.pos())


def drawn_family(family: str) -> str:
    """The font family Qt resolves an alias such as "Sans Serif" to."""
    return QFontInfo(QFont(family)).family()


class TextMeasure:
    """How wide Qt lays a text out, at a size in the SVG's pixels, on the widget's screen."""

    def __init__(self, widget: QWidget) -> None:
        self.dpi = widget.logicalDpiY()
        self.metrics: dict[tuple[str, float, int], QFontMetricsF] = {}

    def __call__(self, text: str, family: str, size: float, weight: int) -> float:
        key = (family, size, weight)
        fm = self.metrics.get(key)
        if fm is None:
            font = QFont(family)
            font.setPointSizeF(size * 72 / self.dpi)
            font.setWeight(QFont.Weight(weight))
            fm = self.metrics[key] = QFontMetricsF(font)
        return fm.horizontalAdvance(text)


def save_widget_svg(widget: QWidget, path: str | Path, title: str, description: str) -> Path:
    path = Path(path)
    text = widget_svg(widget, title, description)
    try:
        path.write_text(text, "utf-8")
    except OSError as e:
        raise OSError(f"could not write {path}: {e.strerror or e}") from None
    return path


# -- rewriting Qt's output (no Qt needed) -------------------------------------------------------


def portable(
    svg: str,
    width: int,
    height: int,
    family: Callable[[str], str],
    measure: Callable[[str, str, float, int], float] | None = None,
) -> str:
    """Qt's SVG with pixel size, real font families, each text as wide as Qt laid it out
    (``measure(text, family, size, weight)``: another renderer's unhinted advances made long lines
    of numbers drift by several characters), and non-scaling strokes mapped out of their scaled
    groups."""
    ET.register_namespace("", SVG)
    ET.register_namespace("xlink", XLINK)
    root = ET.fromstring(svg)
    root.set("width", str(width))
    root.set("height", str(height))
    families: dict[str, str] = {}
    for el in root.iter():
        name = el.get("font-family")
        if name is not None:
            if name not in families:
                families[name] = family(name)
            el.set("font-family", families[name])
        if measure is not None and _local(el.tag) == "text" and (el.text or "").strip():
            size = float(el.get("font-size") or 0)
            weight = int(float(el.get("font-weight") or 400))
            if size > 0:
                el.set("textLength", f"{measure(el.text, el.get('font-family'), size, weight):g}")
                el.set("lengthAdjust", "spacing")
    for group in list(root.iter(f"{{{SVG}}}g")):
        _flatten(group)
    return '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n' + ET.tostring(
        root, encoding="unicode"
    )


def _matrix(transform: str | None) -> Affine | None:
    m = MATRIX.fullmatch((transform or "").strip())
    if m is None:
        return None
    values = [float(v) for v in NUMBER.findall(m.group(1))]
    return tuple(values) if len(values) == 6 else None  # type: ignore[return-value]


def _flatten(group: ET.Element) -> None:
    """A scaled group's non-scaling strokes: its shapes mapped by the group's matrix, the rest
    (text, images) kept under the matrix in a group of their own."""
    m = _matrix(group.get("transform"))
    children = list(group)
    if m is None or not any(c.get("vector-effect") == "non-scaling-stroke" for c in children):
        return
    if not all(_mappable(c, m) for c in children if _local(c.tag) in SHAPES):
        return
    del group.attrib["transform"]
    rest = [c for c in children if _local(c.tag) not in SHAPES]
    if rest:
        inner = ET.SubElement(group, f"{{{SVG}}}g", transform=_format_matrix(m))
        for c in rest:
            group.remove(c)
            inner.append(c)
    for c in children:
        if _local(c.tag) in SHAPES:
            _map_shape(c, m)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _format_matrix(m: Affine) -> str:
    return "matrix(" + ",".join(f"{v:g}" for v in m) + ")"


def _apply(m: Affine, x: float, y: float) -> tuple[float, float]:
    a, b, c, d, e, f = m
    return a * x + c * y + e, b * x + d * y + f


def _axis_aligned(m: Affine) -> bool:
    return m[1] == 0 and m[2] == 0


def _mappable(el: ET.Element, m: Affine) -> bool:
    """Whether a shape can be written in its parent's coordinates (rects and ellipses need a
    matrix without rotation; paths and polylines take any)."""
    if _local(el.tag) in ("rect", "ellipse", "circle"):
        return _axis_aligned(m)
    return True


def _num(el: ET.Element, name: str) -> float:
    return float(el.get(name) or 0.0)


def _map_points(text: str, m: Affine) -> str:
    """Every "x,y" pair of a points list or of a path of absolute commands (Qt writes M, L, C
    and Z only, each point as "x,y"), mapped by m."""

    def mapped(match: re.Match) -> str:
        x, y = _apply(m, float(match.group(1)), float(match.group(2)))
        return f"{x:.6g},{y:.6g}"

    return PAIR.sub(mapped, text)


def _map_shape(el: ET.Element, m: Affine) -> None:
    kind = _local(el.tag)
    if kind == "rect":
        x0, y0 = _apply(m, _num(el, "x"), _num(el, "y"))
        x1, y1 = _apply(m, _num(el, "x") + _num(el, "width"), _num(el, "y") + _num(el, "height"))
        for key, value in (("x", min(x0, x1)), ("y", min(y0, y1))):
            el.set(key, f"{value:g}")
        el.set("width", f"{abs(x1 - x0):g}")
        el.set("height", f"{abs(y1 - y0):g}")
    elif kind in ("ellipse", "circle"):
        cx, cy = _apply(m, _num(el, "cx"), _num(el, "cy"))
        rx = _num(el, "rx" if kind == "ellipse" else "r") * abs(m[0])
        ry = _num(el, "ry" if kind == "ellipse" else "r") * abs(m[3])
        el.tag = f"{{{SVG}}}ellipse"
        el.attrib.pop("r", None)
        for key, value in (("cx", cx), ("cy", cy), ("rx", rx), ("ry", ry)):
            el.set(key, f"{value:g}")
    elif kind == "path":
        el.set("d", _map_points(el.get("d", ""), m))
    elif kind in ("polyline", "polygon"):
        el.set("points", _map_points(el.get("points", ""), m))
    elif kind == "line":
        x1, y1 = _apply(m, _num(el, "x1"), _num(el, "y1"))
        x2, y2 = _apply(m, _num(el, "x2"), _num(el, "y2"))
        for key, value in (("x1", x1), ("y1", y1), ("x2", x2), ("y2", y2)):
            el.set(key, f"{value:g}")
    el.attrib.pop("vector-effect", None)
