"""Every view's export: the SVG, drawn by a real SVG renderer (resvg), looks like the PNG of the
same view, heat-map cells keep their colours, and the data files name model, sentence and step."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

pytest.importorskip("PySide6")
resvg_py = pytest.importorskip("resvg_py")

from PySide6.QtCore import QPoint, QPointF, QRect  # noqa: E402
from PySide6.QtGui import QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgGenerator  # noqa: E402
from PySide6.QtWidgets import QWidget  # noqa: E402

from explorer.gui.exports import step as ex  # noqa: E402
from explorer.gui.session import decode_job  # noqa: E402
from explorer.gui.step.alignment import AlignmentView  # noqa: E402
from explorer.gui.step.arithmetic import ArithmeticView  # noqa: E402
from explorer.gui.step.attention import AttentionBarsView  # noqa: E402
from explorer.gui.step.hidden import HiddenStatesView  # noqa: E402
from explorer.gui.step.topk import TopKView  # noqa: E402
from explorer.gui.step.transformer import TransformerView  # noqa: E402
from explorer.gui.widgets.export import PNG_SCALE, exportable  # noqa: E402

# Mean absolute difference (0–255, over 8×8-pixel block means of the 2× images, i.e. 4 screen
# pixels) between the resvg rendering and the PNG of the same view. What differs in a faithful
# SVG is anti-aliasing and text placed a pixel to the side. The SVG Qt writes unaided (an image
# spilling out of its plot, strokes scaled by the plot's zoom, titles and axes clipped away)
# differs by far more.
MAX_MEAN_DIFF = 4.0
BLOCK = 8
CELL_TOLERANCE = 12  # per channel, at a cell's centre
STEP = 2  # 0-based: the third step, so that rows after it are masked


def pixels(image: QImage) -> np.ndarray:
    """(H, W, 3) uint8 of a QImage."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h = image.width(), image.height()
    raw = np.frombuffer(image.constBits(), np.uint8).reshape(h, image.bytesPerLine())
    return raw[:, : w * 3].reshape(h, w, 3).copy()


def resvg(svg_path, width: int, height: int) -> np.ndarray:
    png = bytes(resvg_py.svg_to_bytes(svg_path=str(svg_path), width=width, height=height))
    image = QImage()
    assert image.loadFromData(png, "PNG"), "resvg returned no PNG"
    return pixels(image)


def blocks(a: np.ndarray, n: int = BLOCK) -> np.ndarray:
    """The mean colour of each n×n block: a glyph placed a pixel to the side stays in its block."""
    h, w = a.shape[0] // n * n, a.shape[1] // n * n
    return a[:h, :w].astype(np.float64).reshape(h // n, n, w // n, n, 3).mean(axis=(1, 3))


def mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference (0–255) of the two images' block means."""
    assert a.shape == b.shape
    return float(np.abs(blocks(a) - blocks(b)).mean())


def qt_unaided_svg(widget: QWidget, path) -> None:
    """The SVG as the generator writes it by itself (the exporter this project had before)."""
    gen = QSvgGenerator()
    gen.setFileName(str(path))
    gen.setSize(widget.size())
    gen.setViewBox(QRect(0, 0, widget.width(), widget.height()))
    painter = QPainter(gen)
    QWidget.render(widget, painter, QPoint())
    painter.end()
    text = path.read_text("utf-8")  # its millimetre size is rejected by resvg: pixels instead
    head, rest = text.split("viewBox", 1)
    head = head.split("<svg", 1)[0] + f'<svg width="{widget.width()}" height="{widget.height()}" '
    path.write_text(head + "viewBox" + rest, "utf-8")


SENTENCE = "the black cat sat on the mat"


@pytest.fixture(scope="module")
def traces():
    """The bundled Bahdanau and Transformer on a lecture sentence (loading takes a second)."""
    from explorer.assets import checkpoint_path
    from explorer.gui.state import LoadedModel
    from explorer.seq2seq.checkpoint import load_checkpoint

    def decoded(name: str):
        entry = LoadedModel.from_checkpoint(load_checkpoint(checkpoint_path(name)))
        return decode_job(entry, "greedy", SENTENCE)

    return {"rnn": decoded("classroom-bahdanau"), "transformer": decoded("classroom-transformer")}


def build(kind: str, traces, qtbot):
    """(view, export entry) of one view showing step STEP, as the Step-through panel feeds it."""
    trace = traces["transformer" if kind == "transformer" else "rnn"]

    def shown():
        return trace, STEP

    makers = {
        "alignment": (AlignmentView, lambda v: ex.alignment_data(shown)),
        "attention": (AttentionBarsView, lambda v: ex.attention_data(shown)),
        "top-k": (TopKView, lambda v: ex.topk_data(shown)),
        "hidden states": (HiddenStatesView, lambda v: ex.hidden_data(shown)),
        "arithmetic": (
            ArithmeticView,
            lambda v: ex.text_data("arithmetic", shown, lambda: list(v.text.lines)),
        ),
        "transformer": (TransformerView, lambda v: ex.self_attention_data(shown, -1, None)),
    }
    cls, data = makers[kind]
    view = cls()
    qtbot.addWidget(view)
    view.resize(640, 400)
    view.show()
    qtbot.waitExposed(view)
    view.set_trace(trace)
    view.set_step(STEP)
    qtbot.wait(10)
    return view, exportable(view, kind, lambda: data(view))


VIEWS = ("alignment", "attention", "top-k", "hidden states", "arithmetic", "transformer")


@pytest.mark.parametrize("kind", VIEWS)
def test_the_svg_renders_like_the_png(kind, traces, qtbot, tmp_path):
    view, entry = build(kind, traces, qtbot)
    png = entry.save(tmp_path / "v.png")
    svg = entry.save(tmp_path / "v.svg")
    shot = pixels(QImage(str(png)))
    w, h = view.width() * PNG_SCALE, view.height() * PNG_SCALE
    assert shot.shape == (h, w, 3)  # the PNG is the view at twice its size
    drawn = resvg(svg, w, h)
    assert mean_diff(drawn, shot) < MAX_MEAN_DIFF


def cell_centres(view: AlignmentView) -> list[tuple[int, int, QPointF]]:
    """(row, col, where the cell's centre is in the view's own pixels) of every cell."""
    plot = view.plot
    vb = plot.getPlotItem().getViewBox()
    rows, cols = view.shape
    out = []
    for r in range(rows):
        for c in range(cols):
            scene = vb.mapViewToScene(QPointF(c + 0.5, r + 0.5))
            local = plot.mapFromScene(scene)
            out.append((r, c, QPointF(plot.mapTo(view, local))))
    return out


def test_heat_map_cells_keep_their_colours_in_the_svg(traces, qtbot, tmp_path):
    view, entry = build("alignment", traces, qtbot)
    shot = pixels(QImage(str(entry.save(tmp_path / "a.png"))))
    drawn = resvg(entry.save(tmp_path / "a.svg"), *shot.shape[1::-1])
    checked = 0
    for _, _, p in cell_centres(view):
        x, y = int(p.x() * PNG_SCALE), int(p.y() * PNG_SCALE)
        screen, svg = shot[y, x].astype(int), drawn[y, x].astype(int)
        assert np.abs(screen - svg).max() <= CELL_TOLERANCE, (x, y, screen, svg)
        checked += 1
    assert checked == view.shape[0] * view.shape[1] > 4


@pytest.mark.parametrize("kind", ("alignment", "attention"))
def test_the_comparison_tells_qt_unaided_svg_apart(kind, traces, qtbot, tmp_path):
    """The measure above can fail: the SVG Qt writes by itself (the earlier exporter) breaks it."""
    view, entry = build(kind, traces, qtbot)
    shot = pixels(QImage(str(entry.save(tmp_path / "v.png"))))
    qt_unaided_svg(view, tmp_path / "raw.svg")
    drawn = resvg(tmp_path / "raw.svg", *shot.shape[1::-1])
    assert mean_diff(drawn, shot) > 2 * MAX_MEAN_DIFF


def test_data_files_name_model_sentence_and_step(traces, qtbot, tmp_path):
    view, entry = build("alignment", traces, qtbot)
    trace = traces["rnn"]
    data = json.loads(entry.save(tmp_path / "a.json").read_text("utf-8"))
    assert (data["view"], data["model"], data["source"]) == ("alignment", trace.model, trace.source)
    assert (data["step"], data["steps"]) == (STEP + 1, len(trace))
    assert data["columns"] == ["step", "target", *trace.src_pieces]
    assert len(data["rows"]) == STEP + 1  # the rows written so far, as the view shows them
    alpha = trace.attention_matrix()
    for i, row in enumerate(data["rows"]):
        assert row[:2] == [i + 1, trace.pieces[i]]
        assert np.allclose(row[2:], alpha[i], atol=1e-6)
    text = entry.save(tmp_path / "a.csv").read_text("utf-8")
    comments = [line for line in text.splitlines() if line.startswith("#")]
    assert comments[:4] == [
        "# view: alignment",
        f"# model: {trace.model}",
        f"# source: {trace.source}",
        f"# step: {STEP + 1}",
    ]
    table = list(csv.reader(io.StringIO("\n".join(text.splitlines()[len(comments) :]))))
    assert table[0] == ["step", "target", *trace.src_pieces]
    assert [float(v) for v in table[1][2:]] == pytest.approx(alpha[0], abs=1e-5)
    png = QImage(str(entry.save(tmp_path / "a.png")))
    assert png.text("model") == trace.model and png.text("step") == str(STEP + 1)
    assert trace.source in entry.save(tmp_path / "a.svg").read_text("utf-8")


def test_a_view_with_nothing_to_show_says_so(qtbot, tmp_path):
    view = AlignmentView()
    qtbot.addWidget(view)
    entry = exportable(view, "alignment", lambda: ex.alignment_data(lambda: (None, 0)))
    with pytest.raises(ValueError, match="decode a sentence first"):
        entry.save(tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"\.png, \.svg, \.csv, \.json"):
        entry.save(tmp_path / "a.bmp")
    assert not list(tmp_path.iterdir())


def test_the_right_click_menu_offers_the_four_files(traces, qtbot):
    from explorer.gui.widgets.export import ACTIONS, export_menu, export_of

    view, entry = build("top-k", traces, qtbot)
    assert export_of(view) is entry
    menu = export_menu(view, entry)
    assert [a.text() for a in menu.actions()] == list(ACTIONS)
    assert [a.data() for a in menu.actions()] == [".png", ".svg", ".csv", ".json"]


def test_every_step_through_view_has_the_menu(qtbot):
    from explorer.gui.session import Session
    from explorer.gui.step.panel import StepPanel
    from explorer.gui.widgets.export import export_of

    panel = StepPanel(Session())
    qtbot.addWidget(panel)
    views = [panel.alignment, panel.bars.plot, panel.bars.context, panel.topk, panel.hidden,
             panel.arithmetic, panel.transformer, panel.compare]  # fmt: skip
    names = [export_of(v).name if export_of(v) else None for v in views]
    assert names == ["alignment", "attention", "context", "top-k", "hidden states",
                     "arithmetic", "transformer", "compare"]  # fmt: skip


def test_a_non_scaling_stroke_leaves_its_scaled_group():
    """Qt writes a 3-px outline in a plot scaled 50×30 as a non-scaling stroke; renderers without
    that effect drew it 150 px wide. Rewritten, the shape is in the parent's pixels."""
    from explorer.gui.widgets.svg import portable

    qt = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="10mm" height="5mm" viewBox="0 0 400 300">'
        '<g stroke="#dc2828" stroke-width="3" transform="matrix(50,0,0,30,10,20)" '
        'font-family="Sans Serif">'
        '<rect vector-effect="non-scaling-stroke" x="0" y="2" width="8" height="1"/>'
        '<path vector-effect="non-scaling-stroke" d="M0,0 L1,1 C2,2 3,3 4,4 Z"/>'
        '<text x="1" y="1">kept under the matrix</text></g></svg>'
    )
    out = portable(qt, 400, 300, lambda family: "DejaVu Sans")
    assert 'width="400" height="300"' in out and "mm" not in out
    assert 'x="10" y="80" width="400" height="30"' in out  # (0,2)+(8,1) through the matrix
    assert 'd="M10,20 L60,50 C110,80 160,110 210,140 Z"' in out
    assert "vector-effect" not in out
    assert 'transform="matrix(50,0,0,30,10,20)"><text' in out.replace("\n", "")
    assert 'font-family="DejaVu Sans"' in out and "Sans Serif" not in out


def test_tree_sweep_and_curves_data_are_tables():
    from types import SimpleNamespace

    from explorer.gui.exports.beam import curves_data, sweep_data, tree_data

    with pytest.raises(ValueError, match="type a sentence first"):
        tree_data(None)
    origin = SimpleNamespace(model="m", text="classroom test set, first 3 pairs")
    record = SimpleNamespace(origin=origin, points=((1, 20.0, 7.5), (2, 21.0, 7.0)), done=True)
    data = sweep_data(record)
    assert data.columns == ("beam", "BLEU", "average length") and data.rows == record.points
    curves = curves_data("bahdanau (classroom)", {"loss": ([1, 2], [3.0, 2.5]), "lr": ([], [])})
    assert curves.rows == (("loss", 1, 3.0), ("loss", 2, 2.5))
    with pytest.raises(ValueError, match="train a model first"):
        curves_data("x", {"loss": ([], [])})


def test_a_right_click_on_a_plot_reaches_its_views_menu(qtbot, monkeypatch):
    """The click lands on a plot's viewport deep inside the view; the view's menu opens."""
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QContextMenuEvent
    from PySide6.QtWidgets import QApplication, QGraphicsView

    from explorer.gui.beam.panel import BeamPanel
    from explorer.gui.session import Session
    from explorer.gui.step.panel import StepPanel
    from explorer.gui.widgets import export

    opened = []
    monkeypatch.setattr(export, "_show_menu", lambda view, entry, pos: opened.append(entry.name))
    session = Session()
    step, beam = StepPanel(session), BeamPanel(session)
    for panel in (step, beam):
        qtbot.addWidget(panel)
        panel.resize(1200, 800)
        panel.show()
        qtbot.waitExposed(panel)
    views = {"alignment": step.alignment, "attention": step.bars.plot, "top-k": step.topk,
             "beam tree": beam.tree_view}  # fmt: skip
    for name, view in views.items():
        plot = view if isinstance(view, QGraphicsView) else view.findChildren(QGraphicsView)[0]
        target = plot.viewport()
        centre = target.rect().center()
        event = QContextMenuEvent(
            QContextMenuEvent.Reason.Mouse, centre, target.mapToGlobal(centre)
        )
        assert event.type() == QEvent.Type.ContextMenu
        QApplication.sendEvent(target, event)
        assert opened[-1:] == [name], (name, opened)
    # pyqtgraph's own right-click menu (with its failing SVG export) gives way to ours
    assert not beam.sweep.plot.getPlotItem().getViewBox().menuEnabled()


def test_the_compare_column_exports_its_own_models_numbers(traces, qtbot, tmp_path):
    from explorer.gui.session import Session
    from explorer.gui.step.panel import StepPanel
    from explorer.gui.widgets.export import export_of

    panel = StepPanel(Session())
    qtbot.addWidget(panel)
    entry = export_of(panel.compare)
    with pytest.raises(ValueError, match="tick Compare"):
        entry.save(tmp_path / "c.json")
    other = traces["transformer"]
    panel.compare.set_trace(other)
    data = json.loads(entry.save(tmp_path / "c.json").read_text("utf-8"))
    assert (data["view"], data["model"]) == ("compare", other.model)
    assert len(data["rows"]) == panel.t + 1  # the comparison's alignment so far
