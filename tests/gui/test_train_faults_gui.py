"""Train & Load faults: out of memory offers to carry on; a failed save keeps the model."""

from __future__ import annotations

import errno
import os

import pytest
import torch
from PySide6.QtCore import Qt, QThreadPool

from explorer.gui.session import Session
from explorer.gui.train.panel import TrainPanel

pytest.importorskip("explorer.seq2seq.checkpoint")
from explorer.seq2seq import checkpoint as checkpoint_module  # noqa: E402
from explorer.seq2seq.checkpoint import load_checkpoint  # noqa: E402
from explorer.seq2seq.training import train as train_module  # noqa: E402


@pytest.fixture
def panel(qtbot):
    p = TrainPanel(Session())
    qtbot.addWidget(p)
    yield p
    assert p.shutdown(30_000)
    assert QThreadPool.globalInstance().activeThreadCount() == 0


def choose_tiny(panel: TrainPanel, qtbot, steps: int) -> None:
    panel.form.preset.setCurrentIndex(panel.form.preset.findData("tiny"))
    panel.form.fields["steps"].setValue(steps)
    panel.form.fields["eval_every"].setValue(0)
    with qtbot.waitSignal(panel.corpus.loaded, timeout=30_000):
        panel.corpus.set_spec("reverse")
    panel.corpus.size.setValue(300)
    qtbot.waitUntil(lambda: not panel.corpus.busy(), timeout=30_000)


def oom_on_training_batch(monkeypatch, k: int) -> None:
    real_build = train_module.build_model

    def build(config):
        model = real_build(config)
        real_logits, calls = model.logits, []  # a training step's forward pass

        def logits(*args, **kwargs):
            if model.training:
                calls.append(1)
                if len(calls) == k:
                    raise torch.cuda.OutOfMemoryError("CUDA out of memory")
            return real_logits(*args, **kwargs)

        model.logits = logits
        return model

    monkeypatch.setattr(train_module, "build_model", build)


def test_out_of_memory_offers_a_smaller_batch_that_resumes_training(panel, qtbot, monkeypatch):
    choose_tiny(panel, qtbot, steps=8)
    batch = panel.form.value("batch_size")
    oom_on_training_batch(monkeypatch, k=4)
    events = []
    panel.progress.connect(events.append)
    panel.start()
    qtbot.waitUntil(lambda: not panel.running, timeout=60_000)
    failed = events[-1]
    assert failed.kind == "failed" and failed.step == 3
    assert failed.message.startswith(f"out of memory at batch size {batch}")
    assert panel.banner.isVisibleTo(panel) and failed.message in panel.banner.text()
    assert [b.text() for b in panel.fix_buttons] == ["Smaller batch"]  # on the CPU: no "Use CPU"
    assert panel.fixes.isVisibleTo(panel)
    model = panel.trainer.model

    with qtbot.waitSignal(panel.trained, timeout=60_000) as blocker:
        qtbot.mouseClick(panel.fix_buttons[0], Qt.MouseButton.LeftButton)
        assert panel.running and not panel.fixes.isVisibleTo(panel)
    assert panel.trainer.options.batch_size == batch // 2
    assert panel.form.value("batch_size") == batch // 2
    assert panel.trainer.model is model  # carried on, not restarted
    after = events[events.index(failed) + 1 :]
    assert [e.step for e in after if e.kind == "step"] == [4, 5, 6, 7, 8]
    assert after[-1].kind == "done"
    assert blocker.args[0].card["steps"] == 8
    assert panel.state.current is blocker.args[0]


def test_a_full_disk_on_save_keeps_the_model_and_says_where(panel, qtbot, monkeypatch, tmp_path):
    choose_tiny(panel, qtbot, steps=3)
    with qtbot.waitSignal(panel.trained, timeout=60_000) as blocker:
        panel.start()
    entry = blocker.args[0]
    target = tmp_path / "full" / "model.safetensors"
    target.parent.mkdir()
    real_fdopen = os.fdopen

    def full(*args, **kwargs):
        f = real_fdopen(*args, **kwargs)
        f.close()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint_module.os, "fdopen", full)
    errors = []
    panel.state.error.connect(errors.append)
    panel.save_to(target)
    qtbot.waitUntil(lambda: panel.save_worker is None, timeout=30_000)
    assert errors == [
        f"could not save {target}: the disk is full. The model is still here: "
        "save it somewhere else."
    ]
    assert list(target.parent.iterdir()) == []
    assert entry in panel.state.models and panel.save_button.isEnabled()

    monkeypatch.undo()
    elsewhere = tmp_path / "model.safetensors"
    with qtbot.waitSignal(panel.saved, timeout=30_000):
        panel.save_to(elsewhere)
    ck = load_checkpoint(elsewhere)
    for k, v in ck.model.state_dict().items():
        torch.testing.assert_close(v, entry.model.state_dict()[k])


def test_a_loss_that_becomes_nan_stops_with_a_banner_and_keeps_the_good_weights(
    panel, qtbot, monkeypatch
):
    from explorer.seq2seq.training.train import Trainer

    real_forward = Trainer._forward

    def forward(self, *args):
        loss, value = real_forward(self, *args)
        return loss, (float("nan") if self.step >= 4 else value)

    monkeypatch.setattr(Trainer, "_forward", forward)
    errors = []
    panel.state.error.connect(errors.append)
    choose_tiny(panel, qtbot, steps=8)
    panel.start()
    qtbot.waitUntil(lambda: not panel.running, timeout=60_000)
    failed = panel.last_event
    # the first step's weights are the last good ones kept (then every 50 steps)
    assert failed.kind == "failed" and failed.step == 1 == panel.trainer.step
    assert "became nan at step 5" in failed.message and "weights of step 1" in failed.message
    assert panel.banner.isVisibleTo(panel) and failed.message in panel.banner.text()
    assert "\n" not in failed.message and not errors  # a message, not a traceback
    assert panel.save_button.isEnabled() and panel.start_button.isEnabled()
    assert panel.progress_bar.value() == 1
