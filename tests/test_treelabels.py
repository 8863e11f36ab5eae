"""Beam-tree labels: every token whole, its score on the node, no two labels meeting."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from explorer.seq2seq.decoding.treelabels import (
    EDGE,
    NODE,
    label_tree,
    number,
    overlapping,
    place_labels,
)
from explorer.seq2seq.decoding.treelayout import greedy_node_ids, greedy_overlay, layout_tree

BAHDANAU = Path(__file__).resolve().parent.parent / "models" / "classroom-bahdanau.safetensors"
# A classroom sentence whose French is 31 tokens long with the bundled Bahdanau model.
LONG = (
    "the child often sang quietly with this sad friend yesterday because i chase this good "
    "friend that a child saw slowly under our white garden"
)


def measure(text: str, small: bool) -> tuple[float, float]:
    """A stand-in for font metrics: wide enough for an 11-point sans-serif."""
    return (6.5 if small else 8.5) * len(text), 13.0 if small else 17.0


@cache
def search(beam: int):
    from explorer.seq2seq.checkpoint import load_checkpoint
    from explorer.seq2seq.decoding.beam import beam_search

    ck = load_checkpoint(BAHDANAU)
    return beam_search(ck.model, ck.tokenizer, [LONG], beam=beam, nbest=3)[0]


def labelled(result, **show):
    tree = result.tree
    on_greedy = tuple(int(i) for i in greedy_node_ids(tree, result.greedy.tokens) if i >= 0)
    lay = layout_tree(tree, always_show=on_greedy, **show)
    ov = greedy_overlay(tree, result.greedy, lay)
    return tree, lay, ov, label_tree(tree, lay, ov, measure)


def assert_legible(tree, lay, labels):
    nodes = np.flatnonzero(labels.kind == NODE)
    assert labels.shown[nodes].all()  # every node is labelled
    for row, i in enumerate(nodes[: len(lay)]):
        node = tree.nodes[lay.ids[row]]
        assert labels.lines[i] == (node.piece, number(node.score))  # whole token, and its score
        assert "…" not in labels.lines[i][0]
    folded = lay.folded
    assert [labels.badge[i] for i in nodes[: len(lay)]] == [f"+{k}" if k else "" for k in folded]
    rects = labels.rects()[labels.shown]
    assert overlapping(rects) == []
    # zoomed in (the view allows no zooming out past the least spacing): still apart
    zoomed = labels.rects(labels.px_step * 1.7, labels.px_row * 1.2)[labels.shown]
    assert overlapping(zoomed) == []


@pytest.mark.skipif(not BAHDANAU.is_file(), reason="the bundled Bahdanau model is missing")
@pytest.mark.parametrize("beam", [8, 16])
@pytest.mark.parametrize(
    "show", [{}, {"show_dead": True}, {"show_dead": True, "show_pruned": True}], ids=str
)
def test_a_30_token_sentence_at_beam_8_and_16_is_legible(beam, show):
    result = search(beam)
    assert len(result.nbest[0].tokens) >= 30
    tree, lay, _, labels = labelled(result, **show)
    assert_legible(tree, lay, labels)
    edges = labels.kind == EDGE
    assert labels.shown[edges].all()  # and every edge's log-probability has its place
    if not show:  # only finished paths drawn: the rest is counted on the nodes
        assert lay.folded.sum() == len(tree) - len(lay)
        assert len(lay) < len(tree) / 2


def test_step_columns_are_as_wide_as_their_labels():
    """Two columns of short tokens and one of a long one: the long one gets more room, and the
    edge labels sit between the boxes."""
    x = np.array([0.0, 1.0, 1.0, 2.0, 2.0])
    y = np.array([0.5, 0.0, 1.0, 0.0, 1.0])
    pieces = ["<s>", "a", "b", "extraordinairement", "c"]
    nodes = (x, y, pieces, [0.0, -0.1, -0.2, -0.3, -0.4], [3, 0, 0, 0, 0])
    edges = (x[[0, 0, 1, 2]], y[[0, 0, 1, 2]], x[[1, 2, 3, 4]], y[[1, 2, 3, 4]], [-0.1] * 4)
    labels = place_labels(nodes, edges, measure)
    at = labels.column_x * labels.px_step
    long_half = (measure("extraordinairement", False)[0]) / 2
    assert at[2] - at[1] > at[1] - at[0]
    assert at[2] - at[1] >= long_half + measure("−0.10", True)[0]
    assert labels.badge[0] == "+3" and labels.lines[3] == ("extraordinairement", "−0.30")
    assert labels.shown.all() and overlapping(labels.rects()) == []


def test_an_edge_label_that_would_cover_another_is_left_out():
    """Two edges drawn over each other (greedy crossing the tree): the first placed wins."""
    x = np.array([0.0, 1.0])
    y = np.array([0.0, 0.0])
    nodes = (x, y, ["<s>", "a"], [0.0, -0.5], [0, 0])
    edges = (np.zeros(2), np.zeros(2), np.ones(2), np.zeros(2), [-0.5, -0.7])
    labels = place_labels(nodes, edges, measure, edge_priority=np.array([1, 0]))
    assert labels.shown.tolist() == [True, True, False, True]
    assert labels.lines[3] == ("−0.70",)


def test_overlapping_finds_exactly_the_pairs_that_share_area():
    r = np.array([[0, 0, 10, 10], [10, 0, 20, 10], [5, 5, 15, 15], [30, 30, 31, 31]])
    assert overlapping(r) == [(0, 2), (1, 2)]  # touching edges do not count
