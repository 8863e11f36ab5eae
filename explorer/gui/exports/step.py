"""What each Step-through view exports as data, and the hook that gives each view its menu.

Every function reads the trace and step the view shows (``shown()``: the session's, or the one a
command-line figure was given) and the view's own choices (layer, head, k), never the screen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from explorer.gui.widgets.export import ViewData, exportable
from explorer.seq2seq.decoding.trace import Trace

Shown = Callable[[], tuple[Trace | None, int]]  # (the trace on show, its 0-based step)


def _shown(shown: Shown, view: str) -> tuple[Trace, int]:
    trace, t = shown()
    if trace is None or not trace.steps:
        raise ValueError(f"the {view} view shows nothing yet: decode a sentence first")
    return trace, max(0, min(int(t), len(trace) - 1))


def _data(view: str, trace: Trace, t: int | None, columns, rows, **fields: Any) -> ViewData:
    return ViewData(
        view=view,
        model=trace.model,
        source=trace.source,
        step=None if t is None else t + 1,
        steps=len(trace),
        columns=tuple(columns),
        rows=tuple(tuple(r) for r in rows),
        fields={"target": list(trace.pieces), "source_pieces": list(trace.src_pieces), **fields},
    )


def _no_attention(trace: Trace, view: str) -> None:
    if not trace.has_attention:
        raise ValueError(f"the {view} view has nothing to export: this model has no attention")


def alignment_data(shown: Shown, layer: int = -1, head: int | None = None) -> ViewData:
    """α_ti of the steps written so far: a row per target step, a column per source piece."""
    trace, t = _shown(shown, "alignment")
    _no_attention(trace, "alignment")
    m = trace.attention_matrix(layer, head)[: t + 1]  # (t+1, S)
    rows = [(i + 1, trace.pieces[i], *map(float, row)) for i, row in enumerate(m)]
    return _data("alignment", trace, t, ("step", "target", *trace.src_pieces), rows,
                 layer=layer, head=head)  # fmt: skip


def attention_data(shown: Shown, layer: int = -1, head: int | None = None) -> ViewData:
    """The raw scores e_ti and weights α_ti at step t, a row per source piece."""
    trace, t = _shown(shown, "attention")
    _no_attention(trace, "attention")
    alpha = trace.attention_matrix(layer, head)[t]
    scores = trace.score_matrix(layer, head)[t]
    rows = [
        (i + 1, piece, float(e) if np.isfinite(e) else None, float(a))
        for i, (piece, e, a) in enumerate(zip(trace.src_pieces, scores, alpha))
    ]
    return _data("attention", trace, t, ("i", "source", "score e_ti", "weight α_ti"), rows,
                 layer=layer, head=head)  # fmt: skip


def context_data(shown: Shown, layer: int = -1) -> ViewData:
    """The context vector c_t at step t, a row per unit."""
    trace, t = _shown(shown, "context")
    c = np.asarray(trace.steps[t].context[layer], dtype=float)
    return _data("context", trace, t, ("unit", "c_t"), enumerate(c.tolist(), 1),
                 has_attention=trace.has_attention)  # fmt: skip


def bottleneck_data(shown: Shown, layer: int = -1) -> ViewData:
    """Every step's context vector, a row per step: one repeated row without attention."""
    trace, _ = _shown(shown, "bottleneck")
    c = np.stack([np.asarray(s.context[layer], dtype=float) for s in trace.steps])  # (T, D)
    rows = [(i + 1, trace.pieces[i], *row) for i, row in enumerate(c.tolist())]
    columns = ("step", "target", *(f"c{j + 1}" for j in range(c.shape[1])))
    return _data("bottleneck", trace, None, columns, rows, has_attention=trace.has_attention)


def topk_data(shown: Shown, k: int = 8, piece_of: Callable[[int], str] | None = None) -> ViewData:
    """The k most probable next tokens at step t, most probable first."""
    trace, t = _shown(shown, "top-k")
    step = trace.steps[t]
    rows = []
    for rank, (token, p) in enumerate(step.topk(k), 1):
        piece = step.piece if token == step.token else (piece_of or str)(token)
        rows.append((rank, token, piece, p, float(step.logprobs[token]), token == step.token))
    return _data("top-k", trace, t, ("rank", "token", "piece", "p", "log p", "chosen"), rows,
                 entropy=float(step.entropy))  # fmt: skip


def hidden_data(shown: Shown) -> ViewData:
    """The decoder state s_t at step t (a row per unit); every encoder state and the decoder
    states so far as JSON fields."""
    trace, t = _shown(shown, "hidden states")
    s_t = np.asarray(trace.steps[t].hidden[-1], dtype=float)
    decoder = trace.hidden_matrix()[: t + 1]  # (t+1, D)
    return _data("hidden states", trace, t, ("unit", "s_t"), enumerate(s_t.tolist(), 1),
                 encoder_states=trace.encoder_states, decoder_states=decoder)  # fmt: skip


def text_data(name: str, shown: Shown, lines: Callable[[], list[str]]) -> ViewData:
    """A view of text (the arithmetic): its lines."""
    trace, t = _shown(shown, name)
    return _data(name, trace, t, ("line",), [(line,) for line in lines()])


def self_attention_data(shown: Shown, layer: int, head: int | None) -> ViewData:
    """The Transformer decoder's self-attention of the shown layer and head, steps so far."""
    trace, t = _shown(shown, "transformer")
    if trace.steps[0].self_attention is None:
        raise ValueError("the transformer view has nothing to export: this model has no heads")
    rows = []
    for i, step in enumerate(trace.steps[: t + 1]):
        a = step.self_attention[layer]
        a = a.mean(axis=0) if head is None else a[head]
        rows.append((i + 1, trace.pieces[i], *(float(v) for v in a), *([None] * (t - i))))
    return _data("transformer", trace, t, ("step", "target", *trace.pieces[: t + 1]), rows,
                 layer=layer, head=head)  # fmt: skip


# -- the hook ------------------------------------------------------------------------------------


def install(panel: Any) -> None:
    """Give every view of a StepPanel its right-click export menu."""

    def shown() -> tuple[Trace | None, int]:
        return panel.trace, panel.t

    def compare_shown() -> tuple[Trace | None, int]:
        return panel.compare.trace, panel.t

    tv = panel.transformer
    exportable(panel.alignment, "alignment", lambda: alignment_data(shown, tv.layer, tv.head))
    exportable(panel.bars.plot, "attention", lambda: attention_data(shown, tv.layer, tv.head))
    exportable(panel.bars.context, "context", lambda: context_data(shown))
    exportable(panel.topk, "top-k",
               lambda: topk_data(shown, panel.topk.k_spin.value(), panel.piece_of))  # fmt: skip
    exportable(panel.hidden, "hidden states", lambda: hidden_data(shown))
    lines = panel.arithmetic.text  # its lines as drawn
    exportable(panel.arithmetic, "arithmetic",
               lambda: text_data("arithmetic", shown, lambda: list(lines.lines)))  # fmt: skip
    exportable(tv, "transformer", lambda: self_attention_data(shown, tv.layer, tv.head))
    exportable(panel.compare, "compare", lambda: _compare(panel, compare_shown))


def _compare(panel: Any, shown: Shown) -> ViewData:
    """The comparison model's alignment so far (or its top-k, without attention)."""
    trace, _ = shown()
    if trace is None or not trace.steps:
        raise ValueError("the compare view shows nothing yet: tick Compare and pick a model")
    if not trace.has_attention:
        data = topk_data(shown, 5, panel.piece_of)
    else:
        data = alignment_data(shown)
    return ViewData(**{**data.__dict__, "view": "compare"})
