"""The Training tab's area: the six curves and the probe's attention map.

Side by side when there is room for both (the map sharpening beside the falling loss); on a
narrower area, such as a 1280×720 window or projector beside the options, two tabs of the whole
width instead, so neither covers the other and each keeps readable plots.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter, QStackedLayout, QTabWidget, QWidget

from explorer.gui.widgets import theme

# Three curve columns of about 220 px (each with its axis labels) and a map of about 440 px
# (with its labels and colour bar): a 1920-pixel window has room, 1400 and 1280 do not
SIDE_BY_SIDE_PX = 1100


def side_by_side(width: int, scale: float = 1.0) -> bool:
    """Whether an area ``width`` pixels wide shows the curves and the map side by side, with
    fonts at ``scale`` (projector mode's larger labels need more room)."""
    return width >= SIDE_BY_SIDE_PX * scale


class LiveArea(QWidget):
    """Holds ``curves`` and ``replay``, arranged by :func:`side_by_side` on every resize."""

    def __init__(self, curves: QWidget, replay: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.curves, self.replay = curves, replay
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.setChildrenCollapsible(False)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.stack = QStackedLayout(self)
        self.stack.addWidget(self.split)
        self.stack.addWidget(self.tabs)
        self.side: bool | None = None
        self.arrange(True)
        theme.signals().changed.connect(self._rescaled)

    def _rescaled(self, *_) -> None:
        self._fit(self.width())

    def _fit(self, width: int) -> None:
        self.arrange(side_by_side(width, theme.signals().scale))

    def arrange(self, side: bool) -> None:
        if side == self.side:
            return
        self.side = side
        if side:
            self.tabs.clear()  # the pages stay; the splitter takes them back
            for w in (self.curves, self.replay):
                self.split.addWidget(w)
                w.show()  # a tab page that was not the current one comes back hidden
            self.split.setStretchFactor(0, 3)
            self.split.setStretchFactor(1, 2)
            w = max(self.width(), SIDE_BY_SIDE_PX)
            self.split.setSizes([w * 3 // 5, w * 2 // 5])
            self.stack.setCurrentWidget(self.split)
        else:
            self.tabs.addTab(self.curves, "Curves")
            self.tabs.addTab(self.replay, "Probe attention")
            self.stack.setCurrentWidget(self.tabs)

    def resizeEvent(self, event) -> None:
        self._fit(event.size().width())
        super().resizeEvent(event)
