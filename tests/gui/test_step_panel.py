"""The Step-through panel, driven with hand-built traces and (when available) tiny real models."""

import html
import math
import re

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPointF, Qt  # noqa: E402

from explorer.gui.session import Session
from explorer.gui.state import LoadedModel  # noqa: E402
from explorer.gui.step.common import short  # noqa: E402
from explorer.gui.step.panel import StepPanel  # noqa: E402
from explorer.seq2seq.decoding.trace import DecodeStep, Trace  # noqa: E402

SRC = ("▁the", "▁black", "▁cat", "▁sat", "</s>")
TGT = ("▁le", "▁chat", "▁noir", "</s>")


def make_trace(arch="luong-dot", L=1, H=1, D=6, V=12, seed=0) -> Trace:
    """A trace whose numbers obey the families' definitions (dot scores from s_t and h_i)."""
    rng = np.random.default_rng(seed)
    S, T = len(SRC), len(TGT)
    enc = rng.normal(size=(S, D))
    steps = []
    for t in range(T):
        hidden = rng.normal(size=(L, D))
        logits = rng.normal(size=V)
        token = 4 + t if t < T - 1 else 3
        logits[token] += 4.0
        logp = logits - np.log(np.exp(logits).sum())
        if arch == "none":
            scores = alpha = None
            context = np.tile(enc[-1], (L, 1))
        else:
            scores = rng.normal(size=(L, H, S)) * 2
            if arch == "luong-dot":
                scores[-1, 0] = enc @ hidden[-1]
            alpha = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)
            context = np.stack([alpha[l].mean(0) @ enc for l in range(L)])
        self_attn = None
        if arch == "transformer":
            sa = rng.random(size=(L, H, t + 1))
            self_attn = sa / sa.sum(-1, keepdims=True)
        steps.append(DecodeStep(t, token, TGT[t], logp, scores, alpha, self_attn, hidden, context))
    enc_self = None
    if arch == "transformer":
        es = rng.random(size=(L, H, S, S))
        enc_self = es / es.sum(-1, keepdims=True)
    return Trace("the black cat sat", (5, 6, 7, 8, 3), SRC, tuple(steps), enc, enc_self, arch=arch)


class FakeTokenizer:
    def tgt_piece(self, i):
        return {4: "▁le", 5: "▁chat", 6: "▁noir", 3: "</s>"}.get(i, f"<{i}>")


def _probs(step: DecodeStep, k: int = 8) -> list[float]:
    return [p for _, p in step.topk(k)]


def _pieces(step: DecodeStep, k: int = 8) -> list[str]:
    return [
        step.piece if i == step.token else FakeTokenizer().tgt_piece(i) for i, _ in step.topk(k)
    ]


@pytest.fixture
def panel(qtbot):
    state = Session()
    p = StepPanel(state)
    qtbot.addWidget(p)
    p.resize(1400, 900)
    return p


def entry(arch="luong-dot"):
    return LoadedModel(
        name=arch, model=None, tokenizer=FakeTokenizer(), config={"arch": arch, "emb_dim": 16}
    )


def test_no_model_shows_a_hint(panel):
    assert "Load or train a model" in panel.output_label.text()
    assert not panel.decode_button.isEnabled()


def test_views_follow_the_step_forward_and_back(panel, qtbot):
    tr = make_trace("luong-dot")
    panel.show_trace(entry(), tr)
    assert panel.t == 0
    for t in (1, 2, 3, 2, 1):
        panel.set_step(t)
        step = tr.steps[t]
        np.testing.assert_allclose(panel.alignment.row(t), step.cross_attention[-1, 0], atol=1e-6)
        # rows after t are hidden under the mask, row t is outlined
        assert panel.alignment.masked_steps() == list(range(t + 1, len(tr)))
        assert panel.alignment.cursor.rect().top() == t
        np.testing.assert_allclose(panel.bars.values(), step.cross_attention[-1, 0])
        assert [i for i, _ in panel.topk.entries[:3]] == [i for i, _ in step.topk(3)]
        np.testing.assert_allclose([p for _, p in panel.topk.entries], [p for _, p in step.topk(8)])
        assert f"H = {step.entropy:.3f}" in panel.topk.entropy_label.text()
        w = panel.arithmetic.worked
        assert w.family == "dot"
        np.testing.assert_allclose(w.scores, step.scores[-1, 0])
        np.testing.assert_allclose(w.alpha, step.cross_attention[-1, 0])
        assert w.context_error < 1e-9  # Σ α_i h_i equals the recorded c_t
        assert f"{w.alpha.max():.3f}" in panel.arithmetic.text.toPlainText()
        assert panel.slider.value() == t + 1


def test_the_mask_over_steps_not_reached_follows_the_theme(panel):
    from PySide6.QtGui import QColor
    from PySide6.QtWidgets import QApplication

    from explorer.gui.widgets import theme

    tr = make_trace("luong-dot")
    panel.show_trace(entry(), tr)
    panel.set_step(1)
    masks = [m for m in panel.alignment.masks if m.isVisible()]
    assert masks
    try:
        for name in ("dark", "light"):
            theme.apply(QApplication.instance(), name)
            want = QColor(theme.COLORS[name]["mask"])
            assert all(m.brush().color() == want for m in panel.alignment.masks)
    finally:
        theme.apply(QApplication.instance(), "light")


def test_keys_and_slider_move_the_step(panel, qtbot):
    panel.show_trace(entry(), make_trace())
    panel.show()
    panel.activateWindow()
    panel.setFocus()
    qtbot.keyClick(panel, Qt.Key.Key_Right)
    qtbot.keyClick(panel, Qt.Key.Key_Right)
    assert panel.t == 2
    qtbot.keyClick(panel, Qt.Key.Key_Left)
    assert panel.t == 1
    qtbot.keyClick(panel, Qt.Key.Key_End)
    assert panel.t == 3
    qtbot.keyClick(panel, Qt.Key.Key_Home)
    assert panel.t == 0
    panel.forward()
    panel.forward()
    panel.last()
    assert panel.t == 3
    panel.forward()  # clamped
    assert panel.t == 3
    panel.first()
    assert panel.t == 0
    panel.slider.setValue(3)
    assert panel.t == 2


def test_raw_scores_toggle(panel):
    tr = make_trace("luong-dot")
    panel.show_trace(entry(), tr)
    panel.set_step(2)
    panel.bars.scores_button.setChecked(True)
    np.testing.assert_allclose(panel.bars.values(), tr.steps[2].scores[-1, 0])


def test_without_attention_shows_the_bottleneck(panel):
    tr = make_trace("none", D=8)
    panel.show_trace(entry("none"), tr)
    text = panel.arithmetic.text.toPlainText()
    assert "Input = n × d_embed = 5 × 16 = 80 numbers" in text
    assert "Ratio = 80 / 8 = 10.00 : 1" in text
    np.testing.assert_allclose(
        panel.bars.context.image.image[:, 0], tr.steps[0].context[-1], rtol=1e-6
    )


def test_transformer_layer_and_head_pickers(panel):
    tr = make_trace("transformer", L=4, H=4)
    panel.show_trace(entry("transformer"), tr)
    tv = panel.transformer
    assert tv.isEnabled() and tv.layer_box.count() == 4 and tv.head_box.count() == 5
    tv.layer_box.setCurrentIndex(1)
    tv.head_box.setCurrentIndex(3)  # head 3
    panel.set_step(2)
    np.testing.assert_allclose(panel.alignment.row(2), tr.steps[2].cross_attention[1, 2], atol=1e-6)
    np.testing.assert_allclose(tv.decoder_self_matrix()[2, :3], tr.steps[2].self_attention[1, 2])
    np.testing.assert_allclose(tv.encoder.image.image.T, tr.encoder_self_attention[1, 2], atol=1e-6)
    np.testing.assert_allclose(panel.arithmetic.worked.alpha, tr.steps[2].cross_attention[1, 2])


def test_hand_exercise_gives_the_lectures_scores(panel):
    ex = panel.arithmetic.exercise
    w = ex.compute()
    np.testing.assert_allclose(w.scores, [0.23, 1.28, 0.67, 0.29], atol=1e-12)
    e = np.exp([0.23, 1.28, 0.67, 0.29])
    np.testing.assert_allclose(w.alpha, e / e.sum())
    assert w.best == 1
    assert "e_2 (black) = 0.560 + 0.720 = 1.280" in ex.output.toPlainText()  # the lecture's words
    ex.fields["s"].setText("0.7, x")
    assert ex.compute() is None
    assert "s: 'x' is not a number" in ex.output.toPlainText()


def test_export(panel, tmp_path):
    tr = make_trace()
    with pytest.raises(ValueError, match="decode a sentence first"):
        panel.export_data(tmp_path / "a.json")
    panel.show_trace(entry(), tr)
    panel.export_data(tmp_path / "a.csv")
    rows = (tmp_path / "a.csv").read_text().splitlines()
    assert rows[0].split(",")[1:] == list(SRC)
    assert float(rows[1].split(",")[1]) == pytest.approx(
        tr.steps[0].cross_attention[-1, 0, 0], rel=1e-5
    )
    panel.export_data(tmp_path / "a.json")
    panel.export_figure(tmp_path / "a.png")
    assert (tmp_path / "a.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="not .txt"):
        panel.export_data(tmp_path / "a.txt")
    assert math.isfinite(tr.score)


def test_context_strip_scrolls_to_the_current_step(panel):
    tr = make_trace("luong-dot")
    panel.show_trace(entry(), tr)
    strip = panel.bars.context
    for t in (2, 0, 3, 1):
        panel.set_step(t)
        y0, y1 = strip.plot.getPlotItem().getViewBox().viewRange()[1]
        shown = [strip.image.mapFromView(QPointF(0, y)).y() for y in (y0, y1)]
        assert shown == pytest.approx([t, t + 1])  # only row t shows
        np.testing.assert_allclose(strip.image.image[:, t], tr.steps[t].context[-1], rtol=1e-6)


def test_topk_labels_name_this_steps_candidates(panel):
    tr = make_trace()
    panel.show_trace(entry(), tr)
    for t in (1, 2, 1, 0):
        panel.set_step(t)
        shown = panel.topk.labels.texts
        probs = [p for _, p in tr.steps[t].topk(8)]
        assert [label.split()[-1] for label in shown] == [f"{p:.2f}" for p in probs]
        assert shown[0].startswith(tr.steps[t].piece[:11])  # greedy: the chosen token on top
        np.testing.assert_allclose(panel.topk.bars.width, probs)  # bar length = p
        np.testing.assert_allclose(panel.topk.bars.height, 0.75)
        drawn = [item.rect() for item in panel.topk.bars.items if item.isVisible()]
        np.testing.assert_allclose([r.width() for r in drawn], probs)  # the rectangles Qt draws
        assert [r.center().y() for r in drawn] == pytest.approx(range(8))  # one per row
    panel.topk.k_spin.setValue(3)  # fewer candidates: the other bars are hidden
    drawn = [item.rect() for item in panel.topk.bars.items if item.isVisible()]
    np.testing.assert_allclose([r.width() for r in drawn], _probs(tr.steps[0], 3))
    assert len(panel.topk.labels.texts) == 3


def test_topk_labels_are_drawn_as_text_in_the_svg(panel, tmp_path, qtbot):
    """The labels are painted by their own item, in the axis's area: an SVG export has them.
    (Shown at a real size: rows shorter than a line name only every second or third.)"""
    tr = make_trace()
    panel.resize(1280, 720)
    panel.show()
    qtbot.waitExposed(panel)
    panel.show_trace(entry(), tr)
    panel.set_step(2)
    qtbot.wait(50)  # laid out
    from explorer.gui.widgets.export import save_svg

    svg = save_svg(panel.topk.plot, tmp_path / "topk.svg").read_text("utf-8")
    texts = [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]
    step = tr.steps[2]
    expected = [f"{short(piece, 12)}  {p:.2f}" for piece, p in zip(_pieces(step), _probs(step))]
    assert panel.topk.labels.texts == expected
    assert [t for t in texts if t in expected] == expected  # each label drawn once, in order


def test_a_step_re_lays_out_nothing(panel, qtbot):
    """The texts that change on every step sit in boxes: no layout above them recomputes."""
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QApplication, QSplitter

    panel.show()
    qtbot.waitExposed(panel)
    panel.show_trace(entry(), make_trace())
    for t in (1, 2, 3, 0):  # the first pass settles the layout that showing the panel began
        panel.set_step(t)
        qtbot.wait(20)
    requests = []

    class Spy(QObject):
        def eventFilter(self, obj, event):  # noqa: N802
            if event.type() == QEvent.Type.LayoutRequest and isinstance(
                obj, (QSplitter, StepPanel)
            ):
                requests.append(type(obj).__name__)
            return False

    spy = Spy()
    QApplication.instance().installEventFilter(spy)
    try:
        for t in (1, 2, 3):
            panel.set_step(t)
            QApplication.processEvents()
    finally:
        QApplication.instance().removeEventFilter(spy)
    assert requests == []
    assert "Step 4/4" in panel.output_label.text()
    assert f"H = {panel.trace.steps[3].entropy:.3f}" in panel.topk.entropy_label.text()
    assert panel.output_label.geometry() == panel.output_box.rect()


def test_svg_export_keeps_plot_text_as_text(panel, tmp_path):
    """Axes and titles are cached as pixmaps on screen; an SVG export paints them as vectors."""
    from PySide6.QtWidgets import QGraphicsItem, QGraphicsView

    panel.show_trace(entry(), make_trace())
    axis = panel.alignment.plot.getPlotItem().getAxis("bottom")
    cached = QGraphicsItem.CacheMode.DeviceCoordinateCache
    assert axis.cacheMode() == cached
    svg = panel.export_figure(tmp_path / "a.svg").read_text("utf-8")
    assert axis.cacheMode() == cached  # the cache is back after the export
    for view in panel.findChildren(QGraphicsView):
        for item in view.scene().items():
            item.setCacheMode(QGraphicsItem.CacheMode.NoCache)
    plain = panel.export_figure(tmp_path / "b.svg").read_text("utf-8")
    assert svg.count("<image") == plain.count("<image")  # no cached pixmap became a bitmap
    assert svg.count("<text") == plain.count("<text")


def test_a_step_paints_each_changed_view_once(panel, qtbot):
    """Every view that shows the step is painted, and once: a label laid out only while it
    paints (rich text) asked for a second paint, which doubled what a step cost."""
    from collections import Counter

    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QApplication

    panel.show()
    qtbot.waitExposed(panel)
    panel.show_trace(entry(), make_trace())
    for t in (1, 2, 3, 0):
        panel.set_step(t)
        qtbot.wait(20)
    views = {
        "alignment": panel.alignment.plot.viewport(),
        "bars": panel.bars.plot.viewport(),
        "context": panel.bars.context.plot.viewport(),
        "topk": panel.topk.plot.viewport(),
        "arithmetic": panel.arithmetic.text.viewport(),
        "output": panel.output_label,
        "entropy": panel.topk.entropy_label,
    }
    names = {id(w): name for name, w in views.items()}
    paints = Counter()

    class Spy(QObject):
        def eventFilter(self, obj, event):  # noqa: N802
            if event.type() == QEvent.Type.Paint and id(obj) in names:
                paints[names[id(obj)]] += 1
            return False

    spy = Spy()
    app = QApplication.instance()
    app.installEventFilter(spy)
    try:
        for t in (1, 2, 3):
            paints.clear()
            panel.set_step(t)
            for _ in range(5):  # until nothing more is painted
                app.processEvents()
            assert paints == Counter(dict.fromkeys(views, 1)), t
    finally:
        app.removeEventFilter(spy)


def test_hidden_states_follow_the_step(panel):
    from explorer.gui.step.hidden import pca_2d

    tr = make_trace("luong-dot")
    panel.show_trace(entry(), tr)
    panel.tabs.setCurrentWidget(panel.hidden)  # a hidden tab catches up when shown
    points = pca_2d(tr.hidden_matrix())  # (T, 2) the decoder states on their two main axes
    for t in (2, 0, 3):
        panel.set_step(t)
        view = panel.hidden
        assert view.current.isVisible()
        assert (view.current.pos().x(), view.current.pos().y()) == pytest.approx(tuple(points[t]))
        assert view.decoder.masked_steps() == list(range(t + 1, len(tr)))  # columns not reached
        assert view.decoder.cursor.rect().left() == t


def test_the_trajectory_leaves_room_for_its_labels(panel):
    """Labels sit up and to the right of their points: the view reaches past the path there."""
    tr = make_trace("luong-dot")
    panel.show_trace(entry(), tr)
    panel.tabs.setCurrentWidget(panel.hidden)
    pts = panel.hidden.points
    (x0, x1), (y0, y1) = panel.hidden.pca.getPlotItem().getViewBox().viewRange()
    span = pts.max(axis=0) - pts.min(axis=0)
    assert x0 < pts[:, 0].min() and x1 >= pts[:, 0].max() + 0.2 * span[0]
    assert y0 < pts[:, 1].min() and y1 >= pts[:, 1].max() + 0.15 * span[1]


def test_the_context_strip_is_most_of_its_widget(panel, qtbot):
    """Hundreds of unit ticks drew a black band under the strip and left it 8 pixels high."""
    panel.show_trace(entry(), make_trace("luong-dot"))
    panel.show()
    qtbot.wait(20)
    context = panel.bars.context
    strip = context.plot.getPlotItem().getViewBox().sceneBoundingRect().height()
    assert strip >= 0.6 * context.height(), (strip, context.height())
