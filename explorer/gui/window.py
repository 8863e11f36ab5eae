"""The main window: three panels as tabs, menus, status bar, checkpoint loading, settings.

Checkpoints load in a superqt worker, so the window is usable at once. At launch the default
bundled model is read by ``train_jobs.FirstLoad`` on a thread started before Qt (torch's import,
most of a launch, runs while the window is built); it becomes current when it arrives, and the
other bundled models load after it. A panel is built the first time its tab is shown.
"""

from __future__ import annotations

import importlib
import threading
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.gui.heap import start_worker, worker
from explorer.gui.pyside_hook import quicken_feature_scan
from explorer.gui.state import AppState, LoadedModel
from explorer.gui.train.jobs import BUNDLED, MODELS_DIR, FirstLoad, bundled_paths
from explorer.gui.train.panel import TrainPanel
from explorer.gui.widgets import theme

quicken_feature_scan()  # a window made without app.main (tests, benchmarks) imports as much

__all__ = ["BUNDLED", "MODELS_DIR", "MainWindow", "bundled_paths"]

PANELS = {
    "train": ("Train && Load", None),
    "step": ("Step-through", "explorer.gui.step.panel:StepPanel"),
    "beam": ("Beam vs greedy", "explorer.gui.beam.panel:BeamPanel"),
}
MAX_RECENT = 8
FOLLOW_UP_MS = 100  # after a load: the window paints the model before what waited starts
CHECKPOINT_FILTER = "Checkpoints (*.safetensors *.ckpt);;All files (*)"


def device_job() -> str:
    from explorer.seq2seq.training.train import describe_device, pick_device

    return describe_device(pick_device("auto"))


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("attention-explorer")
    except Exception:  # not installed (running from a checkout)
        return "0.1.0"


class Panels(Mapping):
    """The window's panels by key ("train", "step", "beam"). A panel is built when first asked
    for (its tab shown, or code reaching for it); ``built()`` gives those that exist."""

    def __init__(self, build) -> None:
        self._build = build
        self._built: dict[str, QWidget] = {}

    def __getitem__(self, key: str) -> QWidget:
        if key not in PANELS:
            raise KeyError(key)
        if key not in self._built:
            self._built[key] = self._build(key)
        return self._built[key]

    def __iter__(self) -> Iterator[str]:
        return iter(PANELS)

    def __len__(self) -> int:
        return len(PANELS)

    def built(self) -> dict[str, QWidget]:
        return dict(self._built)


class MainWindow(QMainWindow):
    """Attention Explorer's window. ``settings`` is where preferences persist (tests pass their
    own); ``models_dir`` is where the bundled checkpoints are looked for."""

    model_loaded = Signal(object)  # LoadedModel
    load_failed = Signal(str)
    device_known = Signal(str)
    _first_loaded = Signal(object)  # the FirstLoad's future, from its thread
    _modules_imported = Signal()  # from the thread that imports superqt and pyqtgraph

    def __init__(
        self,
        state: AppState | None = None,
        settings: QSettings | None = None,
        *,
        models_dir: Path | None = MODELS_DIR,
        projector: bool | None = None,
        error_dialogs: bool = True,
        first_load: FirstLoad | None = None,
    ) -> None:
        """``first_load``: the default bundled model, already being read (see FirstLoad)."""
        super().__init__()
        self.state = state or AppState()
        self.settings = settings or QSettings("attention-explorer", "attention-explorer")
        self.error_dialogs = error_dialogs
        self.loading: set[str] = set()
        self.device = ""
        self.last_error = ""
        self._workers: list = []
        self.setWindowTitle("Attention Explorer")
        self.setAcceptDrops(True)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.panels = Panels(self._build_panel)
        self._pages: dict[str, QWidget] = {}  # a tab's page; its panel is added when built
        for key, (title, _) in PANELS.items():
            page = QWidget()
            QVBoxLayout(page).setContentsMargins(0, 0, 0, 0)
            self._pages[key] = page
            self.tabs.addTab(page, title)
        self.tabs.currentChanged.connect(self._tab_shown)
        self.setCentralWidget(self.tabs)
        self._build_status_bar()
        self._build_menus()

        s = self.settings
        self._last_corpus = s.value("last_corpus", "", str)  # given to Train & Load when built
        geometry = s.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 900)
        if projector is None:
            projector = s.value("projector", False, bool)
        self.projector_action.setChecked(bool(projector))
        self.dark_action.setChecked(s.value("theme", "light", str) == "dark")
        self.apply_theme()

        self.state.status.connect(lambda m: self.statusBar().showMessage(m, 10_000))
        self.state.error.connect(self.show_error)
        self.state.current_changed.connect(self._show_model)
        self.state.models_changed.connect(self._rebuild_models_menu)
        self.state.open_in_step.connect(self.open_in_step)
        self._awaiting_modules = False
        self._modules_thread: threading.Thread | None = None
        self._modules_imported.connect(self._after_modules)
        paths = bundled_paths(models_dir) if models_dir is not None else []
        self._bundled_queue = paths[1:]  # loaded one after another once the default is in
        if paths and first_load is not None and first_load.path == paths[0]:
            self._take_over(first_load)  # the device is asked for once it is in
        else:
            self._start_device_probe()
            if paths:
                self.open_checkpoint(paths[0], make_current=True, remember=False)
            else:
                self._show_model(None)
        # The saved tab's panel is built now (with a load under way, Train & Load holds back its
        # plots and corpus preview until it ends); index 0 emits no change, hence the call.
        self.tabs.setCurrentIndex(int(s.value("tab", 0, int)))
        self._tab_shown(self.tabs.currentIndex())

    # -- panels -------------------------------------------------------------------------------
    def _build_panel(self, key: str) -> QWidget:
        where = PANELS[key][1]
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            if where is None:  # its plots and corpus preview wait while a model loads
                panel = TrainPanel(self.state, hold=bool(self.loading))
            else:
                panel = self._make_panel(where)
        finally:
            QApplication.restoreOverrideCursor()
        self._pages[key].layout().addWidget(panel)
        if key == "train":
            if self._last_corpus:
                panel.corpus.set_spec(self._last_corpus)
            if self.device:
                panel.refresh_devices()
        return panel

    def _tab_shown(self, index: int) -> None:
        if index >= 0:
            self.panels[list(PANELS)[index]]

    def _make_panel(self, where: str) -> QWidget:
        module, cls = where.split(":")
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            label = QLabel(f"This panel is not available in this build ({module} is missing).")
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            return label
        return getattr(mod, cls)(self.state)

    @property
    def train_panel(self) -> TrainPanel:
        return self.panels["train"]

    def set_panel(self, key: str) -> QWidget:
        if key not in self.panels:
            raise ValueError(f"unknown panel {key!r}; expected one of {', '.join(self.panels)}")
        self.tabs.setCurrentWidget(self._pages[key])
        return self.panels[key]

    def current_panel(self) -> QWidget:
        return self.panels[list(PANELS)[self.tabs.currentIndex()]]

    def open_in_step(self, entry: LoadedModel, trace) -> None:
        panel = self.set_panel("step")
        if entry is not None and entry is not self.state.current:
            self.state.set_current(entry)
        if hasattr(panel, "show_trace"):
            panel.show_trace(entry, trace)

    # -- menus --------------------------------------------------------------------------------
    def _action(self, menu, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        a.setStatusTip(tip)
        a.setToolTip(tip)
        a.triggered.connect(slot)
        menu.addAction(a)
        return a

    def _build_menus(self) -> None:
        bar = self.menuBar()
        f = bar.addMenu("&File")
        self._action(
            f, "&Open checkpoint…", self.open_dialog, QKeySequence.StandardKey.Open,
            "Load a model saved as one checkpoint file (weights, tokenisers, training history).",
        )  # fmt: skip
        self.recent_menu = f.addMenu("Open &recent")
        self._action(
            f, "&Save checkpoint as…", self.save_dialog, QKeySequence.StandardKey.SaveAs,
            "Save the current model to a checkpoint file.",
        )  # fmt: skip
        f.addSeparator()
        self._action(
            f, "Export &figure…", self.export_figure_dialog, "Ctrl+E",
            "Save the current panel's figure as PNG or SVG (for slides).",
        )  # fmt: skip
        self._action(
            f, "Export &data…", self.export_data_dialog, "Ctrl+Shift+E",
            "Save the numbers behind the current panel as CSV or JSON.",
        )  # fmt: skip
        f.addSeparator()
        self._action(f, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        v = bar.addMenu("&View")
        self.projector_action = self._action(
            v, "&Projector mode", self.apply_theme, "Ctrl+Shift+P",
            "Enlarge every font and plot label for a classroom projector.",
        )  # fmt: skip
        self.projector_action.setCheckable(True)
        self.dark_action = self._action(
            v, "&Dark theme", self.apply_theme, "Ctrl+Shift+D", "Light text on a dark background."
        )
        self.dark_action.setCheckable(True)
        v.addSeparator()
        for i, key in enumerate(self.panels):
            self._action(v, self.tabs.tabText(i), lambda _=False, k=key: self.set_panel(k),
                         f"Ctrl+{i + 1}")  # fmt: skip
        self.models_menu = bar.addMenu("&Model")
        self.models_group = QActionGroup(self)
        h = bar.addMenu("&Help")
        self._action(h, "&About Attention Explorer", self.about)
        self._rebuild_recent_menu()
        self._rebuild_models_menu()

    def _rebuild_models_menu(self) -> None:
        self.models_menu.clear()
        for a in self.models_group.actions():
            self.models_group.removeAction(a)
        if not self.state.models:
            self.models_menu.addAction("(no model loaded)").setEnabled(False)
        for entry in self.state.models:
            a = QAction(entry.name, self, checkable=True)
            a.setChecked(entry is self.state.current)
            a.triggered.connect(lambda _=False, e=entry: self.state.set_current(e))
            self.models_group.addAction(a)
            self.models_menu.addAction(a)

    def recent_files(self) -> list[str]:
        value = self.settings.value("recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _remember(self, path: Path) -> None:
        p = str(Path(path).resolve())
        recent = [p] + [r for r in self.recent_files() if r != p]
        self.settings.setValue("recent", recent[:MAX_RECENT])
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.recent_files()
        for p in recent:
            self.recent_menu.addAction(Path(p).name, lambda p=p: self.open_checkpoint(p))
        self.recent_menu.setEnabled(bool(recent))

    # -- status bar ---------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setVisible(False)
        self.busy.setToolTip("Loading a checkpoint in the background.")
        self.model_label = QLabel("")
        self.model_label.setObjectName("modelLabel")
        self.device_label = QLabel("device: …")
        self.device_label.setObjectName("deviceLabel")
        self.device_label.setToolTip("Where training and decoding run.")
        sb.addPermanentWidget(self.busy)
        sb.addPermanentWidget(self.model_label)
        sb.addPermanentWidget(self.device_label)

    def _show_model(self, entry: LoadedModel | None) -> None:
        if entry is None:
            if self.loading:
                self.model_label.setText("loading a model…")
            else:
                self.model_label.setText(
                    "No model loaded: train one (Train & Load) or open a checkpoint (Ctrl+O)"
                )
        else:
            self.model_label.setText(f"model: {entry.name}")
        self._rebuild_models_menu()

    def _start_device_probe(self) -> None:
        w = worker(device_job)
        w.returned.connect(self._device_ready)
        w.errored.connect(lambda e: self.show_error(f"cannot query the device: {e}"))
        self._run(w)

    def _device_ready(self, text: str) -> None:
        self.device = text
        self.device_label.setText(f"device: {text}")
        if "train" in self.panels.built():
            self.train_panel.refresh_devices()
        self.device_known.emit(text)

    def show_error(self, message: str) -> None:
        """Status bar and a non-modal dialog; the window keeps working."""
        self.last_error = message
        self.statusBar().showMessage(f"Error: {message}", 30_000)
        if self.error_dialogs:
            box = QMessageBox(QMessageBox.Icon.Warning, "Attention Explorer", message, parent=self)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()

    # -- workers ------------------------------------------------------------------------------
    def _run(self, worker) -> None:
        self._workers.append(worker)
        # A weak reference: a slot capturing the worker would keep it (and its result) alive.
        ref = weakref.ref(worker)
        worker.finished.connect(lambda: self._workers.remove(ref()))
        start_worker(worker)

    def open_checkpoint(
        self, path: str | Path, *, make_current: bool = True, remember: bool = True
    ) -> None:
        """Load ``path`` in a worker; on success it joins the state (and becomes current)."""
        from explorer.gui.train.jobs import load_checkpoint_job

        path = Path(path)
        self._loading(path)
        w = worker(load_checkpoint_job, str(path))
        w.returned.connect(lambda e: self._loaded(path, e, make_current, remember))
        w.errored.connect(lambda exc: self._load_error(path, exc))
        w.finished.connect(lambda: self._load_done(path))
        self._run(w)

    def _loading(self, path: Path) -> None:
        self.loading.add(str(path))
        self.busy.setVisible(True)
        self.statusBar().showMessage(f"loading {path.name}…")
        if self.state.current is None:
            self._show_model(None)

    def _take_over(self, first: FirstLoad) -> None:
        """Wait for the FirstLoad's model as for a worker's; superqt is not needed until then."""
        self._loading(first.path)
        self._first_loaded.connect(lambda future: self._first_arrived(first.path, future))
        first.future.add_done_callback(self._deliver_first)

    def _deliver_first(self, future) -> None:
        """On the loading thread (or here, when it is already done): a queued signal."""
        try:
            self._first_loaded.emit(future)
        except RuntimeError:  # this window was deleted before the model arrived: no one to tell
            return

    def _first_arrived(self, path: Path, future) -> None:
        if future.exception() is None:  # current unless a model opened meanwhile is
            self._loaded(path, future.result(), False, False)
        else:
            self._load_error(path, future.exception())
        self._awaiting_modules = True  # what follows needs superqt and pyqtgraph (see below)
        self._load_done(path)

    def _loaded(self, path: Path, entry: LoadedModel, make_current: bool, remember: bool) -> None:
        self.state.add(entry, make_current=make_current or self.state.current is None)
        if remember:
            self._remember(path)
        self.statusBar().showMessage(f"loaded {path.name}", 10_000)
        self.model_loaded.emit(entry)

    def _load_error(self, path: Path, exc: Exception) -> None:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        msg = first if path.name in first else f"{path.name}: {first}"
        self.show_error(f"cannot open checkpoint: {msg}")
        self.load_failed.emit(msg)

    def _load_done(self, path: Path) -> None:
        self.loading.discard(str(path))
        if self._bundled_queue:  # the next bundled model counts as loading from now on
            self.loading.add(str(self._bundled_queue[0]))
        self.busy.setVisible(bool(self.loading))
        self._show_model(self.state.current)
        # What waited for this load starts once the window has shown the model: a repaint is a
        # low-priority event, which a zero-delay call would overtake.
        QTimer.singleShot(FOLLOW_UP_MS, self._next_after_load)

    def _next_after_load(self) -> None:
        if self._awaiting_modules:
            self._import_modules()
            return
        if "train" in self.panels.built():
            self.train_panel.release()
        if self._bundled_queue:
            self.open_checkpoint(self._bundled_queue.pop(0), make_current=False, remember=False)

    def _import_modules(self) -> None:
        """After the first model: import superqt (every worker) and the plot modules (pyqtgraph)
        on a plain thread, then ask for the device and go on loading. Imported here on the
        window's thread, they would hold it for half a second just after the model appeared."""
        if self._modules_thread is not None:
            return

        def run() -> None:
            try:
                import superqt.utils  # noqa: F401

                import explorer.gui.train.plots  # noqa: F401
            finally:  # a failed import fails again, and is reported, where the window needs it
                try:
                    self._modules_imported.emit()
                except RuntimeError:  # the window was deleted meanwhile: no one to tell
                    pass

        self._modules_thread = threading.Thread(target=run, name="ui-imports", daemon=True)
        self._modules_thread.start()

    def _after_modules(self) -> None:
        self._awaiting_modules = False
        self._start_device_probe()
        self._next_after_load()

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open checkpoint", "", CHECKPOINT_FILTER)
        if path:
            self.open_checkpoint(path)

    def save_dialog(self) -> None:
        entry = self.state.current
        if entry is None:
            self.show_error("no model to save: train one or open a checkpoint first")
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Save checkpoint as", f"{entry.arch or 'model'}.safetensors", CHECKPOINT_FILTER
        )
        if path:
            self.save_checkpoint(entry, path)

    def save_checkpoint(self, entry: LoadedModel, path: str | Path) -> None:
        from explorer.seq2seq.checkpoint import save_checkpoint

        def job() -> str:
            return str(save_checkpoint(path, entry.model, entry.tokenizer, history=entry.history,
                                       corpus=entry.corpus, card=entry.card))  # fmt: skip

        def saved(p: str) -> None:
            entry.path = Path(p)  # now reloadable: no longer among the unsaved models
            self._remember(Path(p))
            self.state.status.emit(f"saved {p}")

        w = worker(job)
        w.returned.connect(saved)
        w.errored.connect(lambda e: self.show_error(f"could not save {path}: {e}"))
        self._run(w)

    # -- export -------------------------------------------------------------------------------
    def export_figure_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export figure", "figure.png", "PNG image (*.png);;SVG drawing (*.svg)"
        )
        if path:
            self._export("export_figure", path)

    def export_data_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export data", "data.json", "JSON (*.json);;CSV (*.csv)"
        )
        if path:
            self._export("export_data", path)

    def _export(self, method: str, path: str) -> None:
        panel = self.current_panel()
        if not hasattr(panel, method):
            self.show_error("this panel has nothing to export")
            return
        try:
            out = getattr(panel, method)(path)
        except (OSError, ValueError) as e:
            self.show_error(f"export failed: {e}")
            return
        self.state.status.emit(f"exported {out}")

    # -- view ---------------------------------------------------------------------------------
    def apply_theme(self) -> None:
        name = "dark" if self.dark_action.isChecked() else "light"
        projector = self.projector_action.isChecked()
        theme.apply(QApplication.instance(), name, projector)
        self.settings.setValue("theme", name)
        self.settings.setValue("projector", projector)

    def about(self) -> None:
        text = (
            f"<h3>Attention Explorer {_version()}</h3>"
            "<p>Seq2seq models and attention, step by step: train, step through a decode, "
            "compare beam search with greedy decoding.</p>"
            f"<p>Device: {self.device or 'not known yet'}</p>"
        )
        box = QMessageBox(QMessageBox.Icon.Information, "About Attention Explorer", text,
                          parent=self)  # fmt: skip
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # -- drag and drop ------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_checkpoint(url.toLocalFile())
        event.acceptProposedAction()

    # -- closing ------------------------------------------------------------------------------
    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Stop every worker (training included) and wait for them; True when all ended."""
        ok = True
        for panel in self.panels.built().values():
            if hasattr(panel, "shutdown"):
                ok = panel.shutdown(timeout_ms) and ok
        return QThreadPool.globalInstance().waitForDone(timeout_ms) and ok

    def closeEvent(self, event) -> None:
        s = self.settings
        s.setValue("geometry", self.saveGeometry())
        s.setValue("tab", self.tabs.currentIndex())
        if "train" in self.panels.built():
            s.setValue("last_corpus", self.train_panel.corpus.spec())
        self.shutdown()
        s.sync()
        super().closeEvent(event)
