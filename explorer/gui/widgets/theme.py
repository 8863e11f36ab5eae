"""Light and dark themes, and projector mode (every font and plot label enlarged).

The window owns the theme; panels follow it through :func:`signals`: ``changed(theme, scale)`` is
emitted whenever the theme or the projector scale changes, and :func:`style_plot` applies the
current scale to a pyqtgraph ``PlotItem``'s axes and title. pyqtgraph itself is not imported here:
plot modules take it from :mod:`explorer.gui.widgets.plotting`, which configures it for the
current theme.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication, QWidget

if TYPE_CHECKING:
    import pyqtgraph as pg

THEMES = ("light", "dark")
PROJECTOR_SCALE = 1.6  # application font and plot labels in projector mode
BASE_POINT_SIZE = 10.0
PLOT_LABEL_PT = 10.0
TITLE_PT = 12.0

COLORS = {
    "light": {
        "window": "#f6f6f4",
        "base": "#ffffff",
        "text": "#1c1c1c",
        "button": "#e9e9e6",
        "highlight": "#2f6fde",
        "plot_bg": "#ffffff",
        "plot_fg": "#222222",
        "mask": "#f5f5f5",  # a heatmap's steps not reached yet
        "warn_bg": "#fff1c9",
        "error_bg": "#ffd9d4",
    },
    "dark": {
        "window": "#202124",
        "base": "#2a2b2e",
        "text": "#ececec",
        "button": "#35363a",
        "highlight": "#5d8fef",
        "plot_bg": "#18191b",
        "plot_fg": "#dddddd",
        "mask": "#2c2d30",
        "warn_bg": "#5a4a12",
        "error_bg": "#6b2320",
    },
}
# One colour per curve, distinguishable on a projector and for the common colour-blindnesses.
SERIES = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#7f7f7f"]


class ThemeSignals(QObject):
    changed = Signal(str, float)  # theme name, font scale (1.0, or PROJECTOR_SCALE)

    def __init__(self) -> None:
        super().__init__()
        self.theme = "light"
        self.scale = 1.0


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


def apply(app: QApplication, theme: str = "light", projector: bool = False) -> None:
    """Set the palette, the application font and pyqtgraph's colours; tell the panels."""
    if theme not in THEMES:
        raise ValueError(f"unknown theme {theme!r}; expected one of {', '.join(THEMES)}")
    s = signals()
    s.theme, s.scale = theme, PROJECTOR_SCALE if projector else 1.0
    app.setStyle("Fusion")
    app.setPalette(palette(theme))
    font = QFont(app.font())
    font.setPointSizeF(BASE_POINT_SIZE * s.scale)
    app.setFont(font)
    configure_pyqtgraph()
    s.changed.emit(s.theme, s.scale)


def configure_pyqtgraph(module=None) -> None:
    """pyqtgraph's default colours for the current theme; nothing while pyqtgraph is not loaded
    (:mod:`explorer.gui.widgets.plotting` calls this once it has loaded it, possibly on a worker
    that is importing it right now: hence the look for the function rather than the module)."""
    set_options = getattr(module or sys.modules.get("pyqtgraph"), "setConfigOptions", None)
    if set_options is not None:
        c = COLORS[signals().theme]
        set_options(background=c["plot_bg"], foreground=c["plot_fg"], antialias=True)


def plot_font(scale: float | None = None) -> QFont:
    f = QFont()
    f.setPointSizeF(PLOT_LABEL_PT * (signals().scale if scale is None else scale))
    return f


def style_plot(item: pg.PlotItem, scale: float | None = None) -> None:
    """Axis tick and label fonts, and colours, of ``item`` for the current theme and scale."""
    scale = signals().scale if scale is None else scale
    font = plot_font(scale)
    fg = color("plot_fg")
    size = f"{PLOT_LABEL_PT * scale:g}pt"
    for name in ("left", "bottom", "right", "top"):
        axis = item.getAxis(name)
        axis.setStyle(tickFont=font)
        axis.setTextPen(fg)
        axis.setPen(fg)
        axis.label.setFont(font)
        if axis.labelText:  # a styled label's HTML names its own size and colour
            axis.labelStyle = {**axis.labelStyle, "font-size": size, "color": fg}
            axis._updateLabel()
    item.titleLabel.item.setFont(font)
    item.titleLabel.setAttr("color", fg)
    if item.titleLabel.text:
        item.titleLabel.setText(item.titleLabel.text, size=f"{TITLE_PT * scale:g}pt")
    if item.legend is not None:
        for _, label in item.legend.items:
            label.item.setFont(font)
            label.setAttr("color", fg)
    vb = item.getViewBox()
    vb.setBackgroundColor(color("plot_bg"))


def style_plots(root: QWidget, scale: float | None = None) -> None:
    """:func:`style_plot` on every pyqtgraph plot inside ``root``, and their backgrounds."""
    from explorer.gui.widgets.plotting import pg

    for widget in root.findChildren(pg.PlotWidget):
        widget.setBackground(color("plot_bg"))
        style_plot(widget.getPlotItem(), scale)
