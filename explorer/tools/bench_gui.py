"""GUI timings for ``attention-explorer bench`` (run as ``python -m explorer.tools.bench_gui``).

Runs on Qt's offscreen platform and prints one JSON line of rows: name, value, target.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import QtCore, QtWidgets  # noqa: E402  (PySide6 before pyqtgraph)

from explorer.tools.bench import (  # noqa: E402
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


class _PaintCounter(QtCore.QObject):
    """Counts paint events delivered anywhere in the application."""

    def __init__(self) -> None:
        super().__init__()
        self.paints = 0

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QtCore.QEvent.Type.Paint:
            self.paints += 1
        return False


def _show_tab(panel: QtWidgets.QWidget, label: str) -> None:
    """Bring the panel's tab called ``label`` to the front."""
    for tabs in panel.findChildren(QtWidgets.QTabWidget):
        for i in range(tabs.count()):
            if tabs.tabText(i) == label:
                tabs.setCurrentIndex(i)
                return
    raise LookupError(f"the step panel has no tab {label!r}")


def step_redraw(
    model, tok, name: str, rounds: int, source=LONG_SENTENCE, tab: str | None = None
) -> dict:
    """Per step of a decode of ``source`` (at most 30 steps), on the panel's ``tab`` when given,
    two timings: ``scrub`` is ``set_step(t)`` and the event loop run until a pass paints nothing
    (what the window does when a student scrubs: every view that changed is painted); ``full`` is
    ``set_step(t)`` plus a forced repaint of the whole panel, static controls included (an upper
    bound)."""
    from explorer.gui.session import Session
    from explorer.gui.state import LoadedModel
    from explorer.gui.step.panel import StepPanel
    from explorer.seq2seq.decoding.decode import greedy

    app = _app()
    state = Session()
    entry = LoadedModel(name=name, model=model, tokenizer=tok, config={"arch": model.arch})
    state.add(entry)
    panel = StepPanel(state)
    try:
        panel.resize(1400, 900)
        panel.show()
        trace = greedy(model, tok, source, max_len=30)
        panel.show_trace(entry, trace)
        if tab is not None:
            _show_tab(panel, tab)
        app.processEvents()
        # show_trace set the sentence, which started a decode whose result is dropped: with a
        # large model it would run beside the measurement
        state.runner.wait_idle()
        scrub, full, paints = _scrub_timings(panel, len(trace), rounds)
    finally:
        state.runner.wait_idle()  # no worker may outlive the panel
        _dispose(panel)
    return {
        "steps": len(trace),
        "scrub": summary(scrub),
        "full": summary(full),
        "paints": statistics.median(paints),
    }


def _scrub_timings(panel, steps: int, rounds: int) -> tuple[list, list, list]:
    app = _app()
    counter = _PaintCounter()
    app.installEventFilter(counter)
    scrub, full, paints = [], [], []
    for _ in range(rounds):
        for t in range(steps):
            before = counter.paints
            t0 = time.perf_counter()
            panel.set_step(t)
            while True:
                seen = counter.paints
                app.processEvents()
                if counter.paints == seen:
                    break
            scrub.append((time.perf_counter() - t0) * 1000)
            paints.append(counter.paints - before)
        for t in range(steps):
            t0 = time.perf_counter()
            panel.set_step(t)
            panel.repaint()
            app.processEvents()
            full.append((time.perf_counter() - t0) * 1000)
    app.removeEventFilter(counter)
    return scrub, full, paints


def tree_draw(beam: int, steps: int, repeat: int) -> dict:
    from explorer.gui.beam.panel import BeamPanel
    from explorer.gui.session import Session
    from explorer.tools.oracles import synthetic_beam_tree

    app = _app()
    tree = synthetic_beam_tree(beam=beam, steps=steps)
    panel = BeamPanel(Session())
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


def launch_time(repeat: int) -> dict:
    """Seconds from starting ``python -m explorer`` (a fresh process, so interpreter start-up
    counts) to its window's first paint (``shown``), to the window painting the default bundled
    model as current (``ready``), and to every
    bundled model loaded (``all``), with the event loop's longest stall in between (ms).

    Each launch alternates with a bare ``python -c "import torch"`` (``torch``): the model cannot
    be current before torch is imported, so that is the floor on this host at this moment, and
    ``ready`` minus it is what the application itself adds."""
    import subprocess
    import tempfile

    shown, ready, done, stalls, floor = [], [], [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=True)
        floor.append(time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as d:
            env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=d)
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-m", "explorer", "--quit-when-ready"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            lines = []
            for line in proc.stdout:
                lines.append((time.perf_counter() - t0, line.split()))
            err = proc.communicate(timeout=120)[1]
        seen = {words[0]: (t, words) for t, words in lines if words}
        if "READY" not in seen or "ALL" not in seen:
            raise RuntimeError(f"the window never became ready: {err[-800:]}")
        shown.append(seen["SHOWN"][0])
        ready.append(seen["READY"][0])
        done.append(seen["ALL"][0])
        stalls.append(float(seen["ALL"][1][1]))
    return {
        "shown": summary(shown),
        "ready": summary(ready),
        "all": summary(done),
        "stall_max": max(stalls),
        "torch": summary(floor),
        "beyond_torch": summary([r - f for r, f in zip(ready, floor)]),
    }


def training_stalls(steps: int, corpus_size: int = 30000) -> dict:
    """Gaps of a 5 ms event-loop timer while the Train & Load panel trains on the CPU. torch
    and the decoding stack are imported first, as the window has them from its first load."""
    from PySide6 import QtCore

    import explorer.seq2seq.checkpoint  # noqa: F401
    import explorer.seq2seq.decoding.decode  # noqa: F401
    from explorer.gui.session import Session
    from explorer.gui.train.panel import TrainPanel
    from explorer.seq2seq.training.presets import PRESETS

    app = _app()
    panel = TrainPanel(Session())
    panel.resize(1400, 900)
    panel.show()
    panel.corpus.set_spec("classroom")
    preset = PRESETS["classroom-bahdanau"]
    panel.form.set_values({**preset, "steps": steps, "eval_every": max(10, steps // 3)})
    panel.corpus.size.setValue(corpus_size)
    # As a user meets it: the panel painted and its corpus preview read before Start is pressed.
    started = time.perf_counter()
    while panel.corpus.busy() and time.perf_counter() - started < 120:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
    panel.repaint()
    app.processEvents()
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


def _redraw_rows(model: str, r: dict) -> list[dict]:
    return [
        {
            "name": f"step-through redraw, {model}, {r['steps']} steps, as scrubbing paints "
            f"({r['paints']:.0f} widgets painted per step): median / p95 (ms)",
            "value": f"{r['scrub']['median']:.1f} / {r['scrub']['p95']:.1f}",
            "target": "p95 ≤ 16 ms",
        },
        {
            "name": f"step-through redraw, {model}, with a forced repaint of the whole panel: "
            "median / p95 (ms)",
            "value": f"{r['full']['median']:.1f} / {r['full']['p95']:.1f}",
            "target": "",
        },
    ]


def _row(name: str, value: str, target: str = "") -> dict:
    return {"name": name, "value": value, "target": target}


def _redraw_benchmarks(rounds: int, quick: bool) -> list[dict]:
    """Step-through redraws with the Bahdanau model and a 4 × 4 Transformer."""
    from explorer.seq2seq.models.families import build_model, make_config

    pairs = classroom_sample(60 if quick else 200)
    model, tok, status = bundled_or_fresh("classroom-bahdanau", pairs)
    rows = _redraw_rows(f"Bahdanau ({status})", step_redraw(model, tok, "bahdanau", rounds))
    config = make_config(
        "transformer", src_vocab=tok.src_vocab_size, tgt_vocab=tok.tgt_vocab_size,
        d_model=256, heads=4, enc_layers=4, dec_layers=4, d_ff=512,
    )  # fmt: skip
    big = build_model(config).eval()
    r = step_redraw(big, tok, "transformer 4x4", rounds)
    return rows + _redraw_rows("Transformer 4 layers × 4 heads", r)


def _marian_redraw(rounds: int) -> list[dict]:
    """Step-through redraws with a random model of opus-mt-en-fr's shape (6 + 6 layers, 8 heads,
    59,514 pieces) on a 30-token source; needs ``transformers`` to build the model."""
    import tempfile
    from pathlib import Path

    from explorer.tools.bench_marian import open_random, source_ids

    name = "Marian at opus-mt-en-fr's size, 6 layers × 8 heads"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            m = open_random(Path(tmp))
    except RuntimeError as e:
        return [_row(f"step-through redraw, {name}", f"not measured: {e}", "p95 ≤ 16 ms")]
    src = source_ids(m)
    rows = _redraw_rows(name, step_redraw(m.model, m.tokenizer, "marian", rounds, source=src))
    r = step_redraw(m.model, m.tokenizer, "marian", rounds, source=src, tab="Transformer")
    return rows + _redraw_rows(f"{name}, the Transformer tab in front", r)


def _tree_and_training(quick: bool) -> list[dict]:
    rows = []
    for beam, target in ((5, "≤ 100 ms"), (16, "≤ 500 ms")):
        r = tree_draw(beam, 40, 2 if quick else 5)
        name = f"beam tree layout + draw, beam {beam} × 40 steps ({r['nodes']} nodes): median (ms)"
        rows.append(_row(name, f"{r['median']:.0f}", target))
    r = training_stalls(5 if quick else 60, corpus_size=500 if quick else 30000)
    name = (
        f"UI-thread stall while training ({r['steps']} steps of the Bahdanau preset, "
        f"{r['ticks']} timer ticks): p99 / max (ms)"
    )
    rows.append(_row(name, f"{r['p99']:.1f} / {r['max']:.1f}", "p99 ≤ 50 ms"))
    return rows


def _launch_rows() -> list[dict]:
    r = launch_time(5)

    def mm(key: str, fmt: str = ".2f") -> str:
        return f"{r[key]['median']:{fmt}} / {r[key]['max']:{fmt}}"

    return [
        _row("launch (`attention-explorer`, 5 runs) to the window's first paint: "
             "median / max (s)", mm("shown")),
        _row("launch to the window painting the default bundled model as current: "
             "median / max (s)", mm("ready"), "≤ 3 s"),
        _row('bare `python -c "import torch"`, each run just before a launch: median / '
             "max (s); the launch's ready time beyond it: median / max (s)",
             f"{mm('torch')}; {mm('beyond_torch')}"),
        _row("launch to all four bundled models loaded: median (s); the event loop's "
             "longest stall meanwhile (ms)", f"{r['all']['median']:.2f}; {r['stall_max']:.0f}"),
    ]  # fmt: skip


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    rounds = 1 if quick else 3
    if "--only-marian" in argv:  # the real-size rows alone
        print(json.dumps({"rows": _marian_redraw(rounds)}))
        return 0
    rows = _redraw_benchmarks(rounds, quick) + _marian_redraw(rounds) + _tree_and_training(quick)
    if not quick:  # a fresh process loading the four bundled models: the full run measures it
        rows += _launch_rows()
    print(json.dumps({"rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
