"""What the screen shows is the current model's numbers: 300 random changes on the real window.

After each change (model, sentence, step, force, beam size, tab, theme, comparison), at once and
again once the runner is idle, every visible view either draws a record naming the current model
and the current sentence (as that model reads it) or shows an empty state saying why.
"""

from __future__ import annotations

import random
import time

import pytest
from PySide6.QtCore import QSettings

from explorer.gui.session import SweepRecord
from explorer.gui.widgets.empty import shown
from explorer.gui.window import MainWindow
from explorer.seq2seq.decoding.trace import SourceRecord

CHANGES = 300
SEED = 1414
SENTENCES = [
    "the black cat sat on the mat",
    "her rabbit sometimes follows her",
    "the little dog sleeps",
    "a bird",
    "",
    "the cat that i saw yesterday slept on the red mat",
]
TINY = {
    "classroom-none": {"arch": "none"},
    "classroom-bahdanau": {"arch": "bahdanau"},
    "classroom-transformer": {
        "arch": "transformer",
        "model": {"d_model": 16, "heads": 2, "enc_layers": 1, "dec_layers": 1, "d_ff": 32},
        "schedule": "constant",
        "lr": 3e-3,
    },
}


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """Three tiny checkpoints named like the bundled ones: no attention, Bahdanau, Transformer."""
    from explorer.seq2seq.training.train import Trainer, TrainOptions

    folder = tmp_path_factory.mktemp("consistency-models")
    for name, overrides in TINY.items():
        opts = TrainOptions.from_preset(
            "tiny", steps=10, eval_every=0, corpus_size=200,
            out=str(folder / f"{name}.safetensors"), **overrides,
        )  # fmt: skip
        assert [ev.kind for ev in Trainer(opts).run()][-1] == "done"
    return folder


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory, models_dir):
    """One window for the module's tests (each sets what it needs): loading is the slow part."""
    path = tmp_path_factory.mktemp("consistency-settings") / "settings.ini"
    settings = QSettings(str(path), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings, models_dir=models_dir, projector=False, error_dialogs=False)
    w.resize(1400, 900)
    w.show()
    deadline = time.monotonic() + 120  # a bound on waiting, not a timing assertion
    while (len(w.state.models) < 3 or w.loading) and time.monotonic() < deadline:
        qapp.processEvents()
        time.sleep(0.01)
    assert len(w.state.models) == 3, "the three tiny models did not load"
    w.set_panel("beam")
    w.set_panel("step")
    yield w
    w.shutdown()
    w.deleteLater()


# -- the changes -----------------------------------------------------------------------------
def change_model(w, rng):
    w.state.set_current(rng.choice(w.state.models))


def type_sentence(w, rng):
    text = rng.choice(SENTENCES)
    if rng.random() < 0.5:
        w.panels["step"].sentence.setText(text)
        w.panels["step"].sentence.returnPressed.emit()
    else:  # typed into Beam vs greedy: reaches the session after the debounce
        w.panels["beam"].sentence.setText(text)


def move_step(w, rng):
    step = w.panels["step"]
    rng.choice([step.forward, step.back, step.first, step.last, lambda: step.set_step(2)])()


def force(w, rng):
    step = w.panels["step"]
    if step.trace is not None and rng.random() < 0.8:
        step.force_token(rng.randrange(4, 40))
    else:
        step.restore()


def beam_size(w, rng):
    w.panels["beam"].beam.setValue(rng.randint(1, 6))


def tab(w, rng):
    rng.choice([lambda: w.set_panel(rng.choice(["step", "beam", "train"])),
                lambda: w.panels["step"].tabs.setCurrentIndex(rng.randrange(5)),
                lambda: w.panels["beam"].tabs.setCurrentIndex(rng.randrange(3))])()  # fmt: skip


def theme(w, rng):
    (w.dark_action if rng.random() < 0.7 else w.projector_action).trigger()


def compare(w, rng):
    step = w.panels["step"]
    if rng.random() < 0.5:
        step.compare_check.setChecked(not step.compare_check.isChecked())
    else:
        step.compare.model_box.setCurrentIndex(rng.randrange(step.compare.model_box.count()))
        step.compare.model_box.activated.emit(step.compare.model_box.currentIndex())


def exact_or_sweep(w, rng):
    beam = w.panels["beam"]
    beam.tabs.setCurrentIndex(1 if rng.random() < 0.7 else 2)
    w.set_panel("beam")
    if beam.tabs.currentIndex() == 1:
        beam.exact_button.click()
    else:
        beam.sweep.count.setValue(3)
        beam.sweep.run_button.click()


CHANGE = [change_model] * 4 + [type_sentence] * 4 + [move_step] * 3 + [force] * 2
CHANGE += [beam_size, beam_size, tab, tab, theme, compare, exact_or_sweep]


# -- the check -------------------------------------------------------------------------------
def visible_views(w) -> dict:
    step, beam = w.panels["step"], w.panels["beam"]
    views = {f"step.{k}": v for k, v in step.views.items()}
    views.update({"step.compare": step.compare, "beam.tree": beam.tree_view,
                  "beam.details": beam.details, "beam.nbest": beam.nbest_table,
                  "beam.exact": beam.exact_text, "beam.sweep": beam.sweep,
                  "step.neighbours": step.neighbours})  # fmt: skip
    return {k: v for k, v in views.items() if v.isVisible()}


def check(w, what: str) -> int:
    """Assert every visible view is current or empty; how many drew a record."""
    s = w.state
    name, source = s.expected() or ("", "")
    drawn = 0
    for key, view in visible_views(w).items():
        got = shown(view)
        if isinstance(got, str) and got:
            continue  # an explicit empty state
        assert isinstance(got, SourceRecord), f"{what}: {key} shows neither a record nor why"
        drawn += 1
        if key == "beam.sweep":  # the sweep belongs to a model and a test set, not a sentence
            assert isinstance(view.record, SweepRecord) and got.model == name, (what, key, got)
            continue
        if key == "step.compare":
            other = s.compare_entry()
            assert other is not None and got.model == other.name, (what, key, got)
            assert got.text == s.source(other), (what, key, got)
            continue
        assert (got.model, got.text) == (name, source), f"{what}: {key} shows {got}"
    return drawn


def settle(w, qtbot) -> None:
    beam = w.panels["beam"]
    qtbot.waitUntil(lambda: not beam._debounce.isActive(), timeout=5_000)
    assert w.state.runner.wait_idle(60_000), "a worker did not finish"


def test_every_visible_view_shows_the_current_model_and_sentence(window, qtbot):
    rng = random.Random(SEED)
    drawn = 0
    for i in range(CHANGES):
        change = rng.choice(CHANGE)
        change(window, rng)
        what = f"change {i} ({change.__name__})"
        check(window, what + ", at once")
        if rng.random() < 0.85:  # and sometimes the next change lands while work is running
            settle(window, qtbot)
            drawn += check(window, what + ", once idle")
            for key in ("step", "beam"):  # and both sentence fields say what the views show
                typed = " ".join(window.panels[key].sentence.text().split())
                assert typed == window.state.sentence, f"{what}: the {key} panel's field"
    settle(window, qtbot)
    assert drawn > CHANGES  # the views did draw records, not only empty states


def test_no_attention_model_is_not_drawn_as_a_matrix(window, qtbot):
    s = window.state
    s.set_current(next(m for m in s.models if m.arch == "none"))
    window.panels["step"].set_sentence("the black cat sat on the mat")
    settle(window, qtbot)
    step = window.panels["step"]
    assert step.trace is not None and step.alignment.matrix is None
    assert shown(step.alignment) == "this model has no attention: it reads one fixed context vector"


def test_transformer_tab_drops_old_heatmaps_for_an_rnn(window, qtbot):
    s, step = window.state, window.panels["step"]
    step.tabs.setCurrentWidget(step.transformer)
    s.set_current(next(m for m in s.models if m.arch == "transformer"))
    step.set_sentence("the black cat sat on the mat")
    settle(window, qtbot)
    assert shown(step.transformer).model == s.current.name
    s.set_current(next(m for m in s.models if m.arch == "bahdanau"))
    step.set_sentence("the little dog sleeps")
    settle(window, qtbot)
    assert "not a Transformer" in shown(step.transformer)
    assert step.transformer.cross.shape == (1, 1)  # the Transformer's maps are gone


def test_exact_search_readout_is_dropped_when_sentence_or_model_changes(window, qtbot):
    s, beam = window.state, window.panels["beam"]
    window.set_panel("beam")
    beam.tabs.setCurrentIndex(1)
    beam.set_sentence("the little dog sleeps")
    settle(window, qtbot)
    beam.exact_button.click()
    settle(window, qtbot)
    got = shown(beam.exact_text)
    assert got == SourceRecord(s.current.name, "the little dog sleeps", ())
    assert s.current.name in beam.exact_text.text()
    beam.set_sentence("her rabbit sometimes follows her")
    assert "not computed for this sentence yet" in shown(beam.exact_text)
    settle(window, qtbot)
    beam.exact_button.click()
    settle(window, qtbot)
    s.set_current(next(m for m in s.models if m is not s.current))
    assert isinstance(shown(beam.exact_text), str)


def test_sweep_names_its_model_and_is_dropped_with_it(window, qtbot):
    s, beam = window.state, window.panels["beam"]
    window.set_panel("beam")
    beam.tabs.setCurrentIndex(2)
    beam.sweep.count.setValue(3)
    beam.sweep.run_button.click()
    settle(window, qtbot)
    record = beam.sweep.record
    assert record.done and [p[0] for p in record.points] == [1, 2, 4, 8, 16]
    assert record.origin.model == s.current.name and "3 pairs" in record.origin.text
    assert s.current.name in beam.sweep.status.text()
    s.set_current(next(m for m in s.models if m is not s.current))
    assert beam.sweep.record is None and "not run for this model" in shown(beam.sweep)
