"""Panel 1, Train & Load: pick a corpus and an architecture, train in a worker thread with live
curves and the probe's attention map sharpening, save the model, compare models by length.

The run is ``Trainer(options).run()`` in a superqt GeneratorWorker: pause and resume come from the
worker, stop asks the trainer to finish after the current batch (so it still reports and saves).
Redraws driven by progress events are throttled to about 10 a second.
"""

from __future__ import annotations

import dataclasses
import errno
import time
from pathlib import Path

from PySide6.QtCore import Qt, QThreadPool, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.gui.runner import runner
from explorer.gui.state import AppState, LoadedModel
from explorer.gui.train.corpus import CorpusBox
from explorer.gui.train.options import OptionsForm
from explorer.gui.train.status import bar_format, time_text
from explorer.gui.widgets import theme
from explorer.gui.widgets.column import OptionsColumn

REDRAW_MS = 100


def _import_plot_modules() -> None:
    """In a worker: pyqtgraph and the plot modules (class definitions only, no widget)."""
    import explorer.gui.train.plots  # noqa: F401


class TrainPanel(QWidget):
    """Train & Load. ``state.add`` receives every model trained here."""

    progress = Signal(object)  # every Progress event, as it arrives
    trained = Signal(object)  # LoadedModel of a finished (or stopped) run
    saved = Signal(str)  # path of a saved checkpoint
    running_changed = Signal(bool)

    def __init__(
        self, state: AppState, parent: QWidget | None = None, *, hold: bool = False
    ) -> None:
        """``hold``: build no plot and read no corpus for the preview until :meth:`release`
        (the window holds the panel while its first model loads: both compete with the load)."""
        super().__init__(parent)
        self.state = state
        self.trainer = None
        self.worker = None
        self.save_worker = None
        self.last_event = None
        self.evaluating = False  # between an "evaluating" event and its "eval"
        self.diagnostics: list[str] = []
        self.trained_entry: LoadedModel | None = None
        self._t0 = 0.0
        self._runs = 0
        # The plots are built on first use (see `curves`, `replay`, `evaluate`): pyqtgraph and
        # eight plots are most of the panel's cost, and none of them is needed to open it.
        self._live: tuple | None = None  # (LiveCurves, AttentionReplay)
        self._plots_import = None  # the worker importing the plot modules after a hold
        self._evaluate = None
        self._throttle = None  # superqt's qthrottled(redraw), made at the first progress event
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self._build_options())
        split.addWidget(self._build_run())
        split.setStretchFactor(1, 1)
        self.options_column.follow(split)  # as wide as the options ask, in every font
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(split)
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop)
        self.save_button.clicked.connect(self.save_as)
        self.corpus.failed.connect(lambda m: self.state.status.emit(f"corpus: {m}"))
        theme.signals().changed.connect(self.restyle)
        self._update_buttons()
        if hold:
            self.corpus.hold()
        else:
            self._live_views()
        self.corpus.refresh()

    def _build_options(self) -> QWidget:
        """The corpus and the architecture's options, scrolled."""
        self.corpus = CorpusBox()
        self.form = OptionsForm()
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(self.corpus)
        lv.addWidget(self.form)
        lv.addStretch(1)
        self.options_column = OptionsColumn(left)
        return self.options_column

    def _build_buttons(self) -> QHBoxLayout:
        self.start_button = QPushButton("Start training")
        self.start_button.setToolTip(
            "Train a new model with these settings in the background; the window stays usable."
        )
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Pause training between two batches, or resume it.")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip(
            "Stop after the current batch and keep the model trained so far."
        )
        self.save_button = QPushButton("Save model as…")
        self.save_button.setToolTip(
            "Write the trained model to one checkpoint file, with a model card beside it."
        )
        buttons = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.stop_button, self.save_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        return buttons

    def _build_run(self) -> QWidget:
        """Buttons, progress, messages and the plots' tabs."""
        buttons = self._build_buttons()
        self.progress_bar = QProgressBar()
        self.progress_bar.setFormat(bar_format(False))
        self.progress_bar.setToolTip("Optimiser steps done out of the steps asked for.")
        self.progress_bar.setValue(0)
        steps = self.form.fields["steps"]
        steps.valueChanged.connect(self._steps_changed)
        self.progress_bar.setRange(0, steps.value())
        self.eta_label = QLabel("")
        self.message = QLabel("Choose a corpus and an architecture, then start training.")
        self.message.setWordWrap(True)
        self.banner = QLabel("")
        self.banner.setObjectName("diagnostics")
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # After a fault the run can carry on from its kept weights with changed options: one
        # button per suggestion of the "failed" event ("Smaller batch", "Use CPU").
        self.fixes = QWidget()
        self.fixes_layout = QHBoxLayout(self.fixes)
        self.fixes_layout.setContentsMargins(0, 0, 0, 0)
        self.fix_buttons: list[QPushButton] = []
        self.fixes.setVisible(False)
        bar = QHBoxLayout()
        bar.addWidget(self.progress_bar, 1)
        bar.addWidget(self.eta_label)
        self.views = QTabWidget()
        for title in ("Training", "Evaluate"):
            page = QWidget()
            QVBoxLayout(page).setContentsMargins(0, 0, 0, 0)
            self.views.addTab(page, title)
        self.views.currentChanged.connect(self._view_shown)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.addLayout(buttons)
        rv.addLayout(bar)
        rv.addWidget(self.message)
        rv.addWidget(self.banner)
        rv.addWidget(self.fixes)
        rv.addWidget(self.views, 1)
        return right

    @property
    def _throttled_redraw(self):
        """``redraw`` at most every REDRAW_MS (progress events arrive far faster)."""
        if self._throttle is None:
            from superqt.utils import qthrottled

            self._throttle = qthrottled(self.redraw, timeout=REDRAW_MS, leading=True)
        return self._throttle

    # -- views, built on first use ------------------------------------------------------------
    def release(self) -> None:
        """End the hold: build the training plots once a worker has imported their modules
        (pyqtgraph's import is a third of a second the window's thread need not spend), then
        read the corpus for the preview (seconds of Python for a generated corpus, which would
        slow the window's thread building the plots)."""
        if self._live is not None:
            self.corpus.release()
        elif self._plots_import is None:
            self._plots_import = runner().run(
                "import", _import_plot_modules, returned=self._plots_imported,
                errored=lambda e: self.state.error.emit(f"cannot draw the plots: {e}"),
            )  # fmt: skip

    def _plots_imported(self, _=None) -> None:
        self._plots_import = None
        self._live_views()
        self.corpus.release()

    def _live_views(self) -> tuple:
        if self._live is None:
            from explorer.gui.exports.beam import install_curves
            from explorer.gui.train.live import LiveArea
            from explorer.gui.train.plots import AttentionReplay, LiveCurves

            curves = LiveCurves()
            install_curves(self, curves)  # its right-click menu: PNG, SVG, CSV, JSON
            replay = AttentionReplay()
            self.live_area = LiveArea(curves, replay)  # side by side, or tabs when narrow
            self.views.widget(0).layout().addWidget(self.live_area)
            self._live = (curves, replay)
        return self._live

    @property
    def curves(self):
        """The live training curves (LiveCurves)."""
        return self._live_views()[0]

    @property
    def replay(self):
        """The probe's attention map over the run's evaluations (AttentionReplay)."""
        return self._live_views()[1]

    @property
    def evaluate(self):
        """The Evaluate view (EvaluateView), built when its tab is first shown."""
        if self._evaluate is None:
            from explorer.gui.train.eval import EvaluateView

            self._evaluate = EvaluateView(self.state)
            self._evaluate.error.connect(self.state.error)
            self.views.widget(1).layout().addWidget(self._evaluate)
        return self._evaluate

    def _view_shown(self, index: int) -> None:
        _ = self.evaluate if index == 1 else self._live_views()

    # -- running ------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker is not None

    def start(self) -> None:
        """Start a run with the form's settings (does nothing while one runs)."""
        if self.running:
            return
        from explorer.gui.train.jobs import training_threads
        from explorer.seq2seq.training.train import Trainer

        try:
            options = self.form.options(self.corpus.spec(), self.corpus.corpus_size())
        except ValueError as e:
            self._show_banner(f"Cannot start: {e}", error=True)
            return
        if not options.threads:
            options = dataclasses.replace(options, threads=training_threads())
        self.trainer = Trainer(options)
        self.trained_entry = None
        self.diagnostics = []
        self.curves.clear_data()
        self.replay.clear_data()
        self.progress_bar.setRange(0, options.steps or 1)
        self.progress_bar.setValue(0)
        self.eta_label.setText("")
        self._t0 = time.perf_counter()
        self._launch("preparing the corpus and the tokeniser…")

    def continue_with(self, changes: dict) -> None:
        """Carry on from the failed run's kept weights and step with ``changes`` to its options
        (a suggestion of its "failed" event); the curves go on from where they were."""
        if self.running or self.trainer is None or self.trainer.model is None:
            return
        try:
            self.trainer = self.trainer.continue_with(**changes)
        except ValueError as e:
            self._show_banner(f"Cannot continue: {e}", error=True)
            return
        for name, value in changes.items():
            if name in self.form.fields:
                self.form._set(self.form.fields[name], value)
        summary = ", ".join(f"{k} {v}" for k, v in changes.items())
        self._launch(f"continuing from step {self.trainer.step} with {summary}…")

    def _launch(self, message: str) -> None:
        self.last_event, self.evaluating = None, False
        self.banner.setVisible(False)
        self._show_fixes([])
        self.message.setText(message)
        # trim: what the run's thread freed (batches, gradients), and closed models, goes back
        self.worker = runner().run(
            "train", self.trainer.run, yielded=self._on_progress, errored=self._on_error,
            finished=self._on_finished, trim=True,
        )  # fmt: skip
        self.worker.paused.connect(self._update_buttons)
        self.worker.resumed.connect(self._update_buttons)
        self._update_buttons()
        self.running_changed.emit(True)

    def toggle_pause(self) -> None:
        if self.worker is None:
            return
        if self.worker.is_paused:
            self.worker.resume()
            self.message.setText("resuming…")
        else:
            self.worker.pause()
            self.message.setText("pausing after this batch…")

    @property
    def paused(self) -> bool:
        return self.worker is not None and self.worker.is_paused

    def stop(self) -> None:
        """Finish after the current batch; the model trained so far becomes available."""
        if self.worker is None or self.trainer is None:
            return
        self.trainer.request_stop()
        if self.worker.is_paused:
            self.worker.resume()
        self.message.setText("stopping after this batch…")

    def _steps_changed(self, steps: int) -> None:
        if not self.running:  # before a run (or after one): the steps the next run will take
            self.progress_bar.setRange(0, max(steps, 1))
            self.progress_bar.setValue(0)

    def _on_progress(self, ev) -> None:
        self.last_event = ev
        self.evaluating = ev.kind == "evaluating"
        self.curves.add(ev)
        if self.evaluating:
            self.message.setText(ev.message)
        elif ev.kind == "eval":
            self.replay.add(ev.probe)
        elif ev.kind in ("start", "done", "stopped", "checkpoint"):
            self.message.setText(ev.message)
            self.state.status.emit(ev.message)
        elif ev.kind == "diagnostic":
            self.diagnostics.append(ev.message)
            self._show_banner(ev.message, error=False)
        elif ev.kind == "failed":
            self.diagnostics.append(ev.message)
            self._show_banner(ev.message, error=True)
            self._show_fixes(ev.suggestions)
            self.state.status.emit(ev.message)
        self.progress.emit(ev)
        self._throttled_redraw()

    def redraw(self) -> None:
        ev = self.last_event
        self.curves.redraw()
        if ev is None:
            return
        self.progress_bar.setRange(0, ev.total_steps)
        self.progress_bar.setValue(ev.step)
        self.progress_bar.setFormat(bar_format(self.evaluating))
        self.eta_label.setText(time_text(ev, paused=self.paused, evaluating=self.evaluating))
        if ev.kind == "step":
            loss = f"loss {ev.loss:.3f}" if ev.loss is not None else ""
            tf = (
                "" if ev.teacher_forcing is None else f" · teacher forcing {ev.teacher_forcing:.2f}"
            )
            self.message.setText(f"step {ev.step} of {ev.total_steps} · {loss}{tf}")

    def _show_banner(self, text: str, *, error: bool) -> None:
        self.banner.setProperty("error", error)
        self.banner.setStyleSheet(theme.banner_style(error))
        self.banner.setText(("⛔ " if error else "⚠ ") + text)
        self.banner.setVisible(True)

    def _show_fixes(self, suggestions: list[dict]) -> None:
        while self.fixes_layout.count():
            item = self.fixes_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.fix_buttons = []
        for s in suggestions:
            b = QPushButton(s["label"])
            changes = dict(s["options"])
            b.setToolTip(
                "Continue from the last good weights with "
                + ", ".join(f"{k} = {v}" for k, v in changes.items())
                + "."
            )
            b.clicked.connect(lambda _=False, c=changes: self.continue_with(c))
            self.fixes_layout.addWidget(b)
            self.fix_buttons.append(b)
        if suggestions:
            self.fixes_layout.addStretch(1)
        self.fixes.setVisible(bool(suggestions))

    def _on_error(self, exc: Exception) -> None:
        msg = f"training failed: {exc}"
        self._show_banner(msg, error=True)
        self.state.error.emit(msg)

    def _on_finished(self) -> None:
        self.worker = None
        self._throttled_redraw.flush()
        self.redraw()
        ev = self.last_event
        # A run whose final save failed (ev.path: where it could not write) keeps its model too.
        kept = ev is not None and (
            ev.kind in ("done", "stopped") or (ev.kind == "failed" and ev.path)
        )
        if kept and self.trainer.model is not None:
            self.trained_entry = self._entry_from_trainer()
            self.state.status.emit(f"trained model ready: {self.trained_entry.name}")
            self.state.add(self.trained_entry)  # may close an older unsaved model, and says so
            self.trained.emit(self.trained_entry)
        self._update_buttons()
        self.running_changed.emit(False)

    def _entry_from_trainer(self) -> LoadedModel:
        from explorer.seq2seq.models.families import config_to_dict

        t = self.trainer
        model = t.snapshot()
        spec = t.options.corpus
        name = spec if spec in ("classroom", "reverse", "copy") else Path(spec.split(",")[0]).name
        self._runs += 1
        corpus = {"name": name, **t.corpus_description}
        return LoadedModel(
            name=f"trained {t.options.arch} ({name}) #{self._runs}",
            model=model,
            tokenizer=t.tokenizer,
            path=None,
            config=config_to_dict(model.config),
            card=t.card(time.perf_counter() - self._t0),
            corpus=corpus,
            history=list(t.history),
        )

    def _update_buttons(self, *_) -> None:
        running = self.worker is not None
        self.start_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.pause_button.setText("Resume" if self.paused else "Pause")
        if self.paused:
            self.message.setText("paused")
        if running:  # no time left is shown while paused: none is passing
            self.eta_label.setText(
                time_text(self.last_event, paused=self.paused, evaluating=self.evaluating)
            )
        self.stop_button.setEnabled(running)
        has_model = self.trainer is not None and self.trainer.model is not None
        self.save_button.setEnabled(not running and has_model and self.save_worker is None)
        for w in (self.corpus, self.form):
            w.setEnabled(not running)

    # -- saving -------------------------------------------------------------------------------
    def save_as(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the trained model", "model.safetensors", "Checkpoint (*.safetensors)"
        )
        if path:
            self.save_to(path)

    def save_to(self, path: str | Path) -> None:
        """Save the trained model (and its card, PATH.md) in a worker; ``saved`` when written."""
        if self.running or self.trainer is None or self.trainer.model is None:
            self.state.error.emit("nothing to save: train a model first (and let it finish)")
            return
        from explorer.gui.train.jobs import save_trained

        self.save_worker = runner().run(
            "save", save_trained, self.trainer, str(path), time.perf_counter() - self._t0,
            returned=self._on_saved, errored=lambda e: self._save_failed(path, e),
            finished=self._save_done,
        )  # fmt: skip
        self._update_buttons()

    def _on_saved(self, path) -> None:
        if self.trained_entry is not None:
            self.trained_entry.path = Path(path)
        self.message.setText(f"saved {path} (model card: {Path(path).with_suffix('.md').name})")
        self.state.status.emit(f"saved {path}")
        self.saved.emit(str(path))

    def _save_failed(self, path, exc: Exception) -> None:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if getattr(exc, "errno", None) == errno.ENOSPC:
            reason = "the disk is full"
        self.state.error.emit(
            f"could not save {path}: {reason}. The model is still here: save it somewhere else."
        )

    def _save_done(self) -> None:
        self.save_worker = None
        self._update_buttons()

    # -- window hooks -------------------------------------------------------------------------
    def refresh_devices(self) -> None:
        self.form.refresh_devices()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Stop every worker this panel started and wait for them; True when all ended."""
        if self.worker is not None:
            if self.trainer is not None:
                self.trainer.request_stop()
            self.worker.quit()
            if self.worker.is_paused:
                self.worker.resume()
        if self._evaluate is not None and self._evaluate.worker is not None:
            self._evaluate.worker.quit()
        if self._throttle is not None:
            self._throttle.cancel()
        return QThreadPool.globalInstance().waitForDone(timeout_ms)

    def restyle(self, *_) -> None:
        if self.banner.styleSheet():  # its colours and size follow the theme and screen
            self.banner.setStyleSheet(theme.banner_style(bool(self.banner.property("error"))))
        views = list(self._live or ()) + ([self._evaluate] if self._evaluate else [])
        for view in views:
            view.restyle()

    def set_sentence(self, text: str) -> None:
        """Panels share sentences; training uses its corpus's own probe, so nothing to do."""

    def export_figure(self, path: str | Path) -> Path:
        from explorer.gui.widgets.export import save_figure

        return save_figure(self.views.currentWidget(), path)

    def export_data(self, path: str | Path) -> Path:
        """JSON: every curve, every probe attention, the evaluation; CSV: the shown attention."""
        from explorer.gui.widgets.export import save_json, save_matrix_csv

        path = Path(path)
        if path.suffix.lower() == ".csv":
            p = self.replay.current()
            if p is None or p.attention is None:
                raise ValueError(f"{path}: no attention map to export yet (train first)")
            return save_matrix_csv(p.attention, p.target_pieces, p.source_pieces, path)
        if path.suffix.lower() != ".json":
            raise ValueError(f"{path}: data exports as .csv or .json, not {path.suffix or 'none'}")
        data = {
            "options": self.trainer.options.to_dict() if self.trainer else None,
            "curves": {k: {"step": xs, "value": ys} for k, (xs, ys) in self.curves.data.items()},
            "probes": [
                {
                    "step": p.step,
                    "source_pieces": p.source_pieces,
                    "target_pieces": p.target_pieces,
                    "attention": p.attention,
                    "entropy": p.entropy,
                    "output": p.output,
                }
                for p in self.replay.probes
            ],
            "diagnostics": self.diagnostics,
            "evaluation": self._evaluate.results if self._evaluate else {},
        }
        return save_json(data, path)
