"""Light and dark themes, and font sizes that follow the screen (projector mode included).

Font sizes are a pure function of the screen: :func:`metrics` turns a screen size and the projector
switch into pixel sizes for body text, plot labels and titles. In projector mode body text and every
plot label (ticks, axis labels, legends, colour-bar ticks, the warning banner) are at least 1/45 of
the screen height: 16 px on a 1280 × 720 projector, 24 px at 1920 × 1080.

The window owns the theme; panels follow it through :func:`signals`: ``changed(theme, scale)`` is
emitted whenever the theme or the font sizes change. ``scale`` is the body text's size relative to
the 10-point base font, so a panel's own point sizes times ``scale`` keep their proportion to the
body text. :func:`style_plot` applies the current sizes to a pyqtgraph ``PlotItem``'s axes, title
and legend. pyqtgraph itself is not imported here: plot modules take it from
:mod:`explorer.gui.widgets.plotting`, which configures it for the current theme.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QCheckBox, QRadioButton, QWidget

if TYPE_CHECKING:
    import pyqtgraph as pg

THEMES = ("light", "dark")
BASE_POINT_SIZE = 10.0  # the size ``scale`` 1.0 stands for
PLOT_LABEL_PT = 10.0  # a plot label's size, in the same proportion to the body text
TITLE_PT = 12.0
PROJECTOR_LINES = 45  # projector mode: body text is at least 1/45 of the screen height
NORMAL_LINES = 64  # otherwise 1/64 of it (14 px at 900, 17 px at 1080) ...
NORMAL_MIN_PX = 13  # ... and never under 13 px
FUSION_INDICATOR_PX = 14  # Fusion's own check box and radio button indicator at 96 dpi
DEFAULT_SCREEN = (1400, 900)  # where no screen can be asked (no application yet)


@dataclass(frozen=True)
class Metrics:
    """Pixel sizes of the text for one screen and mode."""

    screen: tuple[int, int]  # (width, height) the sizes were made for
    projector: bool
    body_px: int  # widgets' text, the status bar, the banner
    plot_px: int  # axis ticks and labels, legends, colour-bar ticks
    title_px: int  # plot titles

    @property
    def scale(self) -> float:
        """Body text relative to the 10-point base font at 96 dpi (13.3 px)."""
        return self.body_px / (BASE_POINT_SIZE * 96 / 72)

    @property
    def indicator_px(self) -> int:
        """A check box's or radio button's indicator: a square as tall as the body text's size
        (Fusion's fixed 14 px was a speck beside projector mode's 24 px text), never smaller
        than Fusion's."""
        return max(FUSION_INDICATOR_PX, self.body_px)

    @property
    def floor_px(self) -> int:
        """The least size of any text in this mode (projector: 1/45 of the screen height)."""
        return self.body_px if self.projector else NORMAL_MIN_PX


def metrics(width: int, height: int, projector: bool = False) -> Metrics:
    """Font sizes for a ``width`` × ``height`` screen. Projector mode: body and plot text
    ``ceil(height / 45)`` px; otherwise ``height / 64`` px, at least 13."""
    if width <= 0 or height <= 0:
        raise ValueError(f"screen size must be positive, not {width} × {height}")
    if projector:
        body = math.ceil(height / PROJECTOR_LINES)
    else:
        body = max(NORMAL_MIN_PX, round(height / NORMAL_LINES))
    return Metrics((width, height), projector, body, body, round(body * TITLE_PT / PLOT_LABEL_PT))


COLORS = {
    "light": {
        "window": "#f6f6f4",
        "base": "#ffffff",
        "text": "#1c1c1c",
        "button": "#e9e9e6",
        "highlight": "#2f6fde",
        "plot_bg": "#ffffff",
        "plot_fg": "#222222",
        "muted": "#666666",  # secondary numbers on a plot: the beam tree's edge log p
        "mask": "#f5f5f5",  # a heatmap's steps not reached yet
        "warn_bg": "#fff1c9",
        "warn_fg": "#3d2f00",
        "error_bg": "#ffd9d4",
        "error_fg": "#4a0d08",
    },
    "dark": {
        "window": "#202124",
        "base": "#2a2b2e",
        "text": "#ececec",
        "button": "#35363a",
        "highlight": "#5d8fef",
        "plot_bg": "#18191b",
        "plot_fg": "#dddddd",
        "muted": "#b4b4b4",
        "mask": "#2c2d30",
        "warn_bg": "#5a4a12",
        "warn_fg": "#fff4cc",
        "error_bg": "#6b2320",
        "error_fg": "#ffe3df",
    },
}
# One colour per curve, distinguishable on a projector and for the common colour-blindnesses.
SERIES = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#7f7f7f"]


class ThemeSignals(QObject):
    changed = Signal(str, float)  # theme name, font scale (Metrics.scale)

    def __init__(self) -> None:
        super().__init__()
        self.theme = "light"
        self._metrics: Metrics | None = None

    @property
    def metrics(self) -> Metrics:
        """The sizes applied last; before the first apply(), those it gives without a screen."""
        if self._metrics is None:
            return metrics(*screen_size())
        return self._metrics

    @metrics.setter
    def metrics(self, value: Metrics) -> None:
        self._metrics = value

    @property
    def scale(self) -> float:
        return self.metrics.scale


_signals: ThemeSignals | None = None


def signals() -> ThemeSignals:
    """The process-wide theme notifier (created on first use, after the QApplication)."""
    global _signals
    if _signals is None:
        _signals = ThemeSignals()
        app = QApplication.instance()
        if app is not None and _signals.thread() is not app.thread():
            # First asked for on a worker importing the plot modules: the notifier belongs to
            # the application's thread, not to one that is about to end.
            _signals.moveToThread(app.thread())
    return _signals


def color(key: str) -> str:
    return COLORS[signals().theme][key]


def palette(theme: str) -> QPalette:
    c = COLORS[theme]
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: c["window"],
        QPalette.ColorRole.Base: c["base"],
        QPalette.ColorRole.AlternateBase: c["button"],
        QPalette.ColorRole.Text: c["text"],
        QPalette.ColorRole.WindowText: c["text"],
        QPalette.ColorRole.ButtonText: c["text"],
        QPalette.ColorRole.Button: c["button"],
        QPalette.ColorRole.Highlight: c["highlight"],
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.ToolTipBase: c["base"],
        QPalette.ColorRole.ToolTipText: c["text"],
        QPalette.ColorRole.PlaceholderText: "#888888",
    }
    for role, value in roles.items():
        p.setColor(role, QColor(value))
    return p


def screen_size() -> tuple[int, int]:
    """The primary screen's available size; ``DEFAULT_SCREEN`` without one."""
    screen = QGuiApplication.primaryScreen() if QGuiApplication.instance() else None
    if screen is None:
        return DEFAULT_SCREEN
    g = screen.availableGeometry()
    return (g.width(), g.height()) if g.width() > 0 and g.height() > 0 else DEFAULT_SCREEN


def apply(
    app: QApplication,
    theme: str = "light",
    projector: bool = False,
    screen: tuple[int, int] | None = None,
) -> Metrics:
    """Set the palette, the application font and pyqtgraph's colours for ``screen`` (width,
    height; the primary screen's by default); tell the panels. Returns the sizes applied."""
    if theme not in THEMES:
        raise ValueError(f"unknown theme {theme!r}; expected one of {', '.join(THEMES)}")
    s = signals()
    s.theme, s.metrics = theme, metrics(*(screen or screen_size()), projector)
    app.setStyle("Fusion")
    app.setPalette(palette(theme))
    font = QFont(app.font())
    font.setPixelSize(s.metrics.body_px)
    app.setFont(font)
    configure_pyqtgraph()
    size_indicators(app.allWidgets())  # and each panel's, when it is built
    refresh_styled_widgets(app)
    s.changed.emit(s.theme, s.scale)
    return s.metrics


def indicator_sheet(m: Metrics) -> str:
    """A check box's or radio button's own style sheet: its indicator ``m.indicator_px`` square
    (the style draws its box, tick and circle to the square it is given) and its text at body
    size. The size is named here because a widget with a style sheet does not always follow the
    application's font: started in projector mode, the window's boxes kept 13-px labels."""
    size = m.indicator_px
    kinds = ("QCheckBox", "QRadioButton")
    return " ".join(
        f"{k} {{ font-size: {m.body_px}px; }} "
        f"{k}::indicator {{ width: {size}px; height: {size}px; }}"
        for k in kinds
    )


def size_indicators(widgets) -> None:
    """Give every check box and radio button among ``widgets`` the indicator sheet for the
    current sizes. On each widget, not the application: an application style sheet changes how
    fonts pass from a widget to its children (a scroll area's viewport kept its first font),
    and a proxy style answering Fusion's sizes from Python slowed every repaint."""
    sheet = indicator_sheet(signals().metrics)
    for w in widgets:
        if isinstance(w, (QCheckBox, QRadioButton)) and w.styleSheet() != sheet:
            w.setStyleSheet(sheet)


def refresh_styled_widgets(app: QApplication) -> None:
    """Widgets with a style sheet of their own keep the palette and font they were polished with
    when the application's change: polish them again. superqt's slider labels (the step counter
    beside a slider) fix their size to their font when shown; size them for the new font."""
    for widget in app.allWidgets():
        sheet = widget.styleSheet()
        if sheet:
            widget.setStyleSheet("")
            widget.setStyleSheet(sheet)
        fit = getattr(widget, "_update_size", None)
        if callable(fit) and type(widget).__name__ == "SliderLabel":
            fit()


def banner_style(error: bool = False) -> str:
    """The style sheet of a warning (or error) banner: its colours for the current theme, and
    bold body-size text."""
    kind = "error" if error else "warn"
    return (
        f"background: {color(kind + '_bg')}; color: {color(kind + '_fg')}; padding: 8px; "
        f"border-radius: 4px; font-weight: bold; font-size: {signals().metrics.body_px}px;"
    )


def luminance(c: str | QColor) -> float:
    """WCAG relative luminance of a colour."""
    q = QColor(c)

    def channel(v: float) -> float:
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(q.redF()) + 0.7152 * channel(q.greenF()) + 0.0722 * channel(q.blueF())


def contrast_ratio(a: str | QColor, b: str | QColor) -> float:
    """WCAG contrast ratio of two colours: 1 (the same) to 21 (black on white); text wants 4.5."""
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def configure_pyqtgraph(module=None) -> None:
    """pyqtgraph's default colours for the current theme; nothing while pyqtgraph is not loaded
    (:mod:`explorer.gui.widgets.plotting` calls this once it has loaded it, possibly on a worker
    that is importing it right now: hence the look for the function rather than the module)."""
    set_options = getattr(module or sys.modules.get("pyqtgraph"), "setConfigOptions", None)
    if set_options is not None:
        c = COLORS[signals().theme]
        set_options(background=c["plot_bg"], foreground=c["plot_fg"], antialias=True)


def _sizes(scale: float | None) -> Metrics:
    """The current sizes, or those of the current screen at body scale ``scale``."""
    m = signals().metrics
    if scale is None or math.isclose(scale, m.scale):
        return m
    body = round(scale * BASE_POINT_SIZE * 96 / 72)
    return Metrics(m.screen, m.projector, body, body, round(body * TITLE_PT / PLOT_LABEL_PT))


def scaled_font(font: QFont, factor: float = 1.0, size_of: QFont | None = None) -> QFont:
    """A copy of ``font`` ``factor`` times as large as ``size_of`` (by default ``font`` itself),
    in the unit that was set in (the window's fonts are set in pixels, from the screen; a font
    set in points stays in points)."""
    f, like = QFont(font), font if size_of is None else size_of
    if like.pixelSize() > 0:
        f.setPixelSize(max(1, round(like.pixelSize() * factor)))
    else:
        f.setPointSizeF(like.pointSizeF() * factor)
    return f


def plot_font(scale: float | None = None) -> QFont:
    f = QFont()
    f.setPixelSize(_sizes(scale).plot_px)
    return f


def style_plot(item: pg.PlotItem, scale: float | None = None) -> None:
    """Axis tick and label fonts, legend, title and colours of ``item`` for the current theme
    and sizes."""
    m = _sizes(scale)
    font = plot_font(scale)
    fg = color("plot_fg")
    for name in ("left", "bottom", "right", "top"):
        style_axis(item.getAxis(name), font, fg)
    item.titleLabel.item.setFont(font)
    item.titleLabel.setAttr("color", fg)
    if item.titleLabel.text:
        item.titleLabel.setText(item.titleLabel.text, size=f"{m.title_px}px")
        fit_title_row(item)
    if item.legend is not None:
        item.legend.setLabelTextSize(f"{m.plot_px}px")
        item.legend.setLabelTextColor(fg)
        for _, label in item.legend.items:
            label.setText(label.text)  # the new size and colour are drawn at the next text
        item.legend.updateSize()
    vb = item.getViewBox()
    vb.setBackgroundColor(color("plot_bg"))


def fit_title_row(item: pg.PlotItem) -> None:
    """The title's row as tall as its text. pyqtgraph's ``setTitle`` fixes it at 30 px, which
    cut the descenders and underscores off titles of 20 px and more (projector mode: c_t read
    "c t"); call this after every ``setTitle``."""
    if item.titleLabel.isVisible() and item.titleLabel.text:
        height = math.ceil(item.titleLabel.item.boundingRect().height())
        item.titleLabel.setMaximumHeight(height)
        item.layout.setRowFixedHeight(0, height)


def style_axis(axis, font: QFont, fg: str) -> None:
    """One pyqtgraph ``AxisItem``: tick font, label and colours."""
    axis.setStyle(tickFont=font)
    axis.setTextPen(fg)
    axis.setPen(fg)
    axis.label.setFont(font)
    if axis.labelText:  # a styled label's HTML names its own size and colour
        axis.labelStyle = {**axis.labelStyle, "font-size": f"{font.pixelSize()}px", "color": fg}
        axis._updateLabel()


def style_plots(root: QWidget, scale: float | None = None) -> None:
    """:func:`style_plot` on every pyqtgraph plot inside ``root``, their backgrounds, and the
    axes of their colour bars."""
    from explorer.gui.widgets.plotting import pg

    font, fg = plot_font(scale), color("plot_fg")
    for widget in root.findChildren(pg.PlotWidget):
        widget.setBackground(color("plot_bg"))
        item = widget.getPlotItem()
        style_plot(item, scale)
        for child in item.scene().items():
            if isinstance(child, pg.ColorBarItem):
                style_axis(child.axis, font, fg)
                # pyqtgraph fixes the bar's axis at 45 px: wider labels ("−0.97" under
                # projector fonts) were not drawn at all
                child.axis.setWidth(
                    max(45, math.ceil(QFontMetricsF(font).horizontalAdvance("-0.00")) + 16)
                )
