"""Panel 3, beam search against greedy: the whole search tree with the greedy path over it.

A view of the session's beam search, exact search and sweep. Changing a control changes the
session (typing is debounced), which re-runs the search in the background and drops results that
belong to an older request, so the tree always matches the controls; until it arrives the views
say why they are empty.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.gui.beam.readouts import NBestTable, PathDetails
from explorer.gui.beam.sweep import SweepWidget
from explorer.gui.beam.tree_view import BeamTreeView, result_parts
from explorer.gui.exports.beam import install_beam
from explorer.gui.session import Session
from explorer.gui.widgets import theme
from explorer.gui.widgets.column import OptionsColumn
from explorer.gui.widgets.empty import EmptyNote
from explorer.gui.widgets.examples import ExamplePicker
from explorer.gui.widgets.export import save_figure, save_json
from explorer.seq2seq.decoding.search import search_error
from explorer.seq2seq.evaluate import classroom_test_pairs

TIPS = {
    "beam": "Beam search keeps the k best partial translations at every step instead of only the "
    "single best (greedy = beam 1).",
    "nbest": "How many finished hypotheses to return, best first.",
    "penalty": "Length normalisation: log-probabilities only add negative terms, so without it "
    "beam search prefers short outputs.",
    "alpha": "The exponent α of the length penalty lp: 0 turns it off, larger values favour "
    "longer translations.",
    "beta": "Coverage penalty β: punishes hypotheses that leave source words with less than one "
    "unit of total attention (under-translation).",
    "max_len": "The longest translation the search may produce, in tokens.",
    "pruned": "Show every candidate the search considered, also those that ranked outside the "
    "beam (pruned) and hypotheses it dropped later.",
    "dead": "Show the hypotheses the beam kept for a while and dropped later; otherwise they are "
    "folded into the node where they branched off, which counts them (+n).",
}
TREE_HINT = (
    "drag: pan · wheel or − +: zoom · ⟲: back to the chosen path · "
    "node: token over score S, +n folded in · edge: log p"
)
DEFAULT_ALPHA = {"none": 0.0, "avg": 1.0, "gnmt": 0.6}
TREE_MIN_WIDTH = 360  # px: the tree's least width


# The tree's key. Each mark is held to its word by non-breaking spaces (and word joiners after
# the dashes, which allow a break after them): a narrow column wraps between entries, never
# between a mark and what it names.
LEGEND = " &nbsp; ".join(
    f"<span style='color:{colour}'>{mark}</span>&nbsp;{name}"
    for colour, mark, name in [
        ("#3b75af", "●", "kept"),
        ("#aaaaaa", "●", "pruned"),
        ("#ef8636", "●", "finished"),
        ("#2ca02c", "●", "chosen"),
        ("#c2187a", "◆&nbsp;–\u2060&nbsp;–\u2060", "greedy"),  # U+2060: no break after a dash
    ]
)


class BeamPanel(QWidget):
    """Beam search tree vs greedy for one sentence; n-best, BLEU, exact search and a beam sweep."""

    result_shown = Signal(object)  # the BeamResult now drawn

    def __init__(self, state: Session, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.result: Any = None
        self._debounce = QTimer(self, singleShot=True, interval=300)
        self._debounce.timeout.connect(self._commit_sentence)

        self.hint = QLabel("Load a model (File ▸ Open) or train one to see beam search at work.")
        self.hint.setAlignment(Qt.AlignCenter)
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("font-size: 20pt; color: #666;")
        self.pages = QStackedWidget()
        self.pages.addWidget(self.hint)
        self.pages.addWidget(self._build_main())
        QVBoxLayout(self).addWidget(self.pages)
        state.current_changed.connect(self._on_model)
        state.changed.connect(self._on_session)
        theme.signals().changed.connect(self.restyle)
        self.restyle()
        self._on_model(state.current)
        state.want("beam")
        for part in ("sentence", "beam", "exact", "sweep"):
            self._on_session(part)

    # ---------------------------------------------------------------- layout
    def _build_controls(self) -> QWidget:
        self.sentence = QLineEdit()
        self.sentence.setPlaceholderText("Source sentence…")
        self.sentence.setToolTip("The sentence to translate; the search re-runs as you type.")
        self.examples = ExamplePicker()
        self.examples.picked.connect(self._pick_example)
        self.beam = self._spin(1, 64, 5, "beam")
        self.nbest = self._spin(1, 16, 3, "nbest")
        self.penalty = QComboBox()
        self.penalty.addItems(["none", "avg", "gnmt"])
        self.penalty.setToolTip(TIPS["penalty"])
        self.alpha = self._dspin(0.0, 3.0, 0.0, "alpha")
        self.beta = self._dspin(0.0, 2.0, 0.0, "beta")
        self.max_len = self._spin(1, 200, 40, "max_len")
        self.show_pruned = QCheckBox("show pruned")
        self.show_pruned.setToolTip(TIPS["pruned"])
        self.show_dead = QCheckBox("show dropped")
        self.show_dead.setToolTip(TIPS["dead"])
        self.legend = QLabel(LEGEND)
        self.legend.setWordWrap(True)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        # room for the wrapped lines: a splitter column does not pass height-for-width down
        self.summary.setMinimumHeight(4 * self.summary.fontMetrics().lineSpacing())
        for label in (self.legend, self.summary):  # they wrap to the fields' width, not set it
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        form = QFormLayout()
        form.addRow("beam size k", self.beam)
        form.addRow("n-best", self.nbest)
        form.addRow("length norm.", self.penalty)
        form.addRow("α", self.alpha)
        form.addRow("coverage β", self.beta)
        form.addRow("max length", self.max_len)
        controls = QWidget()
        cl = QVBoxLayout(controls)
        cl.addLayout(form)
        cl.addWidget(self.show_dead)
        cl.addWidget(self.show_pruned)
        cl.addWidget(self.legend)
        cl.addWidget(self.summary)
        cl.addStretch(1)
        # scrolled: projector fonts on a small screen must not make the panel taller than it;
        # as wide as the fields ask in every font (see OptionsColumn)
        scroll = OptionsColumn(controls)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        return scroll

    def _build_main(self) -> QWidget:
        controls = self._build_controls()
        self.tree_view = BeamTreeView()
        self.details = PathDetails()
        self.nbest_table = NBestTable()
        self.exact_button = QPushButton("Run exact search")
        self.exact_button.setToolTip(
            "Find the translation the model scores highest over all outputs (short outputs "
            "only): did beam search miss it, or does the model prefer a wrong translation?"
        )
        self.exact_text = QLabel("")
        self.exact_text.setWordWrap(True)
        self.exact_text.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.exact_text.record = None  # the session's exact search on show
        exact = QWidget()
        el = QVBoxLayout(exact)
        el.addWidget(self.exact_button)
        el.addWidget(self.exact_text, 1)
        self.sweep = SweepWidget()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.nbest_table, "n-best vs greedy")
        self.tabs.addTab(exact, "exact search")
        self.tabs.addTab(self.sweep, "beam sweep")

        top = QSplitter(Qt.Horizontal)
        top.addWidget(controls)
        top.addWidget(self._tree_column())
        top.addWidget(self.details)
        top.setSizes([220, 760, 420])
        # the tree takes most of what the window gains or loses; the controls keep their width,
        # and the tree keeps room to be read when projector fonts widen the columns beside it
        top.setStretchFactor(0, 0)
        top.setStretchFactor(1, 3)
        top.setStretchFactor(2, 1)
        top.setChildrenCollapsible(False)
        self.tree_view.setMinimumWidth(TREE_MIN_WIDTH)
        self.controls = controls
        controls.follow(top)
        vertical = QSplitter(Qt.Vertical)
        vertical.addWidget(top)
        vertical.addWidget(self.tabs)
        vertical.setSizes([560, 320])  # at 720 px high the n-best rows (and greedy) still show
        vertical.setStretchFactor(0, 3)  # the tree gets most of a taller window
        vertical.setStretchFactor(1, 1)
        page = QWidget()
        pl = QVBoxLayout(page)
        row = QHBoxLayout()
        row.addWidget(QLabel("Source:"))
        row.addWidget(self.sentence, 3)
        row.addWidget(self.examples, 2)
        pl.addLayout(row)
        pl.addWidget(vertical, 1)
        self._connect()
        return page

    def _tree_column(self) -> QWidget:
        """The tree with its zoom buttons and a line that says how to move about."""
        self.zoom_out = QPushButton("−")
        self.zoom_in = QPushButton("+")
        self.zoom_reset = QPushButton("⟲")
        for b, tip in (
            (self.zoom_out, "Zoom out (never so far that labels would meet)"),
            (self.zoom_in, "Zoom in"),
            (self.zoom_reset, "Back to the labels' own size, from the start, on the chosen path"),
        ):
            b.setToolTip(tip)
            b.setFixedWidth(b.fontMetrics().horizontalAdvance("⟲") * 3 + 12)
        self.zoom_out.clicked.connect(lambda: self.tree_view.zoom(1 / 1.4))
        self.zoom_in.clicked.connect(lambda: self.tree_view.zoom(1.4))
        self.zoom_reset.clicked.connect(self.tree_view.reset_view)
        # grey by rich text, not a style sheet, which would keep projector mode's font off it
        self.tree_hint = QLabel(f"<span style='color:#777'>{TREE_HINT}</span>")
        self.tree_hint.setWordWrap(True)
        bar = QHBoxLayout()
        for b in (self.zoom_out, self.zoom_in, self.zoom_reset):
            bar.addWidget(b)
        bar.addWidget(self.tree_hint, 1)
        column = QWidget()
        lay = QVBoxLayout(column)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(bar)
        lay.addWidget(self.tree_view.divergence_text)
        lay.addWidget(self.tree_view, 1)
        return column

    def _connect(self) -> None:
        for w in (self.beam, self.nbest, self.max_len):
            w.valueChanged.connect(self._schedule)
        for w in (self.alpha, self.beta):
            w.valueChanged.connect(self._schedule)
        self.penalty.currentTextChanged.connect(self._on_penalty)
        self.sentence.textChanged.connect(self._debounce.start)
        self.examples.watch(self.sentence, self.nbest_table.reference)
        self.show_pruned.toggled.connect(self.tree_view.set_show_pruned)
        self.show_dead.toggled.connect(self.tree_view.set_show_dead)
        self.tree_view.node_clicked.connect(self.select_node)
        self.tree_view.greedy_clicked.connect(self._select_greedy)
        self.details.open_in_step.connect(self._open_in_step)
        self.exact_button.clicked.connect(self.state.run_exact)
        self.sweep.error.connect(self.state.error)
        self.sweep.run_sweep = self.state.run_sweep
        self.sweep.default_pairs = classroom_test_pairs
        self.tree_view.empty = EmptyNote(self.tree_view)
        self.details.empty = EmptyNote(self.details)
        self.nbest_table.empty = EmptyNote(self.nbest_table)
        self.exact_text.empty = EmptyNote(self.exact_text)
        install_beam(self)  # each view's right-click menu: PNG, SVG, CSV, JSON

    def _spin(self, lo: int, hi: int, value: int, tip: str) -> QSpinBox:
        w = QSpinBox()
        w.setRange(lo, hi)
        w.setValue(value)
        w.setToolTip(TIPS[tip])
        return w

    def _dspin(self, lo: float, hi: float, value: float, tip: str) -> QDoubleSpinBox:
        w = QDoubleSpinBox()
        w.setRange(lo, hi)
        w.setSingleStep(0.1)
        w.setDecimals(2)
        w.setValue(value)
        w.setToolTip(TIPS[tip])
        return w

    # ---------------------------------------------------------------- public
    def set_sentence(self, text: str) -> None:
        """Type ``text``; the session's search follows."""
        self.sentence.setText(text)  # the example picker hears it (a reference may go)
        self._commit_sentence()

    # search functions (tests and benchmarks substitute their own): the session's
    search_fn = property(lambda self: self.state.search_fn,
                         lambda self, f: setattr(self.state, "search_fn", f))  # fmt: skip
    exact_fn = property(lambda self: self.state.exact_fn,
                        lambda self, f: setattr(self.state, "exact_fn", f))  # fmt: skip
    sweep_fn = property(lambda self: self.state.sweep_fn,
                        lambda self, f: setattr(self.state, "sweep_fn", f))  # fmt: skip

    @property
    def entry(self):
        return self.state.current

    def params(self) -> dict:
        """The search settings the controls describe."""
        return {
            "beam": self.beam.value(),
            "nbest": min(self.nbest.value(), self.beam.value()),
            "max_len": self.max_len.value(),
            "length_penalty": self.penalty.currentText(),
            "alpha": self.alpha.value(),
            "beta": self.beta.value(),
        }

    def draw_tree(self, result: Any) -> None:
        """Lay out and draw the tree of a BeamResult (or BeamTree); the benchmark times this."""
        self.tree_view.draw_tree(result)

    def show_result(self, result: Any) -> None:
        """Draw a BeamResult: tree, greedy overlay, n-best table; select the chosen hypothesis."""
        self.result = result
        for view in (self.tree_view, self.details, self.nbest_table):
            view.empty.say("")
        self.nbest_table.record = result.tree
        tree, greedy, divergence = result_parts(result)
        self.draw_tree(result)
        nbest = getattr(result, "nbest", None)
        if nbest is None:
            nbest = [_hyp_from_node(tree, i) for i in tree.finished[:10]]
        self.nbest_table.show_result(list(nbest), greedy)
        where = (
            "greedy and beam agree"
            if divergence is None
            else f"greedy leaves the beam's choice at step {divergence + 1}"
        )
        stop = getattr(result, "stop_reason", "") or tree.stop_reason
        fates = tree.fates()
        self.summary.setText(
            f"{len(tree) - 1} candidates: {fates['kept']} kept, {fates['pruned']} pruned, "
            f"{fates['finished'] + fates['chosen']} finished. {where}. stop: {stop or '—'}"
        )
        if tree.chosen is not None:
            self.select_node(tree.chosen.id)
        else:
            self.details.clear()
        self.result_shown.emit(result)

    def select_node(self, node_id: int) -> None:
        tree = self.tree_view.tree
        if tree is None:
            return
        self.tree_view.select(node_id)
        self.details.show_node(tree, node_id)

    def export_figure(self, path: str | Path) -> Path:
        return save_figure(self.tree_view, path)

    def export_data(self, path: str | Path) -> Path:
        """JSON: the tree (BeamTree.to_dict), the greedy decode beside it and the n-best list."""
        tree = self.tree_view.tree
        if tree is None:
            raise ValueError("Beam panel: nothing to export yet (no search has run)")
        data = tree.to_dict()
        data["divergence"] = self.tree_view.divergence
        greedy = self.tree_view.greedy
        data["greedy"] = (
            None
            if greedy is None
            else {
                "tokens": greedy.tokens,
                "pieces": greedy.pieces,
                "logprobs": greedy.token_logprobs.tolist(),
                "score": greedy.score,
            }
        )
        data["nbest"] = [
            {"text": text, "score": S, "normalized_score": ns, "length": n}
            for kind, text, S, ns, n in self.nbest_table.rows
            if kind != "greedy"
        ]
        return save_json(data, path)

    def wait_idle(self, qtbot, timeout: int = 10000) -> None:
        """For tests: wait until the typed sentence reached the session and no worker runs."""
        runner = self.state.runner
        qtbot.waitUntil(lambda: not runner.busy and not self._debounce.isActive(), timeout=timeout)

    # ---------------------------------------------------------------- search
    def _on_model(self, entry) -> None:
        self.pages.setCurrentIndex(0 if entry is None else 1)
        decode = getattr(getattr(entry, "tokenizer", None), "decode_tgt", None)
        self.details.decode = self.nbest_table.decode = decode
        if entry is not None:
            self.examples.show_for(entry.path)
        if entry is not None and not self.state.sentence and entry.classroom:
            self.examples.pick(0)  # a classroom model opens on the lectures' example

    def _on_session(self, part: str) -> None:
        s = self.state
        if part == "beam":
            if s.beam is not None:
                self.show_result(s.beam)
            else:
                self._clear(s.why("beam"))
        elif part == "exact":
            self._show_exact()
        elif part == "sweep":
            self.sweep.show_record(s.records["sweep"], s.why("sweep"))
        elif part == "sentence" and self.sentence.text().strip() != s.sentence:
            self.sentence.setText(s.sentence)
            self._debounce.stop()  # the session has it already

    def _pick_example(self, src: str, ref: str) -> None:
        self.nbest_table.reference.setText(ref)
        self.set_sentence(src)

    def _clear(self, why: str = "") -> None:
        """No search to show: drop any tree on screen and say why."""
        self.result = None
        self.tree_view.clear_tree()
        self.details.clear()
        self.nbest_table.show_result([], None)
        self.nbest_table.record = None
        self.summary.setText("")
        for view in (self.tree_view, self.details, self.nbest_table):
            view.empty.say(why)

    def _on_penalty(self, name: str) -> None:
        self.alpha.setValue(DEFAULT_ALPHA[name])
        self._schedule()

    def _schedule(self, *_: Any) -> None:
        """A search control changed: the session's settings follow."""
        self.state.set_beam_params(**self.params())

    def _commit_sentence(self) -> None:
        self._debounce.stop()
        self.state.set_sentence(self.sentence.text())

    def _show_exact(self) -> None:
        record = self.state.records["exact"]
        self.exact_text.record = record
        self.exact_text.empty.say(self.state.why("exact") if record is None else "")
        if record is None:
            self.exact_text.setText("")
        else:
            self.show_exact(record.value, f"{record.origin.model} on “{record.origin.text}”")

    def show_exact(self, exact: Any, origin: str = "") -> None:
        """Compare exact search's best (an ExactResult) with beam search's, by the same score."""
        best = exact.best

        def num(x: float) -> str:
            return f"{x:.3f}".replace("-", "−")

        lines = [
            *([origin] if origin else []),
            f"exact best: “{best.text}”  S = {num(best.score)}, s = {exact.formula} = "
            f"{num(best.normalized_score)}  ({exact.expansions} prefixes expanded)",
            f"empty translation (only </s>): S = {num(exact.empty_score)}",
        ]
        beam = getattr(self.result, "nbest", None)
        if beam:
            b = beam[0]
            lines.append(
                f"beam search: “{b.text}”  S = {num(b.score)}, s = {num(b.normalized_score)}"
            )
            if b.formula != exact.formula:
                lines.append("(the settings changed since the search: run both again)")
            elif search_error(self.result, exact):
                lines.append(
                    "→ a search error: beam search missed a translation the model scores higher."
                )
            else:
                lines.append(
                    "→ no search error: the beam found the model's best; if it is "
                    "wrong, the model prefers a wrong translation."
                )
        self.exact_text.setText("\n".join(lines))

    # ---------------------------------------------------------------- misc
    def _select_greedy(self) -> None:
        if self.tree_view.greedy is not None:
            self.tree_view.select(None)
            self.details.show_greedy(self.tree_view.greedy)

    def _open_in_step(self, trace: Any) -> None:
        if self.state.current is not None:
            self.state.open_in_step.emit(self.state.current, trace)

    def restyle(self, _theme: str | None = None, scale: float | None = None) -> None:
        """Follow the theme and projector mode (View ▸ Projector mode): plot fonts, tree labels."""
        scale = theme.signals().scale if scale is None else scale
        theme.style_plots(self, scale)
        self.tree_view.set_font_scale(scale)
        self.nbest_table.fit_rows()


def _hyp_from_node(tree: Any, node_id: int) -> Any:
    path = tree.path(node_id)
    n = tree.nodes[node_id]
    return SimpleNamespace(
        tokens=[p.token for p in path],
        pieces=[p.piece for p in path],
        text="",
        score=n.score,
        normalized_score=n.normalized_score,
    )
