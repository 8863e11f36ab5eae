"""The main window: three panels as tabs, menus, status bar, settings and export.

What the panels show lives in the :class:`Session`; the order models load in is the
:class:`Loader`'s (the window is usable at once, the default bundled model becomes current when it
arrives). A panel is built the first time its tab is shown.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from pathlib import Path

from PySide6.QtCore import QSettings, QSize, Qt, QThreadPool, Signal
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

from explorer.gui.lesson import LessonController
from explorer.gui.loading import Loader
from explorer.gui.pyside_hook import quicken_feature_scan
from explorer.gui.runner import runner
from explorer.gui.session import Session
from explorer.gui.state import LoadedModel
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
OPENING_PANEL = "step"  # the tab a first start opens on (later starts: the last one shown)
MAX_RECENT = 8
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


OPENING_INDEX = list(PANELS).index(OPENING_PANEL)


def load_message(path: Path, entry: LoadedModel, current: LoadedModel | None) -> str:
    """The status line for a loaded checkpoint. The bundled models load one after the other
    behind the current one, so a model that is not made current says so (the model label beside
    the message names the current one)."""
    if current is None or current is entry:
        return f"loaded {path.name}: now the current model"
    return f"also opened {path.stem}: pick it in the Model menu"


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

    def __init__(
        self,
        state: Session | None = None,
        settings: QSettings | None = None,
        *,
        models_dir: Path | None = MODELS_DIR,
        projector: bool | None = None,
        theme_name: str | None = None,
        error_dialogs: bool = True,
        first_load: FirstLoad | None = None,
        screen: tuple[int, int] | None = None,
    ) -> None:
        """``projector``, ``theme_name`` ("light" or "dark"): the display to start in, in place
        of the one last chosen (None: as last chosen, a first start light and not projected);
        ``first_load``: the default bundled model, already being read (see FirstLoad);
        ``screen``: the screen size (width, height) to fit and size fonts for, in place of the
        real screen's (screenshots, the gallery, tests)."""
        super().__init__()
        self._screen = screen
        self._follows_screen = False
        self._maximise_on_show = False  # a first start fills the screen it is shown on
        self.state = state or Session()
        self.settings = settings or QSettings("attention-explorer", "attention-explorer")
        self.error_dialogs = error_dialogs
        self.device = ""
        self.last_error = ""
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
        self._restore_settings(projector, theme_name)
        self._connect_state()
        self.lesson = LessonController(self)  # the Lesson menu and the note bar
        paths = bundled_paths(models_dir) if models_dir is not None else []
        self.loader = self._make_loader(paths)
        if paths and first_load is not None and first_load.path == paths[0]:
            self.loader.take_over(first_load)  # the device is asked for once it is in
        else:
            self._start_device_probe()
            if paths:
                self.open_checkpoint(paths[0], make_current=True, remember=False)
            else:
                self._show_model(None)
        # The saved tab's panel is built now (with a load under way, Train & Load holds back its
        # plots and corpus preview until it ends); index 0 emits no change, hence the call.
        self.tabs.setCurrentIndex(int(self.settings.value("tab", OPENING_INDEX, int)))
        self._tab_shown(self.tabs.currentIndex())

    def _restore_settings(self, projector: bool | None, theme_name: str | None) -> None:
        s = self.settings
        self._last_corpus = s.value("last_corpus", "", str)  # given to Train & Load when built
        geometry = s.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:  # a first start takes the whole screen: a classroom's projector, say
            self.resize(*self.screen_size())
            self._maximise_on_show = True  # unless a screen size is given before (showEvent)
        if projector is None:
            projector = s.value("projector", False, bool)
        self.projector_action.setChecked(bool(projector))
        self.dark_action.setChecked((theme_name or s.value("theme", "light", str)) == "dark")
        self.apply_theme()

    def _connect_state(self) -> None:
        self.state.status.connect(lambda m: self.statusBar().showMessage(m, 10_000))
        self.state.error.connect(self.show_error)
        self.state.current_changed.connect(self._show_model)
        self.state.models_changed.connect(self._rebuild_models_menu)
        self.state.open_in_step.connect(self.open_in_step)

    def _make_loader(self, paths: list[Path]) -> Loader:
        loader = Loader(self.state, paths, self)
        loader.started.connect(self._loading)
        loader.loaded.connect(self._loaded)
        loader.failed.connect(self._load_error)
        loader.settled.connect(self._load_done)
        loader.modules_ready.connect(self._start_device_probe)
        loader.idle.connect(self._after_load)
        return loader

    @property
    def loading(self) -> set[str]:
        """The checkpoints being read now (or next in the bundled order)."""
        return self.loader.loading if hasattr(self, "loader") else set()

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
        theme.size_indicators(panel.findChildren(QWidget))  # built after the theme was applied
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
        self.set_panel("step")
        self.state.show_trace(entry, trace)

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
        self._action(
            f, "Open model &folder…", self.open_folder_dialog, "Ctrl+Shift+O",
            "Load a translation model saved as a folder by Hugging Face (Marian / opus-mt).",
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

    def _remember(self, path: Path | str) -> None:
        """Put a checkpoint or model folder at the head of the recent list; a hub name
        (``Helsinki-NLP/opus-mt-en-fr``) that is no path here is kept as given."""
        p = str(Path(path).resolve()) if Path(path).exists() else str(path)
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
        runner().run(
            "device", device_job, returned=self._device_ready,
            errored=lambda e: self.show_error(f"cannot query the device: {e}"),
        )  # fmt: skip

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

    # -- loading ------------------------------------------------------------------------------
    def open_checkpoint(
        self, path: str | Path, *, make_current: bool = True, remember: bool = True
    ) -> None:
        """Load ``path`` in a worker; on success it joins the session (and becomes current)."""
        self.loader.open(path, make_current=make_current, remember=remember)

    def _loading(self, path: Path) -> None:
        self.busy.setVisible(True)
        self.statusBar().showMessage(f"loading {path.name}…")
        if self.state.current is None:
            self._show_model(None)

    def _loaded(self, path: Path, entry: LoadedModel, remember: bool) -> None:
        if remember:
            self._remember(path)
        self.statusBar().showMessage(load_message(path, entry, self.state.current), 10_000)
        self.model_loaded.emit(entry)

    def _load_error(self, msg: str) -> None:
        self.show_error(f"cannot open checkpoint: {msg}")
        self.load_failed.emit(msg)

    def _load_done(self) -> None:
        self.busy.setVisible(bool(self.loading))
        self._show_model(self.state.current)

    def _after_load(self) -> None:
        if "train" in self.panels.built():
            self.train_panel.release()

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open checkpoint", "", CHECKPOINT_FILTER)
        if path:
            self.open_checkpoint(path)

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open model folder (Marian / opus-mt)")
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

        runner().run(
            "save", job, returned=saved,
            errored=lambda e: self.show_error(f"could not save {path}: {e}"),
        )  # fmt: skip

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
        theme.apply(QApplication.instance(), name, projector, self.screen_size())
        self.settings.setValue("theme", name)
        self.settings.setValue("projector", projector)
        self.fit_to_screen()

    def screen_size(self) -> tuple[int, int]:
        """The available size of the screen the window is on (or the one it was given)."""
        if self._screen is not None:
            return self._screen
        screen = self.screen()
        if screen is None:
            return theme.screen_size()
        g = screen.availableGeometry()
        return (g.width(), g.height())

    def set_screen(self, size: tuple[int, int]) -> None:
        """Size fonts for, and fit into, a ``size`` screen (width, height) in place of the real
        one; the window takes the whole of it."""
        self._screen = (int(size[0]), int(size[1]))
        self.apply_theme()
        self.resize(*self._screen)

    def fit_to_screen(self) -> None:
        """Never larger than the screen, whatever the panels' least sizes ask for."""
        w, h = self.screen_size()
        self.setMaximumSize(QSize(w, h))
        self.resize(min(self.width(), w), min(self.height(), h))

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

    def showEvent(self, event) -> None:  # noqa: N802
        """Once shown, a move to another screen (a laptop's window dragged to the projector)
        sizes the fonts for that screen."""
        super().showEvent(event)
        if self._maximise_on_show and self._screen is None:  # on a given screen size, that
            self.setWindowState(Qt.WindowState.WindowMaximized)  # size is the whole screen
        self._maximise_on_show = False
        handle = self.windowHandle()
        if handle is not None and not self._follows_screen:
            handle.screenChanged.connect(self._screen_changed)
            self._follows_screen = True

    def _screen_changed(self, _screen) -> None:
        if self._screen is None:  # a given screen size stays
            self.apply_theme()

    # -- closing ------------------------------------------------------------------------------
    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Stop every worker (training included) and wait for them; True when all ended."""
        ok = True
        for panel in self.panels.built().values():
            if hasattr(panel, "shutdown"):
                ok = panel.shutdown(timeout_ms) and ok
        runner().quit_all()
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
