"""The beam panel driving the real beam_search, exact_search and sweep with a tiny trained model."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.gui.beam.panel import BeamPanel
from explorer.gui.session import Session
from explorer.gui.widgets.empty import shown
from explorer.seq2seq.decoding.beam import beam_search
from explorer.seq2seq.decoding.search import exact_search
from explorer.seq2seq.decoding.trace import Fate
from explorer.seq2seq.decoding.treelayout import FATE_CODES
from explorer.seq2seq.evaluate import classroom_test_pairs
from explorer.seq2seq.metrics import corpus_bleu

TIMEOUT = 60_000  # ms; the machine is shared
BEAM, MAX_LEN = 4, 20


@pytest.fixture
def panel(qtbot, tiny_models):
    state = Session()
    state.add(tiny_models.bahdanau)
    p = BeamPanel(state)
    qtbot.addWidget(p)
    p.resize(1400, 900)
    p.beam.setValue(BEAM)
    p.max_len.setValue(MAX_LEN)
    yield p
    p.wait_idle(qtbot, TIMEOUT)  # the sweep too: every job runs through the session's runner


def search(panel: BeamPanel, qtbot, sentence: str):
    with qtbot.waitSignal(panel.result_shown, timeout=TIMEOUT):
        panel.set_sentence(sentence)
    panel.wait_idle(qtbot, TIMEOUT)
    return panel.result


def direct(entry, sentence: str, **params):
    settings = {"beam": BEAM, "nbest": 3, "max_len": MAX_LEN, **params}
    return beam_search(entry.model, entry.tokenizer, [entry.prepare(sentence)], **settings)[0]


@pytest.fixture(scope="module")
def sentences(tiny_models):
    """A sentence where greedy and beam part (and the step), and one where they agree."""
    entry, differ, agree = tiny_models.bahdanau, None, None
    for src, _ in tiny_models.pairs[:40]:
        r = direct(entry, src)
        if r.divergence is not None and differ is None:
            differ = (src, r.divergence)
        if r.divergence is None and agree is None:
            agree = src
        if differ and agree:
            return differ, agree
    pytest.fail("no sentence among 40 where greedy and beam differ and one where they agree")


def test_tree_nodes_and_fates_equal_the_beam_tree(panel, qtbot, tiny_models, sentences):
    (src, _), _ = sentences
    r = search(panel, qtbot, src)
    expected = direct(tiny_models.bahdanau, src, nbest=3, length_penalty="none")
    tree = r.tree
    assert len(tree) == len(expected.tree)
    assert [n.fate for n in tree.nodes] == [n.fate for n in expected.tree.nodes]
    assert [n.token for n in tree.nodes] == [n.token for n in expected.tree.nodes]
    assert r.nbest[0].tokens == expected.nbest[0].tokens
    for row, h in enumerate(r.nbest):  # translations shown as written ("dix-sept" keeps its "-")
        assert panel.nbest_table.table.item(row, 1).text() == h.text
    view = panel.tree_view
    panel.show_pruned.setChecked(True)
    assert len(view.layout) == len(tree) and view.nodes.data.shape[0] == len(tree)
    for nid, code in zip(view.layout.ids, view.layout.fate):
        if nid:
            assert code == FATE_CODES[tree.nodes[nid].fate]
    counts = tree.fates()
    assert counts["chosen"] == 1
    assert f"{counts['pruned']} pruned" in panel.summary.text()
    assert f"{counts['kept']} kept" in panel.summary.text()


def test_greedy_overlay_and_divergence_marker(panel, qtbot, sentences):
    (src, d), agree = sentences
    r = search(panel, qtbot, src)
    view, greedy = panel.tree_view, r.greedy
    assert r.divergence == d and view.divergence == d
    ov = view.overlay
    np.testing.assert_allclose(ov.scores, np.cumsum(greedy.token_logprobs), atol=1e-9)
    assert list(ov.pieces) == greedy.pieces
    on_tree = [t for t, nid in enumerate(ov.node_ids) if nid >= 0]
    for t in on_tree:
        node = r.tree.nodes[int(ov.node_ids[t])]
        assert node.token == greedy.tokens[t] and node.step == t
        assert node.score == pytest.approx(ov.scores[t], abs=1e-4)
    x, y = view.greedy_line.getData()
    for t in on_tree:
        assert (x[t + 1], y[t + 1]) == view.node_position(int(ov.node_ids[t]))
    assert view.divergence_line.isVisible()
    assert view.divergence_line.value() == view.column_x[d + 1]
    assert f"step {d + 1}: greedy leaves the beam" in view.divergence_text.text()
    assert f"at step {d + 1}" in panel.summary.text()

    r = search(panel, qtbot, agree)
    assert r.divergence is None and panel.tree_view.divergence is None
    assert not panel.tree_view.divergence_line.isVisible()
    assert "agree" in panel.summary.text()


@pytest.mark.parametrize(
    "penalty, alpha, beta",
    [("none", 0.0, 0.0), ("avg", 1.0, 0.0), ("gnmt", 0.6, 0.0), ("gnmt", 0.6, 0.4)],
)
def test_formula_readout_equals_the_normalized_score(panel, qtbot, sentences, penalty, alpha, beta):
    (src, _), _ = sentences
    panel.penalty.setCurrentText(penalty)
    panel.alpha.setValue(alpha)
    panel.beta.setValue(beta)
    r = search(panel, qtbot, src)
    assert r.tree.settings["length_penalty"] == penalty and r.tree.settings["beta"] == beta
    chosen = r.tree.chosen
    assert panel.details.node_id == chosen.id
    assert panel.details.recomputed == pytest.approx(r.nbest[0].normalized_score, abs=1e-6)
    assert panel.details.recomputed == pytest.approx(chosen.normalized_score, abs=1e-6)
    assert "✓" in panel.details.formula.text()
    assert r.nbest[0].formula in panel.details.formula.text()
    if beta:
        assert "β·cp" in panel.details.formula.text()
    kept = next(n for n in r.tree.nodes if n.fate == Fate.KEPT and n.step >= 2)
    panel.select_node(kept.id)
    assert panel.details.recomputed == pytest.approx(kept.normalized_score, abs=1e-6)


def test_selecting_a_node_shows_its_paths_attention(panel, qtbot, sentences):
    (src, _), _ = sentences
    r = search(panel, qtbot, src)
    panel.show_pruned.setChecked(True)
    node = next(n for n in r.tree.nodes if n.fate == Fate.PRUNED and n.step >= 1)
    panel.select_node(node.id)
    expected = r.tree.trace(node.id).attention_matrix()
    assert expected.shape == (node.step + 1, len(r.tree.src_pieces))
    np.testing.assert_array_equal(panel.details.attention.matrix, expected)
    assert panel.details.trace.tokens == [p.token for p in r.tree.path(node.id)]


def test_exact_search_readout_with_the_real_exact_search(panel, qtbot, tiny_models):
    entry = tiny_models.bahdanau
    src = "your ducks slept"
    panel.max_len.setValue(10)
    r = search(panel, qtbot, src)
    panel.exact_button.click()
    qtbot.waitUntil(lambda: "prefixes expanded" in panel.exact_text.text(), timeout=TIMEOUT)
    panel.wait_idle(qtbot, TIMEOUT)
    ex = exact_search(entry.model, entry.tokenizer, entry.prepare(src), max_len=10)
    text = panel.exact_text.text()
    assert f"exact best: “{ex.text}”" in text
    assert f"S = {ex.score:.3f}".replace("-", "−") in text
    assert f"S = {ex.empty_score:.3f}".replace("-", "−") in text
    assert ex.normalized_score >= r.nbest[0].normalized_score - 1e-6
    verdict = "a search error" if ex.score > r.nbest[0].score + 1e-6 else "no search error"
    assert verdict in text


def test_exact_search_that_gives_up_reports_why(panel, qtbot):
    panel.exact_fn = lambda entry, text, params: exact_search(
        entry.model, entry.tokenizer, entry.prepare(text), max_expansions=1, **params
    )
    search(panel, qtbot, "your ducks slept")
    with qtbot.waitSignal(panel.state.error, timeout=TIMEOUT) as sig:
        panel.exact_button.click()
    assert "no proof of optimality after 1 expansions" in sig.args[0]
    panel.wait_idle(qtbot, TIMEOUT)
    why = shown(panel.exact_text)
    assert why.startswith("Exact search stopped:") and "no proof of optimality" in why


def test_sweep_on_classroom_test_pairs(panel, qtbot, tiny_models):
    entry = tiny_models.bahdanau
    panel.sweep.count.setValue(3)
    search(panel, qtbot, "your ducks slept")
    panel.sweep.start()
    panel.wait_idle(qtbot, TIMEOUT)
    assert panel.sweep.record.done and panel.sweep.record.origin.model == entry.name
    assert [p[0] for p in panel.sweep.points] == [1, 2, 4, 8, 16]
    pairs = classroom_test_pairs(3)
    assert len(pairs) == 3
    results = beam_search(
        entry.model, entry.tokenizer, [s for s, _ in pairs], beam=2, max_len=MAX_LEN,
        record_tree=False, with_greedy=False,
    )  # fmt: skip
    outputs = [x.nbest[0].text for x in results]
    k, bleu, length = panel.sweep.points[1]
    assert bleu == pytest.approx(corpus_bleu(outputs, [t for _, t in pairs]))
    assert length == pytest.approx(np.mean([len(o.split()) for o in outputs]))


def test_projector_mode_scales_tree_labels_and_axes(panel, qtbot):
    from PySide6.QtWidgets import QApplication, QWidget

    from explorer.gui.beam.readouts import AttentionView
    from explorer.gui.widgets import theme

    search(panel, qtbot, "your ducks slept")
    app = QApplication.instance()
    try:
        theme.apply(app, "light", False)
        label_pt, scale = panel.tree_view.labels.font.pointSizeF(), theme.signals().scale
        axis = panel.details.attention.getPlotItem().getAxis("bottom")
        tick_px = axis.style["tickFont"].pixelSize()
        theme.apply(app, "light", True)
        m = theme.signals().metrics
        assert panel.tree_view.labels.font.pointSizeF() == pytest.approx(label_pt * m.scale / scale)
        assert axis.style["tickFont"].pixelSize() == m.plot_px > tick_px
        # a path's attention drawn after the theme was applied is titled like every plot
        # (its title, set only with the first path, was left at pyqtgraph's 9 pt)
        holder = QWidget()
        qtbot.addWidget(holder)
        view = AttentionView(holder)
        theme.style_plots(holder)
        view.show_matrix(np.eye(3), ["a", "b", "c"], ["x", "y", "z"])
        title = view.getPlotItem().titleLabel
        assert "attention α of the selected path".startswith(title.text.rstrip("…"))
        assert f"font-size:{m.title_px}px" in title.item.toHtml().replace(" ", "")
    finally:
        theme.apply(app, "light", False)


def test_greedy_reads_as_the_beam_does_when_they_agree(panel, qtbot, sentences, tiny_models):
    """The greedy row is written by the model's tokenizer like the n-best rows, so when the two
    searches emit the same tokens their texts and BLEU against a reference are equal."""
    _, agree = sentences
    ref = dict(tiny_models.pairs)[agree]
    panel.nbest_table.reference.setText(ref)
    r = search(panel, qtbot, agree)
    assert r.divergence is None and list(r.nbest[0].tokens) == list(r.greedy.tokens)
    rows = {kind: text for kind, text, *_ in panel.nbest_table.rows}
    assert (
        rows["greedy"]
        == rows["beam #1"]
        == tiny_models.bahdanau.tokenizer.decode_tgt(r.greedy.tokens)
    )
    bleu = dict(zip([k for k, *_ in panel.nbest_table.rows], panel.nbest_table.bleu))
    assert bleu["greedy"].bleu == bleu["beam #1"].bleu
    panel._select_greedy()
    assert rows["greedy"] in panel.details.title.text()
