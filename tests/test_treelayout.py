"""The headless beam-tree layout: positions, collapsing, greedy overlay."""

from __future__ import annotations

import numpy as np
import pytest
from oracles import synthetic_beam_tree

from explorer.seq2seq.decoding.trace import BeamNode, BeamTree, DecodeStep, Fate, Trace
from explorer.seq2seq.decoding.treelayout import (
    FATE_CODES,
    TreeLayoutError,
    greedy_overlay,
    layout_tree,
)


def _node(i, parent, step, tok, lp, parent_score, rank, fate):
    return BeamNode(
        i, parent, step, tok, f"t{tok}", lp, parent_score + lp, parent_score + lp, rank, fate, None
    )


def small_tree() -> BeamTree:
    """Beam 2.  root → a(5) kept, b(6) kept, c(7) pruned;  a → </s> chosen, x(8) pruned;
    b → y(9) finished-at-limit, z(10) pruned."""
    n = [BeamNode(0, -1, -1, 2, "<s>", 0.0, 0.0, 0.0, 0, Fate.KEPT, None)]
    n.append(_node(1, 0, 0, 5, -0.5, 0.0, 0, Fate.KEPT))
    n.append(_node(2, 0, 0, 6, -1.0, 0.0, 1, Fate.KEPT))
    n.append(_node(3, 0, 0, 7, -2.0, 0.0, 2, Fate.PRUNED))
    n.append(_node(4, 1, 1, 3, -0.2, -0.5, 0, Fate.CHOSEN))
    n.append(_node(5, 1, 1, 8, -2.5, -0.5, 2, Fate.PRUNED))
    n.append(_node(6, 2, 1, 9, -0.3, -1.0, 1, Fate.FINISHED))
    n.append(_node(7, 2, 1, 10, -3.0, -1.0, 3, Fate.PRUNED))
    return BeamTree("src", (4, 3), ("a", "</s>"), tuple(n), (4, 6), np.zeros((2, 2)))


def greedy_trace(tokens, logps) -> Trace:
    steps = []
    for t, (tok, lp) in enumerate(zip(tokens, logps)):
        logprobs = np.full(12, -20.0)
        logprobs[tok] = lp
        steps.append(
            DecodeStep(
                t, tok, f"t{tok}", logprobs, None, None, None, np.zeros((1, 2)), np.zeros((1, 2))
            )
        )
    return Trace("src", (4, 3), ("a", "</s>"), tuple(steps), np.zeros((2, 2)))


def test_collapsed_layout_hides_pruned_and_counts_them():
    lay = layout_tree(small_tree())
    assert lay.ids.tolist() == [0, 1, 2, 4, 6]
    assert lay.hidden_pruned.tolist() == [1, 1, 1, 0, 0]
    assert lay.x.tolist() == [0, 1, 1, 2, 2]
    # leaves 4 and 6 get rows 0 and 1; their parents sit on them; the root midway
    assert lay.y.tolist() == [0.5, 0.0, 1.0, 0.0, 1.0]
    assert {tuple(e) for e in lay.ids[lay.edges].tolist()} == {(0, 1), (0, 2), (1, 4), (2, 6)}
    assert lay.fate[lay.row_of[4]] == FATE_CODES[Fate.CHOSEN]
    assert lay.row_of[3] == -1


def test_dead_branches_fold_into_their_nearest_drawn_ancestor():
    """Beam 2 with a hypothesis the beam kept at step 1 and dropped at step 2."""
    n = list(small_tree().nodes[:4])  # root; a kept, b kept, c pruned
    n.append(_node(4, 1, 1, 8, -0.1, -0.5, 0, Fate.KEPT))  # a → x kept
    n.append(_node(5, 2, 1, 9, -0.2, -1.0, 1, Fate.KEPT))  # b → y kept, then dropped
    n.append(_node(6, 4, 2, 3, -0.1, -0.6, 0, Fate.CHOSEN))  # a x </s>
    n.append(_node(7, 4, 2, 11, -0.3, -0.8, 1, Fate.FINISHED))  # a x w (at the limit)
    n.append(_node(8, 5, 2, 12, -0.9, -1.9, 2, Fate.PRUNED))  # b y v: outside the beam
    n.append(_node(9, 2, 1, 10, -3.0, -4.0, 3, Fate.PRUNED))
    tree = BeamTree("src", (4, 3), ("a", "</s>"), tuple(n), (6, 7), np.zeros((2, 2)))
    lay = layout_tree(tree)
    assert lay.ids.tolist() == [0, 1, 4, 6, 7]
    folded = dict(zip(lay.ids.tolist(), lay.folded.tolist()))
    # the root holds b and all it grew (b, y, v, and b's pruned child) plus c
    assert folded == {0: 5, 1: 0, 4: 0, 6: 0, 7: 0}
    assert lay.folded.sum() == len(tree) - len(lay)
    every_kept = layout_tree(tree, show_dead=True)
    assert every_kept.ids.tolist() == [0, 1, 2, 4, 5, 6, 7]
    assert dict(zip(every_kept.ids.tolist(), every_kept.folded.tolist()))[5] == 1
    assert len(layout_tree(tree, show_pruned=True)) == len(tree)


def test_show_pruned_lays_out_every_node_best_rank_first():
    tree = small_tree()
    lay = layout_tree(tree, show_pruned=True)
    assert len(lay) == len(tree)
    assert lay.hidden_pruned.sum() == 0
    # leaves in depth-first order by rank: 4, 5 (under 1), 6, 7 (under 2), 3
    y = {int(i): float(v) for i, v in zip(lay.ids, lay.y)}
    assert [y[4], y[5], y[6], y[7], y[3]] == [0, 1, 2, 3, 4]
    assert y[1] == 0.5 and y[2] == 2.5
    xs, ys = lay.segments()
    assert len(xs) == 2 * (len(tree) - 1)
    logp = dict(zip(lay.ids[lay.edges[:, 1]].tolist(), lay.edge_logprob.tolist()))
    assert logp[7] == -3.0


def test_always_show_reveals_a_pruned_node():
    lay = layout_tree(small_tree(), always_show=(5,))
    assert lay.row_of[5] >= 0 and lay.row_of[3] == -1
    assert lay.hidden_pruned[lay.row_of[1]] == 0


def test_greedy_overlay_follows_tree_then_leaves_it():
    tree = small_tree()
    # greedy: 5 (node 1), 8 (pruned node 5), then 11 which the search never considered
    g = greedy_trace([5, 8, 11, 3], [-0.5, -2.5, -0.1, -0.1])
    lay = layout_tree(tree, always_show=(5,))
    ov = greedy_overlay(tree, g, lay)
    assert ov.node_ids.tolist() == [1, 5, -1, -1]
    assert ov.leaves_tree == 2
    assert ov.y[1] == lay.y[lay.row_of[1]] and ov.y[2] == lay.y[lay.row_of[5]]
    assert ov.y[3] == ov.y[4] == lay.y.max() + 1
    assert ov.x.tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(ov.scores, [-0.5, -3.0, -3.1, -3.2])


def test_greedy_inside_the_tree_never_leaves():
    tree = small_tree()
    ov = greedy_overlay(tree, greedy_trace([5, 3], [-0.5, -0.2]), layout_tree(tree))
    assert ov.leaves_tree is None
    assert ov.node_ids.tolist() == [1, 4]


def test_bad_parent_is_reported():
    t = small_tree()
    bad = list(t.nodes)
    bad[2] = BeamNode(2, 9, 0, 6, "t6", -1.0, -1.0, -1.0, 1, Fate.KEPT, None)
    with pytest.raises(TreeLayoutError, match="node 2: parent 9"):
        layout_tree(BeamTree("s", (3,), ("</s>",), tuple(bad), (), np.zeros((1, 2))))


@pytest.mark.parametrize("beam", [1, 5, 16])
def test_synthetic_tree_has_beam_kept_per_step(beam):
    tree = synthetic_beam_tree(beam=beam, steps=12, seed=1)
    steps = np.array([n.step for n in tree.nodes[1:]])
    assert steps.max() == 11
    for t in range(11):
        kept = [n for n in tree.nodes[1:] if n.step == t and n.fate == Fate.KEPT]
        assert len(kept) == beam
    assert tree.chosen is not None and tree.chosen.step == 11
    # the chosen hypothesis is the best-scoring finished one
    assert tree.chosen.score == max(tree.nodes[i].score for i in tree.finished)
    # scores are cumulative along every path
    for n in tree.nodes[1:]:
        assert n.score == pytest.approx(tree.nodes[n.parent].score + n.logprob)
    lay = layout_tree(tree, show_dead=True)
    assert len(lay) == 1 + sum(1 for n in tree.nodes[1:] if n.fate != Fate.PRUNED)
    # no two visible nodes share a position
    assert len({(float(a), float(b)) for a, b in zip(lay.x, lay.y)}) == len(lay)
