"""``--quit-when-ready``: what the launch benchmark reads from a real ``python -m explorer``."""

from __future__ import annotations

import time

from PySide6.QtCore import QEvent, QObject, QTimer


class ReadyProbe(QObject):
    """For the launch benchmark: prints ``SHOWN <CPU s>`` when the window first paints, ``READY
    <CPU s> <model>`` when the window paints the status bar's
    model label with a model current (the moment a user sees the model; with the process's CPU
    seconds so far), ``ALL <worst stall ms>`` once every model has loaded (the longest the event
    loop went without running a 5 ms timer since the window showed), then quits."""

    def __init__(self, app, window) -> None:
        super().__init__()
        self.app, self.window = app, window
        self.shown = self.ready = False
        self.last = time.perf_counter()
        self.worst = 0.0
        window.model_label.installEventFilter(self)
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt's name)
        if self.ready or event.type() != QEvent.Type.Paint or not self.window.isVisible():
            return False
        if not self.shown:
            self.shown = True
            print(f"SHOWN {time.process_time():.3f}", flush=True)
        if self.window.state.current is not None:
            self.ready = True
            print(f"READY {time.process_time():.3f} {self.window.state.current.name}", flush=True)
        return False

    def tick(self) -> None:
        now = time.perf_counter()
        self.worst = max(self.worst, (now - self.last) * 1000 - 5)
        self.last = now
        w = self.window
        if self.ready and not w.loading:
            print(f"ALL {self.worst:.0f}", flush=True)
            self.timer.stop()
            w.close()
            self.app.quit()
