"""BLEU step by step: a window that writes out every step from n-gram counts to the number.

The teacher types a candidate and a reference (or takes the lecture slide's example); the left
side computes BLEU as sacrebleu does (4-grams, smoothed), the right side as the slide does
(3-grams, a zero precision replaced by 0.01), and a list below says where the two part ways.
Opened from the Evaluate view it also walks through each model's corpus BLEU. The numbers come
from :mod:`explorer.seq2seq.bleu_steps`; this module only lays them out.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from explorer.gui.widgets import theme
from explorer.seq2seq.bleu_steps import (
    DECK,
    LECTURE_EXAMPLE,
    SENTENCE,
    BleuSteps,
    differences,
    sentence_steps,
)

TYPED = "the candidate and reference typed below"


def _text_box() -> QPlainTextEdit:
    box = QPlainTextEdit()
    box.setReadOnly(True)
    box.setLineWrapMode(QPlainTextEdit.WidgetWidth)
    fixed = QFontDatabase.systemFont(QFontDatabase.FixedFont)
    # as large as the window's text (projector mode's included)
    box.setFont(theme.scaled_font(fixed, size_of=QApplication.font()))
    return box


class BleuWalkthrough(QDialog):
    """Candidate and reference in, every step of BLEU out, two recipes side by side."""

    def __init__(
        self,
        candidate: str = "",
        reference: str = "",
        corpus: Sequence[tuple[str, BleuSteps]] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("BLEU step by step")
        self.corpus = list(corpus)
        self.source = QComboBox()
        self.source.addItem(TYPED)
        for name, steps in self.corpus:
            self.source.addItem(f"{name}: corpus BLEU over {steps.sentences} sentences")
        self.candidate = QLineEdit(candidate)
        self.reference = QLineEdit(reference)
        self.candidate.setPlaceholderText("the system's translation")
        self.reference.setPlaceholderText("the reference translation")
        self.example = QPushButton("Lecture example")
        self.example.setToolTip(f"“{LECTURE_EXAMPLE[0]}” against “{LECTURE_EXAMPLE[1]}”")
        self.sacre = _text_box()
        self.deck = _text_box()
        self.diff = QLabel("")
        self.diff.setWordWrap(True)
        self.diff.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.steps: tuple[BleuSteps, BleuSteps] | BleuSteps | None = None
        self._build()
        self.source.currentIndexChanged.connect(self.refresh)
        self.candidate.textChanged.connect(self.refresh)
        self.reference.textChanged.connect(self.refresh)
        self.example.clicked.connect(self.use_lecture_example)
        if not candidate and not reference:
            self.use_lecture_example()
        if self.corpus and not candidate:  # from Evaluate: the first model's corpus BLEU
            self.source.setCurrentIndex(1)
        self.refresh()
        self.resize(1100, 640)

    def _build(self) -> None:
        form = QFormLayout()
        form.addRow("Walk through", self.source)
        form.addRow("Candidate", self.candidate)
        row = QHBoxLayout()
        row.addWidget(self.reference, 1)
        row.addWidget(self.example)
        form.addRow("Reference", row)
        self.deck_title = QLabel("<b>The lecture slide</b>: 3-grams, a zero precision → 0.01")
        sides = QHBoxLayout()
        for title, box in (
            (QLabel("<b>sacrebleu</b>: 4-grams, exp smoothing (what the app reports)"), self.sacre),
            (self.deck_title, self.deck),
        ):
            col = QVBoxLayout()
            col.addWidget(title)
            col.addWidget(box, 1)
            sides.addLayout(col, 1)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(sides, 1)
        lay.addWidget(QLabel("<b>Where they differ</b>"))
        lay.addWidget(self.diff)

    def use_lecture_example(self) -> None:
        self.source.setCurrentIndex(0)
        self.candidate.setText(LECTURE_EXAMPLE[0])
        self.reference.setText(LECTURE_EXAMPLE[1])

    def refresh(self) -> None:
        i = self.source.currentIndex()
        typed = i == 0
        for w in (self.candidate, self.reference, self.example, self.deck, self.deck_title):
            w.setEnabled(typed)
        if not typed:
            steps = self.corpus[i - 1][1]
            self.steps = steps
            self.sacre.setPlainText("\n".join(steps.lines()))
            self.deck.setPlainText("The slide's arithmetic is for one sentence.")
            self.diff.setText(
                "A corpus BLEU sums the n-gram counts and lengths of every sentence before "
                "dividing: it is not the mean of the sentence BLEUs."
            )
            return
        cand, ref = self.candidate.text().strip(), self.reference.text().strip()
        if not cand or not ref:
            self.steps = None
            why = "Type a candidate and a reference (or take the lecture example)."
            for box in (self.sacre, self.deck):
                box.setPlainText(why)
            self.diff.setText("")
            return
        a, b = sentence_steps(cand, ref, SENTENCE), sentence_steps(cand, ref, DECK)
        self.steps = (a, b)
        self.sacre.setPlainText("\n".join(a.lines()))
        self.deck.setPlainText("\n".join(b.lines()))
        self.diff.setText("\n".join("• " + d for d in differences(a, b)))


def open_walkthrough(
    parent: QWidget,
    candidate: str = "",
    reference: str = "",
    corpus: Sequence[tuple[str, BleuSteps]] = (),
) -> BleuWalkthrough:
    """Show a walkthrough window beside ``parent`` (one at a time per parent)."""
    old = getattr(parent, "_bleu_walkthrough", None)
    if old is not None:
        old.close()
    dialog = BleuWalkthrough(candidate, reference, corpus, parent)
    dialog.setAttribute(Qt.WA_DeleteOnClose)
    parent._bleu_walkthrough = dialog
    dialog.destroyed.connect(lambda *_: setattr(parent, "_bleu_walkthrough", None))
    dialog.show()
    return dialog


def step_panel_button(panel: QWidget) -> QPushButton:
    """Step-through's way in: the decoded output against the panel's reference."""
    from explorer.gui.beam.readouts import output_text

    button = QPushButton("BLEU…")
    button.setToolTip("BLEU of this output against the reference, step by step")

    def open_it() -> None:
        trace = panel.trace
        entry = panel.state.current
        decode = getattr(getattr(entry, "tokenizer", None), "decode_tgt", None)
        cand = "" if trace is None else output_text(trace.tokens, trace.pieces, decode)
        open_walkthrough(panel, cand, panel.reference.text())

    button.clicked.connect(open_it)
    return button
