"""The beam panel driven with hand-built BeamTrees whose numbers are known."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("pytestqt")
import PySide6  # noqa: E402, F401  (before pyqtgraph)
from PySide6.QtWidgets import QApplication  # noqa: E402

from explorer.gui.beam.formula import score_breakdown  # noqa: E402
from explorer.gui.beam.panel import LEGEND, BeamPanel  # noqa: E402
from explorer.gui.beam.readouts import bleu_details  # noqa: E402
from explorer.gui.beam.sweep import read_pairs_tsv, run_sweep  # noqa: E402
from explorer.gui.session import Session
from explorer.gui.state import LoadedModel  # noqa: E402
from explorer.seq2seq.decoding.beam import BeamResult, Hypothesis  # noqa: E402
from explorer.seq2seq.decoding.search import ExactResult  # noqa: E402
from explorer.seq2seq.decoding.trace import BeamNode, BeamTree, DecodeStep, Fate, Trace  # noqa: E402
from explorer.seq2seq.decoding.treelayout import FATE_CODES  # noqa: E402

VOCAB = ["<pad>", "<unk>", "<s>", "</s>", "the", "a", "black", "cat", "sleeps", "dog"]
ID = {w: i for i, w in enumerate(VOCAB)}
SRC = ("le", "chat", "noir", "dort", "</s>")
ALPHA = 0.6

# (prefix, word, log p, fate); ranks follow from the cumulative scores within each step.
# Beam 3. Greedy picks "the cat black sleeps </s>"; beam search finds "the black cat sleeps </s>".
CANDIDATES = [
    ((), "the", -0.3, Fate.KEPT),
    ((), "a", -1.6, Fate.KEPT),
    ((), "black", -2.5, Fate.KEPT),
    ((), "cat", -3.5, Fate.PRUNED),
    (("the",), "cat", -0.9, Fate.KEPT),
    (("the",), "black", -1.0, Fate.KEPT),
    (("a",), "black", -0.8, Fate.KEPT),
    (("black",), "cat", -0.5, Fate.PRUNED),
    (("the", "cat"), "black", -1.8, Fate.KEPT),
    (("the", "cat"), "sleeps", -2.2, Fate.PRUNED),
    (("the", "black"), "cat", -0.2, Fate.KEPT),
    (("the", "black"), "dog", -2.9, Fate.PRUNED),
    (("a", "black"), "cat", -0.3, Fate.KEPT),
    (("the", "black", "cat"), "sleeps", -0.3, Fate.KEPT),
    (("the", "black", "cat"), "</s>", -1.9, Fate.FINISHED),
    (("a", "black", "cat"), "sleeps", -0.4, Fate.KEPT),
    (("the", "cat", "black"), "sleeps", -0.9, Fate.PRUNED),
    (("the", "black", "cat", "sleeps"), "</s>", -0.1, Fate.CHOSEN),
    (("a", "black", "cat", "sleeps"), "</s>", -0.1, Fate.FINISHED),
]
GREEDY = [("the", -0.3), ("cat", -0.9), ("black", -1.8), ("sleeps", -0.9), ("</s>", -0.2)]


def gnmt(S: float, L: int) -> float:
    return S / ((5 + L) / 6) ** ALPHA


def record(prefix: tuple[str, ...]) -> DecodeStep:
    """The decoder's output after ``prefix``: log-probs of its candidates, attention on word t."""
    logprobs = np.full(len(VOCAB), -8.0)
    for p, w, lp, _ in CANDIDATES:
        if p == prefix:
            logprobs[ID[w]] = lp
    for i, (w, lp) in enumerate(GREEDY):
        if tuple(x for x, _ in GREEDY[:i]) == prefix:
            logprobs[ID[w]] = max(logprobs[ID[w]], lp)
    t = len(prefix)
    a = np.full(len(SRC), 0.05)
    a[min(t, len(SRC) - 1)] += 1.0 - 0.05 * len(SRC) - 0.01 * len(prefix[-1:])
    a[0] += 1.0 - a.sum()
    att = a[None, None, :]  # (L=1, H=1, S)
    return DecodeStep(
        t, -1, "", logprobs, np.log(att), att, None, np.zeros((1, 3)), np.zeros((1, 3))
    )


def build_tree(penalty: str = "gnmt", source: str = "le chat noir dort") -> BeamTree:
    nodes = [BeamNode(0, -1, -1, ID["<s>"], "<s>", 0.0, 0.0, 0.0, 0, Fate.KEPT, None)]
    by_prefix = {(): 0}
    for t in range(5):
        step = [c for c in CANDIDATES if len(c[0]) == t]
        scored = sorted(
            ((nodes[by_prefix[p]].score + lp, p, w, lp, f) for p, w, lp, f in step),
            key=lambda c: -c[0],
        )
        for rank, (S, p, w, lp, fate) in enumerate(scored):
            nid = len(nodes)
            ns = gnmt(S, t + 1) if penalty == "gnmt" else S
            rec = record(p)
            nodes.append(BeamNode(nid, by_prefix[p], t, ID[w], w, lp, S, ns, rank, fate, rec))
            by_prefix[p + (w,)] = nid
    finished = sorted(
        (n.id for n in nodes if n.fate in (Fate.FINISHED, Fate.CHOSEN)),
        key=lambda i: -nodes[i].normalized_score,
    )
    return BeamTree(
        source=source,
        src_tokens=tuple(range(4, 9)),
        src_pieces=SRC,
        nodes=tuple(nodes),
        finished=tuple(finished),
        encoder_states=np.zeros((5, 3)),
        settings={
            "beam": 3,
            "length_penalty": penalty,
            "alpha": ALPHA if penalty == "gnmt" else 0.0,
        },
        stop_reason="bound",
    )


def greedy_trace(words=GREEDY) -> Trace:
    steps = []
    for t, (w, _lp) in enumerate(words):
        r = record(tuple(x for x, _ in words[:t]))
        steps.append(
            DecodeStep(
                t, ID[w], w, r.logprobs, r.scores, r.cross_attention, None, r.hidden, r.context
            )
        )
    return Trace("le chat noir dort", tuple(range(4, 9)), SRC, tuple(steps), np.zeros((5, 3)))


def result(tree=None, greedy=None, divergence=1, source: str = "le chat noir dort"):
    """A BeamResult of the toy tree (as the search returns it for ``source``)."""
    tree = tree or build_tree(source=source)
    greedy = greedy or greedy_trace()
    nbest = []
    for i in tree.finished[:2]:
        path = tree.path(i)
        nbest.append(
            SimpleNamespace(
                tokens=[p.token for p in path],
                pieces=[p.piece for p in path],
                text=" ".join(p.piece for p in path[:-1]),
                token_logprobs=[p.logprob for p in path],
                score=tree.nodes[i].score,
                normalized_score=tree.nodes[i].normalized_score,
            )
        )
    return BeamResult(nbest, tree, greedy, divergence, "bound")


@pytest.fixture
def panel(qtbot):
    state = Session()
    p = BeamPanel(state)
    qtbot.addWidget(p)
    p.resize(1400, 900)
    yield p
    p.wait_idle(qtbot)


def test_no_model_shows_a_hint(panel):
    assert panel.pages.currentIndex() == 0
    assert "Load a model" in panel.hint.text()


def test_node_count_and_fates_equal_the_tree(panel):
    r = result()
    panel.show_result(r)
    view = panel.tree_view
    tree = r.tree
    # pruned collapsed by default, except the pruned node the greedy path runs through
    pruned_on_greedy = [
        n.id
        for n in tree.nodes
        if n.fate == Fate.PRUNED
        and [p.piece for p in tree.path(n.id)] == ["the", "cat", "black", "sleeps"]
    ]
    assert len(pruned_on_greedy) == 1
    greedy_path = {n.id for n in tree.path(pruned_on_greedy[0])}
    finished_paths = {p.id for i in tree.finished for p in tree.path(i)}
    # by default, only the paths to finished hypotheses (and greedy's): the rest is folded
    expected = {0} | finished_paths | greedy_path
    assert set(view.layout.ids.tolist()) == expected
    assert view.nodes.data.shape[0] == len(expected)
    assert view.layout.folded.sum() == len(tree) - len(expected)
    panel.show_dead.setChecked(True)
    kept = {n.id for n in tree.nodes if n.fate != Fate.PRUNED}
    assert set(view.layout.ids.tolist()) == kept | greedy_path
    panel.show_pruned.setChecked(True)
    assert len(view.layout) == len(tree)
    assert view.nodes.data.shape[0] == len(tree)
    for nid, code in zip(view.layout.ids, view.layout.fate):
        if nid:
            assert code == FATE_CODES[tree.nodes[nid].fate]
    counts = tree.fates()
    assert counts == {"kept": 11, "pruned": 5, "finished": 2, "chosen": 1}
    assert f"{counts['pruned']} pruned" in panel.summary.text()


def test_greedy_overlay_follows_the_greedy_trace(panel):
    r = result()
    panel.show_result(r)
    ov = panel.tree_view.overlay
    tree = r.tree
    # greedy runs through tree nodes for its first four tokens, then leaves the tree
    assert [tree.nodes[i].piece for i in ov.node_ids[:4]] == ["the", "cat", "black", "sleeps"]
    assert ov.leaves_tree == 4
    assert ov.node_ids[4] == -1
    x, y = panel.tree_view.greedy_line.getData()
    for t, nid in enumerate(ov.node_ids[:4]):
        assert (x[t + 1], y[t + 1]) == panel.tree_view.node_position(int(nid))
    # the off-tree </s> is its own node in the greedy scatter
    gx, gy = panel.tree_view.greedy_nodes.getData()
    assert gx.tolist() == [panel.tree_view.column_x[5]]
    np.testing.assert_allclose(ov.scores, np.cumsum([lp for _, lp in GREEDY]))


def test_divergence_marker_with_both_scores(panel):
    panel.show_result(result(divergence=1))
    v = panel.tree_view
    assert v.divergence_line.isVisible()
    assert v.divergence_line.value() == v.column_x[2]  # step index 1: the column of step 2
    text = v.divergence_text.text()
    assert "step 2" in text
    assert "greedy S = −1.20" in text  # the + cat
    assert "beam S = −1.30" in text  # the + black


def test_the_divergence_note_sits_above_the_tree_not_on_it(panel):
    panel.show_result(result(divergence=3))
    v = panel.tree_view
    note = v.divergence_text
    assert note.text().startswith("step 4: greedy leaves the beam")
    assert note.parent() is not v and note.parent() is v.parent()
    panel.show_result(result(greedy=greedy_trace(GREEDY), divergence=None))
    assert note.text() == ""


def test_no_divergence_marker_when_greedy_agrees(panel):
    agree = [("the", -0.3), ("black", -1.0), ("cat", -0.2), ("sleeps", -0.3), ("</s>", -0.1)]
    panel.show_result(result(greedy=greedy_trace(agree), divergence=None))
    v = panel.tree_view
    assert not v.divergence_line.isVisible()
    assert v.overlay.leaves_tree is None
    assert "agree" in panel.summary.text()


def test_formula_readout_equals_recomputed_score(panel):
    r = result()
    panel.show_result(r)
    chosen = r.tree.chosen
    assert panel.details.node_id == chosen.id  # the chosen hypothesis is selected at first
    S = -0.3 - 1.0 - 0.2 - 0.3 - 0.1
    lp = ((5 + 5) / 6) ** 0.6
    assert panel.details.recomputed == pytest.approx(S / lp)
    assert panel.details.recomputed == pytest.approx(chosen.normalized_score)
    text = panel.details.formula.text()
    assert "((5+5)/6)^0.6 = 1.359" in text
    assert f"S/lp = {S / lp:.3f}".replace("-", "−") in text
    assert "✓" in text


def test_formula_flags_a_score_that_does_not_match(panel):
    r = result(tree=build_tree(penalty="none"))
    tree = r.tree
    wrong = BeamTree(**{**tree.__dict__, "settings": {"length_penalty": "gnmt", "alpha": 0.6}})
    panel.show_result(result(tree=wrong))
    assert "≠" in panel.details.formula.text()


def test_coverage_penalty_formula():
    A = np.array([[0.7, 0.3, 0.0], [0.6, 0.2, 0.2]])  # column sums 1.3, 0.5, 0.2
    b = score_breakdown([-1.0, -2.0], "avg", 1.0, 0.5, A)
    cp = 0.5 * (math.log(1.0) + math.log(0.5) + math.log(0.2))
    assert b.cp == pytest.approx(cp)
    assert b.score == pytest.approx(-3.0 / 2 + cp)
    assert "L^α = 2^1 = 2.000" in b.text


def test_selecting_a_node_shows_that_paths_attention(panel, qtbot):
    r = result()
    panel.show_result(r)
    tree = r.tree
    node = next(n for n in tree.nodes if [p.piece for p in tree.path(n.id)] == ["a", "black"])
    panel.select_node(node.id)
    shown = panel.details.attention.matrix
    np.testing.assert_array_equal(shown, tree.trace(node.id).attention_matrix())
    assert shown.shape == (2, len(SRC))
    assert panel.details.attention.image.image.shape == (2, len(SRC))
    # the selection highlight runs root → a → black
    x, y = panel.tree_view.selected_edges.getData()
    cx = panel.tree_view.column_x
    assert x.tolist() == [cx[0], cx[1], cx[1], cx[2]]
    # clicking the node in the scatter selects it too
    pt = next(p for p in panel.tree_view.nodes.points() if p.data() == tree.chosen.id)
    panel.tree_view._on_click(panel.tree_view.nodes, [pt])
    assert panel.details.node_id == tree.chosen.id


def test_open_in_step_emits_the_selected_trace(panel, qtbot):
    state = panel.state
    entry = LoadedModel("toy", model=None, tokenizer=None)
    panel.search_fn = lambda e, s, params: result(source=s)
    state.add(entry)
    panel.show_result(result())
    with qtbot.waitSignal(state.open_in_step) as sig:
        panel.details.step_button.click()
    got_entry, trace = sig.args
    assert got_entry is entry
    assert trace.pieces == ["the", "black", "cat", "sleeps", "</s>"]


def test_changing_a_control_reruns_the_search_in_a_worker(panel, qtbot):
    calls = []

    def search(entry, sentence, params):
        calls.append((sentence, params))
        return result(source=sentence)

    panel.search_fn = search
    panel.state.add(LoadedModel("toy", model=None, tokenizer=None))
    assert panel.pages.currentIndex() == 1
    with qtbot.waitSignal(panel.result_shown, timeout=5000):
        panel.set_sentence("le chat noir dort")
    panel.wait_idle(qtbot)
    with qtbot.waitSignal(panel.result_shown, timeout=5000):
        panel.beam.setValue(7)
    panel.wait_idle(qtbot)
    assert calls[-1][0] == "le chat noir dort"
    assert calls[-1][1]["beam"] == 7
    panel.penalty.setCurrentText("gnmt")
    assert panel.alpha.value() == pytest.approx(0.6)
    panel.wait_idle(qtbot)
    assert calls[-1][1]["length_penalty"] == "gnmt"
    panel.state.set_current(None)
    assert panel.pages.currentIndex() == 0


def test_worker_error_goes_to_state_error(panel, qtbot):
    def broken(entry, sentence, params):
        raise RuntimeError("model exploded")

    panel.search_fn = broken
    panel.state.add(LoadedModel("toy", model=None, tokenizer=None))
    with qtbot.waitSignal(panel.state.error, timeout=5000) as sig:
        panel.set_sentence("le chat")
    assert "model exploded" in sig.args[0]
    panel.wait_idle(qtbot)


def test_nbest_table_and_bleu(panel):
    panel.show_result(result())
    t = panel.nbest_table
    assert [r[0] for r in t.rows] == ["beam #1", "beam #2", "greedy"]
    assert t.rows[0][1] == "the black cat sleeps"
    assert t.rows[2][1] == "the cat black sleeps"
    assert t.rows[2][2] == pytest.approx(-4.1)
    t.reference.setText("the black cat sleeps")
    assert t.bleu[0].bleu == pytest.approx(100.0)
    assert t.table.item(0, 5).text() == "100.0"
    assert t.bleu[2].counts == (4, 0, 0, 0)  # same words, no bigram in common
    assert "p1 = 4/4" in t.bleu_text.text()


def test_bleu_details_spell_out_brevity_penalty():
    d = bleu_details("the cat sat", "the cat sat on the mat")
    assert d.counts == (3, 2, 1, 0) and d.totals == (3, 2, 1, 0)
    assert d.bp == pytest.approx(math.exp(1 - 6 / 3))
    assert d.bleu == pytest.approx(100 * math.exp(1 - 2), rel=1e-4)
    assert "exp(1 − 6/3)" in d.text()


def hypothesis(text: str, logprobs: list[float], formula: str = "S") -> Hypothesis:
    words = text.split() + ["</s>"]
    return Hypothesis(
        tokens=tuple(ID[w] for w in words),
        pieces=tuple(words),
        text=text,
        token_logprobs=np.array(logprobs),
        score=sum(logprobs),
        normalized_score=sum(logprobs),
        formula=formula,
        attention=None,
    )


def test_exact_search_readout(panel):
    beam_best = hypothesis("the black cat sleeps", [-0.3, -1.0, -0.2, -0.3, -0.1])
    r = BeamResult([beam_best], build_tree(), greedy_trace(), 1, "bound")
    panel.show_result(r)
    panel.show_exact(ExactResult([beam_best], 12, -6.0, "S"))
    text = panel.exact_text.text()
    assert "no search error" in text and "12 prefixes" in text
    assert "S = −6.000" in text  # the empty translation
    better = hypothesis("the cat", [-0.5, -0.5, -0.1])
    panel.show_exact(ExactResult([better], 30, -6.0, "S"))
    text = panel.exact_text.text()
    assert "a search error" in text and "missed" in text and "S = −1.100" in text


def test_export_data_and_figure(panel, tmp_path):
    r = result()
    panel.show_result(r)
    data = json.loads(panel.export_data(tmp_path / "tree.json").read_text())
    assert len(data["nodes"]) == len(r.tree)
    assert data["nodes"][5]["fate"] == r.tree.nodes[5].fate.value
    assert data["nodes"][5]["normalized_score"] == pytest.approx(r.tree.nodes[5].normalized_score)
    assert data["divergence"] == 1
    assert panel.export_figure(tmp_path / "tree.png").stat().st_size > 1000
    assert panel.export_figure(tmp_path / "tree.svg").read_text().startswith("<?xml")
    with pytest.raises(ValueError, match="png or .svg"):
        panel.export_figure(tmp_path / "tree.bmp")


def test_sweep_reports_bleu_and_length_per_beam(qtbot, tmp_path):
    pairs = [("a b", "x y z v u"), ("c", "w o r d s s")]
    outs = {1: ["x y z v u", "w o r d s s"], 2: ["x y z v", "w o r d s"]}
    points = list(run_sweep(lambda src, k: outs[k], pairs, beams=(1, 2)))
    assert points[0] == (1, pytest.approx(100.0), 5.5)
    # the shorter outputs keep every n-gram precision at 1: BLEU is the brevity penalty alone
    assert points[1] == (2, pytest.approx(100 * math.exp(1 - 11 / 9)), 4.5)

    tsv = tmp_path / "test.tsv"
    tsv.write_text("a b\tx y z v u\nc\tw o r d s s\n", "utf-8")
    assert read_pairs_tsv(tsv) == pairs
    (tmp_path / "bad.tsv").write_text("a b\tx\nlonely\n", "utf-8")
    with pytest.raises(ValueError, match="bad.tsv:2"):
        read_pairs_tsv(tmp_path / "bad.tsv")

    state = Session()
    panel = BeamPanel(state)
    qtbot.addWidget(panel)
    state.add(LoadedModel("toy", model=None, tokenizer=None))
    state.sweep_fn = lambda e, src, params: outs[1] if params["beam"] == 1 else outs[2]
    w = panel.sweep
    w.tsv = tsv
    w.start()
    assert state.runner.wait_idle(10_000)
    assert [p[0] for p in w.points] == [1, 2, 4, 8, 16]
    assert w.points[0][2] == 5.5 and w.points[-1][2] == 4.5
    assert w.record.origin.model == "toy" and "test.tsv" in w.record.origin.text
    assert w.status.text().startswith("toy on ")  # the sweep names its model and test set
    x, y = w.bleu_curve.getData()
    assert len(x) == 5


def test_an_emptied_sentence_clears_the_tree_and_a_late_result_is_dropped(panel, qtbot):
    panel.search_fn = lambda entry, sentence, params: result(source=sentence)
    panel.state.add(LoadedModel("toy", model=None, tokenizer=None))
    assert panel.tree_view.empty_text.isVisible()  # nothing typed yet: what to do, no axis
    assert not panel.tree_view.getPlotItem().getAxis("bottom").isVisible()
    with qtbot.waitSignal(panel.result_shown, timeout=5000):
        panel.set_sentence("le chat noir dort")
    panel.wait_idle(qtbot)
    assert panel.tree_view.tree is not None and not panel.tree_view.empty_text.isVisible()
    assert panel.nbest_table.rows

    def slow(entry, sentence, params):
        import time

        time.sleep(0.3)
        return result(source=sentence)

    panel.search_fn = slow
    panel.set_sentence("le chat")
    qtbot.waitUntil(
        lambda: panel.state.runner.running("beam") > 0, timeout=5000
    )  # that search is running
    panel.set_sentence("")
    panel.wait_idle(qtbot)
    qtbot.wait(50)
    assert panel.tree_view.tree is None and panel.result is None
    assert panel.tree_view.empty_text.isVisible()
    assert panel.nbest_table.rows == [] and panel.summary.text() == ""


def test_a_classroom_model_opens_on_the_lectures_example(panel, qtbot):
    from explorer.seq2seq.data.classroom import EXAMPLES

    seen = []
    panel.search_fn = lambda entry, sentence, params: (
        seen.append(sentence) or result(source=sentence)
    )
    entry = LoadedModel("toy", model=None, tokenizer=None, corpus={"name": "classroom"})
    with qtbot.waitSignal(panel.result_shown, timeout=5000):
        panel.state.add(entry)
    panel.wait_idle(qtbot)
    assert panel.sentence.text() == EXAMPLES[0][0] and seen == [EXAMPLES[0][0]]
    assert panel.nbest_table.reference.text() == EXAMPLES[0][1]  # BLEU against the lecture's
    src, ref = EXAMPLES[3]
    with qtbot.waitSignal(panel.result_shown, timeout=5000):
        panel.examples.activated.emit(4)  # the picker's first entry is its prompt
    panel.wait_idle(qtbot)
    assert seen[-1] == src and panel.nbest_table.reference.text() == ref


def test_greedy_and_paths_are_written_by_the_models_tokenizer(panel, qtbot):
    """Display pieces carry no word boundary ("s", "'", "est"): joining them with spaces wrote
    "s ' est" where the n-best rows said "s'est", and scored greedy lower against a reference."""
    written = []

    def decode_tgt(ids):
        written.append(list(ids))
        return "TEXT:" + ",".join(map(str, ids))

    tokenizer = SimpleNamespace(decode_tgt=decode_tgt)
    panel.search_fn = lambda entry, sentence, params: result(source=sentence)
    panel.state.add(LoadedModel("toy", model=None, tokenizer=tokenizer))
    with qtbot.waitSignal(panel.result_shown, timeout=5000):
        panel.set_sentence("le chat noir dort")
    panel.wait_idle(qtbot)
    greedy = panel.tree_view.greedy
    expected = "TEXT:" + ",".join(map(str, greedy.tokens))
    assert ("greedy", expected) in [(kind, text) for kind, text, *_ in panel.nbest_table.rows]
    panel._select_greedy()
    assert expected in panel.details.title.text()
    tree = panel.tree_view.tree
    chosen = tree.chosen.id
    panel.select_node(chosen)
    path_ids = [p.token for p in tree.path(chosen)]
    assert "TEXT:" + ",".join(map(str, path_ids)) in panel.details.title.text()


def test_a_reference_from_an_example_goes_when_the_sentence_changes(panel, qtbot):
    from explorer.seq2seq.data.classroom import EXAMPLES

    panel.search_fn = lambda entry, sentence, params: result(source=sentence)
    panel.state.add(LoadedModel("toy", model=None, tokenizer=None, corpus={"name": "classroom"}))
    assert panel.nbest_table.reference.text() == EXAMPLES[0][1]
    panel.set_sentence("her rabbit sometimes follows her")  # not the example: its French goes
    assert panel.nbest_table.reference.text() == ""
    panel.examples.pick(1)
    panel.nbest_table.reference.setText("mon chat")  # typed by the user: it stays
    panel.set_sentence("the dog sleeps")
    assert panel.nbest_table.reference.text() == "mon chat"
    panel.wait_idle(qtbot)


def test_labels_keep_their_size_and_the_view_never_zooms_out_past_them(qtbot):
    from explorer.gui.beam.tree_view import BeamTreeView
    from explorer.seq2seq.decoding.treelabels import NODE, overlapping

    v = BeamTreeView()
    qtbot.addWidget(v)
    v.draw_tree(result())
    counts = {int(i): int(k) for i, k in zip(v.layout.ids, v.layout.hidden_pruned) if k}
    assert counts  # the fixture's tree hides pruned candidates under some nodes
    node, k = next(iter(counts.items()))
    assert f"{k} pruned candidates after it" in v._tip(0, 0, node)
    folded = int(v.layout.folded[v.layout.row_of[node]])
    assert f"+{folded}: candidates folded into this node" in v._tip(0, 0, node)
    vb = v.getPlotItem().getViewBox()
    v.resize(500, 220)  # a small view: it shows part of the tree at full size, not all of it
    v.show()
    QApplication.processEvents()
    placed = v.placed
    assert vb.viewRange()[0][1] - vb.viewRange()[0][0] == pytest.approx(v.spans()[0], rel=1e-3)
    v.zoom(1 / 1.4)  # zooming out stops at the labels' own spacing
    (x0, x1), (y0, y1) = vb.viewRange()
    assert vb.width() / (x1 - x0) >= placed.px_step * 0.999
    assert vb.height() / (y1 - y0) >= placed.px_row * 0.999
    v.zoom(1.4)
    v.zoom(1.4)
    assert vb.viewRange()[0][1] - vb.viewRange()[0][0] < x1 - x0
    assert not v.auto_view
    v.reset_view()
    assert vb.viewRange()[0][0] == pytest.approx(-0.6)
    v.grab()
    assert v.labels.painted > 0 and v.labels.badges_painted > 0 and v.labels.edges_painted > 0
    # every node's label is its whole token over its score, and no two labels meet
    nodes = placed.kind == NODE
    pieces = [v.tree.nodes[i].piece for i in v.layout.ids]
    assert [placed.lines[i][0] for i in np.flatnonzero(nodes)][: len(pieces)] == pieces
    assert placed.shown[nodes].all()
    assert overlapping(placed.rects()[placed.shown]) == []


def test_zoom_buttons_and_hint(panel, qtbot):
    panel.resize(1280, 720)
    panel.show()
    panel.show_result(result())
    QApplication.processEvents()
    vb = panel.tree_view.getPlotItem().getViewBox()
    width = lambda: vb.viewRange()[0][1] - vb.viewRange()[0][0]  # noqa: E731
    start = width()
    panel.zoom_in.click()
    assert width() == pytest.approx(start / 1.4, rel=1e-3)
    panel.zoom_out.click()
    panel.zoom_out.click()  # no further out than the labels' own spacing
    assert width() == pytest.approx(start, rel=1e-3)
    panel.zoom_in.click()
    panel.zoom_reset.click()
    assert width() == pytest.approx(start, rel=1e-3) and panel.tree_view.auto_view
    assert "zoom" in panel.tree_hint.text() and "+n folded" in panel.tree_hint.text()


def test_the_legend_wraps_between_entries_never_inside_one():
    """A narrow column (the projector's large type) may wrap the key, but each mark stays on the
    line of the word it names: the only breakable spaces are those between entries."""
    import re

    text = re.sub("<[^>]*>", "", LEGEND).replace("&nbsp;", "\u00a0")  # what the label lays out
    names = ["kept", "pruned", "finished", "chosen", "greedy"]
    entries = text.split(" \u00a0 ")  # the separator: a space, a no-break space, a space
    assert [e.split("\u00a0")[-1] for e in entries] == names
    for entry in entries:
        assert " " not in entry, entry  # only no-break spaces inside an entry
        assert not re.search("–(?!\u2060)", entry), entry  # a dash allows a break after it


def test_the_wheel_over_the_search_settings_leaves_them_alone_until_clicked_into(panel, qtbot):
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent

    panel.show()
    qtbot.waitExposed(panel)
    for field in (panel.beam, panel.penalty):
        at = QPointF(field.rect().center())
        before = field.value() if field is panel.beam else field.currentIndex()
        QApplication.sendEvent(field, QWheelEvent(
            at, QPointF(field.mapToGlobal(at.toPoint())), QPoint(0, 0), QPoint(0, -120),
            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
            Qt.ScrollPhase.NoScrollPhase, False,
        ))  # fmt: skip
        after = field.value() if field is panel.beam else field.currentIndex()
        assert after == before and field.focusPolicy() == Qt.FocusPolicy.StrongFocus


def test_edge_numbers_are_drawn_in_the_themes_colours(qtbot):
    """Each edge's log p sits on the plot's own background, in a muted colour that still reads
    (on the dark theme it was a white patch)."""
    from explorer.gui.beam.tree_view import BeamTreeView
    from explorer.gui.widgets import theme

    app = QApplication.instance()
    v = BeamTreeView()
    qtbot.addWidget(v)
    v.resize(700, 300)
    v.draw_tree(result())
    v.show()
    try:
        for name in ("dark", "light"):
            theme.apply(app, name, False)
            v.setBackground(theme.color("plot_bg"))  # as the panel's restyle does
            image = v.grab().toImage()
            assert v.labels.edges_painted > 0
            bg, fg = theme.color("plot_bg"), theme.color("muted")
            assert theme.contrast_ratio(fg, bg) >= 4.5
            for box in v.labels.edge_boxes:
                corner = image.pixelColor(int(box.left()) + 1, int(box.top()) + 1)
                assert theme.contrast_ratio(corner, bg) < 1.3, (name, corner.name())
    finally:
        theme.apply(app, "light", False)
