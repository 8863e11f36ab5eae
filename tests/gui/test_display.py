"""The window on a projector and a laptop screen: it fits the screen, every text is at least the
floor of its mode, light and dark switch both ways cleanly, and it opens on Step-through with a
lecture example decoded and a status bar that names the current model. Real bundled models,
offscreen, with the screen size given to the window."""

from __future__ import annotations

import math

import pytest
from PySide6.QtCore import QSettings, Qt, QThreadPool
from PySide6.QtGui import QFontInfo, QFontMetricsF, QImage, QPainter, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QGraphicsSimpleTextItem,
    QGraphicsTextItem,
    QScrollArea,
    QWidget,
)

from explorer.gui.beam.panel import TREE_MIN_WIDTH
from explorer.gui.widgets import theme
from explorer.gui.window import MODELS_DIR, MainWindow

SCREENS = [(1280, 720), (1920, 1080)]
PANELS = ("train", "step", "beam")


@pytest.fixture
def open_window(qtbot, tmp_path):
    """A window with the bundled models, for a screen of the given size, once they are loaded."""
    windows = []

    def make(screen: tuple[int, int], **kw) -> MainWindow:
        settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        for key, value in kw.items():
            settings.setValue(key, value)
        w = MainWindow(settings=settings, models_dir=MODELS_DIR, error_dialogs=False, screen=screen)
        qtbot.addWidget(w)
        windows.append(w)
        w.show()
        qtbot.waitUntil(lambda: not w.loading and w.state.current is not None, timeout=120_000)
        settle(qtbot)
        return w

    yield make
    for w in windows:
        w.shutdown()
    theme.apply(QApplication.instance(), "light", False)
    assert QThreadPool.globalInstance().activeThreadCount() == 0


def settle(qtbot) -> None:
    pool = QThreadPool.globalInstance()
    qtbot.waitUntil(lambda: pool.activeThreadCount() == 0, timeout=120_000)
    qtbot.wait(100)


def px(font) -> int:
    return QFontInfo(font).pixelSize()


def small_texts(root: QWidget, floor: int) -> list[str]:
    """Every visible widget and every text drawn in a plot inside ``root`` whose font is under
    ``floor`` pixels, named so that a failure says where."""
    from explorer.gui.widgets.plotting import pg

    out = []
    for w in [root, *root.findChildren(QWidget)]:
        if w.isVisible() and px(w.font()) < floor:
            out.append(f"{type(w).__name__} {w.objectName()!r}: {px(w.font())} px")
    for view in root.findChildren(pg.GraphicsView):
        for item in view.scene().items():
            if isinstance(item, (QGraphicsTextItem, QGraphicsSimpleTextItem)):
                text = item.toPlainText() if hasattr(item, "toPlainText") else item.text()
                size = drawn_px(item)
                if item.isVisible() and text.strip() and size < floor:
                    out.append(f"plot text {text[:20]!r}: {size} px")
            elif isinstance(item, pg.AxisItem) and item.isVisible():
                tick = item.style.get("tickFont")
                if tick is not None and px(tick) < floor:
                    out.append(f"axis ticks {item.orientation} {item.labelText!r}: {px(tick)} px")
    return out


def small_indicators(root: QWidget, floor: int) -> list[str]:
    """Every visible check box or radio button inside ``root`` whose indicator (the box or circle
    the style draws) is under ``floor`` pixels high or wide."""
    return small_indicators_of([w for w in root.findChildren(QWidget) if w.isVisible()], floor)


def small_indicators_of(widgets, floor: int) -> list[str]:
    from PySide6.QtWidgets import QCheckBox, QRadioButton, QStyle, QStyleOptionButton

    out = []
    for kind, element in (
        (QCheckBox, QStyle.SubElement.SE_CheckBoxIndicator),
        (QRadioButton, QStyle.SubElement.SE_RadioButtonIndicator),
    ):
        for w in (w for w in widgets if isinstance(w, kind)):
            option = QStyleOptionButton()
            w.initStyleOption(option)
            box = w.style().subElementRect(element, option, w)
            if min(box.width(), box.height()) < floor:
                out.append(f"{kind.__name__} {w.text()!r}: {box.width()} × {box.height()} px")
    return out


def drawn_px(item) -> int:
    """The smallest font a text item draws with: an HTML label's spans name their own sizes."""
    if isinstance(item, QGraphicsSimpleTextItem):
        return px(item.font())
    sizes, block = [], item.document().begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            if fragment.text().strip():
                sizes.append(px(fragment.charFormat().font().resolve(item.font())))
            it += 1
        block = block.next()
    return min(sizes, default=px(item.font()))


def second_row(rect, text: str):
    """A staggered label ("\nword") is drawn on the second of its two lines: only that line."""
    return rect.adjusted(0, rect.height() / 2, 0, 0) if text.startswith("\n") else rect


def overlapping_labels(root: QWidget) -> list[str]:
    """Every pair of tick labels that pyqtgraph would draw over each other on a visible axis
    inside ``root`` (it always draws the first level of ticks, however crowded)."""
    from explorer.gui.widgets.plotting import pg

    out = []
    for view in root.findChildren(pg.GraphicsView):
        if not view.isVisible():
            continue
        axes = [i for i in view.scene().items() if isinstance(i, pg.AxisItem) and i.isVisible()]
        for axis in axes:
            if getattr(axis, "rotated", False):  # upright labels: their flat boxes say nothing
                continue  # (placement.fit_labels keeps them apart, tested in test_step_placement)
            image = QImage(8, 8, QImage.Format.Format_ARGB32)
            painter = QPainter(image)
            painter.setFont(axis.style["tickFont"] or axis.font())
            specs = axis.generateDrawSpecs(painter)
            painter.end()
            texts = [
                (second_row(rect, text), text) for rect, _, text in (specs[2] if specs else [])
            ]
            for i, (rect, text) in enumerate(texts):
                for other, other_text in texts[i + 1 :]:
                    if rect.intersects(other):
                        owner = type(view.parentWidget()).__name__
                        out.append(f"{owner} {axis.orientation} {axis.labelText!r}: "
                                   f"{text!r} over {other_text!r}")  # fmt: skip
    return out


def halfway_run(curves, steps: int = 600) -> None:
    """Curves of a run halfway through: loss 7 → 1.25 nats (perplexity 1,100 → 3.5: eight 1-2-5
    ticks on the log axis, which crowded a short plot), a step schedule's learning rate,
    thousands of tokens a second and BLEU at each evaluation."""
    from explorer.seq2seq.training.options import Progress

    for s in range(1, steps + 1):
        loss = 1.24 + 5.82 * math.exp(-s / 100)
        curves.add(Progress("step", s, 2 * steps, loss=loss, perplexity=math.exp(loss),
                            lr=3e-3 * 0.5 ** (s // 250), grad_norm=2.0 - s / steps,
                            tokens_per_second=12_000.0 + s))  # fmt: skip
        if s % 100 == 0:
            curves.add(Progress("eval", s, 2 * steps, val_loss=loss + 0.1,
                                perplexity=math.exp(loss + 0.1), val_bleu=s / 10))  # fmt: skip
    curves.redraw()


def legend_sizes(root: QWidget) -> list[str]:
    from explorer.gui.widgets.plotting import pg

    return [
        w.getPlotItem().legend.opts["labelTextSize"]
        for w in root.findChildren(pg.PlotWidget)
        if w.getPlotItem().legend is not None
    ]


def curves_width(view, floor: float = 0.0) -> float:
    """The least width of a pyqtgraph ``GraphicsLayoutWidget``'s plots (the widget's own least
    width says nothing of them: narrower, they are drawn past its edge), at least ``floor``."""
    return max(floor, view.ci.effectiveSizeHint(Qt.SizeHint.MinimumSize).width())


@pytest.mark.parametrize("screen", SCREENS)
def test_every_panel_fits_the_screen_with_text_at_the_floor(open_window, qtbot, screen):
    w = open_window(screen)
    halfway_run(w.panels["train"].curves)  # ticks are checked with numbers on every axis
    for projector in (False, True):
        w.projector_action.setChecked(projector)
        w.apply_theme()
        m = theme.metrics(*screen, projector)
        assert px(QApplication.instance().font()) == m.body_px
        for key in PANELS:
            panel = w.set_panel(key)
            settle(qtbot)
            assert w.width() <= screen[0] and w.height() <= screen[1], (key, projector)
            need = w.minimumSizeHint()  # more than the screen: widgets squeezed over each other
            assert need.width() <= screen[0] and need.height() <= screen[1], (key, projector)
            assert w.statusBar().geometry().bottom() < screen[1]
            assert small_texts(panel, m.floor_px) == [], (key, projector)
            assert small_indicators(panel, m.floor_px) == [], (key, projector)
            assert all(size == f"{m.plot_px}px" for size in legend_sizes(panel))
            if key == "step":  # the sentence box shows the whole lecture example
                box = panel.sentence
                assert box.width() > box.fontMetrics().horizontalAdvance(box.text()), projector
            if key == "beam":  # the tree is no sliver beside the controls and details
                assert panel.tree_view.width() >= TREE_MIN_WIDTH, projector
                assert cut_fields(panel.controls) == [], projector  # the search's settings whole
            if key == "train":  # the curves are drawn inside their widget, not under the probe
                for view in (panel.curves, panel.replay.view):
                    if not view.isVisible():  # a hidden tab: laid out when it is shown
                        continue
                    assert view.width() + 1 >= curves_width(view), (view, projector)
            overlaps = overlapping_labels(panel)
            assert overlaps == [], (key, projector)


def cut_fields(column) -> list[str]:
    """Every visible label, spin box, combo, check box and button in the scroll area ``column``
    that reaches past its viewport's left or right edge, or is squeezed under its size hint
    (its text cut), named so that a failure says which."""
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox, QLabel

    viewport, out = column.viewport(), []
    kinds = (QLabel, QAbstractSpinBox, QComboBox, QAbstractButton)
    for w in column.widget().findChildren(QWidget):
        if not (isinstance(w, kinds) and w.isVisible()):
            continue
        left = w.mapTo(viewport, QPoint(0, 0)).x()
        name = f"{type(w).__name__} {w.objectName() or getattr(w, 'text', str)()!r}"
        if left < 0 or left + w.width() > viewport.width():
            out.append(f"{name}: x {left} to {left + w.width()} in {viewport.width()}")
        wraps = isinstance(w, QLabel) and w.wordWrap()
        if not wraps and w.width() < w.sizeHint().width():
            out.append(f"{name}: {w.width()} px wide, asks {w.sizeHint().width()}")
    return out


def test_the_options_column_is_its_content_and_chrome_within_the_room():
    from explorer.gui.widgets.column import options_width

    assert options_width(400, 16, 1272, 465) == 416  # room to spare: what the content asks
    assert options_width(900, 16, 1272, 465) == 807  # the other side keeps its least width
    assert options_width(400, 16, 300, 465) == 0  # no room at all


@pytest.mark.parametrize("screen", SCREENS)
def test_the_train_options_column_shows_every_field_whole(open_window, qtbot, screen):
    """The options column takes the width its fields ask for in every font (projector mode's
    16 and 24 px text included) and for both families' fields; no sideways scrolling."""
    w = open_window(screen)
    panel = w.set_panel("train")
    column, widths = panel.findChild(QScrollArea), []
    for projector in (False, True, False):
        w.projector_action.setChecked(projector)
        w.apply_theme()
        for arch in ("transformer", "bahdanau"):
            panel.form._set(panel.form.arch, arch)
            settle(qtbot)
            where = (projector, arch)
            assert cut_fields(column) == [], where
            assert not column.horizontalScrollBar().isVisible(), where
            table = panel.corpus.table  # the corpus's first pairs, none scrolled out of sight
            assert table.rowCount() > 0 and not table.verticalScrollBar().isVisible(), where
            assert column.width() == column.wanted(), where
            curves = panel.curves  # the curves keep their width beside the column
            if curves.isVisible():
                assert curves.width() + 1 >= curves_width(curves), where
        widths.append(column.width())
    # wider for the projector's text, and narrow again once it is off
    assert widths[0] < widths[1] and widths[2] < widths[1]


def test_indicators_are_as_tall_as_the_text(qtbot):
    from PySide6.QtWidgets import QCheckBox, QRadioButton

    assert theme.metrics(1280, 720, True).indicator_px == 16
    assert theme.metrics(1920, 1080, True).indicator_px == 24
    assert theme.metrics(1280, 720).indicator_px == 14  # Fusion's beside 13-px text
    boxes = [QCheckBox("log p"), QRadioButton("weights α_ti")]
    for box in boxes:
        qtbot.addWidget(box)
    theme.apply(QApplication.instance(), "light", True, (1920, 1080))
    theme.size_indicators(boxes)
    assert small_indicators_of(boxes, 24) == []
    for box in boxes:
        box.ensurePolished()  # the style sheet's font is set when the widget is polished
    assert [box.font().pixelSize() for box in boxes] == [24, 24]  # their labels at body size
    theme.apply(QApplication.instance(), "light", False, (1920, 1080))  # and back to the text's
    assert all(
        box.styleSheet() == theme.indicator_sheet(theme.metrics(1920, 1080)) for box in boxes
    )
    body = theme.metrics(1920, 1080).body_px
    for box in boxes:
        box.ensurePolished()
    assert [box.font().pixelSize() for box in boxes] == [body, body]


def test_projector_mode_off_gives_back_the_normal_sizes_banner_included(open_window, qtbot):
    w = open_window((1920, 1080))
    panel = w.set_panel("train")
    panel._show_banner("attention stays uniform", error=False)
    sizes = {}
    for projector in (False, True, False):
        w.projector_action.setChecked(projector)
        w.apply_theme()
        sizes.setdefault(projector, []).append(
            (px(QApplication.instance().font()), banner_px(panel.banner))
        )
    normal, big = theme.metrics(1920, 1080), theme.metrics(1920, 1080, True)
    assert sizes[False] == [(normal.body_px, normal.body_px)] * 2
    assert sizes[True] == [(big.body_px, big.body_px)]


def banner_px(banner) -> int:
    """The font size a banner's style sheet sets (what it is drawn with)."""
    sheet = banner.styleSheet()
    return int(sheet.split("font-size:")[1].split("px")[0])


def test_light_dark_light_keeps_the_banner_and_the_step_counter_readable(open_window, qtbot):
    w = open_window((1280, 720))
    step = w.set_panel("step")
    settle(qtbot)
    train = w.set_panel("train")
    train._show_banner("the probe translation repeats itself", error=False)
    for dark in (False, True, False):
        w.dark_action.setChecked(dark)
        w.apply_theme()
        QApplication.processEvents()  # palettes reach the widgets through events
        name = "dark" if dark else "light"
        c = theme.COLORS[name]
        sheet = train.banner.styleSheet()
        assert f"background: {c['warn_bg']}" in sheet and f"color: {c['warn_fg']};" in sheet
        assert theme.contrast_ratio(c["warn_fg"], c["warn_bg"]) >= 4.5
        w.set_panel("step")
        settle(qtbot)
        counter = step.slider._label  # the number beside the slider: the current step
        assert counter.isVisible() and counter.text() == str(step.slider.value())
        assert counter.width() >= counter.fontMetrics().horizontalAdvance(counter.text())
        fg = counter.palette().color(QPalette.ColorRole.Text)
        bg = step.palette().color(QPalette.ColorRole.Window)
        assert bg.name() == c["window"]
        assert theme.contrast_ratio(fg, bg) >= 4.5, (name, fg.name(), bg.name())
        w.set_panel("train")


def test_it_opens_on_step_through_with_a_lecture_example_decoded(open_window, qtbot):
    from explorer.seq2seq.data.classroom import EXAMPLES

    w = open_window((1280, 720))
    assert w.tabs.currentIndex() == 1 and w.current_panel() is w.panels["step"]
    step = w.panels["step"]
    qtbot.waitUntil(lambda: step.trace is not None, timeout=60_000)
    current = w.state.current
    assert "bahdanau" in current.name
    assert step.trace.source == current.prepare(EXAMPLES[0][0])
    assert len(step.trace) > 1 and step.sentence.text() == EXAMPLES[0][0]
    # The status bar names the current model, though three more loaded after it
    assert w.model_label.text() == f"model: {current.name}"
    assert w.model_label.isVisible() and w.model_label.geometry().right() <= 1280
    message = w.statusBar().currentMessage()
    assert message == "" or "also opened" in message or current.name in message


def test_a_top_k_plot_has_a_line_per_row_and_room_for_its_title_and_axis():
    from explorer.gui.step.topk import AXIS_MARGIN_PX, rows_height

    # five rows of 19 px, a 22-px title, the value axis's line and its ticks and margins
    assert rows_height(5, 19.0, 22.0) == 5 * 19 + 22 + 19 + 3 * AXIS_MARGIN_PX
    assert rows_height(5, 28.5, 34.0) > rows_height(5, 19.0, 22.0)  # larger text, taller plot


@pytest.mark.parametrize("screen", SCREENS)
def test_comparing_in_projector_mode_keeps_every_label_apart(open_window, qtbot, screen):
    w = open_window(screen)
    w.projector_action.setChecked(True)
    w.apply_theme()
    step = w.set_panel("step")
    step.compare_check.setChecked(True)
    settle(qtbot)
    assert overlapping_labels(step) == [], "\n".join(overlapping_labels(step))
    topk = step.compare.topk  # each candidate's row holds its label at full size
    topk.plot.grab()  # the row labels find their size when painted
    assert len(topk.labels.texts) >= 5 and topk.labels.shrink == 1.0, topk.labels.texts
    for view in (step.topk, topk):  # the step's line is whole beside the first model's too
        line = view.entropy_label
        assert line.fontMetrics().horizontalAdvance(line.text()) <= line.width(), line.text()


def test_a_move_to_another_screen_sizes_the_fonts_for_it(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings, models_dir=None, error_dialogs=False)
    qtbot.addWidget(w)
    w.show()
    here = theme.metrics(*w.screen_size())
    assert theme.signals().metrics == here
    theme.apply(QApplication.instance(), "light", False, (3840, 2160))  # as sized elsewhere
    assert theme.signals().metrics != here
    w.windowHandle().screenChanged.emit(w.windowHandle().screen())
    assert theme.signals().metrics == here
    assert px(QApplication.instance().font()) == here.body_px
    w.shutdown()


def test_a_given_screen_size_is_the_window_size_on_a_first_start(qtbot, tmp_path):
    """A first start maximises the window on the real screen; a screenshot's --size wins."""
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings, models_dir=None, error_dialogs=False)
    qtbot.addWidget(w)
    w.set_screen((1280, 720))
    w.show()
    qtbot.waitExposed(w)
    qtbot.wait(200)  # a maximised state would have been applied by now
    assert not w.isMaximized() and (w.width(), w.height()) == (1280, 720)
    w.shutdown()


def test_the_top_k_probability_axis_is_spaced_by_its_labels_width(qapp, qtbot):
    """A top-k's p axis gets the smallest of 0.05 … 1 whose labels ("0.25" wide, and a
    space) fit its width, and one tick level: pyqtgraph labels a minor level too where it fits,
    and 0.25 would read "0.2". Narrow (Compare, projector mode) and wide, refitted on resize."""
    from explorer.gui.step.topk import TopKView

    view = TopKView()
    qtbot.addWidget(view)
    view.show()
    axis = view.plot.getPlotItem().getAxis("bottom")
    for width, scale in ((300, 1.5), (1200, 1.0)):
        view.resize(width, 300)
        view.restyle(scale)
        qapp.processEvents()
        fm = QFontMetricsF(axis.style["tickFont"] or axis.font())
        room = fm.horizontalAdvance("0.25") + fm.horizontalAdvance(" ")
        most = axis.linkedView().width() // room  # intervals that fit, the range being 1.04
        fits = [s for s in (0.05, 0.1, 0.2, 0.5, 1.0) if 1.04 / s <= most]
        step = fits[0] if fits else 1.0
        qtbot.waitUntil(lambda step=step: axis.value_step == step, timeout=5_000)
        assert axis._tickSpacing == [(step, 0), (step, 0)]
    assert step < 0.5  # the wide view shows more than one label
