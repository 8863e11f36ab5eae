"""The lectures' example sentences as a picker, shared by Step-through and Beam vs greedy."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from explorer.seq2seq.classroom import EXAMPLES

PROMPT = "Lecture examples…"


class ExamplePicker(QtWidgets.QComboBox):
    """A combo box of (source, reference) pairs after a prompt entry; choosing a pair (again,
    too) emits ``picked(source, reference)``."""

    picked = QtCore.Signal(str, str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.pairs: list[tuple[str, str]] = list(EXAMPLES)
        self.addItem(PROMPT)
        for src, ref in self.pairs:
            self.addItem(f"{src}  →  {ref}")
        self.setToolTip("Example sentences from the lectures (with their translations).")
        self.activated.connect(self._activated)

    def first(self) -> tuple[str, str]:
        """The example a classroom model opens on."""
        return self.pairs[0]

    def _activated(self, index: int) -> None:
        if index > 0:
            self.picked.emit(*self.pairs[index - 1])
