"""The main window: tabs, status bar, checkpoint loading in a worker, settings, closing cleanly."""

from __future__ import annotations

import os

import pytest
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QThreadPool, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from explorer.gui.widgets import theme
from explorer.gui.window import MainWindow


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A checkpoint of a tiny model trained for a few steps by the real Trainer."""
    from explorer.seq2seq.training.train import Trainer, TrainOptions

    out = tmp_path_factory.mktemp("ck") / "tiny.safetensors"
    trainer = Trainer(TrainOptions.from_preset("tiny", steps=6, eval_every=0, out=str(out)))
    kinds = [ev.kind for ev in trainer.run()]
    assert kinds[-1] == "done" and out.is_file()
    return out


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, settings, tmp_path):
    windows = []

    def make(**kw):
        kw.setdefault("models_dir", tmp_path / "no-models")
        kw.setdefault("error_dialogs", False)
        w = MainWindow(settings=settings, **kw)
        qtbot.addWidget(w)
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.shutdown()
    theme.apply(QApplication.instance(), "light", False)
    assert QThreadPool.globalInstance().activeThreadCount() == 0


def test_three_panels_and_no_model_message(make_window, qtbot):
    w = make_window()
    assert [w.tabs.tabText(i) for i in range(3)] == [
        "Train && Load",
        "Step-through",
        "Beam vs greedy",
    ]
    assert w.state.current is None
    assert w.model_label.text().startswith("No model loaded")
    with qtbot.waitSignal(w.device_known, timeout=60_000) as blocker:
        pass
    from explorer.seq2seq.training.train import describe_device, pick_device

    # The device's name; its thread count is torch's at the moment of asking, which a training
    # run elsewhere in the session may have lowered by one meanwhile.
    assert blocker.args[0].split(" (")[0] == describe_device(pick_device("auto")).split(" (")[0]
    assert w.device_label.text() == f"device: {blocker.args[0]}"


def test_bundled_model_loads_at_start(make_window, qtbot, tiny_checkpoint, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "classroom-bahdanau.safetensors").write_bytes(tiny_checkpoint.read_bytes())
    w = make_window(models_dir=models)
    assert w.loading  # loading runs in a worker; the window is already usable
    qtbot.waitUntil(lambda: not w.loading, timeout=60_000)
    assert w.state.current is not None
    assert w.state.current.path == models / "classroom-bahdanau.safetensors"
    assert w.model_label.text() == f"model: {w.state.current.name}"
    assert not w.busy.isVisible()


def test_default_bundled_model_loads_first_and_the_others_after_it(
    make_window, qtbot, tiny_checkpoint, tmp_path
):
    from explorer.gui.window import BUNDLED

    models = tmp_path / "models"
    models.mkdir()
    for name in reversed(BUNDLED):  # written in the opposite order: the window's order wins
        (models / f"{name}.safetensors").write_bytes(tiny_checkpoint.read_bytes())
    w = make_window(models_dir=models)
    assert w.loading == {str(models / f"{BUNDLED[0]}.safetensors")}  # one load at a time
    qtbot.waitUntil(lambda: not w.loading, timeout=120_000)
    assert [e.path.name for e in w.state.models] == [f"{n}.safetensors" for n in BUNDLED]
    assert w.state.current.path.name == f"{BUNDLED[0]}.safetensors"


def test_a_panel_is_built_when_its_tab_is_first_shown(make_window, qtbot, tiny_checkpoint):
    pytest.importorskip("explorer.gui.step.panel")
    w = make_window()
    assert set(w.panels.built()) == {"step"}  # the opening tab only
    with qtbot.waitSignal(w.model_loaded, timeout=60_000) as blocker:
        w.open_checkpoint(tiny_checkpoint)
    w.tabs.setCurrentIndex(2)
    assert set(w.panels.built()) == {"step", "beam"}
    beam = w.panels.built()["beam"]
    assert w.current_panel() is beam and beam.isVisibleTo(w)
    assert beam.state.current is blocker.args[0]  # it took the model current before it was built
    assert w.panels["train"] is w.panels["train"]  # asked for by code: built once
    assert set(w.panels.built()) == {"train", "step", "beam"}


def test_open_checkpoint_updates_state_and_recent_files(make_window, qtbot, tiny_checkpoint):
    w = make_window()
    with qtbot.waitSignal(w.model_loaded, timeout=60_000) as blocker:
        w.open_checkpoint(tiny_checkpoint)
    entry = blocker.args[0]
    assert w.state.current is entry and entry.arch == "bahdanau"
    assert w.recent_files() == [str(tiny_checkpoint.resolve())]
    assert [a.text() for a in w.recent_menu.actions()] == ["tiny.safetensors"]
    assert [a.text() for a in w.models_menu.actions()] == [entry.name]


def test_bad_checkpoint_gives_one_line_error_and_keeps_model(
    make_window, qtbot, tiny_checkpoint, tmp_path
):
    pytest.importorskip("explorer.seq2seq.checkpoint")
    w = make_window()
    with qtbot.waitSignal(w.model_loaded, timeout=60_000):
        w.open_checkpoint(tiny_checkpoint)
    good = w.state.current
    bad = tmp_path / "random.safetensors"
    bad.write_bytes(os.urandom(4096))
    with qtbot.waitSignal(w.load_failed, timeout=60_000) as blocker:
        w.open_checkpoint(bad)
    message = blocker.args[0]
    assert "random.safetensors" in message and "\n" not in message
    assert w.last_error == f"cannot open checkpoint: {message}"
    assert "random.safetensors" in w.statusBar().currentMessage()
    assert w.state.current is good
    assert w.recent_files() == [str(tiny_checkpoint.resolve())]


def test_error_dialog_does_not_block(make_window, qtbot):
    w = make_window(error_dialogs=True)
    w.show()
    w.state.error.emit("something went wrong in a worker")
    assert w.statusBar().currentMessage() == "Error: something went wrong in a worker"
    # Reaching this line means the dialog did not block; it is open, beside a working window.
    boxes = w.findChildren(QMessageBox)
    assert len(boxes) == 1 and boxes[0].isVisible()
    assert boxes[0].text() == "something went wrong in a worker"
    boxes[0].close()


def test_drop_checkpoint_loads_it(make_window, qtbot, tiny_checkpoint):
    w = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tiny_checkpoint))])
    event = QDropEvent(
        QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )  # fmt: skip
    with qtbot.waitSignal(w.model_loaded, timeout=60_000):
        w.dropEvent(event)
    assert w.state.current.path == tiny_checkpoint


def test_a_marian_folder_dropped_on_the_window_becomes_the_current_model(
    make_window, qtbot, tmp_path
):
    from marian_models import build_marian

    folder = tmp_path / "opus-mt-tiny"
    build_marian(folder)
    w = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    event = QDropEvent(
        QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )  # fmt: skip
    with qtbot.waitSignal(w.model_loaded, timeout=60_000) as blocker:
        w.dropEvent(event)
    entry = blocker.args[0]
    assert w.state.current is entry and entry.arch == "transformer"
    assert w.recent_files() == [str(folder.resolve())]
    assert [a.text() for a in w.recent_menu.actions()] == ["opus-mt-tiny"]


def test_a_hub_name_stays_a_name_in_the_recent_list(make_window, tiny_checkpoint):
    w = make_window()
    w._remember("Helsinki-NLP/opus-mt-en-fr")
    w._remember(tiny_checkpoint)
    assert w.recent_files() == [str(tiny_checkpoint.resolve()), "Helsinki-NLP/opus-mt-en-fr"]
    assert [a.text() for a in w.recent_menu.actions()] == ["tiny.safetensors", "opus-mt-en-fr"]


def test_projector_and_theme_persist(make_window, settings):
    app = QApplication.instance()
    w = make_window()
    normal, big = theme.metrics(*w.screen_size()), theme.metrics(*w.screen_size(), True)
    base = app.font().pixelSize()
    scales = []
    theme.signals().changed.connect(lambda name, scale: scales.append((name, scale)))
    w.projector_action.trigger()
    assert app.font().pixelSize() == big.body_px
    assert base == normal.body_px < big.body_px
    assert scales[-1] == ("light", big.scale)
    tick = w.train_panel.curves.plots["loss"].getAxis("left").style["tickFont"]
    assert tick.pixelSize() == big.plot_px
    w.dark_action.trigger()
    assert scales[-1] == ("dark", big.scale)
    assert app.palette().window().color().name() == theme.COLORS["dark"]["window"]
    w.close()
    settings.sync()
    again = make_window()
    assert again.projector_action.isChecked() and again.dark_action.isChecked()
    assert theme.signals().metrics == big


def test_the_display_named_at_start_wins_over_the_one_saved(make_window, settings):
    app = QApplication.instance()
    settings.setValue("theme", "light")
    settings.setValue("projector", False)
    w = make_window(projector=True, theme_name="dark")
    assert w.projector_action.isChecked() and w.dark_action.isChecked()
    assert app.palette().window().color().name() == theme.COLORS["dark"]["window"]
    w.close()
    settings.sync()
    assert make_window().dark_action.isChecked()  # kept, as if chosen in the View menu
    assert not make_window(theme_name="light").dark_action.isChecked()


def test_the_command_lines_theme_reaches_a_live_window(tmp_path):
    import subprocess
    import sys

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path))
    r = subprocess.run(
        [sys.executable, "-m", "explorer", "--theme", "dark", "--quit-when-ready"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    saved = QSettings(
        str(tmp_path / "attention-explorer" / "attention-explorer.conf"),
        QSettings.Format.IniFormat,
    )
    assert saved.value("theme") == "dark"


def test_geometry_tab_and_corpus_persist(make_window, qtbot, tmp_path):
    w = make_window()
    w.resize(720, 540)
    w.set_panel("beam")
    w.train_panel.corpus.set_spec("copy")
    w.close()
    again = make_window()
    assert (again.size().width(), again.size().height()) == (720, 540)
    assert again.tabs.currentIndex() == 2
    assert again.train_panel.corpus.spec() == "copy"


def test_last_tab_opens_without_building_the_others(make_window):
    w = make_window()
    w.set_panel("beam")
    w.close()
    again = make_window()
    assert again.tabs.currentIndex() == 2
    assert set(again.panels.built()) == {"beam"}
    again.close()  # closing keeps the saved corpus although Train & Load was never built
    assert make_window().train_panel.corpus.spec() == w.train_panel.corpus.spec()


def test_launch_from_the_command_line_shows_the_default_model(tmp_path):
    """``python -m explorer`` as a user starts it: a fresh process with the bundled models."""
    import subprocess
    import sys

    from explorer.gui.window import bundled_paths

    if not bundled_paths():
        pytest.skip("no bundled models in this checkout")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path))
    r = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-m", "explorer", "--quit-when-ready"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    noise = "This plugin does not support propagateSizeHints()"  # Qt's offscreen platform
    assert r.returncode == 0, "\n".join(x for x in r.stderr.splitlines() if x != noise)[-3000:]
    shown, ready, done = (line.split() for line in r.stdout.splitlines())
    assert shown[0] == "SHOWN" and ready[0] == "READY"
    assert 0 < float(shown[1]) <= float(ready[1])  # the CPU seconds it took
    assert done[0] == "ALL" and float(done[1]) >= 0  # the event loop's longest stall


def test_close_while_training_stops_the_worker(make_window, qtbot):
    w = make_window()
    panel = w.train_panel
    panel.form.preset.setCurrentIndex(panel.form.preset.findData("tiny"))
    panel.form.fields["steps"].setValue(5000)
    panel.corpus.set_spec("reverse")
    qtbot.waitUntil(lambda: not panel.corpus.busy(), timeout=30_000)
    panel.start()
    qtbot.waitUntil(
        lambda: panel.last_event is not None and panel.last_event.kind == "step", timeout=60_000
    )
    assert QThreadPool.globalInstance().activeThreadCount() >= 1
    w.close()
    assert QThreadPool.globalInstance().activeThreadCount() == 0
    assert panel.trainer.step < 5000


def test_open_in_step_switches_tab_and_shows_trace(make_window, qtbot, tiny_checkpoint):
    pytest.importorskip("explorer.gui.step.panel")
    from explorer.seq2seq.decoding.decode import greedy

    w = make_window()
    with qtbot.waitSignal(w.model_loaded, timeout=60_000) as blocker:
        w.open_checkpoint(tiny_checkpoint)
    entry = blocker.args[0]
    trace = greedy(entry.model, entry.tokenizer, "a b c")
    step = w.panels["step"]
    w.state.open_in_step.emit(entry, trace)
    assert w.current_panel() is step
    assert w.state.current is entry and step.trace.tokens == trace.tokens
    assert step.trace.origin.model == entry.name and step.sentence.text() == "a b c"


def test_export_asks_the_current_panel(make_window, tmp_path):
    w = make_window()
    w.resize(1400, 900)
    w.set_panel("train")
    w._export("export_figure", str(tmp_path / "train.png"))
    assert (tmp_path / "train.png").read_bytes()[:4] == b"\x89PNG"
    w._export("export_data", str(tmp_path / "train.xlsx"))
    assert w.last_error.startswith("export failed:") and "xlsx" in w.last_error


def test_corpus_preview_waits_for_the_default_model(make_window, qtbot, tiny_checkpoint, tmp_path):
    """Generating the classroom corpus is seconds of Python: it starts once the model is in."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "classroom-bahdanau.safetensors").write_bytes(tiny_checkpoint.read_bytes())
    w = make_window(models_dir=models)
    box = w.train_panel.corpus
    assert w.loading and box.busy() and box._worker is None  # held, not reading yet
    qtbot.waitUntil(lambda: not w.loading and not box.busy(), timeout=120_000)
    assert box.corpus is not None and box.corpus.pairs  # read once the model was in


def test_the_window_opens_without_pyqtgraph_torch_or_superqt():
    """The first frame needs none of them: pyqtgraph loads with the first plot, torch with the
    first model (on its own thread), superqt with the first worker, so no such import sits on
    the window's path."""
    import subprocess
    import sys

    code = (
        "import sys; import explorer.gui.window, explorer.gui.train.panel; "
        "print(sorted(m for m in ('pyqtgraph', 'superqt', 'torch') if m in sys.modules))"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]"


def test_the_first_load_read_before_the_window_becomes_current(
    make_window, qtbot, tiny_checkpoint, tmp_path
):
    """At launch the default model is read on a thread started before Qt (FirstLoad): the window
    takes it over like a worker's load, then asks for the device and loads the others."""
    from explorer.gui.train.jobs import FirstLoad
    from explorer.gui.window import BUNDLED

    models = tmp_path / "models"
    models.mkdir()
    for name in BUNDLED[:2]:
        (models / f"{name}.safetensors").write_bytes(tiny_checkpoint.read_bytes())
    first = FirstLoad(models / f"{BUNDLED[0]}.safetensors")
    w = make_window(models_dir=models, first_load=first)  # the read may be done already
    with qtbot.waitSignal(w.device_known, timeout=120_000):
        pass
    qtbot.waitUntil(lambda: not w.loading, timeout=120_000)
    assert w.state.current is first.future.result()  # the thread's model, not a second read
    assert [e.path.name for e in w.state.models] == [f"{n}.safetensors" for n in BUNDLED[:2]]
    assert w.model_label.text() == f"model: {w.state.current.name}"
    # superqt and the plot modules were imported on a thread of their own, before any worker
    thread = w.loader._modules_thread
    assert thread is not None and not thread.is_alive()


def test_a_checkpoint_opened_before_the_first_model_arrives_stays_current(
    make_window, qtbot, tiny_checkpoint, tmp_path
):
    """`attention-explorer --checkpoint FILE`, or a file dropped on the window at once: the
    bundled model arriving later joins the list without taking the user's model's place."""
    from concurrent.futures import Future
    from types import SimpleNamespace

    from explorer.gui.train.jobs import load_checkpoint_job
    from explorer.gui.window import BUNDLED

    models = tmp_path / "models"
    models.mkdir()
    bundled = models / f"{BUNDLED[0]}.safetensors"
    bundled.write_bytes(tiny_checkpoint.read_bytes())
    mine = tmp_path / "mine.safetensors"
    mine.write_bytes(tiny_checkpoint.read_bytes())
    first = SimpleNamespace(path=bundled, future=Future())  # still reading
    w = make_window(models_dir=models, first_load=first)
    with qtbot.waitSignal(w.model_loaded, timeout=120_000):
        w.open_checkpoint(mine, make_current=True)
    assert w.state.current.path == mine
    first.future.set_result(load_checkpoint_job(bundled))
    qtbot.waitUntil(lambda: not w.loading, timeout=120_000)
    assert [e.path for e in w.state.models] == [mine, bundled]
    assert w.state.current.path == mine


def test_a_bad_first_load_is_reported_and_the_window_works(make_window, qtbot, tmp_path):
    from explorer.gui.train.jobs import FirstLoad
    from explorer.gui.window import BUNDLED

    models = tmp_path / "models"
    models.mkdir()
    bad = models / f"{BUNDLED[0]}.safetensors"
    bad.write_bytes(b"not a checkpoint")
    w = make_window(models_dir=models, first_load=FirstLoad(bad))
    qtbot.waitUntil(lambda: not w.loading, timeout=120_000)
    assert w.last_error.startswith("cannot open checkpoint: ") and bad.name in w.last_error
    assert "not a checkpoint" in w.last_error
    assert w.state.current is None and w.model_label.text().startswith("No model loaded")
    with qtbot.waitSignal(w.device_known, timeout=60_000):
        pass
