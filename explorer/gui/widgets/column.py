"""A column of options at the left of a splitter (Train & Load's corpus and form, Beam's search
settings), scrolled up and down only.

The column is as wide as its content asks (its size hint, which follows the font: projector mode's
24 px text needs a wider column than a laptop's 13 px) plus the scroll area's frame and vertical
scroll bar, within what the splitter has once the widgets beside it keep their least widths. It is
sized again whenever its content's size hint changes (a new font, another architecture's fields)
and whenever the splitter is resized, so no label, spin box or combo is cut at its right edge.

The mouse wheel scrolls the column: a spin box or combo box under the pointer takes the wheel only
once it has been clicked into (Qt's default gives it the wheel whenever the pointer crosses it, so
scrolling the column changed the numbers it passed).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QScrollArea, QSplitter, QWidget

FIELDS = (QAbstractSpinBox, QComboBox)  # the widgets that take the wheel to change their value


def options_width(content: int, chrome: int, room: int, other_least: int) -> int:
    """The column's width: ``content`` (its content's preferred width) plus ``chrome`` (frame and
    vertical scroll bar), at most the splitter's ``room`` less ``other_least``, the least width of
    the splitter's other widgets; never below 0."""
    return max(0, min(content + chrome, room - other_least))


def share(sizes: list[int], total: int) -> list[int]:
    """``sizes`` scaled to sum to ``total``, in proportion (equal shares when all are 0)."""
    if not sizes:
        return []
    weight = sum(sizes)
    out = [total * s // weight if weight else total // len(sizes) for s in sizes]
    out[-1] += total - sum(out)  # what rounding left over
    return out


class OptionsColumn(QScrollArea):
    """Scrolls ``content`` vertically; :meth:`fit` gives it its width in ``split`` (the column
    is the splitter's first widget)."""

    def __init__(self, content: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.split: QSplitter | None = None
        self.setWidget(content)
        self.setWidgetResizable(True)
        content.installEventFilter(self)  # its layout requests: a new size hint, a new width
        for field in (f for kind in FIELDS for f in content.findChildren(kind)):
            field.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # the wheel does not give focus
            field.installEventFilter(self)  # an unfocused field's wheel scrolls the column

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
        """The column's width now (see :func:`options_width`): the others keep their least."""
        split = self.split
        if split is None:
            return self.widget().sizeHint().width() + self.chrome()
        others = [split.widget(i) for i in range(1, split.count())]
        room = self.room()
        least = sum(max(w.minimumWidth(), w.minimumSizeHint().width()) for w in others)
        return options_width(self.widget().sizeHint().width(), self.chrome(), room, least)

    def fit(self) -> None:
        """Take the wanted width, as the least width too (dragging the splitter cannot cut the
        content); the others share the rest as they shared it before."""
        width = self.wanted()
        if width <= 0:
            return
        if self.minimumWidth() != width:
            self.setMinimumWidth(width)
        split = self.split
        if split is not None and split.count() > 1 and split.sizes()[0] != width:
            split.setSizes([width, *share(split.sizes()[1:], max(0, self.room() - width))])

    def room(self) -> int:
        """The splitter's width less its handles: what its widgets share."""
        split = self.split
        return split.width() - split.handleWidth() * (split.count() - 1)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        # A font changed while hidden (another tab): the content's layout may keep its items'
        # old widths (a QFormLayout did, and cut its labels); measured again, then fitted.
        layout = self.widget().layout()
        if layout is not None:
            layout.invalidate()
            layout.activate()
        self.fit()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.Wheel and isinstance(obj, FIELDS) and not obj.hasFocus():
            self.wheelEvent(event)  # the column scrolls; the field keeps its value
            return True
        if (obj is self.widget() and kind == QEvent.Type.LayoutRequest) or (
            obj is self.split and kind == QEvent.Type.Resize
        ):
            self.fit()  # a new size hint, or a new room for the column
        return super().eventFilter(obj, event)
