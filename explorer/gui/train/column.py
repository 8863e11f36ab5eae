"""The Train panel's options column: the corpus and the form, scrolled up and down only.

The column is as wide as its content asks (its size hint, which follows the font: projector mode's
24 px text needs a wider column than a laptop's 13 px) plus the scroll area's frame and vertical
scroll bar, within what the splitter has once the other side keeps its least width. It is sized
again whenever its content's size hint changes (a new font, another architecture's fields) and
whenever the splitter is resized, so no label, spin box or combo is ever cut at its right edge.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QScrollArea, QSplitter, QWidget


def options_width(content: int, chrome: int, room: int, other_least: int) -> int:
    """The column's width: ``content`` (its content's preferred width) plus ``chrome`` (frame and
    vertical scroll bar), at most the splitter's ``room`` less ``other_least``, the least width of
    the splitter's other side; never below 0."""
    return max(0, min(content + chrome, room - other_least))


class OptionsColumn(QScrollArea):
    """Scrolls ``content`` vertically; :meth:`fit` gives it its width in ``split`` (the column
    is the splitter's first widget)."""

    def __init__(self, content: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.split: QSplitter | None = None
        self.setWidget(content)
        self.setWidgetResizable(True)
        content.installEventFilter(self)  # its layout requests: a new size hint, a new width

    def follow(self, split: QSplitter) -> None:
        """Size the column in ``split`` now and on every resize of the splitter."""
        self.split = split
        split.installEventFilter(self)
        self.fit()

    def chrome(self) -> int:
        """The width the frame and the vertical scroll bar take beside the content (the bar's
        room is kept whether it shows or not: a taller content must not cut the text)."""
        return 2 * self.frameWidth() + self.verticalScrollBar().sizeHint().width()

    def wanted(self) -> int:
        """The column's width in its splitter now (see :func:`options_width`)."""
        split = self.split
        other = split.widget(1) if split is not None and split.count() > 1 else None
        room = split.width() - split.handleWidth() if split is not None else 1 << 20
        least = other.minimumSizeHint().width() if other is not None else 0
        return options_width(self.widget().sizeHint().width(), self.chrome(), room, least)

    def fit(self) -> None:
        """Take the wanted width, as the least width too (dragging the splitter cannot cut the
        content); the other side takes the rest."""
        width = self.wanted()
        if width <= 0:
            return
        if self.minimumWidth() != width:
            self.setMinimumWidth(width)
        split = self.split
        if split is not None and split.count() > 1 and split.sizes()[0] != width:
            rest = max(0, split.width() - split.handleWidth() - width)
            split.setSizes([width, rest])

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if (obj is self.widget() and kind == QEvent.Type.LayoutRequest) or (
            obj is self.split and kind == QEvent.Type.Resize
        ):
            self.fit()  # a new size hint, or a new room for the column
        return super().eventFilter(obj, event)
