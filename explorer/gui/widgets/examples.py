"""The lectures' example sentences as a picker, shared by Step-through and Beam vs greedy."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from explorer.assets import model_examples
from explorer.seq2seq.data.classroom import EXAMPLES

PROMPT = "Lecture examples…"
MODEL_PROMPT = "Examples…"  # a bundled model's own sentences (the Multi30k model's German)


class ExamplePicker(QtWidgets.QComboBox):
    """A combo box of (source, reference) pairs after a prompt entry; choosing a pair (again,
    too) emits ``picked(source, reference)``."""

    picked = QtCore.Signal(str, str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.pairs: list[tuple[str, str]] = []
        self.current: tuple[str, str] | None = None  # the pair last picked, while it applies
        self._fill(list(EXAMPLES), PROMPT)
        # As wide as its prompt, not as its longest example: a long pair made the whole row
        # (and, in projector mode, the window) wider than the screen; the open list is wider.
        self.setSizeAdjustPolicy(
            QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.setMinimumContentsLength(len(PROMPT))
        self.activated.connect(self._activated)

    def _fill(self, pairs: list[tuple[str, str]], prompt: str) -> None:
        self.clear()
        self.pairs = pairs
        self.addItem(prompt)
        for src, ref in pairs:
            self.addItem(f"{src}  →  {ref}")
        whose = "the lectures" if prompt == PROMPT else "this model's world"
        self.setToolTip(f"Example sentences from {whose} (with their translations).")

    def show_for(self, checkpoint: Path | None) -> None:
        """The examples for the model on show: a bundled model's own (the Multi30k model reads
        German), else the lectures' (English)."""
        own = model_examples(checkpoint)
        pairs, prompt = (own, MODEL_PROMPT) if own else (list(EXAMPLES), PROMPT)
        if pairs != self.pairs:
            self._fill(pairs, prompt)

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
