"""A reproducible stream of random user actions across the three panels of the main window.

    result = run_monkey(window, actions=1000, seed=0)
    assert not result["exceptions"]

Used by the long-session test (tests/gui/test_monkey.py) and by benchmarks: the app is left open all
day on a projector, so many actions in a row must raise nothing, leave no thread behind and keep
memory bounded. Each action is what a user can do with the mouse or keyboard (type a sentence, step,
force a token, change the beam settings, start and stop a tiny training run, switch tabs, toggle
projector mode); hostile input (empty, emoji, CJK, 500 characters) is part of the mix.

Exceptions are collected, not swallowed: those raised by an action and those that reach
``sys.excepthook`` from a Qt slot both land in ``result["exceptions"]`` with their traceback.
Errors shown to the user (``Session.error``) are expected for hostile input and only counted.
"""

from __future__ import annotations

import gc
import random
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEventLoop, Qt, QThreadPool
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

SENTENCES = (
    "the black cat sat",
    "the cat that i saw yesterday sat on the mat",
    "a b c d e f",
    "g f e d c b a",
    "",
    "   ",
    "😀🎉 the cat 🐈",
    "我爱你 猫坐在垫子上",
    "مرحبا بالعالم",
    "a " * 250,
    "x" * 500,
    "tab\tand\nnewline \x00 \x07 control",
    "THE CAT, SAT!!! ... ???",
    "l'homme qu'il a vu",
)
PIECES = ("▁the", "▁cat", "a", "▁a", "", "😀", "<unk>", "</s>", "▁" * 3, "zzz", "猫")
KEYS = (Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Home, Qt.Key.Key_End, Qt.Key.Key_Space)


def rss_mb() -> float:
    """Resident memory of this process in MB (VmRSS from /proc/self/status; 0 where absent)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Process events until ``condition()`` holds or ``timeout_s`` passes; whether it held."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        time.sleep(0.005)  # QTest.qWait would hold the GIL: workers ran ~10x slower under it
    return True


class Monkey:
    """The actions; each takes no argument and draws its choices from ``self.rng``."""

    def __init__(self, window, seed: int, checkpoints: list[Path], max_train_steps: int = 15):
        self.w = window
        self.rng = random.Random(seed)
        self.checkpoints = checkpoints
        self.max_train_steps = max_train_steps
        self.train = window.panels.get("train")
        self.step = window.panels.get("step")
        self.beam = window.panels.get("beam")
        self.trainings = 0
        self.actions: dict[str, tuple[float, Callable[[], None]]] = {
            "switch_tab": (6, self.switch_tab),
            "load_model": (3, self.load_model),
            "pick_model": (4, self.pick_model),
            "type_sentence": (10, self.type_sentence),
            "pick_example": (3, self.pick_example),
            "decode_mode": (3, self.decode_mode),
            "step": (16, self.step_once),
            "key": (6, self.key),
            "slider": (4, self.slider),
            "force_token": (6, self.force_token),
            "force_piece": (3, self.force_piece),
            "restore": (2, self.restore),
            "compare": (2, self.compare),
            "play": (2, self.play),
            "beam_sentence": (5, self.beam_sentence),
            "beam_settings": (10, self.beam_settings),
            "beam_pruned": (2, self.beam_pruned),
            "train_start": (3, self.train_start),
            "train_pause": (2, self.train_pause),
            "train_stop": (3, self.train_stop),
            "train_view": (2, self.train_view),
            "projector": (2, self.projector),
            "wait": (3, self.wait),
        }
        if self.step is None or not hasattr(self.step, "decode"):
            self._drop("type_sentence pick_example decode_mode step key slider force_token "
                       "force_piece restore compare play")  # fmt: skip
        if self.beam is None or not hasattr(self.beam, "params"):
            self._drop("beam_sentence beam_settings beam_pruned")

    first_round: list[str] | None = None

    def _drop(self, names: str) -> None:
        for n in names.split():
            self.actions.pop(n, None)

    def choose(self) -> str:
        """Every kind of action once (in a seeded order), then at random by weight. The first
        round pays the one-time costs (lazy imports such as torch.optim's, font and plot caches,
        the first training run), so memory measured after it shows growth, not warm-up."""
        names = list(self.actions)
        if self.first_round is None:
            self.first_round = self.rng.sample(names, len(names))
        if self.first_round:
            return self.first_round.pop()
        return self.rng.choices(names, weights=[self.actions[n][0] for n in names])[0]

    # -- window -------------------------------------------------------------------------------
    def switch_tab(self) -> None:
        self.w.tabs.setCurrentIndex(self.rng.randrange(self.w.tabs.count()))

    def load_model(self) -> None:
        if self.checkpoints and len(self.w.loading) < 2:
            self.w.open_checkpoint(self.rng.choice(self.checkpoints))

    def pick_model(self) -> None:
        if self.w.state.models:
            self.w.state.set_current(self.rng.choice(self.w.state.models))

    def projector(self) -> None:
        self.w.projector_action.trigger()

    def wait(self) -> None:
        QTest.qWait(self.rng.choice((10, 50, 150)))

    # -- step-through -------------------------------------------------------------------------
    def type_sentence(self) -> None:
        self.w.set_panel("step")
        self.step.sentence.setText(self.rng.choice(SENTENCES))
        QTest.keyClick(self.step.sentence, Qt.Key.Key_Return)

    def pick_example(self) -> None:
        box = self.step.examples
        if box.count() > 1:
            i = self.rng.randrange(1, box.count())
            box.setCurrentIndex(i)
            box.activated.emit(i)

    def decode_mode(self) -> None:
        box = self.step.mode_box
        box.setCurrentIndex(self.rng.randrange(box.count()))
        self.step.temperature.setValue(self.rng.choice((0.05, 0.7, 1.0, 3.0)))
        if self.rng.random() < 0.5:
            self.step.reference.setText(self.rng.choice(SENTENCES))
        self.step.decode_button.click()

    def step_once(self) -> None:
        s = self.step
        button = self.rng.choice(
            (s.first_button, s.back_button, s.forward_button, s.forward_button, s.last_button)
        )
        button.click()

    def key(self) -> None:
        self.w.set_panel("step")
        QTest.keyClick(self.step, self.rng.choice(KEYS))

    def slider(self) -> None:
        sl = self.step.slider
        sl.setValue(self.rng.randint(sl.minimum(), sl.maximum()))

    def force_token(self) -> None:
        entry = self.step.entry
        if entry is not None and self.step.trace is not None:
            vocab = entry.tokenizer.tgt_vocab_size
            self.step.force_token(self.rng.randrange(vocab))

    def force_piece(self) -> None:
        self.step.force_edit.setText(self.rng.choice(PIECES))
        self.step.force_button.click()

    def restore(self) -> None:
        if self.step.restore_button.isEnabled():
            self.step.restore_button.click()

    def compare(self) -> None:
        self.step.compare_check.toggle()

    def play(self) -> None:
        self.step.play_button.click()

    # -- beam ---------------------------------------------------------------------------------
    def beam_sentence(self) -> None:
        self.w.set_panel("beam")
        self.beam.sentence.setText(self.rng.choice(SENTENCES))

    def beam_settings(self) -> None:
        b, r = self.beam, self.rng
        which = r.choice(("beam", "nbest", "penalty", "alpha", "beta", "max_len"))
        if which == "beam":
            b.beam.setValue(r.choice((1, 2, 3, 5, 8, 12)))
        elif which == "nbest":
            b.nbest.setValue(r.randint(1, 5))
        elif which == "penalty":
            b.penalty.setCurrentIndex(r.randrange(b.penalty.count()))
        elif which == "alpha":
            b.alpha.setValue(r.choice((0.0, 0.6, 1.0, 2.5)))
        elif which == "beta":
            b.beta.setValue(r.choice((0.0, 0.2, 1.0)))
        else:
            b.max_len.setValue(r.choice((1, 5, 20, 40)))

    def beam_pruned(self) -> None:
        self.beam.show_pruned.toggle()

    # -- training -----------------------------------------------------------------------------
    def train_start(self) -> None:
        p = self.train
        if p.running:  # as a user would, give the run on show a few seconds to end first
            wait_until(lambda: not p.running, 5)
        if p.running or p.corpus.busy():
            return
        p.form.preset.setCurrentIndex(p.form.preset.findData("tiny"))
        p.form.fields["steps"].setValue(self.rng.randint(3, self.max_train_steps))
        p.form.fields["eval_every"].setValue(self.rng.choice((0, 5)))
        p.start_button.click()
        self.trainings += p.running

    def train_pause(self) -> None:
        if self.train.pause_button.isEnabled():
            self.train.pause_button.click()

    def train_stop(self) -> None:
        if self.train.stop_button.isEnabled():
            self.train.stop_button.click()

    def train_view(self) -> None:
        self.w.set_panel("train")
        views = self.train.views
        views.setCurrentIndex(self.rng.randrange(views.count()))

    # -- settling -----------------------------------------------------------------------------
    def idle(self) -> bool:
        typing = self.beam is not None and self.beam._debounce.isActive()
        return not (self.w.state.runner.busy or self.w.loading or typing)

    def settle(self, timeout_s: float) -> bool:
        """Stop playback and training, let every worker finish; whether all did in time."""
        if self.step is not None and hasattr(self.step, "timer") and self.step.timer.isActive():
            self.step.play()
        if self.train.running:
            self.train.stop()
        return wait_until(self.idle, timeout_s) and QThreadPool.globalInstance().waitForDone(
            int(timeout_s * 1000)
        )


def prepare_training(window, corpus: str = "reverse", size: int = 300, timeout_s: float = 60):
    """Point the Train & Load panel at a small corpus so every run the monkey starts is tiny."""
    box = window.train_panel.corpus
    box.set_spec(corpus)
    box.size.setValue(size)
    if not wait_until(lambda: not box.busy() and box.spec() == corpus, timeout_s):
        raise TimeoutError(f"the {corpus!r} corpus did not load within {timeout_s} s")


def run_monkey(
    window,
    actions: int = 1000,
    seed: int = 0,
    *,
    checkpoints: list[str | Path] | None = None,
    settle_timeout_s: float = 120.0,
) -> dict[str, Any]:
    """Perform ``actions`` random user actions on ``window`` (a MainWindow), then settle.

    Returns ``counts`` (actions per kind), ``exceptions`` (one string with traceback each),
    ``errors`` (messages shown to the user), ``trainings`` (runs started), ``rss_after_100`` and
    ``rss_end`` (MB, after a garbage collection), ``settled`` (every worker ended in time) and
    ``seconds`` (wall time)."""
    if checkpoints is None:
        checkpoints = [m.path for m in window.state.models if m.path is not None]
    monkey = Monkey(window, seed, [Path(p) for p in checkpoints])
    counts: Counter[str] = Counter()
    exceptions: list[str] = []
    errors: list[str] = []

    def on_error(message: str) -> None:
        errors.append(message)

    window.state.error.connect(on_error)
    previous_hook = sys.excepthook

    def hook(kind, value, tb) -> None:
        exceptions.append("".join(traceback.format_exception(kind, value, tb)))

    sys.excepthook = hook
    t0 = time.perf_counter()
    rss_after_100 = None
    try:
        for i in range(actions):
            name = monkey.choose()
            counts[name] += 1
            try:
                monkey.actions[name][1]()
            except Exception:
                exceptions.append(f"action {i} ({name}):\n{traceback.format_exc()}")
            QApplication.processEvents()
            if i + 1 == min(100, actions):
                gc.collect()
                rss_after_100 = rss_mb()
        settled = monkey.settle(settle_timeout_s)
        QApplication.processEvents()
        gc.collect()
        rss_end = rss_mb()
    finally:
        sys.excepthook = previous_hook
        window.state.error.disconnect(on_error)
    return {
        "counts": dict(counts),
        "exceptions": exceptions,
        "errors": errors,
        "trainings": monkey.trainings,
        "rss_after_100": rss_after_100,
        "rss_end": rss_end,
        "settled": settled,
        "seconds": time.perf_counter() - t0,
    }
