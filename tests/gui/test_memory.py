"""What a long session keeps: finished workers and their arguments are released, and only the
newest few unsaved trained models stay open (the app is left running all day on a projector)."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from PySide6.QtCore import QSettings, QThreadPool
from superqt.utils import create_worker

from explorer.gui.session import Session
from explorer.gui.state import MAX_UNSAVED, LoadedModel


def entry(name: str, path: str | None = None) -> LoadedModel:
    return LoadedModel(name, model=None, tokenizer=None, path=Path(path) if path else None)


def test_only_the_newest_unsaved_models_stay_and_the_user_is_told():
    state = Session(max_unsaved=2)
    messages: list[str] = []
    state.status.connect(messages.append)
    saved = entry("saved", "/tmp/saved.safetensors")
    a, b, c, d = entry("trained #1"), entry("trained #2"), entry("trained #3"), entry("trained #4")
    for e in (saved, a, b):
        state.add(e)
    assert state.models == [saved, a, b] and messages == []
    state.add(c)
    assert state.models == [saved, b, c] and state.current is c
    assert messages == [
        "closed trained #1: only the 2 newest unsaved trained models stay open "
        "(save a model to keep it)"
    ]
    state.add(d)
    assert state.models == [saved, c, d]
    assert "closed trained #2" in messages[-1]


def test_the_current_model_is_never_closed_even_when_it_is_the_oldest():
    state = Session(max_unsaved=1)
    a, b, c = entry("trained #1"), entry("trained #2"), entry("trained #3")
    state.add(a)
    state.add(b, make_current=False)  # a is on screen: both stay, over the limit for now
    assert state.models == [a, b] and state.current is a
    state.add(c, make_current=False)
    assert state.models == [a, c] and state.current is a


def test_a_saved_model_no_longer_counts_as_unsaved():
    state = Session(max_unsaved=1)
    a, b = entry("trained #1"), entry("trained #2")
    state.add(a)
    a.path = Path("/tmp/a.safetensors")  # what saving does
    state.add(b)
    assert state.models == [a, b]


def test_the_default_keeps_a_few_models_for_comparison():
    assert Session().max_unsaved == MAX_UNSAVED >= 3


def test_a_finished_beam_search_lets_go_of_its_model(qtbot):
    from explorer.gui.beam.panel import BeamPanel
    from tests.gui.test_beam_panel import result

    panel = BeamPanel(Session())
    qtbot.addWidget(panel)
    panel.search_fn = lambda e, s, params: result(source=s)
    toy = entry("toy")
    panel.state.add(toy)
    with qtbot.waitSignal(panel.result_shown, timeout=5000):
        panel.set_sentence("le chat noir dort")
    panel.wait_idle(qtbot)
    assert QThreadPool.globalInstance().waitForDone(5000)
    qtbot.wait(50)  # the worker's last queued signal
    gone = weakref.ref(toy)
    panel.state.set_current(None)
    panel.state.models.clear()
    del toy
    # released once the worker's last queued signal is delivered (gc sees no cycle through Qt)
    qtbot.waitUntil(lambda: gc.collect() >= 0 and gone() is None, timeout=5000)


def test_a_finished_runner_worker_is_released(qtbot):
    from explorer.gui.runner import Runner

    runner = Runner()

    class Payload:
        pass

    payload = Payload()
    got = []
    worker = runner.run("test", lambda p: 42, payload, returned=got.append)
    released, kept = weakref.ref(worker), weakref.ref(payload)
    assert runner.busy and runner.running("test") == 1
    del worker, payload
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert got == [42]
    qtbot.waitUntil(
        lambda: gc.collect() >= 0 and released() is None and kept() is None, timeout=5000
    )


def test_a_stale_result_never_lands(qtbot):
    """A job of a kind started again (or invalidated) delivers nothing; finished still runs."""
    import threading

    from explorer.gui.runner import Runner

    runner = Runner()
    gate = threading.Event()
    got, ended = [], []
    runner.run("decode", lambda: gate.wait(5) and "old", returned=got.append,
               finished=lambda: ended.append("old"))  # fmt: skip
    runner.run("decode", lambda: "new", returned=got.append, finished=lambda: ended.append("new"))
    qtbot.waitUntil(lambda: ended == ["new"], timeout=5000)
    gate.set()
    assert runner.wait_idle(5000)
    assert got == ["new"] and sorted(ended) == ["new", "old"]
    runner.run("decode", lambda: "dropped", returned=got.append)
    runner.invalidate("decode")
    assert runner.wait_idle(5000) and got == ["new"]


def test_training_runs_keep_a_bounded_number_of_models_and_release_their_trainers(qtbot):
    from explorer.gui.train.panel import TrainPanel

    state = Session(max_unsaved=2)
    panel = TrainPanel(state)
    qtbot.addWidget(panel)
    panel.form.preset.setCurrentIndex(panel.form.preset.findData("tiny"))
    panel.form.fields["steps"].setValue(3)
    panel.form.fields["eval_every"].setValue(0)
    with qtbot.waitSignal(panel.corpus.loaded, timeout=30_000):
        panel.corpus.set_spec("reverse")
    qtbot.waitUntil(lambda: not panel.corpus.busy(), timeout=30_000)
    messages: list[str] = []
    state.status.connect(messages.append)
    trainers, entries = [], []
    for _ in range(3):
        with qtbot.waitSignal(panel.trained, timeout=120_000) as blocker:
            panel.start()
        entries.append(blocker.args[0])
        trainers.append(weakref.ref(panel.trainer))
    assert QThreadPool.globalInstance().waitForDone(30_000)
    qtbot.wait(50)
    assert [m.name for m in state.models] == [e.name for e in entries[1:]]
    assert state.current is entries[-1]
    # the last word on the status bar is the closed model, not the new one (that one is on show)
    assert messages[-1].startswith(f"closed {entries[0].name}: only the 2 newest unsaved")
    dropped = weakref.ref(entries[0])
    del entries, blocker
    gc.collect()
    # the latest trainer stays (Save needs it); the earlier ones and the closed model are gone
    assert [t() is None for t in trainers] == [True, True, False]
    assert dropped() is None
    assert panel.shutdown(30_000)


def test_freed_heap_memory_of_a_worker_thread_goes_back_to_the_system():
    import ctypes
    import sys
    import threading

    from monkey import rss_mb

    from explorer.seq2seq.heap import release_free_memory

    if not sys.platform.startswith("linux"):
        assert release_free_memory() is False
        return
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    kept: list[int] = []

    def work() -> None:  # 80 MB in 4 KB blocks, freed but for the last one (it pins the heap)
        blocks = [libc.malloc(4096) for _ in range(20_000)]
        for b in blocks:
            libc.memset(b, 1, 4096)
        for b in blocks[:-1]:
            libc.free(b)
        kept.append(blocks[-1])

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    before = rss_mb()
    assert release_free_memory() is True
    after = rss_mb()
    libc.free(kept[0])
    assert before - after > 40, (before, after)


def test_a_stale_worker_warning_hook_is_dropped_when_a_worker_finishes(qtbot, tmp_path):
    """superqt's overlapping workers can leave one worker's ``showwarning`` hook installed (and
    so the worker and its arguments); the window puts the standard hook back."""
    import warnings

    from explorer.gui.heap import drop_stale_warning_hook
    from explorer.gui.window import MainWindow

    class Payload:
        pass

    payload = Payload()
    stale = create_worker(lambda p: None, payload, _start_thread=False, _ignore_errors=True)
    kept = weakref.ref(payload)
    before = warnings.showwarning
    try:

        class WorkerBase:  # the qualified name superqt's hook has
            def run(self, worker=stale):
                return lambda *w: worker.warned.emit(w)

        warnings.showwarning = WorkerBase().run()
        assert drop_stale_warning_hook() and warnings.showwarning is warnings._showwarning_orig
        assert not drop_stale_warning_hook()  # the standard hook is left alone

        warnings.showwarning = WorkerBase().run()
        settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        w = MainWindow(settings=settings, models_dir=None, error_dialogs=False)
        qtbot.addWidget(w)
        from explorer.gui.runner import runner

        runner().run("test", lambda: None)
        assert runner().wait_idle(5000)
        qtbot.waitUntil(lambda: "WorkerBase" not in warnings.showwarning.__qualname__, timeout=5000)
        del stale, payload, WorkerBase
        qtbot.waitUntil(lambda: gc.collect() >= 0 and kept() is None, timeout=5000)
        assert w.shutdown(30_000)
    finally:
        warnings.showwarning = before
