"""What each Beam-vs-greedy view and the training curves export as data, and their menu hooks."""

from __future__ import annotations

from typing import Any

from explorer.gui.widgets.export import ViewData, exportable
from explorer.seq2seq.decoding.trace import BeamTree

NODE_COLUMNS = ("id", "parent", "step", "token", "piece", "log p", "score", "normalised score",
                "rank", "fate")  # fmt: skip


def tree_data(tree: BeamTree | None, divergence: int | None = None) -> ViewData:
    """Every node the search expanded, a row each; the finished hypotheses and settings too."""
    if tree is None:
        raise ValueError("the beam tree shows nothing yet: type a sentence first")
    rows = [
        (
            n.id,
            n.parent,
            n.step + 1,
            n.token,
            n.piece,
            n.logprob,
            n.score,
            n.normalized_score,
            n.rank,
            n.fate.value,
        )  # fmt: skip
        for n in tree.nodes
    ]
    return ViewData(
        view="beam tree", model=tree.model, source=tree.source, step=None, steps=None,
        columns=NODE_COLUMNS, rows=tuple(rows),
        fields={"settings": dict(tree.settings), "finished": list(tree.finished),
                "divergence": divergence, "stop_reason": tree.stop_reason},
    )  # fmt: skip


def nbest_data(tree: BeamTree | None, rows: list[tuple]) -> ViewData:
    """The n-best hypotheses and greedy, as the table lists them."""
    if tree is None or not rows:
        raise ValueError("the n-best table shows nothing yet: type a sentence first")
    return ViewData(
        view="n-best", model=tree.model, source=tree.source, step=None, steps=None,
        columns=("hypothesis", "translation", "score", "normalised score", "length"),
        rows=tuple(tuple(r) for r in rows),
    )  # fmt: skip


def sweep_data(record: Any) -> ViewData:
    """BLEU and average length for each beam size over the test set (a SweepRecord)."""
    if record is None or not record.points:
        raise ValueError("the sweep shows nothing yet: run the sweep first")
    return ViewData(
        view="beam sweep", model=record.origin.model, source=record.origin.text, step=None,
        steps=None, columns=("beam", "BLEU", "average length"), rows=tuple(record.points),
        fields={"test_set": record.origin.text, "done": record.done},
    )  # fmt: skip


def install_beam(panel: Any) -> None:
    """Give the beam panel's tree, n-best table and sweep their right-click export menus."""
    tv = panel.tree_view
    exportable(tv, "beam tree", lambda: tree_data(tv.tree, tv.divergence))
    exportable(panel.nbest_table, "n-best", lambda: nbest_data(tv.tree, panel.nbest_table.rows))
    sweep = panel.sweep
    exportable(sweep, "beam sweep", lambda: sweep_data(sweep.record), widget=sweep.plot)


def curves_data(model: str, curves: dict[str, tuple[list, list]]) -> ViewData:
    """Every logged value of the run, a row each: (curve, step, value)."""
    rows = [(key, step, value) for key, (xs, ys) in curves.items() for step, value in zip(xs, ys)]
    if not rows:
        raise ValueError("the training curves show nothing yet: train a model first")
    return ViewData(view="training curves", model=model, source="", step=None, steps=None,
                    columns=("curve", "step", "value"), rows=tuple(rows))  # fmt: skip


def install_curves(panel: Any, curves: Any) -> None:
    """The Train panel's live curves: their right-click export menu."""

    def model() -> str:
        options = getattr(panel.trainer, "options", None)
        if options is None:
            return "the model in training"
        return f"{options.arch} ({options.corpus}), in training"

    exportable(curves, "training curves", lambda: curves_data(model(), curves.data))
