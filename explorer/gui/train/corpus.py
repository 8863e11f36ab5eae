"""The Train panel's corpus picker: built-in classroom corpus, toy tasks, or files, with a preview.

The preview loads the corpus in a worker (``explorer.seq2seq.data.corpus.load_corpus``); a file that
cannot be read shows the ``CorpusError`` text in place of the preview.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explorer.gui.runner import runner

BUILTIN = {
    "classroom": "Classroom English → French",
    "reverse": "Toy task: reverse the symbols",
    "copy": "Toy task: copy the symbols",
}
PREVIEW_ROWS = 4
ROW_MARGIN_PX = 8  # a preview row (and the header) is a line of text and this


class CorpusBox(QGroupBox):
    """Pick a corpus; ``spec()`` is the string ``load_corpus`` and ``TrainOptions.corpus`` take."""

    loaded = Signal(object)  # the Corpus that the preview shows
    failed = Signal(str)  # why the corpus could not be read

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Corpus", parent)
        self.kind = QComboBox()
        for value, text in BUILTIN.items():
            self.kind.addItem(text, value)
        self.kind.setToolTip(
            "The sentence pairs to learn from: the classroom corpus built from the lecture's "
            "sentences, a toy task whose alignment is known, or your own parallel text."
        )
        self.size = QSpinBox()
        self.size.setRange(100, 10_000_000)
        self.size.setSingleStep(1000)
        self.size.setValue(30000)
        self.size.setKeyboardTracking(False)
        self.size.setToolTip(
            "Generated corpora: how many pairs to generate; files: keep only the first N pairs."
        )
        self.tsv_button = QPushButton("TSV file…")
        self.tsv_button.setToolTip("A tab-separated file: source sentence, tab, target sentence.")
        self.pair_button = QPushButton("Two files…")
        self.pair_button.setToolTip("Two line-aligned files: line i of one translates line i.")
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Source", "Target"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self._fit_table()
        self.table.setToolTip("The first few pairs of the corpus, as the model will see them.")
        self.count = QLabel("")
        self.count.setObjectName("corpusCount")
        self.count.setWordWrap(True)

        # the corpus on a row of its own: with the pairs beside it, the row set the column's
        # width (the widest row of the Train panel's options in projector mode)
        files = QHBoxLayout()
        files.addWidget(QLabel("pairs"))
        files.addWidget(self.size)
        files.addWidget(self.tsv_button)
        files.addWidget(self.pair_button)
        lay = QVBoxLayout(self)
        lay.addWidget(self.kind)
        lay.addLayout(files)
        lay.addWidget(self.table)
        lay.addWidget(self.count)

        self._worker = None
        self._pending = False
        self._held = False
        self.corpus = None
        self.kind.currentIndexChanged.connect(self.refresh)
        self.size.valueChanged.connect(self.refresh)
        self.tsv_button.clicked.connect(self._choose_tsv)
        self.pair_button.clicked.connect(self._choose_pair)

    def _fit_table(self) -> None:
        """Rows a line of this box's font high (and a margin), and the preview as high as its
        header and PREVIEW_ROWS rows (a fixed 150 px cut the rows and scrolled them at projector
        mode's 24 px)."""
        t, line = self.table, self.fontMetrics().height()
        t.verticalHeader().setDefaultSectionSize(line + ROW_MARGIN_PX)
        header = line + ROW_MARGIN_PX
        t.setFixedHeight(PREVIEW_ROWS * (line + ROW_MARGIN_PX) + header + 2 * t.frameWidth())

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:  # the table's rows follow the new font
            self._fit_table()

    # -- the spec -----------------------------------------------------------------------------
    def spec(self) -> str:
        return self.kind.currentData()

    def corpus_size(self) -> int | None:
        return self.size.value()

    def set_spec(self, spec: str) -> None:
        """Select a built-in corpus by name, or a file (``PATH`` or ``SRC,TGT``)."""
        i = self.kind.findData(spec)
        if i < 0:
            label = " + ".join(Path(p).name for p in spec.split(","))
            self.kind.addItem(f"File: {label}", spec)
            i = self.kind.count() - 1
            self.kind.setItemData(i, spec.replace(",", "\n"), role=3)  # Qt.ToolTipRole
        if i == self.kind.currentIndex():
            self.refresh()
        else:
            self.kind.setCurrentIndex(i)

    def _choose_tsv(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a parallel corpus", "", "Tab-separated (*.tsv *.txt *.gz);;All files (*)"
        )
        if path:
            self.set_spec(path)

    def _choose_pair(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Choose the source file, then the target file (two files)", ""
        )
        if len(paths) == 2:
            self.set_spec(",".join(paths))
        elif paths:
            self.show_error(f"choose exactly two files (source and target), not {len(paths)}")

    # -- the preview --------------------------------------------------------------------------
    def busy(self) -> bool:
        return self._worker is not None or self._pending

    def hold(self) -> None:
        """Read no corpus until ``release()``: generating one is seconds of Python, which would
        slow a checkpoint load running at the same time (they share the interpreter)."""
        self._held = True

    def release(self) -> None:
        self._held = False
        if self._pending and self._worker is None:
            self._pending = False
            self.refresh()

    def refresh(self) -> None:
        """Load the current corpus in a worker and show its first pairs and counts."""
        if self._worker is not None or self._held:
            self._pending = True
            self.count.setText("reading the corpus…")
            return
        from explorer.gui.train.jobs import load_corpus_job

        self.count.setText("reading the corpus…")
        self.count.setStyleSheet("")
        self._worker = runner().run(
            "corpus preview", load_corpus_job, self.spec(), self.corpus_size(),
            returned=self._show, errored=lambda e: self.show_error(str(e)), finished=self._done,
        )  # fmt: skip

    def _done(self) -> None:
        self._worker = None
        if self._pending and not self._held:
            self._pending = False
            self.refresh()

    def _show(self, loaded: tuple) -> None:
        corpus, counts = loaded
        self.corpus = corpus
        pairs = corpus.pairs[:PREVIEW_ROWS]
        self.table.setRowCount(len(pairs))
        for r, (s, t) in enumerate(pairs):
            self.table.setItem(r, 0, QTableWidgetItem(s))
            self.table.setItem(r, 1, QTableWidgetItem(t))
        self.count.setText(counts)
        self.loaded.emit(corpus)

    def show_error(self, message: str) -> None:
        self.corpus = None
        self.table.setRowCount(0)
        self.count.setText(message)
        self.count.setStyleSheet("color: #c0392b; font-weight: bold;")
        self.failed.emit(message)
