"""GUI timings for ``attention-explorer bench`` (run as ``python -m explorer.bench_gui``).

Runs on Qt's offscreen platform and prints one JSON line of rows: name, value, target.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import QtWidgets  # noqa: E402  (PySide6 before pyqtgraph)

from explorer.bench import (  # noqa: E402
    LONG_SENTENCE,
    bundled_or_fresh,
    classroom_sample,
    percentile,
    summary,
)


def _app() -> QtWidgets.QApplication:
    return QtWidgets.QApplication.instance() or QtWidgets.QApplication([])


def _dispose(panel: QtWidgets.QWidget) -> None:
    """Delete a measured panel now, on the UI thread, while no worker runs: a panel left to
    Python's garbage collector could be collected later, in the middle of a training run."""
    panel.close()
    panel.deleteLater()
    app = _app()
    app.sendPostedEvents(None, 0)  # 0: QEvent.DeferredDelete is among the posted events
    app.processEvents()
    gc.collect()


def step_redraw(model, tok, name: str, rounds: int) -> dict:
    """Time ``set_step(t)`` plus a repaint, over every step of a decode of the long sentence."""
    from explorer.gui.state import AppState, LoadedModel
    from explorer.gui.step_panel import StepPanel
    from explorer.seq2seq.decode import greedy

    app = _app()
    state = AppState()
    entry = LoadedModel(name=name, model=model, tokenizer=tok, config={"arch": model.arch})
    state.add(entry)
    panel = StepPanel(state)
    panel.resize(1400, 900)
    panel.show()
    trace = greedy(model, tok, LONG_SENTENCE, max_len=30)
    panel.show_trace(entry, trace)
    app.processEvents()
    times = []
    for _ in range(rounds):
        for t in range(len(trace)):
            t0 = time.perf_counter()
            panel.set_step(t)
            panel.repaint()
            app.processEvents()
            times.append((time.perf_counter() - t0) * 1000)
    _dispose(panel)
    return {"steps": len(trace), **summary(times)}


def tree_draw(beam: int, steps: int, repeat: int) -> dict:
    from explorer.gui.beam_panel import BeamPanel
    from explorer.gui.state import AppState
    from explorer.seq2seq.treelayout import synthetic_beam_tree

    app = _app()
    tree = synthetic_beam_tree(beam=beam, steps=steps)
    panel = BeamPanel(AppState())
    panel.resize(1400, 900)
    panel.show()
    app.processEvents()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        panel.draw_tree(tree)
        panel.repaint()
        app.processEvents()
        times.append((time.perf_counter() - t0) * 1000)
    _dispose(panel)
    return {"nodes": len(tree), **summary(times)}


LAUNCH_SCRIPT = """
import os, sys, time
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6 import QtCore, QtWidgets
app = QtWidgets.QApplication([])
from explorer.gui.window import MainWindow
settings = QtCore.QSettings(sys.argv[1], QtCore.QSettings.Format.IniFormat)
w = MainWindow(settings=settings, error_dialogs=False)
w.show()
def ready():
    if w.state.current is not None and not w.loading:
        print("READY", flush=True)
        w.shutdown()
        app.quit()
timer = QtCore.QTimer(); timer.timeout.connect(ready); timer.start(5)
QtCore.QTimer.singleShot(60000, app.quit)
app.exec()
"""


def launch_time(repeat: int) -> dict:
    """Seconds from starting a fresh Python process to a shown window with the bundled model
    loaded and current (measured by the parent, so interpreter start-up counts)."""
    import subprocess
    import tempfile

    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            r = subprocess.run(
                [sys.executable, "-c", LAUNCH_SCRIPT, os.path.join(d, "s.ini")],
                capture_output=True,
                text=True,
                timeout=120,
                env=dict(os.environ, QT_QPA_PLATFORM="offscreen"),
            )
            elapsed = time.perf_counter() - t0
        if "READY" not in r.stdout:
            raise RuntimeError(f"the window never became ready: {r.stderr[-800:]}")
        times.append(elapsed)
    return summary(times)


def training_stalls(steps: int, corpus_size: int = 30000) -> dict:
    """Gaps of a 5 ms event-loop timer while the Train & Load panel trains on the CPU."""
    from PySide6 import QtCore

    from explorer.gui.state import AppState
    from explorer.gui.train_panel import TrainPanel
    from explorer.seq2seq.presets import PRESETS

    app = _app()
    panel = TrainPanel(AppState())
    panel.resize(1400, 900)
    panel.show()
    panel.corpus.set_spec("classroom")
    preset = PRESETS["classroom-bahdanau"]
    panel.form.set_values({**preset, "steps": steps, "eval_every": max(10, steps // 3)})
    panel.corpus.size.setValue(corpus_size)
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now - last[0]) * 1000)
        last[0] = now

    timer = QtCore.QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    timer.start()
    panel.start()
    started = time.perf_counter()
    while panel.running and time.perf_counter() - started < 600:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
    timer.stop()
    ok = panel.shutdown()
    events = panel.last_event.step if panel.last_event is not None else 0
    panel.close()
    stalls = [g - 5.0 for g in gaps]
    return {
        "ticks": len(gaps),
        "steps": events,
        "finished": ok,
        **summary(stalls),
        "p99": percentile(stalls, 99),
    }


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    rounds = 1 if quick else 3
    rows = []
    pairs = classroom_sample(60 if quick else 200)
    model, tok, status = bundled_or_fresh("classroom-bahdanau", pairs)
    r = step_redraw(model, tok, "bahdanau", rounds)
    rows.append(
        {
            "name": f"step-through redraw, Bahdanau ({status}), {r['steps']} steps: "
            f"median / p95 (ms)",
            "value": f"{r['median']:.1f} / {r['p95']:.1f}",
            "target": "p95 ≤ 16 ms",
        }
    )
    from explorer.seq2seq.families import build_model, make_config

    big = build_model(
        make_config(
            "transformer",
            src_vocab=tok.src_vocab_size,
            tgt_vocab=tok.tgt_vocab_size,
            d_model=256,
            heads=4,
            enc_layers=4,
            dec_layers=4,
            d_ff=512,
        )
    ).eval()
    r = step_redraw(big, tok, "transformer 4x4", rounds)
    rows.append(
        {
            "name": f"step-through redraw, Transformer 4 layers × 4 heads, {r['steps']} "
            "steps: median / p95 (ms)",
            "value": f"{r['median']:.1f} / {r['p95']:.1f}",
            "target": "p95 ≤ 16 ms",
        }
    )
    for beam, target in ((5, "≤ 100 ms"), (16, "≤ 500 ms")):
        r = tree_draw(beam, 40, 2 if quick else 5)
        rows.append(
            {
                "name": f"beam tree layout + draw, beam {beam} × 40 steps "
                f"({r['nodes']} nodes): median (ms)",
                "value": f"{r['median']:.0f}",
                "target": target,
            }
        )
    r = training_stalls(5 if quick else 60, corpus_size=500 if quick else 30000)
    rows.append(
        {
            "name": f"UI-thread stall while training ({r['steps']} steps of the Bahdanau "
            f"preset, {r['ticks']} timer ticks): p99 / max (ms)",
            "value": f"{r['p99']:.1f} / {r['max']:.1f}",
            "target": "p99 ≤ 50 ms",
        }
    )
    if quick:  # a fresh process loading the four bundled models: the full run measures it
        print(json.dumps({"rows": rows}))
        return 0
    r = launch_time(3)
    rows.append(
        {
            "name": "launch to a usable window with the bundled model loaded: median (s)",
            "value": f"{r['median']:.2f}",
            "target": "≤ 3 s",
        }
    )
    print(json.dumps({"rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
