"""Step-through: a view of the session's Trace, walked one token at a time.

Every view follows the session's current step t and draws from its finished :class:`Trace` only;
moving the slider never runs the model. The session decodes (in the background) when the sentence,
the model or the mode changes, when a token is forced (decoding goes on greedily from the forced
prefix), and for the comparison model; until a trace is there each view says why it is empty.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets
from superqt import QLabeledSlider
from superqt.utils import signals_blocked

from explorer.gui.beam.bleu_walkthrough import step_panel_button
from explorer.gui.exports.step import install as install_exports
from explorer.gui.session import MODES, Session
from explorer.gui.state import LoadedModel
from explorer.gui.step.alignment import AlignmentView
from explorer.gui.step.arithmetic import ArithmeticView
from explorer.gui.step.attention import AttentionBarsView
from explorer.gui.step.common import FONT_PT, LabelBox
from explorer.gui.step.compare import CompareColumn
from explorer.gui.step.edit import AttentionEditor, what_if_html
from explorer.gui.step.hidden import HiddenStatesView
from explorer.gui.step.neighbours import NeighboursView
from explorer.gui.step.readout import source_marks, words_html
from explorer.gui.step.sync import SideBySide, word_starts
from explorer.gui.step.text import RichLine, TextLines
from explorer.gui.step.topk import TopKView
from explorer.gui.step.transformer import TransformerView
from explorer.gui.widgets import theme
from explorer.gui.widgets.examples import ExamplePicker
from explorer.gui.widgets.export import save_figure, save_json, save_matrix_csv, trace_to_dict
from explorer.seq2seq.decoding.tokendiff import differing
from explorer.seq2seq.decoding.trace import Trace

HINT = "Load or train a model (Train & Load tab) to step through its decoding."


class StepPanel(QtWidgets.QWidget):
    """The Step-through tab."""

    step_changed = QtCore.Signal(int)
    trace_changed = QtCore.Signal(object)

    def __init__(self, state: Session, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self._parts: dict[int, list[tuple[str, str]]] = {}  # id(trace) → _word_parts(trace)
        self._shown: Trace | None = None  # the trace the views were last given
        self._build_inputs()
        self._build_transport()
        self._build_views()
        install_exports(self)  # each view's right-click menu: PNG, SVG, CSV, JSON
        self._build_layout()
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self._tick)
        state.current_changed.connect(self._on_current)
        state.models_changed.connect(self._fill_models)
        state.changed.connect(self._on_session)
        theme.signals().changed.connect(self.restyle)
        self._fill_models()
        self.restyle()
        self._on_current(state.current)
        state.want("trace")
        self._on_session("sentence")
        self._show_trace()

    # the session's records ----------------------------------------------------------------

    @property
    def entry(self) -> LoadedModel | None:
        return self.state.current

    @property
    def trace(self) -> Trace | None:
        return self.state.trace

    @property
    def t(self) -> int:
        return self.state.step

    @property
    def original(self) -> Trace | None:
        return self.state.original

    @property
    def forced_at(self) -> int | None:
        return self.state.forced[0][0] if self.state.forced else None

    def _on_session(self, part: str) -> None:
        if part == "trace":
            self._show_trace()
        elif part == "step":
            self.redraw_all()
        elif part == "compare":
            self._show_compare()
        elif part == "sentence" and self.sentence.text().strip() != self.state.sentence:
            self.sentence.setText(self.state.sentence)  # typing it does not decode: Enter does

    # construction -------------------------------------------------------------------------

    def _build_inputs(self) -> None:
        self.sentence = QtWidgets.QLineEdit()
        self.sentence.setPlaceholderText("Type a source sentence and press Enter")
        self.sentence.setToolTip("The source sentence x; the encoder turns it into states h_i.")
        self.sentence.returnPressed.connect(self.decode)
        self.examples = ExamplePicker()
        self.examples.picked.connect(self._pick_example)
        self.model_box = QtWidgets.QComboBox()
        self.model_box.setToolTip("Which loaded model decodes the sentence.")
        self.model_box.activated.connect(self._pick_model)
        self.mode_box = QtWidgets.QComboBox()
        self.mode_box.addItems(MODES)
        self.mode_box.setToolTip(
            "Greedy takes the most probable token; sampling draws from p^(1/T); teacher forcing "
            "feeds the reference translation instead of the model's own guesses."
        )
        self.mode_box.currentIndexChanged.connect(self._mode_changed)
        self.temperature = QtWidgets.QDoubleSpinBox()
        self.temperature.setRange(0.05, 5.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(1.0)
        self.temperature.setPrefix("T = ")
        self.temperature.setToolTip(
            "Sampling temperature: below 1 sharpens p, above 1 flattens it."
        )
        self.reference = QtWidgets.QLineEdit()
        self.reference.setPlaceholderText("reference translation (teacher forcing)")
        self.reference.setToolTip(
            "Teacher forcing: the decoder is fed this reference, and each step shows the loss "
            "−log p of the reference token."
        )
        self.reference.returnPressed.connect(self.decode)
        self.examples.watch(self.sentence, self.reference)
        self.decode_button = QtWidgets.QPushButton("Decode")
        self.decode_button.setToolTip("Run the model once; then step through the recorded trace.")
        self.decode_button.clicked.connect(self.decode)
        self.pieces_label = QtWidgets.QLabel()
        self.pieces_label.setToolTip("The source as the sentencepiece pieces the encoder sees.")
        self.pieces_label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.output_label = RichLine(HINT)  # each step's text laid out once (see step_text)
        # A box of fixed height: a new step's text must not re-lay the plots out below it.
        self.output_box = LabelBox(self.output_label)

    def _build_transport(self) -> None:
        def tool(text: str, tip: str, slot) -> QtWidgets.QToolButton:
            b = QtWidgets.QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            return b

        self.first_button = tool("|◀", "First step (Home).", self.first)
        self.back_button = tool("◀", "One step back (←).", self.back)
        self.play_button = tool("▶ play", "Play or pause, one step per tick (Space).", self.play)
        self.forward_button = tool("▶", "One step forward (→).", self.forward)
        self.last_button = tool("▶▶|", "Last step (End).", self.last)
        self.speed = QtWidgets.QDoubleSpinBox()
        self.speed.setRange(0.25, 10.0)
        self.speed.setValue(1.5)
        self.speed.setSuffix(" steps/s")
        self.speed.setToolTip("Playback speed.")
        self.speed.valueChanged.connect(self._speed_changed)
        self.slider = QLabeledSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setRange(1, 1)
        self.slider.setToolTip("The current target step t; every view shows this step.")
        self.slider.valueChanged.connect(lambda v: self.set_step(v - 1))
        self.force_edit = QtWidgets.QLineEdit()
        self.force_edit.setPlaceholderText("piece to force")
        self.force_edit.setToolTip(
            "What if: force this target piece at the current step and decode on greedily from it."
        )
        self.force_edit.returnPressed.connect(self._force_typed)
        self.force_button = tool("Force", "Force the typed piece at this step.", self._force_typed)
        self.restore_button = tool(
            "Restore original", "Go back to the decode before any token was forced.", self.restore
        )
        self.restore_button.setEnabled(False)
        self.compare_check = QtWidgets.QCheckBox("Compare")
        self.compare_check.setToolTip("Show a second model on the same sentence, stepped in sync.")
        self.compare_check.toggled.connect(self._compare_toggled)

    def _build_views(self) -> None:
        self.alignment = AlignmentView()
        self.bars = AttentionBarsView()
        self.topk = TopKView()
        self.topk.candidate_clicked.connect(self.force_token)
        self.arithmetic = ArithmeticView()
        self.hidden = HiddenStatesView()
        self.transformer = TransformerView()
        self.transformer.selection_changed.connect(self._head_changed)
        self.editor = AttentionEditor()
        self.editor.edit_requested.connect(self.state.edit_attention)
        self.sync = SideBySide(self.state)
        self.compare = CompareColumn()
        self.compare.model_box.activated.connect(lambda _: self._decode_compare())
        self.views = {
            "alignment": self.alignment, "bars": self.bars, "topk": self.topk,
            "arithmetic": self.arithmetic, "hidden": self.hidden, "transformer": self.transformer,
        }  # fmt: skip
        self.compare.setVisible(False)

    def _build_layout(self) -> None:
        row1 = QtWidgets.QHBoxLayout()
        row1.addWidget(self.sentence, 3)
        row1.addWidget(self.examples, 2)
        row1.addWidget(self.model_box, 2)
        row1.addWidget(self.mode_box)
        row1.addWidget(self.temperature)
        row1.addWidget(self.reference, 2)
        row1.addWidget(self.decode_button)
        row1.addWidget(step_panel_button(self))  # BLEU of the output, step by step
        row2 = QtWidgets.QHBoxLayout()
        for w in (
            self.first_button,
            self.back_button,
            self.play_button,
            self.forward_button,
            self.last_button,
            self.speed,
        ):
            row2.addWidget(w)
        row2.addWidget(self.slider, 1)
        row2.addWidget(self.force_edit)
        row2.addWidget(self.force_button)
        row2.addWidget(self.restore_button)
        row2.addWidget(self.compare_check)
        top = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        for w in (self.alignment, self.bars, self.topk):
            top.addWidget(w)
        top.setSizes([420, 420, 360])
        self._build_tabs()
        self.tabs.currentChanged.connect(lambda _: self.redraw_all())
        main = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        main.addWidget(top)
        main.addWidget(self.tabs)
        main.setSizes([420, 330])
        body = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        body.addWidget(main)
        body.addWidget(self.compare)
        body.setSizes([1100, 300])
        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(row1)
        lay.addWidget(self.pieces_label)
        lay.addWidget(self.output_box)
        lay.addLayout(row2)
        lay.addWidget(body, 1)
        self._mode_changed()

    def _build_tabs(self) -> None:
        """The views below the plots, one tab each."""
        self.tabs = QtWidgets.QTabWidget()
        # As the window's own tabs: no styled frame round the page, which Fusion fills pixel by
        # pixel on every repaint (the largest single cost of redrawing a step).
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.arithmetic, "Arithmetic")
        # Scrolled: its form would otherwise set the least height of every tab, which squeezed
        # the plots above to a strip in projector mode.
        exercise = QtWidgets.QScrollArea()
        exercise.setWidget(self.arithmetic.exercise)
        exercise.setWidgetResizable(True)
        exercise.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.tabs.addTab(exercise, "Hand exercise")
        self.tabs.addTab(self.hidden, "Hidden states")
        self.tabs.addTab(self.transformer, "Transformer")
        self.tabs.addTab(self.editor, "Edit attention")
        self.tabs.addTab(self.sync, "Side by side")
        self.neighbours = NeighboursView(self.state)  # follows the session by itself
        self.tabs.addTab(self.neighbours, "Neighbours")

    def restyle(self, _theme: str | None = None, scale: float | None = None) -> None:
        """Follow the theme and projector mode: plot fonts, the arithmetic text, PCA labels."""
        scale = theme.signals().scale if scale is None else scale
        theme.style_plots(self, scale)
        texts = self.findChildren(QtWidgets.QPlainTextEdit) + self.findChildren(TextLines)
        for edit in texts:
            font = edit.font()
            font.setPointSizeF(FONT_PT * scale)
            edit.setFont(font)
        for view in (self.topk, self.compare.topk):
            view.restyle(scale)
        self.hidden.set_font_scale(scale)
        self.bars.fit_title_size(theme.signals().metrics.title_px)
        lines = 3  # the output, the forced-token note, room for wrapping
        spacing = QtGui.QFontMetricsF(QtWidgets.QApplication.font()).lineSpacing()
        self.output_box.setFixedHeight(int(spacing * lines) + 6)

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:  # noqa: N802
        """← → Home End Space, when no text field or slider took the key first."""
        keys = {
            QtCore.Qt.Key.Key_Left: self.back,
            QtCore.Qt.Key.Key_Right: self.forward,
            QtCore.Qt.Key.Key_Home: self.first,
            QtCore.Qt.Key.Key_End: self.last,
            QtCore.Qt.Key.Key_Space: self.play,
        }
        slot = keys.get(QtCore.Qt.Key(event.key()))
        if slot is None:
            super().keyPressEvent(event)
            return
        slot()
        event.accept()

    # models -------------------------------------------------------------------------------

    def _fill_models(self) -> None:
        names = [m.name for m in self.state.models]
        for box in (self.model_box, self.compare.model_box):
            keep = box.currentText()
            box.blockSignals(True)
            box.clear()
            box.addItems(names)
            if keep in names:
                box.setCurrentIndex(names.index(keep))
            box.blockSignals(False)

    def _on_current(self, entry: LoadedModel | None) -> None:
        self.decode_button.setEnabled(entry is not None)
        if entry is None:
            return
        if self.model_box.findText(entry.name) >= 0:
            self.model_box.setCurrentIndex(self.model_box.findText(entry.name))
        self.examples.show_for(entry.path)
        if not self.state.sentence and entry.classroom:
            self.examples.pick(0)  # a classroom model opens on the lectures' example

    def _pick_model(self, index: int) -> None:
        entry = self.state.by_name(self.model_box.itemText(index))
        if entry is not None:
            self.state.set_current(entry)

    def _pick_example(self, src: str, ref: str) -> None:
        self.reference.setText(ref)
        self.set_sentence(src)

    def _mode_changed(self) -> None:
        mode = self.mode_box.currentText()
        self.temperature.setVisible(mode == "sample")
        self.reference.setVisible(mode == "teacher-forced")

    # decoding -----------------------------------------------------------------------------

    def piece_of(self, token: int) -> str:
        tok = self.entry.tokenizer if self.entry is not None else None
        if tok is None:
            return str(token)
        try:
            return tok.tgt_piece(token)
        except (ValueError, IndexError, AttributeError):
            return str(token)

    def set_sentence(self, text: str) -> None:
        """Type ``text`` and decode it (in the background: the session's trace follows)."""
        self.sentence.setText(text)
        self.decode()

    def decode(self) -> None:
        """Ask the session for the sentence decoded with the current model and mode."""
        text = self.sentence.text().strip()
        if not text:  # an emptied sentence: nothing is decoded, and every view says so
            self.state.set_sentence("")
            return
        if self.entry is None:
            return
        mode, temperature = self.mode_box.currentText(), self.temperature.value()
        reference = self.reference.text().strip()
        if mode == "teacher-forced" and not reference:
            self.state.error.emit("Step-through: teacher forcing needs a reference translation")
            return
        s = self.state
        settings = (mode, temperature, reference) != (s.mode, s.temperature, s.reference)
        if settings:
            s.set_decode(mode, temperature, reference)
        if " ".join(text.split()) != s.sentence:
            s.set_sentence(text)
        elif not settings:
            s.set_decode(mode, temperature, reference)  # the same again: a fresh decode

    def show_trace(self, entry: LoadedModel, trace: Trace) -> None:
        """Show a trace decoded elsewhere (the beam panel's hypotheses)."""
        self.state.show_trace(entry, trace)

    def force_token(self, token: int) -> None:
        """What if: token at the current step, then greedy decoding from that prefix."""
        self.state.force(token)

    def _force_typed(self) -> None:
        piece = self.force_edit.text().strip()
        if not piece or self.entry is None:
            return
        try:
            token = self.entry.tokenizer.piece_to_id(piece, "tgt")
        except ValueError as e:
            self.state.error.emit(f"Step-through: {e}")
            return
        self.force_token(token)

    def restore(self) -> None:
        self.state.restore()

    def _compare_toggled(self, on: bool) -> None:
        self.compare.setVisible(on)
        if on:
            self.state.want("compare")
        self._decode_compare()
        self.redraw_all()

    def _decode_compare(self) -> None:
        name = self.compare.model_box.currentText() if self.compare_check.isChecked() else None
        self.state.set_compare(name)

    def _show_compare(self) -> None:
        s = self.state
        trace = s.records["compare"]
        entry = s.compare_entry()
        self.compare.alignment.marks = source_marks(entry, trace)
        tok = entry.tokenizer if entry is not None else None
        starts = word_starts(tok, trace.tokens) if trace is not None and tok is not None else None
        self.compare.set_trace(trace, tok.tgt_piece if tok is not None else None, starts)
        self.compare.empty.say(s.why("compare") if trace is None else "")
        if trace is not None:
            self.compare.set_step(self.t)

    # the trace and the current step -------------------------------------------------------

    def _show_trace(self) -> None:
        """Give every view the session's trace, or the reason there is none."""
        trace = self.trace
        if trace is not self._shown:
            self.timer.stop()
            self.play_button.setText("▶ play")
        self._shown = trace
        self._parts.clear()  # the shown traces (this one, the original) are worked out anew
        self.restore_button.setEnabled(self.original is not None)
        d_embed = self.entry.config.get("emb_dim") if self.entry is not None else None
        layer, head = -1, None
        marks = source_marks(self.entry, trace)  # words never seen in training, or <unk>
        for view in (self.alignment, self.bars, self.transformer, self.hidden):
            view.marks = marks
        self.transformer.set_trace(trace)
        if trace is not None and trace.steps and trace.steps[0].self_attention is not None:
            layer, head = self.transformer.layer, self.transformer.head
        self.alignment.set_trace(trace, layer, head)
        self.bars.set_trace(trace, layer, head)
        self.topk.set_trace(trace, self.piece_of)
        self.arithmetic.layer, self.arithmetic.head = layer, head
        score_weights = getattr(getattr(self.entry, "model", None), "score_weights", None)
        weights = score_weights() if score_weights is not None else None
        self.arithmetic.set_trace(trace, d_embed, weights)
        self.hidden.set_trace(trace)
        self.editor.set_trace(trace)
        n = len(trace) if trace is not None else 0
        self.pieces_label.setText(
            ""
            if trace is None
            else "Source pieces: " + "  ".join(f"<b>{p}</b>" for p in trace.src_pieces)
        )
        with signals_blocked(self.slider):
            self.slider.setRange(1, max(1, n))
        why = self.state.why("trace")
        for view in self.views.values():
            if trace is None:
                view.empty.say(why)
            elif view not in (self.alignment, self.transformer):  # they say what they lack
                view.empty.say("")
        self.trace_changed.emit(trace)
        if n:
            self.redraw_all()
        else:
            self.output_label.setText(why[:1].upper() + why[1:] if self.entry else HINT)

    def _head_changed(self, layer: int, head: int | None) -> None:
        self.alignment.set_trace(self.trace, layer, head)
        self.bars.set_trace(self.trace, layer, head)
        self.arithmetic.set_head(layer, head)
        self.redraw_all()

    def set_step(self, t: int) -> None:
        """Move every view to step t (0-based, clamped): the session's step."""
        if self.trace is None or not self.trace.steps:
            return
        before = self.t
        if self.state.set_step(t) != before:
            self.step_changed.emit(self.t)

    def redraw_all(self) -> None:
        """Redraw every view at the current step from the trace (no model call)."""
        tr, t = self.trace, self.t
        if tr is None or not tr.steps:
            return
        with signals_blocked(self.slider):
            self.slider.setValue(t + 1)
        if tr.has_attention:
            self.alignment.set_step(t)
        self.bars.set_step(t)
        self.topk.set_step(t)
        tab = self.tabs.currentWidget()  # the hidden tabs catch up when they are shown
        for view in (self.arithmetic, self.hidden, self.transformer, self.editor):
            if view is tab:
                view.set_step(t)
        if self.compare.isVisible():
            self.compare.set_step(t)
        self.output_label.setText(self._output_html())

    def _word_parts(self, trace: Trace) -> list[tuple[str, str]]:
        """(the space before it, the escaped piece) for each target piece: pieces of one word are
        written together ("j'ai"), words apart. Worked out once per trace, not on every step."""
        parts = self._parts.get(id(trace))
        if parts is None:
            tok = self.entry.tokenizer if self.entry is not None else None
            starts = word_starts(tok, trace.tokens) or [True] * len(trace)
            parts = self._parts[id(trace)] = [
                (" " if i and starts[i] else "", html.escape(piece))
                for i, piece in enumerate(trace.pieces)
            ]
        return parts

    def _output_html(self) -> str:
        tr, t = self.trace, self.t

        words = lambda trace, mark, diff: words_html(self._word_parts(trace), mark, diff)  # noqa: E731
        step, s = tr.steps[t], self.state
        differ = () if self.original is None else differing([self.original.pieces, tr.pieces])[1]
        line = f"Step {t + 1}/{len(tr)} ({tr.method}): {words(tr, t, differ)}"
        if tr.method == "teacher-forced":
            line += f"   &nbsp; loss −log p(“{step.piece}”) = <b>{-step.logprob:.3f}</b>"
        if self.original is not None:
            line += "<br>" + what_if_html(self.original, tr, words, s.forced, s.edits)
        return line

    # transport ----------------------------------------------------------------------------

    def first(self) -> None:
        self.set_step(0)

    def last(self) -> None:
        if self.trace is not None:
            self.set_step(len(self.trace) - 1)

    def forward(self) -> None:
        self.set_step(self.t + 1)

    def back(self) -> None:
        self.set_step(self.t - 1)

    def play(self) -> None:
        if self.timer.isActive() or self.trace is None:
            self.timer.stop()
            self.play_button.setText("▶ play")
            return
        if self.t >= len(self.trace) - 1:
            self.set_step(0)
        self._speed_changed()
        self.timer.start()
        self.play_button.setText("⏸ pause")

    def _speed_changed(self) -> None:
        self.timer.setInterval(int(1000 / self.speed.value()))

    def _tick(self) -> None:
        if self.trace is None or self.t >= len(self.trace) - 1:
            self.play()
            return
        self.forward()

    # export -------------------------------------------------------------------------------

    def export_figure(self, path: str | Path) -> Path:
        return save_figure(self, path)

    def export_data(self, path: str | Path) -> Path:
        """.json: the whole trace; .csv: the alignment matrix (target × source)."""
        path = Path(path)
        if self.trace is None:
            raise ValueError(f"{path}: nothing to export; decode a sentence first")
        suffix = path.suffix.lower()
        if suffix == ".json":
            return save_json(trace_to_dict(self.trace), path)
        if suffix == ".csv":
            m = self.alignment.matrix
            if m is None:
                raise ValueError(f"{path}: this model has no attention matrix to export")
            return save_matrix_csv(np.asarray(m), self.trace.pieces, self.trace.src_pieces, path)
        raise ValueError(f"{path}: data exports as .json or .csv, not {suffix or 'no extension'}")
