"""One view of one decode, built without the window: what ``attention-explorer figure`` saves.

Each builder makes the view the panel shows, feeds it the record the panel would (a greedy
decode, a beam search, a sweep), moves it to the step asked for and returns it registered for
export, so the command line writes the same files as the view's right-click menu.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QSize
from PySide6.QtWidgets import QApplication, QWidget

from explorer.gui.exports import beam as beam_data
from explorer.gui.exports import step as step_data
from explorer.gui.widgets import theme
from explorer.gui.widgets.export import Exportable, exportable
from explorer.seq2seq.decoding.trace import Trace

VIEWS = ("alignment", "attention", "context", "topk", "hidden", "tree", "sweep", "bottleneck",
         "arithmetic")  # fmt: skip
SWEEP_PAIRS = 20  # classroom test pairs the sweep translates at each beam size


def decode(entry: Any, sentence: str) -> Trace:
    from explorer.gui.session import decode_job

    return decode_job(entry, "greedy", sentence)


def checked_step(trace: Trace, step: int | None) -> int:
    """The 0-based step for a 1-based ``--step`` (the last step when None)."""
    n = len(trace)
    if step is None:
        return n - 1
    if not 1 <= step <= n:
        raise ValueError(f"--step {step}: the decode of “{trace.source}” has {n} steps (1–{n})")
    return step - 1


def _style(view: QWidget) -> None:
    """The theme's plot colours and fonts, on the view and every plot inside it."""
    from explorer.gui.widgets.plotting import pg

    if isinstance(view, pg.PlotWidget):
        view.setBackground(theme.color("plot_bg"))
        theme.style_plot(view.getPlotItem())
    theme.style_plots(view)


def _shown(view: QWidget, size: tuple[int, int], target: QWidget | None = None) -> None:
    """Show the view so that the widget the figure draws (``target``, a part of the view, or the
    view itself) is ``size`` pixels."""
    view.resize(*size)
    view.show()
    QApplication.processEvents()
    for _ in range(4):  # a layout shares out what it is given: a few rounds settle it
        if target is None or target.size().toTuple() == size:
            return
        missing = QSize(*size) - target.size()
        view.resize(view.size() + missing)
        QApplication.processEvents()


def _step_view(name: str, trace: Trace, t: int, entry: Any) -> tuple[QWidget, QWidget, Callable]:
    """(the view, the widget its figure draws, its data) for a Step-through view."""
    from explorer.gui.step.alignment import AlignmentView
    from explorer.gui.step.arithmetic import ArithmeticView
    from explorer.gui.step.attention import AttentionBarsView
    from explorer.gui.step.hidden import HiddenStatesView
    from explorer.gui.step.topk import TopKView

    def shown() -> tuple[Trace, int]:
        return trace, t

    piece_of = entry.tokenizer.tgt_piece
    if name == "alignment":
        view = AlignmentView()
        return view, view, lambda: step_data.alignment_data(shown)
    if name in ("attention", "context"):
        view = AttentionBarsView()
        for button in (view.weights_button, view.scores_button):
            button.hide()
        if name == "context":
            view.context.setMaximumHeight(16777215)  # alone, the strip takes the whole figure
            view.plot.hide()
            return view, view.context, lambda: step_data.context_data(shown)
        view.context.hide()
        return view, view.plot, lambda: step_data.attention_data(shown)
    if name == "topk":
        view = TopKView()
        return view, view, lambda: step_data.topk_data(shown, view.k_spin.value(), piece_of)
    if name == "hidden":
        view = HiddenStatesView()
        return view, view, lambda: step_data.hidden_data(shown)
    view = ArithmeticView()
    return (
        view,
        view,
        lambda: step_data.text_data("arithmetic", shown, lambda: list(view.text.lines)),
    )


def step_figure(name: str, entry: Any, trace: Trace, t: int, size: tuple[int, int]) -> Exportable:
    view, target, data = _step_view(name, trace, t, entry)
    if name == "arithmetic":
        weights_of = getattr(entry.model, "score_weights", None)
        view.set_trace(trace, entry.config.get("emb_dim"), weights_of() if weights_of else None)
    elif name == "topk":
        view.set_trace(trace, entry.tokenizer.tgt_piece)
    else:
        view.set_trace(trace)
    _style(view)
    _shown(view, size, target)
    view.set_step(t)
    QApplication.processEvents()
    return exportable(view, name, data, widget=target)


def bottleneck_figure(trace: Trace, size: tuple[int, int]) -> Exportable:
    """Every step's context vector, a row per step: without attention every row is the same c
    (the bottleneck); with attention each step reads its own c_t."""
    from explorer.gui.step.common import Heatmap, short, symmetric_levels

    c = np.stack([np.asarray(s.context[-1], dtype=float) for s in trace.steps])  # (T, D)
    kind = "c_t" if trace.has_attention else "the one fixed c"
    title = f"Context at every step: {kind}, {c.shape[1]} numbers across"
    view = Heatmap(title, cmap="CET-D1", y_label="target")
    view.set_matrix(c, [short(p) for p in trace.pieces], None, symmetric_levels(c))
    view.plot.getPlotItem().hideAxis("bottom")  # a tick per unit would be a black band
    view.set_step(None)
    _style(view)
    _shown(view, size)
    return exportable(view, "bottleneck", lambda: step_data.bottleneck_data(lambda: (trace, 0)))


def tree_figure(entry: Any, sentence: str, beam: int, size: tuple[int, int]) -> Exportable:
    from explorer.gui.beam.tree_view import BeamTreeView
    from explorer.gui.session import default_search, stamp_beam

    params = {"beam": beam, "nbest": min(3, beam), "max_len": 40, "length_penalty": "none",
              "alpha": 0.0, "beta": 0.0}  # fmt: skip
    result = stamp_beam(entry, default_search(entry, sentence, params))
    view = BeamTreeView()
    _style(view)
    _shown(view, size)
    view.draw_tree(result)
    QApplication.processEvents()
    return exportable(view, "tree", lambda: beam_data.tree_data(view.tree, view.divergence))


def sweep_figure(entry: Any, pairs: int, size: tuple[int, int]) -> Exportable:
    from explorer.gui.beam.sweep import BEAMS, SweepWidget, run_sweep
    from explorer.gui.session import SweepRecord, default_sweep
    from explorer.seq2seq.decoding.trace import SourceRecord
    from explorer.seq2seq.evaluate import classroom_test_pairs

    test = classroom_test_pairs(pairs)
    params = {"nbest": 1, "max_len": 40, "length_penalty": "none", "alpha": 0.0, "beta": 0.0}

    def translate(sources: list[str], k: int) -> list[str]:
        return default_sweep(entry, sources, {**params, "beam": k})

    points = tuple(run_sweep(translate, test, BEAMS))
    origin = SourceRecord(entry.name, f"classroom test set, first {len(test)} pairs", ())
    view = SweepWidget()
    view.show_record(SweepRecord(origin, points, done=True), "")
    _style(view)
    _shown(view, size)
    return exportable(view, "sweep", lambda: beam_data.sweep_data(view.record), widget=view.plot)


def figure(
    name: str,
    entry: Any,
    sentence: str,
    step: int | None,
    size: tuple[int, int],
    beam: int = 5,
    pairs: int = SWEEP_PAIRS,
) -> Exportable:
    """The view ``name`` of ``sentence`` decoded by ``entry`` at ``step`` (1-based; None: the
    last), ``size`` pixels on screen (the PNG is twice that), ready to save."""
    if name not in VIEWS:
        raise ValueError(f"unknown view {name!r}; expected one of {', '.join(VIEWS)}")
    if name == "tree":
        return tree_figure(entry, sentence, beam, size)
    if name == "sweep":
        return sweep_figure(entry, pairs, size)
    trace = decode(entry, sentence)
    t = checked_step(trace, step)
    if name == "bottleneck":
        return bottleneck_figure(trace, size)
    if name in ("alignment", "attention") and not trace.has_attention:
        raise ValueError(f"the {name} view needs attention, and {entry.name} has none")
    return step_figure(name, entry, trace, t, size)
