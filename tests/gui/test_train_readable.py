"""Train & Load reads from the back of the room: plain axis labels, a probe map that stays
readable with a 40-piece vocabulary, the run's status (evaluating, paused), the options a user
can pick."""

from __future__ import annotations

import math

import numpy as np
import pytest

from explorer.gui.train.axes import PlainAxis, decimals, linear_ticks, log_ticks, plain_number
from explorer.gui.train.probemap import merge_words, probe_map, thin, word_groups
from explorer.gui.train.status import bar_format, format_eta, time_text
from explorer.seq2seq.training.options import Probe, Progress

PROBE = "the black cat that i saw yesterday sat"
WORDS = PROBE.split()


# -- axes -------------------------------------------------------------------------------------
def test_log_ticks_are_1_2_5_times_powers_of_ten():
    assert log_ticks(math.log10(1.5), math.log10(60)) == [2, 5, 10, 20, 50]
    assert log_ticks(0, 6) == [1, 10, 100, 1000, 10_000, 100_000, 1_000_000]  # crowded
    assert log_ticks(math.log10(30), math.log10(45)) == [30, 40]  # too few: 1 to 9 steps
    assert [plain_number(v) for v in (2, 50, 1200, 0.5, 0.003, 1.5)] == [
        "2", "50", "1,200", "0.5", "0.003", "1.5",
    ]  # fmt: skip


def test_log_ticks_stand_apart_on_a_short_axis():
    lo, hi = math.log10(2.1), math.log10(1800)  # 2.9 decades: 5, 10, 20 … 1,000 on a tall axis
    assert log_ticks(lo, hi, 600, 19) == [5, 10, 20, 50, 100, 200, 500, 1000]
    # 140 px: 1-2-5 labels would be 14.6 px apart, under a 19-px line: powers of ten
    assert log_ticks(lo, hi, 140, 19) == [10, 100, 1000]
    assert log_ticks(0, 6, 130, 19) == [1, 100, 10_000, 1_000_000]  # every other power
    assert log_ticks(math.log10(4.5), math.log10(55), 50, 19) == [10]  # one label fits
    # within a decade with no two 1 … 9 values: nice values of the number itself
    assert log_ticks(math.log10(31), math.log10(39), 130, 19) == [32, 34, 36, 38]


def test_linear_ticks_take_a_nice_spacing_their_labels_fit():
    line = lambda values: 19.0  # noqa: E731 (a vertical axis: a label is a line high)
    assert linear_ticks(0, 13_000, 130, line) == (5000, [0, 5000, 10_000])
    assert linear_ticks(0, 0.0035, 130, line) == (0.001, [0, 0.001, 0.002, 0.003])
    assert linear_ticks(1, 2, 140, line) == (0.25, [1, 1.25, 1.5, 1.75, 2])
    # a horizontal axis: the labels' widths (4 px a character) set the spacing
    width = lambda values: 4.0 * max(len(f"{v:,.0f}") for v in values)  # noqa: E731
    assert linear_ticks(0, 30_000, 200, width) == (10_000, [0, 10_000, 20_000, 30_000])
    assert linear_ticks(3, 3, 100, line) == (1.0, [])  # an empty range: none
    assert [decimals(s) for s in (500, 0.5, 0.25, 0.001, 2.5)] == [0, 1, 2, 3, 1]


def feed(curves, steps=40):
    for s in range(1, steps + 1):
        loss = 4.0 - 2.5 * s / steps
        curves.add(Progress("step", s, steps, loss=loss, perplexity=math.exp(loss), lr=3e-3,
                            grad_norm=0.5, tokens_per_second=13_000.0))  # fmt: skip
        if s % 10 == 0:
            curves.add(Progress("eval", s, steps, val_loss=loss, perplexity=math.exp(loss),
                                val_bleu=0.1 * s / 10))  # fmt: skip
    curves.redraw()


def test_training_axes_have_plain_labels(qtbot):
    from explorer.gui.train.plots import LiveCurves

    curves = LiveCurves()
    qtbot.addWidget(curves)
    curves.resize(900, 500)
    feed(curves)
    for p in curves.plots.values():
        for name in ("left", "bottom"):
            axis = p.getAxis(name)
            assert isinstance(axis, PlainAxis)
            assert axis.autoSIPrefixScale == 1.0 and "(x" not in axis.labelString()
    bleu = curves.plots["bleu"]
    assert bleu.getAxis("left").labelText == "BLEU"
    assert bleu.viewRange()[1] == pytest.approx([0.0, 100.0])  # BLEU's whole scale
    ppl = curves.plots["ppl"].getAxis("left")
    assert ppl.logMode
    lo, hi = math.log10(4.5), math.log10(55.0)  # perplexities 4.5 to 55: exp(1.5) … exp(4)
    levels = ppl.tickValues(lo, hi, 300)
    values = [v for _, vs in levels for v in vs]
    assert ppl.tickStrings(values, 1.0, 1.0) == ["5", "10", "20", "50"]
    lr = curves.plots["lr"].getAxis("left")
    shown = lr.tickStrings([v for _, vs in lr.tickValues(0, 0.0035, 300) for v in vs], 1, 5e-4)
    assert "0.003" in shown and all("e" not in s for s in shown)


def test_a_lone_evaluation_spans_the_steps_run_until_the_next(qtbot):
    from explorer.gui.train.plots import LiveCurves

    curves = LiveCurves()
    qtbot.addWidget(curves)
    curves.resize(900, 500)
    curves.add(Progress("eval", 0, 100, val_loss=4.0, perplexity=math.exp(4.0), val_bleu=0.5))
    for s in range(1, 41):
        curves.add(Progress("step", s, 100, loss=4.0, perplexity=math.exp(4.0), lr=1e-3))
    curves.redraw()
    lo, hi = curves.plots["bleu"].viewRange()[0]
    assert lo <= 0 and 40 <= hi < 42  # steps 0 to 40, as the loss plot beside it
    curves.add(Progress("eval", 40, 100, val_loss=3.0, perplexity=math.exp(3.0), val_bleu=5.0))
    curves.redraw()
    assert curves.plots["bleu"].getViewBox().autoRangeEnabled()[0]  # its own range again
    lo, hi = curves.plots["bleu"].viewRange()[0]
    assert lo <= 0 and 40 <= hi < 42


def test_a_short_colour_bar_keeps_its_labels_apart(qtbot):
    """pyqtgraph ticked a colour bar every 0.2 whatever its length: six 24-px labels on a 70-px
    bar (Step-through's Transformer tab in projector mode) were drawn over each other."""
    from PySide6.QtGui import QFont, QFontMetricsF

    from explorer.gui.step.common import Heatmap

    heatmap = Heatmap("α")
    qtbot.addWidget(heatmap)
    axis = heatmap.colorbar.axis
    font = QFont()
    font.setPixelSize(24)  # projector mode's plot text on a 1920 x 1080 screen
    axis.setStyle(tickFont=font)
    height = QFontMetricsF(font).height()
    for size, most in ((70, 2), (160, 3), (400, 6)):
        ((step, values),) = axis.tickValues(0.0, 1.0, size)
        assert 2 <= len(values) <= most and size * step >= 1.5 * height
        strings = axis.tickStrings(values, 1.0, step)
        assert strings[0] == "0" and strings[-1] == "1"
    # a bar too short for two multiples of a nice step is labelled at its ends (a lone "0" on
    # the encoder states' bar told nothing of the scale)
    ((step, values),) = axis.tickValues(-0.9734, 0.9734, 120)
    assert axis.tickStrings(values, 1.0, step) == ["-0.97", "0", "0.97"]
    ((step, values),) = axis.tickValues(-0.9734, 0.9734, 60)
    assert axis.tickStrings(values, 1.0, step) == ["-0.97", "0.97"]


def test_a_colour_bars_axis_is_as_wide_as_its_labels(qtbot):
    """pyqtgraph fixes a colour bar's axis at 45 px and skips a label wider than that: under
    projector fonts "-0.97" was not drawn and the encoder states' bar read "0" alone."""
    from PySide6.QtGui import QFontMetricsF
    from PySide6.QtWidgets import QApplication, QWidget

    from explorer.gui.step.common import Heatmap
    from explorer.gui.widgets import theme

    holder = QWidget()
    qtbot.addWidget(holder)
    heatmap = Heatmap("h_i", parent=holder)
    try:
        theme.apply(QApplication.instance(), "light", True, (1920, 1080))
        theme.style_plots(holder)
        axis = heatmap.colorbar.axis
        label = QFontMetricsF(axis.style["tickFont"]).horizontalAdvance("-0.97")
        assert axis.fixedWidth >= label + 8  # pyqtgraph: the width setWidth fixed
    finally:
        theme.apply(QApplication.instance(), "light", False)


def test_bar_ends_round_inwards_and_keep_zero_where_it_fits():
    from explorer.gui.train.axes import bar_ends

    assert bar_ends(0.0, 1.0, 30, 28) == [(0.1, [0.0, 1.0])]
    ((unit, values),) = bar_ends(-23.7, 23.7, 100, 10)
    assert unit == 1.0 and values == [-23.0, 0.0, 23.0]
    assert bar_ends(2.0, 2.0, 100, 10) is None and bar_ends(0.0, 1.0, 0, 10) is None


# -- the probe map ----------------------------------------------------------------------------
def test_word_groups_and_merging_keep_rows_summing_to_one():
    assert word_groups([0, 0, 1, 2, 2, 2, -1]) == [[0, 1], [2], [3, 4, 5], [6]]
    a = np.array(
        [
            [0.1, 0.2, 0.3, 0.4],
            [0.4, 0.3, 0.2, 0.1],
            [0.0, 0.0, 0.5, 0.5],
        ]
    )
    m, src, tgt = merge_words(a, ["c", "at", "s", "</s>"], ["le", "chat", "</s>"],
                              [0, 0, 1, -1], [0, 0, -1])  # fmt: skip
    # source word "cat" = pieces 0+1; target word "lechat" = mean of rows 0 and 1
    np.testing.assert_allclose(m, [[0.5, 0.25, 0.25], [0.0, 0.5, 0.5]])
    np.testing.assert_allclose(m.sum(axis=1), 1.0)
    assert src == ["cat", "s", "</s>"] and tgt == ["lechat", "</s>"]


def test_thin_keeps_every_kth_label():
    labels = [str(i) for i in range(40)]
    shown = thin(labels, 300, 18)  # 40 × 18 px need 720: every 3rd
    assert shown[:7] == ["0", "", "", "3", "", "", "6"]
    assert thin(labels, 800, 18) == labels


@pytest.fixture(scope="module")
def char_probe() -> Probe:
    """The classroom probe through a 40-piece tokenizer, as the tiny preset cuts it."""
    from explorer.seq2seq.data.classroom import generate
    from explorer.seq2seq.data.tokenizer import train_tokenizer

    pairs, _ = generate(300, seed=0)
    tok = train_tokenizer([s for s, _ in pairs], [t for _, t in pairs], vocab_size=40)
    src = tok.encode_src(PROBE)
    tgt = tok.encode_tgt("le chat noir que j'ai vu hier s'est assis")
    rng = np.random.default_rng(0)
    a = rng.dirichlet(np.ones(len(src)), size=len(tgt))
    return Probe(5, tok.src_pieces(src), tok.tgt_pieces(tgt), a, 1.0, "x",
                 tok.word_index(src, "src"), tok.word_index(tgt, "tgt"))  # fmt: skip


def test_a_40_piece_probe_is_drawn_per_word_when_its_pieces_do_not_fit(char_probe):
    s, t = char_probe.attention.shape[1], char_probe.attention.shape[0]
    assert s >= 30  # mostly one-letter pieces
    m = probe_map(char_probe, 300, 300)
    assert m.merged and m.pieces == (s, t)
    assert m.source_labels == [*WORDS, "</s>"]
    assert m.target_labels[:3] == ["le", "chat", "noir"]
    np.testing.assert_allclose(m.attention.sum(axis=1), 1.0)
    big = probe_map(char_probe, s * 20, t * 20)  # room for every piece
    assert not big.merged and big.source_labels == char_probe.source_pieces


def test_the_replay_draws_words_on_a_small_view_and_pieces_on_a_large_one(
    qtbot, char_probe, monkeypatch
):
    from explorer.gui.train.plots import AttentionReplay

    replay = AttentionReplay()
    qtbot.addWidget(replay)
    replay.resize(420, 420)
    replay.show()
    replay.add(char_probe)
    ticks = [label for _, label in replay.plot.getAxis("bottom")._tickLevels[0]]
    assert [s.strip() for s in ticks] == [*WORDS, "</s>"]
    assert replay.image.image.shape == (len(replay.shown.target_labels), len(WORDS) + 1)
    assert "per word" in replay.step_label.text()
    replay.resize(1900, 1400)
    qtbot.waitUntil(lambda: not replay.shown.merged, timeout=5_000)
    assert replay.image.image.shape == char_probe.attention.shape
    assert "per word" not in replay.step_label.text()
    from explorer.gui.widgets import theme

    m = theme.signals().metrics  # projector-sized labels (3× the body text) need more room
    big = round(3 * theme.BASE_POINT_SIZE * 96 / 72)
    monkeypatch.setattr(theme.signals(), "metrics", theme.Metrics(m.screen, True, big, big, big))
    replay.restyle()
    assert replay.shown.merged


# -- the progress line ------------------------------------------------------------------------
def test_time_left_says_evaluating_and_nothing_while_paused():
    step = Progress("step", 10, 100, eta=125.0)
    assert time_text(step, paused=False, evaluating=False) == format_eta(125.0)
    assert time_text(step, paused=True, evaluating=False) == "paused"
    ev = Progress("evaluating", 10, 100)
    assert time_text(ev, paused=False, evaluating=True) == ""  # the bar says it
    assert (
        bar_format(True) == "step %v of %m · evaluating…" and bar_format(False) == "step %v of %m"
    )
    assert time_text(Progress("done", 100, 100, elapsed=61.2), paused=False, evaluating=False) == (
        "61 s"
    )


# -- the panel --------------------------------------------------------------------------------
@pytest.fixture
def panel(qtbot):
    from explorer.gui.session import Session
    from explorer.gui.train.panel import TrainPanel

    p = TrainPanel(Session())
    qtbot.addWidget(p)
    p.resize(1280, 680)
    yield p
    p.shutdown(30_000)


def test_the_bar_says_evaluating_until_the_evaluation_arrives(panel):
    msg = "evaluating: validation loss, BLEU of 50 sentences, the probe…"
    panel._on_progress(Progress("step", 50, 100, loss=1.0, eta=30.0))
    panel._throttled_redraw.flush()
    assert panel.eta_label.text() == "about 30 s left"
    panel._on_progress(Progress("evaluating", 50, 100, message=msg))
    panel._throttled_redraw.flush()
    assert panel.progress_bar.format() == "step %v of %m · evaluating…"
    assert panel.progress_bar.text() == "step 50 of 100 · evaluating…"
    assert panel.eta_label.text() == "" and panel.message.text() == msg
    panel._on_progress(Progress("eval", 50, 100, val_loss=1.0, val_bleu=10.0, perplexity=2.7))
    panel._throttled_redraw.flush()
    assert panel.progress_bar.text() == "step 50 of 100"


def test_pieces_offer_what_the_tokenizer_trains_and_clip_zero_is_off(panel):
    from explorer.seq2seq.data.tokenizer import MODEL_TYPES

    combo = panel.form.fields["spm_type"]
    assert [combo.itemData(i) for i in range(combo.count())] == list(MODEL_TYPES)
    clip = panel.form.fields["clip"]
    clip.setValue(0.0)
    assert clip.text() == "off (no clipping)" and "0 turns clipping off" in clip.toolTip()
    options = panel.form.options("reverse", 200)
    assert options.clip == 0.0
    clip.setValue(1.0)
    assert panel.form.options("reverse", 200).clip == 1.0


def test_curves_and_map_never_overlap_at_1280_or_1920(panel, qtbot):
    from explorer.gui.train.live import side_by_side

    assert not side_by_side(920) and side_by_side(1400)
    assert not side_by_side(1400, scale=1.5)  # projector fonts
    panel.show()
    area = panel.live_area
    panel.resize(1280, 680)  # a 1280×720 window less its menu and status bars
    qtbot.waitUntil(lambda: area.side is False, timeout=5_000)
    assert area.tabs.count() == 2 and area.tabs.widget(1) is panel.replay
    assert panel.curves.width() >= 3 * 190  # three readable columns of curves
    panel.resize(1920, 1040)
    qtbot.waitUntil(lambda: area.side is True, timeout=5_000)
    assert area.tabs.count() == 0

    def apart() -> bool:
        curves, replay = panel.curves.geometry(), panel.replay.geometry()
        return curves.right() < replay.left() and curves.width() >= 3 * 220

    qtbot.waitUntil(apart, timeout=5_000)
    assert panel.replay.width() >= 340
