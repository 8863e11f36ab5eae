"""Replaying a lesson: after each scene the session's model, sentence, forced tokens and step and
the window's tab and view are the scene's; the shipped lecture replays end to end; a scene saved
from the window reads back; a bad lesson is one line in the status bar."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PySide6.QtCore import QSettings, QThreadPool
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication

from explorer import assets
from explorer.gui.lesson import LessonPlayer
from explorer.gui.runner import Runner
from explorer.gui.session import Session
from explorer.seq2seq.lesson import FORMAT, load_lesson

A = "the good cow did not laugh"
B = "the small dog ate the cake"


@pytest.fixture(scope="module")
def lesson_folder(tmp_path_factory, tiny_models):
    """Two tiny checkpoints and a lesson of three scenes over them."""
    from explorer.seq2seq.checkpoint import save_checkpoint

    folder = tmp_path_factory.mktemp("lesson")
    (folder / "models").mkdir()
    sums = {}
    for arch in ("bahdanau", "none"):
        entry = getattr(tiny_models, arch)
        path = save_checkpoint(folder / "models" / f"{arch}.safetensors", entry.model,
                               entry.tokenizer, corpus=entry.corpus)  # fmt: skip
        sums[arch] = hashlib.sha256(path.read_bytes()).hexdigest()
    scenes = [
        {"model": "models/bahdanau.safetensors", "sha256": sums["bahdanau"], "sentence": A,
         "step": 2, "tab": "step", "note": "first"},
        {"model": "models/none.safetensors", "sha256": sums["none"], "sentence": B, "step": 3,
         "tab": "beam", "forced": [{"step": 2, "piece": "petit"}], "beam": {"beam": 3},
         "note": "second"},
        {"model": "models/bahdanau.safetensors", "sha256": sums["bahdanau"], "sentence": A,
         "step": 4, "tab": "step", "view": "hidden states", "edits": [{"step": 2, "source": 0}],
         "note": "third"},
    ]  # fmt: skip
    doc = {"format": FORMAT, "version": 1, "title": "tiny", "scenes": scenes}
    (folder / "tiny.json").write_text(json.dumps(doc))
    return folder


def wait_scene(qtbot, player, index):
    qtbot.waitUntil(lambda: player.index == index and player.ready, timeout=60_000)
    assert player.session.runner.wait_idle(30_000)


def test_each_scene_is_a_sequence_of_session_changes(qapp, qtbot, lesson_folder):
    session = Session(run=Runner())
    shown, notes, said = [], [], []
    player = LessonPlayer(session, lambda tab, view: shown.append((tab, view)))
    player.note.connect(notes.append)
    session.status.connect(said.append)
    lesson = load_lesson(lesson_folder / "tiny.json")
    player.open(lesson)
    for i, scene in enumerate(lesson.scenes):
        if i:
            player.next()
        wait_scene(qtbot, player, i)
        assert session.current.path.resolve() == scene.path
        assert session.sentence == scene.sentence and session.step == scene.step - 1
        assert session.trace.origin.model == session.current.name
        assert shown[-1] == (scene.tab, scene.view) and scene.note in notes[-1]
        tok = session.current.tokenizer
        assert session.forced == [(f.step - 1, tok.piece_to_id(f.piece, "tgt"))
                                  for f in scene.forced]  # fmt: skip
        for t, token in session.forced:
            assert session.trace.tokens[t] == token
        assert session.beam_params["beam"] == scene.beam.get("beam", 5)
        assert tuple(session.edits) == scene.edits  # scene 3 re-decodes with α_2 on piece 0
        if scene.edits:
            assert session.original is not None and session.trace.method == "edited"
            np.testing.assert_allclose(session.trace.steps[1].cross_attention[-1, 0][0], 1.0)
    assert len({id(m) for m in session.models}) == 2  # each checkpoint loaded once
    player.previous()  # back to scene 2: the forced token is forced again, once
    wait_scene(qtbot, player, 1)
    assert len(session.forced) == 1 and session.step == 2
    player.go(0)
    wait_scene(qtbot, player, 0)
    assert session.forced == [] and session.original is None and session.step == 1


@pytest.fixture
def window(qtbot, tmp_path):
    from explorer.gui.widgets import theme
    from explorer.gui.window import MainWindow

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings, models_dir=tmp_path / "no-models", error_dialogs=False)
    qtbot.addWidget(w)
    yield w
    w.shutdown()
    theme.apply(QApplication.instance(), "light", False)
    assert QThreadPool.globalInstance().activeThreadCount() == 0


def test_the_shipped_lecture_replays_end_to_end(window, qtbot, tmp_path):
    path = assets.resources_dir() / "lessons" / "lecture.json"
    lesson = load_lesson(path)
    lc = window.lesson
    assert lc.actions["Next scene"].shortcut() == QKeySequence("PgDown")
    assert lc.actions["Previous scene"].shortcut() == QKeySequence("PgUp")
    lc.open(path)
    state = window.state
    for i, scene in enumerate(lesson.scenes):
        if i:
            lc.actions["Next scene"].trigger()
        wait_scene(qtbot, lc.player, i)
        assert state.current.path.resolve() == scene.path, scene.title
        assert (state.sentence, state.step) == (scene.sentence, scene.step - 1)
        assert lc.current_view() == (scene.tab, scene.view or lc.current_view()[1])
        assert not lc.bar.isHidden() and scene.note in lc.note_label.text()
        trace = state.trace
        if scene.title.startswith("« noir »"):
            assert trace.pieces[scene.step - 1] == "noir"
            assert trace.src_pieces[int(trace.steps[2].attention().argmax())] == "black"
        if scene.tab == "beam":
            beam = state.beam
            assert beam.greedy.pieces[2:5] == ["l", "'", "appelle"]
            assert beam.nbest[0].text == "son lapin la suit parfois"
        if scene.forced:
            assert trace.pieces[2:5] == ["la", "suit", "parfois"]
    assert window.last_error == ""
    scene = lc.save_scene("forced, saved again", title="again")  # prepare a lesson from here
    assert scene.forced == lesson.scenes[-1].forced or scene.forced[0].step == 3
    out = lc.save_lesson(tmp_path / "mine.json")
    back = load_lesson(out)
    assert back.scenes[0].model == "classroom-none" and back.scenes[0].step == 3
    assert back.scenes[0].note == "forced, saved again"
    lc.close()
    assert lc.bar.isHidden()


def test_a_bad_lesson_is_one_line_in_the_status_bar(window, qtbot, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "attention-explorer lesson", "version": 1, "scenes": [{"model": '
                   '"../../etc/passwd", "sha256": "' + "0" * 64 + '"}]}')  # fmt: skip
    window.lesson.open(bad)
    qtbot.waitUntil(lambda: window.last_error != "", timeout=30_000)
    assert window.last_error.startswith("bad.json: scenes[0].model: ")
    assert "\n" not in window.last_error and window.lesson.player.lesson is None


def test_a_scene_needs_a_saved_model(window):
    from explorer.seq2seq.lesson import LessonError

    with pytest.raises(LessonError, match="no file; save it first"):
        window.lesson.save_scene("note")
    with pytest.raises(LessonError, match="no scene saved yet"):
        window.lesson.save_lesson("x.json")


def test_the_neighbours_view_follows_the_session(qapp, qtbot, tiny_models):
    """A training sentence's encoder state finds itself at distance 0; the view follows the
    step and the kind; each model's index is built once and kept."""
    from explorer.gui.step.neighbours import HIGHLIGHT, NeighboursView, sentence_html

    session = Session(run=Runner())
    session.add(tiny_models.bahdanau)
    session.add(tiny_models.none, make_current=False)
    pairs = tiny_models.pairs[:150]
    asked = []

    def pairs_fn(entry):
        asked.append(entry.name)
        return pairs

    view = NeighboursView(session, pairs_fn=pairs_fn, cap=2000)
    qtbot.addWidget(view)
    view.show()
    assert view.empty.text() == "type a sentence to translate"
    session.want("trace")
    session.set_sentence(pairs[7][0])
    qtbot.waitUntil(lambda: view.result is not None, timeout=60_000)
    assert asked == [tiny_models.bahdanau.name]
    assert view.result.kind == "decoder" and view.result.position == 0
    session.set_step(2)
    assert view.result.position == 2  # follows the step, no new index
    view.kind.setCurrentIndex(view.kind.findData("encoder"))
    view.piece.setCurrentIndex(1)
    best = view.result.found[0]
    assert (best.position, best.side, best.distance) == (1, "source", pytest.approx(0, abs=1e-5))
    assert " ".join(best.pieces[:-1]) == " ".join(session.trace.src_pieces[:-1])
    assert session.source() + " </s>" in view.text.toPlainText()  # the sentence, as words
    assert sentence_html(("le", "chat", "<b>"), 1) == f"le {HIGHLIGHT.format('chat')} &lt;b&gt;"
    pieces, words = ("le", "s", "'", "est", "</s>"), (0, 1, 1, 1, -1)  # pieces of one word together
    assert sentence_html(pieces, 1, words) == f"le {HIGHLIGHT.format('s')}&#x27;est &lt;/s&gt;"
    assert view.result.projection.points.shape == (8, 2)
    qtbot.wait(50)  # laid out: the eight labels sit beside their points, none over another,
    middle = view.label_points.mean(axis=0)  # even when the states are one point
    view.label_points = view.label_points * 0 + middle
    for label in view.labels:
        label.setPos(*middle)
    view.place()
    rects = [label.sceneBoundingRect() for label in view.labels]
    assert len(rects) == 8 and not any(
        a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1 :]
    )
    session.set_current(tiny_models.none)
    qtbot.waitUntil(lambda: view.result is not None and len(asked) == 2, timeout=60_000)
    session.set_current(tiny_models.bahdanau)
    qtbot.waitUntil(lambda: view.result is not None, timeout=60_000)
    assert len(asked) == 2  # the first model's index was kept
    assert session.runner.wait_idle(30_000)


def test_a_model_without_a_built_in_corpus_says_why(qapp, qtbot, tiny_models):
    from explorer.gui.step.neighbours import NeighboursView

    session = Session(run=Runner())
    session.add(tiny_models.bahdanau)  # no stored options: its corpus cannot be regenerated
    view = NeighboursView(session)
    qtbot.addWidget(view)
    view.show()
    session.want("trace")
    session.set_sentence(A)
    qtbot.waitUntil(lambda: "No neighbours" in view.empty.text(), timeout=60_000)
    assert "does not record the options" in view.empty.text()
    assert session.runner.wait_idle(30_000)


def run_app(tmp_path, *args):
    import os
    import subprocess
    import sys

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True,
                       timeout=300, env=env)  # fmt: skip
    noise = "This plugin does not support propagateSizeHints()"  # Qt's offscreen platform
    return r.returncode, [x for x in r.stderr.splitlines() if x != noise]


def test_the_lesson_flag_opens_a_lesson_at_a_scene(tmp_path):
    out = tmp_path / "scene.png"
    lecture = assets.resources_dir() / "lessons" / "lecture.json"
    rc, err = run_app(tmp_path, "--screenshot", str(out), "--lesson", str(lecture), "--scene", "3")
    assert rc == 0, err[-20:]
    assert out.stat().st_size > 10_000
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "attention-explorer lesson", "version": 1, "scenes": [{"model": '
                   '"classroom-none", "sha256": "' + "0" * 64 + '"}]}')  # fmt: skip
    rc, err = run_app(tmp_path, "--screenshot", str(tmp_path / "x.png"), "--lesson", str(bad))
    assert rc == 1 and len(err) == 1, err
    assert err[0].startswith("error: bad.json: scenes[0].model: classroom-none.safetensors has ")


def test_a_scene_without_a_sentence_and_a_force_past_the_end(qapp, qtbot, tmp_path):
    path = assets.models_dir() / "classroom-none.safetensors"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    scenes = [
        {"model": "classroom-none", "sha256": digest, "tab": "beam", "note": "empty"},
        {"model": "classroom-none", "sha256": digest,
         "sentence": "her rabbit sometimes follows her", "forced": [{"step": 9, "piece": "suit"}]},
    ]  # fmt: skip
    doc = {"format": FORMAT, "version": 1, "title": "edge", "scenes": scenes}
    (tmp_path / "edge.json").write_text(json.dumps(doc))
    session = Session(run=Runner())
    errors, shown = [], []
    session.error.connect(errors.append)
    player = LessonPlayer(session, lambda tab, view: shown.append(tab))
    player.open(load_lesson(tmp_path / "edge.json"))
    wait_scene(qtbot, player, 0)
    assert session.current.path == path and session.sentence == "" and shown == ["beam"]
    player.next()
    wait_scene(qtbot, player, 1)
    assert errors == ["Lesson, scene 2: cannot force 'suit' at step 9: the decode has 7 steps"]
    assert session.forced == [] and len(shown) == 1  # stopped: the scene was not shown
