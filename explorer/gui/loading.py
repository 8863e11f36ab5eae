"""The order in which the window's models load.

At launch the default bundled model is read by ``train.jobs.FirstLoad`` on a thread started
before Qt (torch's import, most of a launch, runs while the window is built); it becomes current
when it arrives. Then superqt and the plot modules are imported on a plain thread (on the window's
thread they would hold it for half a second just after the model appeared), and the other bundled
models load one after another through the runner. A checkpoint opened by hand loads the same way.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from explorer.gui.runner import runner
from explorer.gui.state import LoadedModel
from explorer.gui.train.jobs import FirstLoad

FOLLOW_UP_MS = 100  # after a load: the window paints the model before what waited starts


class Loader(QObject):
    """Loads checkpoints into the session, the bundled ones in order; says what it is doing."""

    started = Signal(object)  # Path: a load began
    loaded = Signal(object, object, bool)  # (Path, LoadedModel, remember in the recent files)
    failed = Signal(str)  # a one-line reason naming the file
    settled = Signal()  # a load ended (loaded or not); ``loading`` says what is still under way
    modules_ready = Signal()  # superqt and the plot modules are imported
    idle = Signal()  # a load ended and its follow-up may run (the next bundled model, …)
    _first_loaded = Signal(object)  # the FirstLoad's future, from its thread
    _modules_imported = Signal()  # from the thread that imports superqt and pyqtgraph

    def __init__(self, state, bundled: list[Path], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.loading: set[str] = set()
        self._queue = list(bundled[1:])  # loaded one after another once the default is in
        self._awaiting_modules = False
        self._modules_thread: threading.Thread | None = None
        self._modules_imported.connect(self._after_modules)

    def open(self, path: str | Path, *, make_current: bool = True, remember: bool = True) -> None:
        """Load ``path`` in a worker; on success it joins the session (and becomes current)."""
        from explorer.gui.train.jobs import load_checkpoint_job

        path = Path(path)
        self._begin(path)
        runner().run(
            f"load {path}", load_checkpoint_job, str(path),
            returned=lambda e: self._loaded(path, e, make_current, remember),
            errored=lambda exc: self._error(path, exc), finished=lambda: self._done(path),
            trim=True,
        )  # fmt: skip

    def take_over(self, first: FirstLoad) -> None:
        """Wait for the FirstLoad's model as for a worker's; superqt is not needed until then."""
        self._begin(first.path)
        self._first_loaded.connect(lambda future: self._first_arrived(first.path, future))
        first.future.add_done_callback(self._deliver_first)

    def _begin(self, path: Path) -> None:
        self.loading.add(str(path))
        self.started.emit(path)

    def _deliver_first(self, future) -> None:
        """On the loading thread (or here, when it is already done): a queued signal."""
        try:
            self._first_loaded.emit(future)
        except RuntimeError:  # the window was deleted before the model arrived: no one to tell
            return

    def _first_arrived(self, path: Path, future) -> None:
        if future.exception() is None:  # current unless a model opened meanwhile is
            self._loaded(path, future.result(), False, False)
        else:
            self._error(path, future.exception())
        self._awaiting_modules = True  # what follows needs superqt and pyqtgraph (see above)
        self._done(path)

    def _loaded(self, path: Path, entry: LoadedModel, make_current: bool, remember: bool) -> None:
        self.state.add(entry, make_current=make_current or self.state.current is None)
        self.loaded.emit(path, entry, remember)

    def _error(self, path: Path, exc: BaseException) -> None:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        self.failed.emit(first if path.name in first else f"{path.name}: {first}")

    def _done(self, path: Path) -> None:
        self.loading.discard(str(path))
        if self._queue:  # the next bundled model counts as loading from now on
            self.loading.add(str(self._queue[0]))
        self.settled.emit()
        # What waited for this load starts once the window has shown the model: a repaint is a
        # low-priority event, which a zero-delay call would overtake.
        QTimer.singleShot(FOLLOW_UP_MS, self._next)

    def _next(self) -> None:
        if self._awaiting_modules:
            self._import_modules()
            return
        self.idle.emit()
        if self._queue and self._is_open(self._queue[0]):  # --checkpoint named a bundled one
            self.loading.discard(str(self._queue.pop(0)))
            if self._queue:  # the next one counts as loading, as in _done
                self.loading.add(str(self._queue[0]))
            self.settled.emit()
        if self._queue:
            self.open(self._queue.pop(0), make_current=False, remember=False)

    def _is_open(self, path: Path) -> bool:
        """A model from this file is in the session already, or loading."""
        here = Path(path).resolve()
        loading = {Path(p).resolve() for p in self.loading} - {here}
        open_ = {Path(m.path).resolve() for m in self.state.models if m.path is not None}
        return here in open_ | loading

    def _import_modules(self) -> None:
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
        self.modules_ready.emit()
        self._next()
