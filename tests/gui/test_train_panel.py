"""The Train & Load panel, driven offscreen: a tiny model trains for a few steps in a worker."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import QThreadPool

from explorer.gui.session import Session
from explorer.gui.train.options import FORM_DEFAULTS, RNN_DEFAULTS, TRANSFORMER_DEFAULTS
from explorer.gui.train.panel import TrainPanel
from explorer.gui.train.status import format_eta

STEPS = 30
EVAL_EVERY = 10


@pytest.fixture
def panel(qtbot):
    state = Session()
    p = TrainPanel(state)
    qtbot.addWidget(p)
    p.resize(1400, 900)
    yield p
    p.shutdown(30_000)
    assert QThreadPool.globalInstance().activeThreadCount() == 0


def choose_tiny(panel: TrainPanel, qtbot, steps: int = STEPS) -> None:
    panel.form.preset.setCurrentIndex(panel.form.preset.findData("tiny"))
    panel.form.fields["steps"].setValue(steps)
    panel.form.fields["eval_every"].setValue(EVAL_EVERY)
    with qtbot.waitSignal(panel.corpus.loaded, timeout=30_000):
        panel.corpus.set_spec("reverse")
    panel.corpus.size.setValue(2000)
    qtbot.waitUntil(lambda: not panel.corpus.busy(), timeout=30_000)


def test_form_defaults_are_train_options_defaults():
    import dataclasses

    from explorer.seq2seq.training.train import TrainOptions

    def defaults(cls):
        return {f.name: f.default for f in dataclasses.fields(cls)}

    o = TrainOptions().to_dict()
    assert {k: o[k] for k in FORM_DEFAULTS} == FORM_DEFAULTS
    rnn = defaults(pytest.importorskip("explorer.seq2seq.models.rnn").RNNConfig)
    assert {k: rnn[k] for k in RNN_DEFAULTS} == RNN_DEFAULTS
    tf = defaults(pytest.importorskip("explorer.seq2seq.models.transformer").TransformerConfig)
    assert {k: tf[k] for k in TRANSFORMER_DEFAULTS} == TRANSFORMER_DEFAULTS


def test_architecture_fills_its_preset_and_builds_options(panel):
    from explorer.seq2seq.training.presets import PRESETS

    form = panel.form
    form.arch.setCurrentIndex(form.arch.findData("transformer"))
    preset = PRESETS["classroom-transformer"]
    assert form.value("schedule") == "noam"
    assert form.value("lr") == pytest.approx(preset["lr"])
    assert form.value("d_model") == preset["model"]["d_model"]
    assert form.value("label_smoothing") == pytest.approx(0.1)
    assert form.tf_box.isVisibleTo(form) and not form.rnn_box.isVisibleTo(form)
    form.fields["heads"].setValue(8)
    form.fields["steps"].setValue(123)
    o = form.options("copy", 500)
    assert (o.arch, o.corpus, o.corpus_size, o.steps) == ("transformer", "copy", 500, 123)
    assert o.model["heads"] == 8 and o.model["d_ff"] == preset["model"]["d_ff"]
    assert "hidden_dim" not in o.model
    form.arch.setCurrentIndex(form.arch.findData("luong-dot"))
    o = form.options("classroom", 1000)
    assert o.arch == "luong-dot" and o.schedule == "step" and "d_model" not in o.model
    assert o.model["hidden_dim"] == PRESETS["classroom-luong-dot"]["model"]["hidden_dim"]


def test_every_control_has_a_tooltip(panel):
    for name, w in panel.form.fields.items():
        assert w.toolTip(), name
    for w in (panel.start_button, panel.pause_button, panel.stop_button, panel.save_button):
        assert w.toolTip()


def test_format_eta():
    assert format_eta(None) == "time left: estimating…"
    assert format_eta(42.4) == "about 42 s left"
    assert format_eta(125) == "about 2 min 05 s left"
    assert format_eta(3 * 3600 + 60) == "about 3 h 01 min left"


def test_train_tiny_model_shows_progress_and_becomes_available(panel, qtbot):
    choose_tiny(panel, qtbot)
    events = []
    panel.progress.connect(events.append)
    with qtbot.waitSignal(panel.trained, timeout=120_000) as blocker:
        panel.start()
        assert panel.running and not panel.start_button.isEnabled()
    entry = blocker.args[0]
    steps = [e for e in events if e.kind == "step"]
    evals = [e for e in events if e.kind == "eval"]
    assert [e.step for e in steps] == list(range(1, STEPS + 1))
    assert [e.step for e in evals] == [0, 10, 20, 30]
    # The curves hold exactly the numbers the events carried.
    loss = panel.curves.points("loss")
    np.testing.assert_allclose(loss[:, 0], np.arange(1, STEPS + 1))
    np.testing.assert_allclose(loss[:, 1], [e.loss for e in steps])
    bleu = panel.curves.points("val_bleu")
    np.testing.assert_allclose(bleu[:, 1], [e.val_bleu for e in evals])
    np.testing.assert_allclose(panel.curves.points("val_loss")[:, 1], [e.val_loss for e in evals])
    assert len(panel.curves.points("lr")) == STEPS
    assert len(panel.curves.points("grad_norm")) == STEPS
    assert panel.progress_bar.value() == STEPS and panel.progress_bar.maximum() == STEPS
    # The attention replay: one position per evaluation, showing the last one.
    replay = panel.replay
    assert replay.slider.maximum() == len(evals) - 1 == replay.slider.value()
    last = evals[-1].probe
    np.testing.assert_allclose(replay.image.image, last.attention)
    assert f"{last.entropy:.2f}" in replay.entropy_label.text()
    replay.slider.setValue(0)
    np.testing.assert_allclose(replay.image.image, evals[0].probe.attention)
    assert replay.step_label.text() == "Evaluation 1 of 4 · step 0"
    # The trained model is in the state, current, and decodes.
    assert panel.state.current is entry and entry.path is None
    assert entry.arch == "bahdanau" and entry.corpus["name"] == "reverse"
    assert entry.card["steps"] == STEPS
    assert panel.save_button.isEnabled() and panel.start_button.isEnabled()
    # A core is left to the window: torch's default thread count less one (at least one).
    import torch

    from explorer.gui.train.jobs import training_threads

    cpu = torch.get_num_threads()  # the run put it back
    assert panel.trainer.options.threads == training_threads() == max(1, cpu - 1)


def test_pause_resume_and_stop(panel, qtbot):
    choose_tiny(panel, qtbot, steps=2000)
    panel.start()
    qtbot.waitUntil(lambda: panel.last_event is not None and panel.last_event.kind == "step",
                    timeout=60_000)  # fmt: skip
    with qtbot.waitSignal(panel.worker.paused, timeout=10_000):
        panel.toggle_pause()
    assert panel.paused and panel.pause_button.text() == "Resume"
    assert panel.eta_label.text() == "paused"  # no time left while none is passing
    step = panel.last_event.step
    qtbot.wait(300)
    assert panel.last_event.step == step  # nothing ran while paused
    with qtbot.waitSignal(panel.worker.resumed, timeout=10_000):
        panel.toggle_pause()
    qtbot.waitUntil(lambda: panel.last_event.step > step, timeout=30_000)
    with qtbot.waitSignal(panel.worker.paused, timeout=10_000):
        panel.toggle_pause()
    with qtbot.waitSignal(panel.trained, timeout=60_000) as blocker:
        panel.stop()  # stopping a paused run resumes it just to finish
    assert panel.last_event.kind == "stopped"
    assert panel.last_event.step < 2000
    assert blocker.args[0].card["steps"] == panel.last_event.step
    assert not panel.running


def test_save_and_reload_checkpoint(panel, qtbot, tmp_path):
    from explorer.gui.train.jobs import load_checkpoint_job

    choose_tiny(panel, qtbot, steps=12)
    with qtbot.waitSignal(panel.trained, timeout=120_000):
        panel.start()
    path = tmp_path / "tiny.safetensors"
    with qtbot.waitSignal(panel.saved, timeout=30_000):
        panel.save_to(path)
    assert panel.trained_entry.path == path
    card = path.with_suffix(".md").read_text("utf-8")
    n = panel.trainer.model.num_parameters
    assert f"parameters: {n:,}" in card and "steps: 12" in card and "corpus: name=reverse" in card
    loaded = load_checkpoint_job(path)
    assert loaded.arch == "bahdanau" and loaded.card["steps"] == 12
    want = panel.trained_entry.model.state_dict()
    got = loaded.model.state_dict()
    assert set(want) == set(got)
    for k in want:
        np.testing.assert_array_equal(got[k].numpy(), want[k].numpy())


def test_bad_corpus_file_gives_readable_message(panel, qtbot, tmp_path):
    pytest.importorskip("explorer.seq2seq.data.corpus")
    bad = tmp_path / "broken.tsv"
    bad.write_bytes(b"hello\tbonjour\n\x00\x01\x02 binary")
    with qtbot.waitSignal(panel.corpus.failed, timeout=30_000) as blocker:
        panel.corpus.set_spec(str(bad))
    message = blocker.args[0]
    assert "broken.tsv" in message and "\n" not in message
    assert panel.corpus.count.text() == message
    assert panel.corpus.table.rowCount() == 0
    # A good file afterwards previews its pairs and counts.
    good = tmp_path / "good.tsv"
    good.write_text("a b\tb a\nc d e\te d c\n", "utf-8")
    with qtbot.waitSignal(panel.corpus.loaded, timeout=30_000):
        panel.corpus.set_spec(str(good))
    assert panel.corpus.table.rowCount() == 2
    assert panel.corpus.table.item(1, 1).text() == "e d c"
    assert panel.corpus.count.text().startswith("2 pairs · 5 source words · 5 target words")


def test_failure_and_diagnostics_are_shown_prominently(panel):
    from explorer.seq2seq.training.train import Progress

    msg = "The loss became nan at step 7: training stopped. Lower the learning rate."
    panel._on_progress(Progress("diagnostic", 5, 10, message="Attention is still uniform."))
    assert panel.banner.isVisibleTo(panel) and "Attention is still uniform." in panel.banner.text()
    panel._on_progress(Progress("failed", 7, 10, message=msg))
    assert msg in panel.banner.text() and "background" in panel.banner.styleSheet()
    assert panel.diagnostics == ["Attention is still uniform.", msg]


def test_export_data_and_figure(panel, qtbot, tmp_path):
    import json

    choose_tiny(panel, qtbot, steps=10)
    with qtbot.waitSignal(panel.trained, timeout=120_000):
        panel.start()
    data = json.loads(panel.export_data(tmp_path / "run.json").read_text())
    assert data["curves"]["loss"]["step"] == list(range(1, 11))
    assert len(data["probes"]) == len(panel.replay.probes) == 2
    p = panel.replay.current()
    csv = (tmp_path / "att.csv").read_text() if panel.export_data(tmp_path / "att.csv") else ""
    rows = csv.strip().splitlines()
    assert rows[0].split(",")[1:] == list(p.source_pieces)
    assert len(rows) == 1 + len(p.target_pieces)
    row0 = [float(x) for x in rows[1].split(",")[1:]]
    assert math.isclose(sum(row0), float(p.attention[0].sum()), rel_tol=1e-4)
    png = panel.export_figure(tmp_path / "fig.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    with pytest.raises(ValueError, match="xlsx"):
        panel.export_data(tmp_path / "run.xlsx")


def test_export_svg(panel, tmp_path):
    out = panel.export_figure(tmp_path / "fig.svg")
    assert out.read_text("utf-8").lstrip().startswith("<?xml") and "<svg" in out.read_text()


def test_progress_bar_shows_the_steps_asked_for_before_a_run(panel):
    panel.form.fields["steps"].setValue(1234)
    assert (panel.progress_bar.value(), panel.progress_bar.maximum()) == (0, 1234)
    assert panel.progress_bar.text() == "step 0 of 1234"


def test_a_held_panel_builds_its_plots_and_preview_on_release(qtbot):
    """While the window's first model loads the panel is held: no plot, no corpus read (both
    would compete with the load); release builds the training plots and reads the corpus."""
    p = TrainPanel(Session(), hold=True)
    qtbot.addWidget(p)
    assert p._live is None and p._evaluate is None
    assert p.corpus.count.text() == "reading the corpus…"
    p.release()  # the plots are built once a worker has imported their modules
    qtbot.waitUntil(lambda: p._live is not None, timeout=30_000)
    assert p.views.widget(0).isAncestorOf(p.curves)
    qtbot.waitUntil(lambda: not p.corpus.busy(), timeout=60_000)
    assert "pairs" in p.corpus.count.text()
    assert p._evaluate is None  # built when its tab is first shown
    p.views.setCurrentIndex(1)
    assert p._evaluate is not None and p.views.widget(1).isAncestorOf(p.evaluate)
    p.shutdown(30_000)


def test_starting_a_run_while_held_builds_the_plots_it_draws_on(qtbot):
    p = TrainPanel(Session(), hold=True)
    qtbot.addWidget(p)
    p.curves.clear_data()  # what start() does first
    assert p._live is not None


def test_the_form_opens_on_the_preset_whose_values_it_holds(panel):
    from explorer.seq2seq.training.presets import PRESETS

    assert panel.form.preset.currentData() == "classroom-bahdanau"
    preset = PRESETS["classroom-bahdanau"]
    assert (
        panel.form.value("steps") == preset["steps"] and panel.form.arch.currentData() == "bahdanau"
    )


def test_bfloat16_on_the_cpu_is_offered_where_the_processor_has_it(panel, monkeypatch):
    import explorer.seq2seq.training.options as options_module

    form = panel.form
    box = form.fields["cpu_amp"]
    assert not box.isChecked() and form.options("classroom", 1000).cpu_amp is False
    monkeypatch.setattr(options_module, "native_cpu_bfloat16", lambda: True)
    form.refresh_devices()
    assert box.isEnabled()
    box.setChecked(True)
    assert form.options("classroom", 1000).cpu_amp is True  # what the run is given
    monkeypatch.setattr(options_module, "native_cpu_bfloat16", lambda: False)
    form.refresh_devices()  # emulated bfloat16 is slower than float32: not offered
    assert not box.isEnabled() and not box.isChecked()
    assert form.options("classroom", 1000).cpu_amp is False
    assert "no bfloat16" in box.toolTip()


def test_the_wheel_scrolls_the_options_past_a_field_not_clicked_into(panel, qtbot):
    """Scrolling the options column with the wheel leaves the numbers under the pointer alone;
    a field clicked into takes the wheel."""
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    panel.resize(1000, 500)  # a column shorter than its options
    panel.show()
    qtbot.waitExposed(panel)
    hidden = panel.form.fields["hidden_dim"]
    bar = panel.options_column.verticalScrollBar()
    assert bar.maximum() > 0
    before, top = hidden.value(), bar.value()

    def wheel_down(w) -> None:
        at = QPointF(w.rect().center())
        QApplication.sendEvent(w, QWheelEvent(
            at, QPointF(w.mapToGlobal(at.toPoint())), QPoint(0, 0), QPoint(0, -120),
            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
            Qt.ScrollPhase.NoScrollPhase, False,
        ))  # fmt: skip

    wheel_down(hidden)
    assert hidden.value() == before and bar.value() > top  # the column scrolled, not the field
    assert hidden.focusPolicy() == Qt.FocusPolicy.StrongFocus  # the wheel gives no focus
    panel.activateWindow()
    hidden.setFocus()
    qtbot.waitUntil(hidden.hasFocus, timeout=5_000)
    wheel_down(hidden)
    assert hidden.value() == before - hidden.singleStep()
