"""A long session: 1,000 random user actions on the real main window, with a fixed seed.

Nothing may raise, every worker must end, and memory must stay bounded (the app is left open all
day on a projector). The driver is tests/gui/monkey.py.
"""

from __future__ import annotations

import threading

import pytest
from monkey import SENTENCES, prepare_training, rss_mb, run_monkey
from PySide6.QtCore import QSettings, QThreadPool
from PySide6.QtWidgets import QApplication

from explorer.gui.widgets import theme
from explorer.gui.window import MainWindow

pytest.importorskip("explorer.seq2seq.checkpoint")

ACTIONS = 1000
SEED = 20240611
# Growth after the first 100 actions (which pay one-time costs): finished workers are released,
# only the newest unsaved trained models stay open, and freed heap goes back after each run.
MAX_GROWTH_MB = 50

TINY_MODELS = {
    "classroom-bahdanau": {"arch": "bahdanau"},
    "classroom-luong": {"arch": "luong-general"},
    "classroom-transformer": {
        "arch": "transformer",
        "model": {"d_model": 16, "heads": 2, "enc_layers": 1, "dec_layers": 1, "d_ff": 32},
        "schedule": "constant",
        "lr": 3e-3,
    },
}


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    """Three tiny checkpoints named like the bundled ones, so the window loads them at start."""
    from explorer.seq2seq.training.train import Trainer, TrainOptions

    folder = tmp_path_factory.mktemp("models")
    for name, overrides in TINY_MODELS.items():
        out = folder / f"{name}.safetensors"
        opts = TrainOptions.from_preset(
            "tiny", steps=15, eval_every=0, corpus_size=300, out=str(out), **overrides
        )
        kinds = [ev.kind for ev in Trainer(opts).run()]
        assert kinds[-1] == "done", (name, kinds)
    return folder


def test_hostile_sentences_are_in_the_mix():
    assert "" in SENTENCES and any(len(s) >= 500 for s in SENTENCES)
    assert any("😀" in s for s in SENTENCES) and any("猫" in s for s in SENTENCES)


def test_rss_is_read_from_proc():
    assert rss_mb() > 10  # this Python process with Qt and torch loaded


def test_a_thousand_random_actions_raise_nothing_and_leave_nothing_running(
    qtbot, tmp_path, models_dir
):
    threads_before = threading.active_count()
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings, models_dir=models_dir, projector=False, error_dialogs=False)
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    qtbot.waitUntil(lambda: len(w.state.models) == 3 and not w.loading, timeout=60_000)
    prepare_training(w)

    result = run_monkey(w, actions=ACTIONS, seed=SEED)
    print(
        f"\nmonkey: {ACTIONS} actions in {result['seconds']:.0f} s, {result['trainings']} "
        f"training runs, {len(result['errors'])} errors shown to the user; RSS "
        f"{result['rss_after_100']:.1f} MB after 100 actions, {result['rss_end']:.1f} MB at "
        f"the end (growth {result['rss_end'] - result['rss_after_100']:+.1f} MB)\n"
        f"counts: {sorted(result['counts'].items())}"
    )
    assert result["exceptions"] == []
    assert sum(result["counts"].values()) == ACTIONS
    # every kind of action ran, training and beam settings included
    assert set(result["counts"]) == {
        "switch_tab", "load_model", "pick_model", "type_sentence", "pick_example",
        "decode_mode", "step", "key", "slider", "force_token", "force_piece", "restore",
        "compare", "play", "beam_sentence", "beam_settings", "beam_pruned", "train_start",
        "train_pause", "train_stop", "train_view", "projector", "wait",
    }  # fmt: skip
    assert result["trainings"] >= 5
    assert result["settled"]

    assert w.shutdown(30_000)
    assert QThreadPool.globalInstance().activeThreadCount() == 0
    qtbot.waitUntil(lambda: threading.active_count() <= threads_before, timeout=10_000)
    theme.apply(QApplication.instance(), "light", False)
    growth = result["rss_end"] - result["rss_after_100"]
    assert growth < MAX_GROWTH_MB, f"RSS grew {growth:.0f} MB after the first 100 actions"


def test_the_same_seed_gives_the_same_actions(qtbot, tmp_path, models_dir):
    from monkey import Monkey

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings, models_dir=None, error_dialogs=False)
    qtbot.addWidget(w)
    a, b = Monkey(w, 7, []), Monkey(w, 7, [])
    assert [a.choose() for _ in range(200)] == [b.choose() for _ in range(200)]
    assert w.shutdown(30_000)
