"""Python's cycle collector, run on the window's thread only.

Python collects cyclic garbage in whichever thread happens to allocate when a generation fills
up. A Qt object in such a cycle (a panel of a closed window, a menu and its actions) is then
destroyed on a worker's thread, while the window's thread may be destroying another one: each
waits for a lock the other holds (the GIL against Qt's connection lock), and the window freezes.
So the automatic collector is turned off, and a timer on the window's thread runs the same
generational collection instead (as pyqtgraph's ``GarbageCollector`` does, without importing
pyqtgraph before the first plot).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QThread, QTimer

INTERVAL_MS = 500
_timer: QTimer | None = None


def collect_cycles(thresholds: tuple[int, int, int]) -> int:
    """One check: collect the youngest generation when it is over its threshold, the older ones
    too when they are over theirs, as the automatic collector would; how many objects it found."""
    counts, found = gc.get_count(), 0
    for generation in range(3):
        if counts[generation] <= thresholds[generation]:
            break
        found += gc.collect(generation)
    return found


def collect_on_main_thread(interval_ms: int = INTERVAL_MS) -> bool:
    """Turn the automatic collector off and check every ``interval_ms`` on the application's
    thread instead. Once per process; False when there is no application yet or this is not
    its thread (nothing is changed then)."""
    global _timer
    app = QCoreApplication.instance()
    if _timer is not None:
        return True
    if app is None or QThread.currentThread() is not app.thread():
        return False
    thresholds = gc.get_threshold()
    _timer = QTimer(app)
    _timer.timeout.connect(lambda: collect_cycles(thresholds))
    _timer.start(interval_ms)
    gc.disable()
    return True
