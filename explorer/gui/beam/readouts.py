"""Readouts beside the beam tree: the selected path (numbers, formula, attention) and the n-best
list against greedy, with sentence BLEU against a reference the user types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explorer.gui.beam.formula import agrees, score_breakdown, settings_of
from explorer.gui.step.ticks import set_ticks, set_title
from explorer.gui.widgets.plotting import pg
from explorer.seq2seq.bleu_steps import SENTENCE, BleuSteps, sentence_steps
from explorer.seq2seq.decoding.trace import BeamTree, Trace


def detokenize(pieces: list[str], eos: str = "</s>") -> str:
    """Pieces to text: sentencepiece's ▁ marks a word start; other pieces are whole words."""
    pieces = [p for p in pieces if p != eos]
    if any("▁" in p for p in pieces):
        return "".join(pieces).replace("▁", " ").strip()
    return " ".join(pieces)


def output_text(tokens, pieces, decode=None, eos: str = "</s>") -> str:
    """A hypothesis as text: the model's tokenizer (``decode``: ids to text) writes it as the
    n-best list and BLEU see it ("s'est"); without one, the pieces joined (``detokenize``)."""
    if decode is not None:
        return decode([int(t) for t in tokens])
    return detokenize(list(pieces), eos=eos)


@dataclass(frozen=True)
class BleuDetails:
    """Sentence BLEU (sacrebleu's) with its sum written out: see ``bleu_steps``."""

    bleu: float  # 0–100
    precisions: tuple[float, ...]  # 1..4-gram precisions, percent (unsmoothed)
    counts: tuple[int, ...]  # matched (clipped) n-grams
    totals: tuple[int, ...]  # hypothesis n-grams
    bp: float
    hyp_len: int
    ref_len: int
    steps: BleuSteps

    def text(self) -> str:
        """One line: each p_n (with its smoothing), the geometric mean, BP, the product."""
        s = self.steps
        ps = []
        for o in s.counted:
            p = f"p{o.n} = {o.matches}/{o.total}"
            ps.append(p if o.matches else f"{p} → {o.used:.3f} (smoothed)")
        if s.no_match:
            return f"BLEU = 0.0:  {'  '.join(ps)}: no n-gram matches"
        mean = f"({' × '.join(f'{o.used:.3f}' for o in s.counted)})^(1/{len(s.counted)})"
        bp = (
            f"BP = exp(1 − {s.ref_len}/{s.hyp_len}) = {s.bp:.3f}"
            if s.hyp_len < s.ref_len
            else f"BP = 1 (c = {s.hyp_len} ≥ r = {s.ref_len})"
        )
        return (
            f"BLEU = {self.bleu:.1f}:  {', '.join(ps)};  geometric mean {mean} = "
            f"{s.geo_mean:.3f};  {bp};  {s.bp:.3f} × {s.geo_mean:.3f} = {s.bleu:.3f}"
        )


def bleu_details(hyp: str, ref: str) -> BleuDetails:
    """Sentence BLEU (sacrebleu's, effective order) and every step to it."""
    s = sentence_steps(hyp, ref, SENTENCE)
    return BleuDetails(
        bleu=s.score,
        precisions=tuple(100.0 * o.precision for o in s.orders),
        counts=tuple(o.matches for o in s.orders),
        totals=tuple(o.total for o in s.orders),
        bp=s.bp,
        hyp_len=s.hyp_len,
        ref_len=s.ref_len,
        steps=s,
    )


class AttentionView(pg.PlotWidget):
    """(T, S) attention of one path, target rows × source columns, fixed 0–1 colour scale."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent=parent, background="w")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(pg.colormap.get("viridis").getLookupTable(nPts=256))
        self.addItem(self.image)
        pi = self.getPlotItem()
        pi.getViewBox().invertY(True)
        pi.getViewBox().setAspectLocked(False)
        pi.setMenuEnabled(False)
        pi.hideButtons()
        pi.setMouseEnabled(False, False)
        pi.getAxis("left").setWidth(80)
        # titled from the start, so the theme sizes the title with the other plots' (and cut
        # with "…" where projector fonts make it wider than the plot)
        set_title(pi, "attention α of the selected path")
        self.matrix: np.ndarray | None = None

    def minimumSizeHint(self) -> QSize:
        """Room for the title, the source words and a few target rows at the current font
        size: the text above it gives way first when projector fonts fill a small screen."""
        return QSize(super().minimumSizeHint().width(), 8 * self.fontMetrics().lineSpacing())

    def show_matrix(self, A: np.ndarray | None, src: list[str], tgt: list[str]) -> None:
        self.matrix = A
        pi = self.getPlotItem()
        if A is None or A.size == 0:  # a model without attention, or nothing selected
            self.image.clear()
            self.setVisible(False)
            return
        self.setVisible(True)
        self.image.setImage(A, levels=(0.0, 1.0))  # (T, S)
        pi.getViewBox().setRange(xRange=(0, A.shape[1]), yRange=(0, A.shape[0]), padding=0)
        set_ticks(pi.getAxis("bottom"), src)  # fitted to each cell's pixels: thinned, not piled
        set_ticks(pi.getAxis("left"), tgt)


class PathDetails(QWidget):
    """The selected node's numbers, its score formula, and its path's attention."""

    open_in_step = Signal(object)  # Trace

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.title = QLabel("Click a node to select its path.")
        self.title.setWordWrap(True)
        self.numbers = QLabel("")
        self.numbers.setWordWrap(True)  # unwrapped, its one line set the column's least width
        self.numbers.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.formula = QLabel("")
        self.formula.setWordWrap(True)
        self.formula.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.formula.setToolTip(
            "Length normalisation divides the log-probability S by lp so that longer translations "
            "are not punished just for having more (negative) terms."
        )
        self.attention = AttentionView()
        self.step_button = QPushButton("Open in Step-through")
        self.step_button.setToolTip(
            "Replay this hypothesis token by token in the Step-through tab."
        )
        self.step_button.setEnabled(False)
        self.step_button.clicked.connect(self._emit_open)
        # The title and numbers keep their natural height; the formula takes any spare room
        # (when a model without attention hides the plot), its text at the top.
        for w in (self.title, self.numbers):
            w.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Maximum)
        self.formula.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        lay = QVBoxLayout(self)
        for w in (self.title, self.numbers, self.formula):
            lay.addWidget(w)
        lay.addWidget(self.attention, 1)
        lay.addWidget(self.step_button)
        self.trace: Trace | None = None
        self.node_id: int | None = None
        self.recomputed: float | None = None
        self.stored: float | None = None
        self.decode = None  # the model's ids-to-text (see output_text); set with the model

    def clear(self) -> None:
        self.title.setText("Click a node to select its path.")
        self.numbers.setText("")
        self.formula.setText("")
        self.attention.show_matrix(None, [], [])
        self.trace = self.node_id = self.recomputed = self.stored = None
        self.step_button.setEnabled(False)

    def show_node(self, tree: BeamTree, node_id: int) -> None:
        n = tree.nodes[node_id]
        self.node_id = node_id
        if n.parent < 0:
            self.clear()
            self.node_id = node_id
            self.title.setText("The start symbol <s>: every hypothesis grows from here.")
            return
        path = tree.path(node_id)
        self.trace = tree.trace(node_id) if all(p.record is not None for p in path) else None
        words = output_text(
            [p.token for p in path], [p.piece for p in path], self.decode, _eos_piece(tree)
        )
        self.title.setText(f"<b>{n.fate.value}</b> hypothesis (step {n.step + 1}): “{words}”")
        numbers = (
            f"log p = {n.logprob:.3f}   score S = {n.score:.3f}   "
            f"normalised = {n.normalized_score:.3f}   rank = {n.rank}".replace("-", "−")
        )
        self.numbers.setText(f"token {n.piece!r}: {numbers}")
        A = self.trace.attention_matrix() if self.trace is not None else None
        penalty, alpha, beta = settings_of(tree.settings)
        b = score_breakdown([p.logprob for p in path], penalty, alpha, beta, A)
        self.recomputed, self.stored = b.score, n.normalized_score
        check = (
            "= the search's normalised score ✓"
            if agrees(b.score, n.normalized_score)
            else f"≠ the search's normalised score {n.normalized_score:.3f}"
        )
        self.formula.setText(f"{b.text}\n{check}")
        self.attention.show_matrix(A, list(tree.src_pieces), [p.piece for p in path])
        self.step_button.setEnabled(self.trace is not None)

    def show_greedy(self, greedy: Trace) -> None:
        self.node_id = None
        self.trace = greedy
        words = output_text(greedy.tokens, greedy.pieces, self.decode)
        self.title.setText(f"<b>greedy</b> decode: “{words}”")
        self.numbers.setText(f"S = {greedy.score:.3f}   length = {len(greedy)}".replace("-", "−"))
        b = score_breakdown(greedy.token_logprobs)
        self.recomputed, self.stored = b.score, greedy.score
        self.formula.setText(b.text)
        self.attention.show_matrix(
            greedy.attention_matrix(), list(greedy.src_pieces), greedy.pieces
        )
        self.step_button.setEnabled(True)

    def _emit_open(self) -> None:
        if self.trace is not None:
            self.open_in_step.emit(self.trace)


def _eos_piece(tree: BeamTree) -> str:
    eos = [n.piece for n in tree.nodes[1:] if n.token == tree.eos_id]
    return eos[0] if eos else "</s>"


class NBestTable(QWidget):
    """The n-best hypotheses and greedy side by side; BLEU against a typed reference."""

    COLUMNS = ("", "translation", "S", "normalised", "length", "BLEU")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.reference = QLineEdit()
        self.reference.setPlaceholderText("Type a reference translation to score each output…")
        self.reference.setToolTip(
            "BLEU compares n-grams (1 to 4 words) of a translation with a reference, times a "
            "brevity penalty for outputs shorter than the reference."
        )
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(1, QHeaderView.Stretch)  # the translation takes the room
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarAsNeeded)  # rows cut only when short
        self.table.setWordWrap(False)  # one line a row; the whole text is in its tooltip
        self.bleu_text = QLabel("")
        self.bleu_text.setWordWrap(True)
        self.bleu_text.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.bleu_text.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        self.steps_button = QPushButton("BLEU step by step…")
        self.steps_button.setToolTip(
            "Every step from n-gram counts to the final BLEU, for the selected row (or the "
            "best) against the reference; type the lecture's own example there too."
        )
        row = QHBoxLayout()
        row.addWidget(QLabel("Reference:"))
        row.addWidget(self.reference, 1)
        row.addWidget(self.steps_button)
        text = QScrollArea()
        text.setWidget(self.bleu_text)
        text.setWidgetResizable(True)
        text.setFrameShape(QFrame.NoFrame)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        # the rows first (up to all of them), the BLEU lines in what is left
        text.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Ignored)
        lay.addWidget(self.table, 1)
        lay.addWidget(text)
        self.rows: list[tuple[str, str, float, float, int]] = []
        self.bleu: list[BleuDetails | None] = []
        self.decode = None  # the model's ids-to-text (see output_text); set with the model
        self.reference.textChanged.connect(lambda _t: self._score())
        self.steps_button.clicked.connect(self.open_steps)

    def show_result(self, nbest: list[Any], greedy: Trace | None) -> None:
        rows = []
        for i, h in enumerate(nbest):
            text = getattr(h, "text", None) or detokenize(list(h.pieces))
            rows.append((f"beam #{i + 1}", text, h.score, h.normalized_score, len(h.tokens)))
        if greedy is not None:
            text = output_text(greedy.tokens, greedy.pieces, self.decode)
            rows.append(("greedy", text, greedy.score, greedy.score, len(greedy)))
        self.rows = rows
        self.table.setRowCount(len(rows))
        for r, (kind, text, s, ns, n) in enumerate(rows):
            numbers = [f"{v:.3f}".replace("-", "−") for v in (s, ns)]
            for c, v in enumerate((kind, text, *numbers, str(n))):
                item = QTableWidgetItem(v)
                item.setToolTip(v)
                self.table.setItem(r, c, item)
        self._score()
        self.fit_rows()

    def open_steps(self):
        """The BLEU walkthrough for the selected row (else the best) against the reference."""
        from explorer.gui.beam.bleu_walkthrough import open_walkthrough

        row = self.table.currentRow()
        row = row if 0 <= row < len(self.rows) else 0
        candidate = self.rows[row][1] if self.rows else ""
        return open_walkthrough(self, candidate, self.reference.text().strip())

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.FontChange, QEvent.StyleChange):  # projector mode
            QTimer.singleShot(0, self, self.fit_rows)  # cancelled if self is deleted first

    def fit_rows(self) -> None:
        """As tall as its header and rows (at least one row), no taller: every row shows where
        there is room; on a small screen it may shrink to two rows and scroll."""
        t = self.table
        for c in (0, 2, 3, 4, 5):  # all but the translation, which stretches
            t.resizeColumnToContents(c)
        t.resizeRowsToContents()
        rows = sum(t.rowHeight(r) for r in range(t.rowCount()))
        rows = max(rows, t.verticalHeader().defaultSectionSize())
        chrome = t.horizontalHeader().sizeHint().height() + 2 * t.frameWidth()
        t.setMaximumHeight(chrome + rows)
        t.setMinimumHeight(chrome + min(rows, 2 * t.verticalHeader().defaultSectionSize()))

    def _score(self) -> None:
        ref = self.reference.text().strip()
        self.bleu = [bleu_details(text, ref) if ref else None for _, text, *_ in self.rows]
        lines = []
        for r, ((kind, *_), d) in enumerate(zip(self.rows, self.bleu)):
            self.table.setItem(r, 5, QTableWidgetItem("" if d is None else f"{d.bleu:.1f}"))
            if d is not None:
                lines.append(f"{kind}: {d.text()}")
        self.bleu_text.setText("\n".join(lines))
