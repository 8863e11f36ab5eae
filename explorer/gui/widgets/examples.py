"""The lectures' example sentences as a picker, shared by Step-through and Beam vs greedy."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from explorer.seq2seq.data.classroom import EXAMPLES

PROMPT = "Lecture examples…"


class ExamplePicker(QtWidgets.QComboBox):
    """A combo box of (source, reference) pairs after a prompt entry; choosing a pair (again,
    too) emits ``picked(source, reference)``."""

    picked = QtCore.Signal(str, str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.pairs: list[tuple[str, str]] = list(EXAMPLES)
        self.current: tuple[str, str] | None = None  # the pair last picked, while it applies
        self.addItem(PROMPT)
        for src, ref in self.pairs:
            self.addItem(f"{src}  →  {ref}")
        self.setToolTip("Example sentences from the lectures (with their translations).")
        # As wide as its prompt, not as its longest example: a long pair made the whole row
        # (and, in projector mode, the window) wider than the screen; the open list is wider.
        self.setSizeAdjustPolicy(
            QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.setMinimumContentsLength(len(PROMPT))
        self.activated.connect(self._activated)

    def showPopup(self) -> None:  # noqa: N802
        """The open list is as wide as its longest pair, in the font of the moment."""
        view = self.view()
        scrollbar = view.verticalScrollBar().sizeHint().width()
        view.setMinimumWidth(view.sizeHintForColumn(0) + scrollbar)
        super().showPopup()

    def pick(self, index: int) -> None:
        """Choose example ``index`` (0: the first) as if from the list."""
        self.current = self.pairs[index]
        self.picked.emit(*self.current)

    def watch(self, sentence: QtWidgets.QLineEdit, reference: QtWidgets.QLineEdit) -> None:
        """Once the sentence is edited away from the picked example, the reference that came
        with it no longer applies and is cleared (a reference the user typed or changed stays)."""

        def changed(text: str) -> None:
            if self.current is not None and text.strip() != self.current[0]:
                if reference.text() == self.current[1]:
                    reference.clear()
                self.current = None

        sentence.textChanged.connect(changed)

    def _activated(self, index: int) -> None:
        if index > 0:
            self.pick(index - 1)
