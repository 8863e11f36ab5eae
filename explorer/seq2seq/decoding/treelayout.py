"""Where to draw each node of a :class:`BeamTree`: headless (numpy only), so it is easy to test.

The tree is laid out left to right by target step (the root, the start symbol, at x = 0 and the
token at step t at x = t + 1). Leaves get consecutive rows, best-ranked child first; an inner node
sits midway between its first and last child, as in a classic tidy tree. Pruned candidates are
leaves (they were never extended), so hiding them ("collapsing") never orphans a node; each visible
node then counts how many pruned children it hides.

By default only the paths that lead to a finished hypothesis are drawn (with the greedy path and
any node asked for): a hypothesis the beam kept for a while and then dropped is folded, with all
it grew, into its nearest drawn ancestor, which counts the nodes it holds (``folded``: the "+n"
on the node). ``show_dead`` draws every kept node, ``show_pruned`` also the pruned candidates.

The greedy decode is matched against the tree token by token from the root. Where greedy picks a
token the search never considered from that prefix, the rest of the greedy decode is laid out as its
own chain of nodes one row below the tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from explorer.seq2seq.decoding.trace import BeamTree, Fate, Trace

FATE_CODES: dict[Fate, int] = {Fate.KEPT: 0, Fate.PRUNED: 1, Fate.FINISHED: 2, Fate.CHOSEN: 3}
ROOT_CODE = 4  # the start symbol


class TreeLayoutError(ValueError):
    """A BeamTree whose nodes do not form a tree (bad parent id or ordering)."""


@dataclass(frozen=True, eq=False)
class TreeLayout:
    """Positions of the visible nodes. Row i of every array describes node ``ids[i]``."""

    ids: np.ndarray  # (n,) node ids, root first
    x: np.ndarray  # (n,) step + 1
    y: np.ndarray  # (n,) row, 0 at the top
    fate: np.ndarray  # (n,) FATE_CODES value, ROOT_CODE for the root
    hidden_pruned: np.ndarray  # (n,) pruned children not drawn under this node
    folded: np.ndarray  # (n,) nodes not drawn whose nearest drawn ancestor is this node
    edges: np.ndarray  # (m, 2) row indices (parent row, child row)
    edge_logprob: np.ndarray  # (m,) log p of the child's token
    row_of: np.ndarray  # (len(tree),) row of each node id, -1 where hidden
    show_pruned: bool = False

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def segments(self, edge_rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """x and y of edge endpoints, interleaved (a, b, a, b, ...) for a connect='pairs' line."""
        e = self.edges if edge_rows is None else self.edges[edge_rows]
        xs = np.empty(2 * len(e))
        ys = np.empty(2 * len(e))
        xs[0::2], xs[1::2] = self.x[e[:, 0]], self.x[e[:, 1]]
        ys[0::2], ys[1::2] = self.y[e[:, 0]], self.y[e[:, 1]]
        return xs, ys


@dataclass(frozen=True, eq=False)
class GreedyOverlay:
    """The greedy decode drawn over the tree: one point per emitted token, after the root."""

    x: np.ndarray  # (T + 1,) root included
    y: np.ndarray  # (T + 1,)
    node_ids: np.ndarray  # (T,) matching tree node id, -1 where greedy left the tree
    scores: np.ndarray  # (T,) cumulative greedy log-probability
    leaves_tree: int | None = None  # first step whose greedy token is not in the tree
    pieces: tuple[str, ...] = field(default_factory=tuple)

    @property
    def off_tree(self) -> np.ndarray:
        """(T,) True where the greedy token has no node in the tree."""
        return self.node_ids < 0


def _children(tree: BeamTree) -> list[list[int]]:
    kids: list[list[int]] = [[] for _ in tree.nodes]
    for n in tree.nodes[1:]:
        if not (0 <= n.parent < len(tree.nodes)) or n.parent >= n.id:
            raise TreeLayoutError(
                f"BeamTree node {n.id}: parent {n.parent} is not an earlier node id"
            )
        kids[n.parent].append(n.id)
    return kids


def _check_ids(tree: BeamTree) -> None:
    if not tree.nodes:
        raise TreeLayoutError("BeamTree has no nodes (not even the root)")
    for i, n in enumerate(tree.nodes):
        if n.id != i:
            raise TreeLayoutError(f"BeamTree node at index {i} has id {n.id}; ids must be 0..N-1")


def greedy_node_ids(tree: BeamTree, tokens: list[int]) -> np.ndarray:
    """For each greedy token, the tree node reached by following the same tokens from the root."""
    kids = _children(tree)
    out = np.full(len(tokens), -1, dtype=np.int64)
    cur = 0
    for t, tok in enumerate(tokens):
        nxt = next((c for c in kids[cur] if tree.nodes[c].token == tok), -1)
        if nxt < 0:
            break
        out[t] = cur = nxt
    return out


def _visible(
    tree: BeamTree,
    fate_all: np.ndarray,
    show_pruned: bool,
    show_dead: bool,
    always_show: tuple[int, ...],
) -> np.ndarray:
    """(N,) which nodes are drawn: the paths to finished hypotheses (every kept node with
    ``show_dead``, every node with ``show_pruned``), plus those asked for, with their ancestors."""
    pruned = fate_all == FATE_CODES[Fate.PRUNED]
    if show_pruned:
        visible = np.ones(len(tree.nodes), dtype=bool)
    elif show_dead:
        visible = ~pruned
    else:
        ends = (fate_all == FATE_CODES[Fate.FINISHED]) | (fate_all == FATE_CODES[Fate.CHOSEN])
        visible = ends.copy()
        visible[0] = True
    visible[list(always_show)] = True
    # Every drawn node brings its ancestors (a pruned node that was extended anyway, in a
    # malformed tree, stays visible with its subtree). Parents have smaller ids than children.
    for nid in range(len(tree.nodes) - 1, 0, -1):
        if visible[nid]:
            visible[tree.nodes[nid].parent] = True
    return visible


def _folded(parents: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(N,) for each drawn node, how many hidden nodes have it as nearest drawn ancestor."""
    anchor = np.arange(len(parents))
    for nid in range(1, len(parents)):
        if not visible[nid]:
            anchor[nid] = anchor[parents[nid]]
    out = np.zeros(len(parents), dtype=np.int64)
    np.add.at(out, anchor[~visible], 1)
    return out


def _rows(tree: BeamTree, kids: list[list[int]], visible: np.ndarray) -> np.ndarray:
    """(N,) the row of every visible node: leaves in depth-first order, best-ranked child first;
    an inner node midway between its first and last visible child."""
    n_all = len(tree.nodes)
    vis_kids = [
        sorted((c for c in kids[i] if visible[c]), key=lambda c: (tree.nodes[c].rank, c))
        if visible[i]
        else []
        for i in range(n_all)
    ]
    y_all = np.zeros(n_all)
    leaf_row = 0
    stack = [0]
    while stack:
        i = stack.pop()
        if vis_kids[i]:
            stack.extend(reversed(vis_kids[i]))
        else:
            y_all[i] = leaf_row
            leaf_row += 1
    # Children have larger ids than parents, so going backwards places children first.
    for i in range(n_all - 1, -1, -1):
        if vis_kids[i]:
            y_all[i] = 0.5 * (y_all[vis_kids[i][0]] + y_all[vis_kids[i][-1]])
    return y_all


def layout_tree(
    tree: BeamTree,
    *,
    show_pruned: bool = False,
    show_dead: bool = False,
    always_show: tuple[int, ...] = (),
) -> TreeLayout:
    """Lay out ``tree``: the paths to finished hypotheses and ``always_show`` (with their
    ancestors); every kept node with ``show_dead``, every node with ``show_pruned``."""
    _check_ids(tree)
    kids = _children(tree)
    n_all = len(tree.nodes)
    fate_all = np.array([ROOT_CODE] + [FATE_CODES[n.fate] for n in tree.nodes[1:]])
    visible = _visible(tree, fate_all, show_pruned, show_dead, always_show)
    y_all = _rows(tree, kids, visible)
    ids = np.flatnonzero(visible)
    row_of = np.full(n_all, -1, dtype=np.int64)
    row_of[ids] = np.arange(len(ids))
    steps = np.array([n.step for n in tree.nodes], dtype=np.float64)
    parents = np.array([n.parent for n in tree.nodes], dtype=np.int64)
    logp = np.array([n.logprob for n in tree.nodes], dtype=np.float64)
    child_ids = ids[1:] if len(ids) and ids[0] == 0 else ids
    edges = np.stack([row_of[parents[child_ids]], row_of[child_ids]], axis=1).reshape(-1, 2)
    pruned = fate_all == FATE_CODES[Fate.PRUNED]
    hidden = np.zeros(n_all, dtype=np.int64)
    hidden_mask = pruned & ~visible
    np.add.at(hidden, parents[hidden_mask], 1)
    return TreeLayout(
        ids=ids,
        x=steps[ids] + 1.0,
        y=y_all[ids],
        fate=fate_all[ids],
        hidden_pruned=hidden[ids],
        folded=_folded(parents, visible)[ids],
        edges=edges,
        edge_logprob=logp[child_ids],
        row_of=row_of,
        show_pruned=show_pruned,
    )


def greedy_overlay(tree: BeamTree, greedy: Trace, layout: TreeLayout) -> GreedyOverlay:
    """Positions of the greedy decode: on tree nodes while it matches, then its own chain below.

    Nodes of the greedy path must be visible in ``layout`` (pass them as ``always_show``).
    """
    tokens = greedy.tokens
    node_ids = greedy_node_ids(tree, tokens)
    xs = np.arange(len(tokens) + 1, dtype=np.float64)
    ys = np.zeros(len(tokens) + 1)
    ys[0] = layout.y[layout.row_of[0]]
    below = float(layout.y.max()) + 1.0 if len(layout) else 0.0
    leaves: int | None = None
    for t, nid in enumerate(node_ids):
        if nid >= 0 and layout.row_of[nid] >= 0:
            ys[t + 1] = layout.y[layout.row_of[nid]]
        else:
            if leaves is None and nid < 0:
                leaves = t
            ys[t + 1] = below
    return GreedyOverlay(
        x=xs,
        y=ys,
        node_ids=node_ids,
        scores=np.cumsum(greedy.token_logprobs),
        leaves_tree=leaves,
        pieces=tuple(greedy.pieces),
    )
