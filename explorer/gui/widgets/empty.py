"""An explicit empty state: a note over a view that has nothing to draw, saying why."""

from __future__ import annotations

from typing import Any

from PySide6 import QtCore, QtWidgets


class EmptyNote(QtWidgets.QLabel):
    """A centred note covering ``view`` while it shows nothing ("computing…", "this model has no
    attention…"); hidden while the view draws a record."""

    def __init__(self, view: QtWidgets.QWidget) -> None:
        super().__init__(view)
        self.view = view
        self.setObjectName("emptyNote")
        self.setWordWrap(True)
        self.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.setAutoFillBackground(True)
        self.setMargin(12)
        self.setVisible(False)
        view.installEventFilter(self)

    def say(self, why: str) -> None:
        """Show ``why`` over the view; an empty string hides the note."""
        self.setText(why)
        self.setVisible(bool(why))
        if why:
            self.setGeometry(self.view.rect())
            self.raise_()

    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802
        # While a window is torn down, Qt may still hand this filter the view's last events after
        # Python has released the note's attributes: then there is no note left to place.
        view = getattr(self, "view", None)
        if view is not None and obj is view and event.type() == QtCore.QEvent.Type.Resize:
            self.setGeometry(view.rect())
        return False


def shown(view: Any) -> Any:
    """What ``view`` shows: the ``SourceRecord`` of its record, or its empty note's reason."""
    note = getattr(view, "empty", None)
    if note is not None and note.text() and not note.isHidden():
        return note.text()
    for name in ("record", "trace", "tree"):  # what the view keeps of what it draws
        record = getattr(view, name, None)
        if record is not None:
            return record.origin
    return None
