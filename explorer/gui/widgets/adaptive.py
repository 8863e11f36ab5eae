"""A splitter that puts its views side by side while they fit, one above the other otherwise."""

from __future__ import annotations

import math
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter


def side_by_side(width: float, widths: list[float], handle: float = 0.0) -> bool:
    """Views of least widths ``widths`` fit side by side in ``width`` pixels (with a splitter
    handle of ``handle`` pixels between each two)."""
    return width >= sum(widths) + handle * max(len(widths) - 1, 0)


class AdaptiveSplitter(QSplitter):
    """Horizontal while its width holds its views' least widths (``widths()``, one per view,
    which may change with the fonts), each view then kept at least that wide; vertical below
    that. On a small screen in projector mode the views stack instead of being drawn over each
    other."""

    def __init__(self, widths: Callable[[], list[float]], parent=None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self._widths = widths

    def resizeEvent(self, event) -> None:  # noqa: N802
        widths = self._widths()
        wide = side_by_side(event.size().width(), widths, self.handleWidth())
        self.setOrientation(Qt.Orientation.Horizontal if wide else Qt.Orientation.Vertical)
        for i, w in enumerate(widths[: self.count()]):
            self.widget(i).setMinimumWidth(math.ceil(w) if wide else 0)
        super().resizeEvent(event)


def curves_width(view, floor: float = 0.0) -> float:
    """The least width of a pyqtgraph ``GraphicsLayoutWidget``'s plots (the widget's own least
    width says nothing of them: narrower, they are drawn past its edge), at least ``floor``."""
    return max(floor, view.ci.effectiveSizeHint(Qt.SizeHint.MinimumSize).width())
