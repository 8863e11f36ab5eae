"""The beam panel's readouts: the sweep's two curves and axes, the n-best table's height, and the
BLEU walkthrough (from Beam vs greedy, Step-through and Evaluate)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("pytestqt")
import PySide6  # noqa: E402, F401  (before pyqtgraph)
from PySide6.QtWidgets import QApplication  # noqa: E402

from explorer.gui.beam.bleu_walkthrough import BleuWalkthrough, step_panel_button  # noqa: E402
from explorer.gui.beam.readouts import NBestTable  # noqa: E402
from explorer.gui.beam.sweep import SweepWidget, axis_range, beam_ticks  # noqa: E402
from explorer.seq2seq.bleu_steps import CORPUS, LECTURE_EXAMPLE, corpus_steps  # noqa: E402


def test_axis_range_has_a_least_span_and_stays_in_bounds():
    a, b = axis_range([30.0, 30.7], 5.0, 0.0, 100.0)
    assert b - a >= 5.0 and a < 30.0 and b > 30.7  # a 0.7-point change does not fill the axis
    assert a == pytest.approx(30.35 - (b - a) / 2)
    a, b = axis_range([10.0, 60.0], 5.0, 0.0, 100.0)
    assert a < 10.0 and b > 60.0 and b - a == pytest.approx(50 * 1.15)
    assert axis_range([99.5, 100.0], 5.0, 0.0, 100.0)[1] == 100.0
    assert axis_range([0.0, 0.2], 5.0, 0.0, 100.0)[0] == 0.0


def test_every_beam_size_has_its_tick():
    ticks = beam_ticks()
    assert [t for _, t in ticks] == ["1", "2", "4", "8", "16"]
    assert ticks[-1][0] == pytest.approx(math.log10(16))


def test_sweep_draws_both_curves_inside_their_axes(qtbot):
    w = SweepWidget()
    qtbot.addWidget(w)
    w.resize(700, 500)
    w.show()
    w.points = [(1, 30.0, 9.0), (2, 30.4, 8.8), (4, 30.7, 8.5), (8, 30.5, 8.4), (16, 30.2, 8.1)]
    w._plot()
    QApplication.processEvents()
    for plot, curve, values in (
        (w.plot, w.bleu_curve, [30.0, 30.7]),
        (w.len_plot, w.len_curve, [8.1, 9.0]),
    ):
        x, y = curve.getData()
        assert len(x) == 5  # drawn, in its own plot
        (x0, x1), (y0, y1) = plot.getPlotItem().getViewBox().viewRange()
        assert x0 <= math.log10(1) and x1 >= math.log10(16)  # beam 16 inside the axis
        assert y0 < min(values) and y1 > max(values)
        assert curve.isVisible() and plot.isVisible()
    (_, _), (y0, y1) = w.plot.getPlotItem().getViewBox().viewRange()
    assert y1 - y0 >= 5.0
    ticks = w.len_plot.getPlotItem().getAxis("bottom")._tickLevels
    assert [t for _, t in ticks[0]] == ["1", "2", "4", "8", "16"]


def test_nbest_table_is_as_tall_as_its_rows(qtbot):
    from types import SimpleNamespace

    t = NBestTable()
    qtbot.addWidget(t)
    t.resize(900, 600)
    t.show()
    hyps = [
        SimpleNamespace(
            text=f"hyp {i}", pieces=[], tokens=[1, 2], score=-1.0, normalized_score=-1.0
        )
        for i in range(3)
    ]
    greedy = None
    t.show_result(hyps, greedy)
    QApplication.processEvents()
    table = t.table
    rows = sum(table.rowHeight(r) for r in range(3))
    inner = table.viewport().height()
    assert inner >= rows  # every row shows, the last one whole
    assert inner - rows < table.verticalHeader().defaultSectionSize()  # and no empty half table
    assert table.verticalScrollBar().maximum() == 0
    t.reference.setText("hyp 0")
    assert "geometric mean" in t.bleu_text.text()


def test_the_walkthrough_opens_on_the_lecture_example_and_explains_the_difference(qtbot):
    d = BleuWalkthrough()
    qtbot.addWidget(d)
    assert (d.candidate.text(), d.reference.text()) == LECTURE_EXAMPLE
    sacre, deck = d.steps
    assert round(sacre.score, 1) == 23.0 and round(deck.bp, 2) == 0.61
    assert "exp smoothing" in d.sacre.toPlainText()
    assert "replaced by 0.01" in d.deck.toPlainText()
    assert "p4 = 0.250 only in sacrebleu" in d.diff.text()
    d.candidate.setText("")
    assert d.steps is None and "Type a candidate" in d.sacre.toPlainText()
    d.candidate.setText("Le chat est sur le tapis")
    assert d.steps[0].score == pytest.approx(100.0)


def test_the_walkthrough_shows_a_models_corpus_bleu(qtbot):
    steps = corpus_steps(
        ["le chat dort", "un chien"], ["le chat dort ici", "un chien noir"], CORPUS
    )
    d = BleuWalkthrough(corpus=[("toy", steps)])
    qtbot.addWidget(d)
    d.source.setCurrentIndex(1)
    assert d.steps is steps and "2 sentences" in d.sacre.toPlainText()
    assert not d.candidate.isEnabled()
    d.source.setCurrentIndex(0)
    assert d.candidate.isEnabled()


def test_beam_vs_greedy_opens_it_for_the_selected_row(qtbot):
    from types import SimpleNamespace

    t = NBestTable()
    qtbot.addWidget(t)
    hyps = [
        SimpleNamespace(text=w, pieces=[], tokens=[1], score=-1.0, normalized_score=-1.0)
        for w in ("le chat", "un chat")
    ]
    t.show_result(hyps, None)
    t.reference.setText("le chat dort")
    t.table.setCurrentCell(1, 1)
    d = t.open_steps()
    qtbot.addWidget(d)
    assert (d.candidate.text(), d.reference.text()) == ("un chat", "le chat dort")


def test_step_through_opens_it_for_the_decoded_output(qtbot):
    from types import SimpleNamespace

    from PySide6.QtWidgets import QLineEdit, QWidget

    panel = QWidget()
    qtbot.addWidget(panel)
    panel.trace = SimpleNamespace(tokens=[5, 6, 3], pieces=["▁le", "▁chat", "</s>"])
    panel.state = SimpleNamespace(current=None)
    panel.reference = QLineEdit("le chat noir")
    button = step_panel_button(panel)
    button.click()
    d = panel._bleu_walkthrough
    qtbot.addWidget(d)
    assert (d.candidate.text(), d.reference.text()) == ("le chat", "le chat noir")
    assert np.isclose(d.steps[0].bp, math.exp(1 - 3 / 2))


def test_evaluate_walks_through_each_models_corpus_bleu(qtbot, tiny_models):
    from explorer.gui.session import Session
    from explorer.gui.train.eval import EvaluateView
    from explorer.gui.train.jobs import evaluate_job

    ((name, result),) = list(evaluate_job([tiny_models.bahdanau], 20))
    steps = result["bleu_steps"]
    assert steps.sentences == 20
    assert steps.score == pytest.approx(result["bleu"], abs=1e-6)  # the number the view plots
    view = EvaluateView(Session())
    qtbot.addWidget(view)
    view._add((name, result))
    json.dumps(view.results)  # the results stay plain data: Export data writes them as JSON
    d = view.open_steps()
    qtbot.addWidget(d)
    assert d.source.currentIndex() == 1 and d.steps is steps
    assert "5. BLEU = BP × geometric mean" in d.sacre.toPlainText()


def test_evaluate_leaves_out_a_model_of_another_language_pair_and_says_so(qtbot, tiny_models):
    """German → English on the classroom's English → French test set scored a flat 0: a line
    that tells nothing of the model. It is left out, by name, with the reason."""
    from dataclasses import replace

    from explorer.gui.session import Session
    from explorer.gui.train.eval import EvaluateView
    from explorer.seq2seq.evaluate import not_for_classroom

    assert not_for_classroom({"src_lang": "en", "tgt_lang": "fr"}) is None
    assert not_for_classroom({"name": "custom"}) is None  # no languages named: evaluated
    assert "de→en" in not_for_classroom({"src_lang": "de", "tgt_lang": "en"})
    session = Session()
    german = replace(tiny_models.none, name="de-en", corpus={"src_lang": "de", "tgt_lang": "en"})
    session.add(tiny_models.bahdanau)
    session.add(german, make_current=False)
    view = EvaluateView(session)
    qtbot.addWidget(view)
    view.limit.setValue(20)
    with qtbot.waitSignal(view.finished, timeout=60_000):
        view.run()
    assert list(view.results) == [tiny_models.bahdanau.name]
    view.resize(900, 600)
    view.show()
    qtbot.waitExposed(view)
    # the legend names each line under the plot, never over the lines near BLEU 100
    assert [label.text for _, label in view.legend.items] == [tiny_models.bahdanau.name]
    box = view.plot.getViewBox().sceneBoundingRect()
    assert not view.legend.sceneBoundingRect().intersects(box)
    assert "not evaluated: de-en (de→en, not the classroom test set's en→fr)" in view.status.text()
    alone = Session()
    alone.add(german)
    view = EvaluateView(alone)
    qtbot.addWidget(view)
    view.run()  # nothing to evaluate: no worker, the reason at once
    assert view.worker is None and view.results == {}
    assert view.status.text().startswith("not evaluated: de-en (de→en")


def test_reset_centres_on_the_densest_stretch_of_the_chosen_path():
    from explorer.gui.beam.tree_view import densest_centre

    # the root midway down a tall tree, then the chosen path near the top
    assert densest_centre(np.array([36.0, 36.0, 0.0, 0.0, 0.0, 1.0]), 10.0) == 0.5
    assert densest_centre(np.array([4.0]), 10.0) == 4.0


def test_the_rows_come_before_the_bleu_lines_when_room_is_short(qtbot):
    from types import SimpleNamespace

    t = NBestTable()
    qtbot.addWidget(t)
    hyps = [
        SimpleNamespace(
            text=f"hyp {i}", pieces=[], tokens=[1, 2], score=-1.0, normalized_score=-1.0
        )
        for i in range(4)
    ]
    t.show_result(hyps, None)
    t.reference.setText("hyp 0")  # four BLEU lines below the table
    rows = sum(t.table.rowHeight(r) for r in range(4))
    t.resize(900, t.table.maximumHeight() + 90)  # room for the rows, little for the lines
    t.show()
    qtbot.waitExposed(t)
    QApplication.processEvents()
    assert t.table.viewport().height() >= rows  # every row whole: the lines take what is left
