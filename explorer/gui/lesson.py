"""Lessons in the window: replay a prepared lesson scene by scene, and prepare one.

:class:`LessonPlayer` applies a scene as a sequence of session changes (no window needed): the
scene's model (loaded through the runner if it is not open yet), its beam settings, its sentence,
each forced token once the decode before it has arrived, then its step; it then asks the window
to show the scene's tab and view, and announces the note. A newer scene cancels what is left of
an older one. :class:`LessonController` puts it in the window: the Lesson menu (open, save scene,
save lesson, next and previous with Page Down / Page Up) and the bar that shows the note.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QFontMetrics, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QToolButton,
    QWidget,
)

from explorer.gui.runner import runner
from explorer.gui.state import LoadedModel
from explorer.gui.widgets import theme

if TYPE_CHECKING:  # (torch loads with the first model, not with the window)
    from explorer.gui.session import Session
    from explorer.seq2seq.decoding.edit import AttentionEdit
    from explorer.seq2seq.lesson import Forced, Lesson, Scene

LESSON_FILTER = "Lessons (*.json);;All files (*)"


def _step_of(change: Forced | AttentionEdit) -> int:
    """A scene's change by the step it is made at (a forced token's step counts from 1)."""
    return change.step if hasattr(change, "source_index") else change.step - 1


def load_verified(path: Path, sha256: str) -> LoadedModel:
    """In a worker: the checkpoint, after checking it is still the file the lesson names."""
    from explorer.gui.train.jobs import load_checkpoint_job
    from explorer.seq2seq.lesson import LessonError, sha256_of

    if sha256_of(path) != sha256:
        raise LessonError(f"{path.name} changed since the lesson was opened: refused")
    return load_checkpoint_job(path)


def same_file(a: Path | None, b: Path | None) -> bool:
    return a is not None and b is not None and Path(a).resolve() == Path(b).resolve()


class LessonPlayer(QObject):
    """Walks a lesson's scenes on a session; see the module's docstring."""

    shown = Signal(int)  # a scene is applied: its index
    note = Signal(str)  # the text for the note bar ("" when no lesson is open)

    def __init__(self, session: Session, show: Callable[[str, str | None], None] | None = None):
        super().__init__()
        self.session = session
        self.show = show  # (tab, view): the window shows them
        self.lesson: Lesson | None = None
        self.index = -1
        self.ready = True  # the last scene asked for is fully applied
        self._waiting: Callable[[], None] | None = None  # what runs once the trace is there
        self._generation = 0
        self.base_beam = dict(session.beam_params)  # a scene's beam settings start from these
        session.changed.connect(self._on_session)

    # -- walking ---------------------------------------------------------------------------------
    def open(self, lesson: Lesson, start: int = 0) -> None:
        self.lesson = lesson
        self.go(start)

    def close(self) -> None:
        self.lesson, self.index, self._waiting, self.ready = None, -1, None, True
        self._generation += 1
        self.note.emit("")

    def next(self) -> None:
        if self.lesson is not None and self.index < len(self.lesson.scenes) - 1:
            self.go(self.index + 1)

    def previous(self) -> None:
        if self.lesson is not None and self.index > 0:
            self.go(self.index - 1)

    def go(self, index: int) -> None:
        """Apply scene ``index`` (a change of model may first load it in the background)."""
        if self.lesson is None:
            return
        self.index = max(0, min(int(index), len(self.lesson.scenes) - 1))
        self._generation += 1
        self.ready, self._waiting = False, None
        scene = self.lesson.scenes[self.index]
        self.note.emit(self.heading())
        entry = next((m for m in self.session.models if same_file(m.path, scene.path)), None)
        if entry is not None:
            self._with_model(scene, entry)
            return
        gen = self._generation
        self.session.status.emit(f"lesson: loading {scene.path.name}…")
        runner().run(
            "lesson model", load_verified, scene.path, scene.sha256,
            returned=lambda e: gen == self._generation and self._loaded(scene, e),
            errored=lambda exc: gen == self._generation and self._stop(str(exc)),
        )  # fmt: skip

    def heading(self) -> str:
        if self.lesson is None or self.index < 0:
            return ""
        scene = self.lesson.scenes[self.index]
        title = f" · {scene.title}" if scene.title else ""
        return f"Scene {self.index + 1}/{len(self.lesson.scenes)}{title}: {scene.note}"

    # -- one scene, as session changes -----------------------------------------------------------
    def _loaded(self, scene: Scene, entry: LoadedModel) -> None:
        known = next((m for m in self.session.models if same_file(m.path, scene.path)), None)
        if known is None:  # (the window may have opened the same file meanwhile: that one)
            self.session.add(entry, make_current=False)
        self._with_model(scene, known or entry)

    def _with_model(self, scene: Scene, entry: LoadedModel) -> None:
        s = self.session
        s.set_current(entry)
        s.set_beam_params(**{**self.base_beam, **scene.beam})
        if s.original is not None:  # a token forced before this scene: back to the decode
            s.restore()
        s.want("trace")
        s.set_sentence(scene.sentence)
        if not s.sentence:  # a scene without a sentence: nothing to decode or force
            self._finish(scene)
            return
        changes = sorted([*scene.forced, *scene.edits], key=_step_of)
        self._after_trace(lambda: self._changes(scene, changes))

    def _after_trace(self, then: Callable[[], None]) -> None:
        """Run ``then`` once the session has the trace of its model and sentence."""
        if self._trace_is_current():
            then()
        else:
            self._waiting = then

    def _trace_is_current(self) -> bool:
        trace, expected = self.session.trace, self.session.expected()
        return trace is not None and (trace.origin.model, trace.origin.text) == expected

    def _on_session(self, part: str) -> None:
        if part == "trace" and self._waiting is not None:
            if self._trace_is_current():
                then, self._waiting = self._waiting, None
                then()
            elif self.session.why("trace") not in ("", "computing…"):
                self._waiting = None
                self._stop(self.session.why("trace"))

    def _changes(self, scene: Scene, left: list) -> None:
        """The scene's forced tokens and attention edits, in step order, each once the decode
        before it has arrived (a change at a step keeps the changes before it)."""
        if not left:
            self._finish(scene)
            return
        change = left.pop(0)
        done = self._edit(change) if hasattr(change, "source_index") else self._force(change)
        if done:
            self._waiting = lambda: self._changes(scene, left)

    def _force(self, forced: Forced) -> bool:
        s = self.session
        try:
            token = s.current.tokenizer.piece_to_id(forced.piece, "tgt")
        except ValueError as e:
            self._stop(f"cannot force {forced.piece!r}: {e}")
            return False
        if forced.step > len(s.trace):
            self._stop(f"cannot force {forced.piece!r} at step {forced.step}: the decode has "
                       f"{len(s.trace)} steps")  # fmt: skip
            return False
        s.set_step(forced.step - 1)
        s.force(token)
        return True

    def _edit(self, edit: AttentionEdit) -> bool:
        from explorer.seq2seq.decoding.edit import EditError, check_edits

        s = self.session
        try:
            check_edits(s.current.model, [edit], len(s.trace.src_pieces), len(s.trace))
        except EditError as e:
            self._stop(f"cannot edit attention: {e}")
            return False
        s.set_step(edit.step)
        s.edit_attention(edit)
        return True

    def _finish(self, scene: Scene) -> None:
        s = self.session
        s.set_step(scene.step - 1)
        if self.show is not None:
            self.show(scene.tab, scene.view)
        self.ready = True
        self.shown.emit(self.index)

    def _stop(self, why: str) -> None:
        self._waiting, self.ready = None, True
        self.session.error.emit(f"Lesson, scene {self.index + 1}: {why}")


def capture(session: Session, tab: str, view: str | None, note: str, title: str = "") -> Scene:
    """The session as a scene (the model must have a file: its checksum goes in the lesson)."""
    from explorer.seq2seq.lesson import Forced, LessonError, Scene, sha256_of

    entry = session.current
    if entry is None or entry.path is None or not Path(entry.path).is_file():
        raise LessonError("save scene: the current model has no file; save it first (Ctrl+Shift+S)")
    tok = entry.tokenizer
    piece = getattr(tok, "raw_piece", None)
    forced = tuple(
        Forced(t + 1, piece(token, "tgt") if piece else tok.tgt_piece(token))
        for t, token in session.forced
    )
    path = Path(entry.path).resolve()
    return Scene(
        model=path.name, sha256=sha256_of(path), sentence=session.sentence,
        step=session.step + 1, tab=tab, view=view, forced=forced, edits=tuple(session.edits),
        beam=dict(session.beam_params), note=note, title=title, path=path,
    )  # fmt: skip


class LessonController(QObject):
    """The Lesson menu and note bar of a window (``window.lesson``)."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.player = LessonPlayer(window.state, self.show_view)
        self.prepared: list[Scene] = []  # scenes saved with "Save scene", for "Save lesson"
        self._build_bar()
        self._build_menu()
        self.player.note.connect(self._show_note)

    def _build_bar(self) -> None:
        self.note_label = QLabel()
        self.note_label.setObjectName("lessonNote")
        self.note_label.setWordWrap(True)
        self.note_label.setTextFormat(Qt.TextFormat.PlainText)
        self.note_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        box = QWidget()
        lay = QHBoxLayout(box)
        lay.setContentsMargins(8, 4, 8, 4)
        for text, tip, slot in (("◀", "Previous scene (Page Up).", self.player.previous),
                                ("▶", "Next scene (Page Down).", self.player.next)):  # fmt: skip
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            lay.addWidget(b)
        lay.addWidget(self.note_label, 1)
        self.bar = QDockWidget("Lesson", self.window)
        self.bar.setObjectName("lessonBar")
        self.bar.setFeatures(QDockWidget.DockWidgetFeature.NoDockWidgetFeatures)
        self.bar.setTitleBarWidget(QWidget())  # the note is the bar: no title above it
        self.bar.setWidget(box)
        self.window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.bar)
        theme.signals().changed.connect(self.restyle)
        self.restyle()
        self.bar.setVisible(False)

    def restyle(self, *_: Any) -> None:
        """The note a fifth larger than the window's text (projector mode included). A wrapped
        label asks for more height than its lines: the bar holds two to three lines of the note,
        the panels keep the rest (a longer note is cut at the bottom: keep notes short)."""
        font = theme.scaled_font(QApplication.font(), 1.2)
        self.note_label.setFont(font)
        line = QFontMetrics(font).lineSpacing()
        self.bar.setMinimumHeight(line * 2 + 12)
        self.bar.setMaximumHeight(line * 3 + 16)

    def _build_menu(self) -> None:
        self.menu = self.window.menuBar().addMenu("&Lesson")
        items = [
            ("&Open lesson…", self.open_dialog, "Ctrl+L", "Open a lesson file: its first scene."),
            ("&Next scene", self.player.next, "PgDown", "The lesson's next scene."),
            ("&Previous scene", self.player.previous, "PgUp", "The lesson's previous scene."),
            (None, None, None, None),
            ("Save &scene", self.save_scene_dialog, None,
             "Add what the window shows now (model, sentence, step, tab, forced tokens, beam "
             "settings) and a note as the next scene of the lesson being prepared."),
            ("Save &lesson as…", self.save_lesson_dialog, None,
             "Write the scenes saved so far as a lesson file."),
            ("&Close lesson", self.close, None, "Hide the note bar; the window stays as it is."),
        ]  # fmt: skip
        self.actions: dict[str, QAction] = {}
        for text, slot, key, tip in items:
            if text is None:
                self.menu.addSeparator()
                continue
            a = QAction(text, self.window)
            if key is not None:
                a.setShortcut(QKeySequence(key))
                a.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
            a.setStatusTip(tip)
            a.triggered.connect(slot)
            self.menu.addAction(a)
            self.actions[text.replace("&", "").rstrip("…")] = a

    # -- replaying -------------------------------------------------------------------------------
    def open(self, path: str | Path, start: int = 0) -> None:
        """Read and check the lesson (checksums included) in a worker, then show scene ``start``."""
        from explorer.assets import lesson_path
        from explorer.seq2seq.lesson import load_lesson

        runner().run(
            "lesson", load_lesson, lesson_path(path),
            returned=lambda lesson: self.player.open(lesson, start),
            errored=lambda e: self.window.show_error(str(e)),
        )  # fmt: skip

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open lesson", "", LESSON_FILTER)
        if path:
            self.open(path)

    def close(self) -> None:
        self.player.close()

    def show_view(self, tab: str, view: str | None) -> None:
        panel = self.window.set_panel(tab)
        tabs = getattr(panel, "tabs", None)
        if view and tabs is not None:
            titles = [tabs.tabText(i).replace("&", "").lower() for i in range(tabs.count())]
            if view in titles:
                tabs.setCurrentIndex(titles.index(view))

    def _show_note(self, text: str) -> None:
        self.note_label.setText(text)
        self.bar.setVisible(bool(text))

    # -- preparing -------------------------------------------------------------------------------
    def current_view(self) -> tuple[str, str | None]:
        """The tab on show, and the Step-through view below the plots when that is the tab."""
        from explorer.gui.window import PANELS

        tab = list(PANELS)[self.window.tabs.currentIndex()]
        view = None
        tabs = getattr(self.window.panels.built().get(tab), "tabs", None)
        if tab == "step" and tabs is not None:
            view = tabs.tabText(tabs.currentIndex()).replace("&", "").lower()
        return tab, view

    def save_scene(self, note: str, title: str = "") -> Scene:
        from explorer.seq2seq.lesson import VIEWS

        tab, view = self.current_view()
        scene = capture(self.window.state, tab, view if view in VIEWS else None, note, title)
        self.prepared.append(scene)
        self.window.state.status.emit(
            f"scene {len(self.prepared)} saved: {scene.sentence or '(no sentence)'}"
        )
        return scene

    def save_scene_dialog(self) -> None:
        from explorer.seq2seq.lesson import LessonError

        note, ok = QInputDialog.getMultiLineText(
            self.window, "Save scene", "A note to show with this scene:"
        )
        if not ok:
            return
        try:
            self.save_scene(note)
        except LessonError as e:
            self.window.show_error(str(e))

    def save_lesson(self, path: str | Path, title: str = "") -> Path:
        from explorer.seq2seq.lesson import Lesson, LessonError, save_lesson

        if not self.prepared:
            raise LessonError("save lesson: no scene saved yet (Lesson → Save scene)")
        return save_lesson(Lesson(title or Path(path).stem, tuple(self.prepared)), path)

    def save_lesson_dialog(self) -> None:
        from explorer.seq2seq.lesson import LessonError

        path, _ = QFileDialog.getSaveFileName(
            self.window, "Save lesson as", "lesson.json", LESSON_FILTER
        )
        if not path:
            return
        try:
            out = self.save_lesson(path)
        except (LessonError, OSError) as e:
            self.window.show_error(str(e))
            return
        self.window.state.status.emit(f"lesson saved: {out} ({len(self.prepared)} scenes)")
