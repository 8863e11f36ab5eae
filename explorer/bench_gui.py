"""GUI timings for ``attention-explorer bench`` (run as ``python -m explorer.bench_gui``).

Runs on Qt's offscreen platform and prints one JSON line of rows: name, value, target.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import QtWidgets  # noqa: E402  (PySide6 before pyqtgraph)

from explorer.bench import LONG_SENTENCE, bundled_or_fresh, classroom_sample, summary  # noqa: E402


def _app() -> QtWidgets.QApplication:
    return QtWidgets.QApplication.instance() or QtWidgets.QApplication([])


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
    panel.close()
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
    panel.close()
    return {"nodes": len(tree), **summary(times)}


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    rounds = 1 if quick else 3
    rows = []
    pairs = classroom_sample(200)
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
    print(json.dumps({"rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
