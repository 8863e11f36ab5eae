"""The one way the window runs background work: loading, decoding, beam and exact search, the
sweep, training, evaluation, saving.

``run(kind, fn, *args, ...)`` starts ``fn`` in a superqt worker. Each kind has a generation
counter: starting a job of a kind (or ``invalidate(kind)``) makes every earlier job of that kind
stale, and a stale job's result, progress and error are dropped, so a late answer never lands on a
newer state. ``finished`` callbacks always run. A worker is held until it finishes and released
then (a weak reference: a slot that captured the worker would keep it, and its arguments, a whole
model, alive for ever). ``trim=True`` hands freed heap memory back to the system afterwards.
"""

from __future__ import annotations

import inspect
import weakref
from collections import Counter
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QCoreApplication, QDeadlineTimer, QEventLoop, QObject, QThread, Signal

from explorer.gui.collector import collect_on_main_thread
from explorer.gui.heap import drop_stale_warning_hook
from explorer.seq2seq.heap import release_free_memory


class Runner(QObject):
    """Starts workers, drops stale results, and knows what is still running."""

    busy_changed = Signal(bool)  # whether any worker is running

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        collect_on_main_thread()  # workers must never destroy Qt objects (see collector.py)
        self._generation: Counter[str] = Counter()
        self._live: dict[int, tuple[str, Any]] = {}  # id(worker) → (kind, worker)

    def generation(self, kind: str) -> int:
        return self._generation[kind]

    def invalidate(self, *kinds: str) -> None:
        """Whatever jobs of these kinds are running, their results no longer apply."""
        for kind in kinds:
            self._generation[kind] += 1

    def running(self, kind: str | None = None) -> int:
        """How many workers (of ``kind``, or of any) are running."""
        return sum(1 for k, _ in self._live.values() if kind is None or k == kind)

    @property
    def busy(self) -> bool:
        return bool(self._live)

    def run(
        self,
        kind: str,
        fn: Callable,
        *args: Any,
        returned: Callable[[Any], None] | None = None,
        yielded: Callable[[Any], None] | None = None,
        errored: Callable[[BaseException], None] | None = None,
        finished: Callable[[], None] | None = None,
        trim: bool = False,
    ):
        """Start ``fn(*args)`` (a function, or a generator whose values go to ``yielded``) in a
        worker and return the worker (for pause and quit). The callbacks run on the window's
        thread, and only while no newer job of ``kind`` was started."""
        from superqt.utils import create_worker

        self._generation[kind] += 1
        gen = self._generation[kind]

        def current(slot):
            alive = _alive(slot)
            return lambda value: self._generation[kind] == gen and alive() and slot(value)

        job, held = _releasable(fn, args)
        w = create_worker(job, _start_thread=False, _ignore_errors=True)
        wanted = {"returned": returned, "yielded": yielded, "errored": errored}
        slots = [(getattr(w, name), current(f)) for name, f in wanted.items() if f is not None]
        for signal, slot in slots:
            signal.connect(slot)
        if finished is not None:
            still = _alive(finished)
            w.finished.connect(lambda: still() and finished())
        key = id(w)
        self._live[key] = (kind, w)
        ref = weakref.ref(w)

        def release() -> None:  # after ``finished``
            # Qt may keep the finished worker a while longer: it must hold nothing of ours
            held.clear()
            for signal, slot in slots:
                signal.disconnect(slot)
            slots.clear()
            self._release(key, ref, trim)

        w.finished.connect(release)
        if len(self._live) == 1:
            self.busy_changed.emit(True)
        w.start()
        return w

    def _release(self, key: int, ref, trim: bool) -> None:
        entry = self._live.pop(key, None)
        if entry is not None and entry[1] is not ref():
            self._live[key] = entry  # an id reused by a newer worker: not this one's entry
        drop_stale_warning_hook()
        if trim:
            release_free_memory()
        if not self._live:
            self.busy_changed.emit(False)

    def quit_all(self) -> None:
        """Ask every running worker to stop (a generator stops at its next value)."""
        for _, w in list(self._live.values()):
            if getattr(w, "is_paused", False):
                w.resume()
            w.quit()

    def wait_idle(self, timeout_ms: int = 30_000) -> bool:
        """Process events until no worker runs (or the time is up); True when idle. For closing
        the window and for tests; only on the window's thread."""
        app = QCoreApplication.instance()
        if app is None or QThread.currentThread() is not app.thread():
            raise RuntimeError("Runner.wait_idle: call it on the application's thread")
        deadline = QDeadlineTimer(timeout_ms)
        while self._live and not deadline.hasExpired():
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
            QThread.msleep(2)
        return not self._live


def _alive(slot: Callable) -> Callable[[], bool]:
    """Whether the widget a bound-method slot belongs to still exists (Qt would disconnect
    its own slots when their object is deleted; a wrapped slot must ask)."""
    owner = getattr(slot, "__self__", None)
    if isinstance(owner, QObject):
        return lambda: shiboken6.isValid(owner)
    return lambda: True


def _releasable(fn: Callable, args: tuple) -> tuple[Callable, list]:
    """``fn(*args)`` as a function of no arguments (a generator function stays one), and the
    list holding ``fn`` and ``args``: cleared, the job no longer keeps them (a whole model)."""
    held = [fn, args]
    if inspect.isgeneratorfunction(fn):

        def job():
            f, a = held
            return (yield from f(*a))

    else:

        def job():
            f, a = held
            return f(*a)

    return job, held


_RUNNER: Runner | None = None


def runner() -> Runner:
    """The application's runner (made on first use, on the window's thread)."""
    global _RUNNER
    if _RUNNER is None:
        _RUNNER = Runner()
    return _RUNNER
