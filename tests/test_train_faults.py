"""Faults during training: out of memory, a full disk, a process killed mid-save.

Each fault ends the run with one "failed" event (never an exception out of the generator), keeps
the weights and any earlier checkpoint, and the run can carry on.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from explorer.seq2seq import checkpoint as checkpoint_module
from explorer.seq2seq.checkpoint import load_checkpoint
from explorer.seq2seq.training import train as train_module
from explorer.seq2seq.training.train import Trainer, TrainOptions

ROOT = Path(__file__).resolve().parent.parent


def tiny(**overrides) -> TrainOptions:
    base = {"steps": 12, "eval_every": 0, "corpus_size": 300, "bleu_sentences": 10}
    return TrainOptions.from_preset("tiny", **{**base, **overrides})


def oom_at_call(monkeypatch, k: int) -> list[int]:
    """Every model built from now on raises CUDA's out-of-memory error on its k-th training
    forward (the k-th batch)."""
    calls: list[int] = []
    real_build = train_module.build_model

    def build(config):
        model = real_build(config)
        real_logits = model.logits  # a training step's forward pass

        def logits(*args, **kwargs):
            if not model.training:  # evaluation batches do not count
                return real_logits(*args, **kwargs)
            calls.append(len(calls) + 1)
            if len(calls) == k:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return real_logits(*args, **kwargs)

        model.logits = logits
        return model

    monkeypatch.setattr(train_module, "build_model", build)
    return calls


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_cuda_oom_class_exists_on_this_build():
    assert issubclass(torch.cuda.OutOfMemoryError, RuntimeError)


def test_out_of_memory_fails_cleanly_keeps_weights_and_suggests_a_smaller_batch(monkeypatch):
    oom_at_call(monkeypatch, k=6)
    trainer = Trainer(tiny(batch_size=16))
    events = []
    before = None
    for ev in trainer.run():
        events.append(ev)
        if ev.kind == "step" and ev.step == 5:
            before = weights(trainer.model)
    last = events[-1]
    assert last.kind == "failed" and last.step == 5
    assert [e.step for e in events if e.kind == "step"] == [1, 2, 3, 4, 5]
    assert last.message.startswith("out of memory at batch size 16: continue with batch size 8")
    assert "\n" not in last.message
    # on the CPU only the smaller batch is offered (the CPU suggestion would change nothing)
    assert last.suggestions == [{"label": "Smaller batch", "options": {"batch_size": 8}}]
    for k, v in trainer.model.state_dict().items():
        torch.testing.assert_close(v, before[k])
    assert all(p.grad is None for p in trainer.model.parameters())  # the failed batch is freed


def test_out_of_memory_on_a_gpu_offers_the_cpu_too(monkeypatch):
    trainer = Trainer(tiny(batch_size=64))
    trainer.device = torch.device("cuda")  # as if the run were on a GPU
    trainer.optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    ev = trainer._out_of_memory(100, 0.0, restore=False)
    assert ev.kind == "failed"
    assert ev.message.startswith(
        "out of GPU memory at batch size 64: continue with batch size 32, or on the CPU"
    )
    assert ev.suggestions == [
        {"label": "Smaller batch", "options": {"batch_size": 32}},
        {"label": "Use CPU", "options": {"device": "cpu"}},
    ]


def test_continue_with_a_smaller_batch_carries_on_from_the_kept_state(monkeypatch):
    oom_at_call(monkeypatch, k=4)
    trainer = Trainer(tiny(batch_size=16, steps=8))
    events = list(trainer.run())
    assert events[-1].kind == "failed" and events[-1].step == 3
    kept = weights(trainer.model)
    model = trainer.model

    nxt = trainer.continue_with(**events[-1].suggestions[0]["options"])
    assert nxt.options.batch_size == 8 and nxt.step == 3
    gen = nxt.run()
    first = next(gen)
    assert first.kind == "start" and first.step == 3
    assert nxt.model is model  # the same weights, not a fresh model
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, kept[k])
    rest = list(gen)
    assert [e.step for e in rest if e.kind == "step"] == [4, 5, 6, 7, 8]
    assert rest[-1].kind == "done"
    assert [h["step"] for h in nxt.history if "loss" in h] == list(range(1, 9))


def test_continue_with_refuses_unknown_options_and_unstarted_runs():
    import pytest

    trainer = Trainer(tiny())
    with pytest.raises(train_module.TrainingError, match="has not started"):
        trainer.continue_with(batch_size=8)
    trainer.model = torch.nn.Linear(1, 1)
    with pytest.raises(ValueError, match="unknown training option.*batchsize"):
        trainer.continue_with(batchsize=8)


def full_disk_after(monkeypatch, good_writes: int) -> None:
    """Checkpoint files opened from now on take ``good_writes`` chunks, then the disk is full."""
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, f):
            self.f, self.n = f, 0

        def write(self, data):
            self.n += 1
            if self.n > good_writes:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(
        checkpoint_module.os, "fdopen", lambda *a, **k: FullDisk(real_fdopen(*a, **k))
    )
    monkeypatch.setattr(checkpoint_module, "_CHUNK_BYTES", 4096)


def test_full_disk_at_a_periodic_save_keeps_the_previous_checkpoint_and_resumes(
    monkeypatch, tmp_path
):
    out = tmp_path / "run.safetensors"
    opts = tiny(steps=15, checkpoint_every=5, out=str(out))
    trainer = Trainer(opts)
    events = []
    for ev in trainer.run():
        events.append(ev)
        if ev.kind == "checkpoint" and ev.step == 5:
            full_disk_after(monkeypatch, good_writes=2)
    last = events[-1]
    assert last.kind == "failed" and last.step == 10 and last.path == str(out)
    assert last.message.startswith(f"could not write {out}: the disk is full")
    assert "save it somewhere else" in last.message and "\n" not in last.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.safetensors"]  # no partial file
    assert load_checkpoint(out).train_state["step"] == 5
    assert trainer.model is not None and trainer.step == 10  # the trained model is kept

    monkeypatch.undo()
    resumed = list(Trainer(opts, resume=out).run())
    assert [e.step for e in resumed if e.kind == "step"] == list(range(6, 16))
    assert resumed[-1].kind == "done"
    assert load_checkpoint(out).train_state["step"] == 15


def test_full_disk_at_the_final_save_keeps_the_model_and_says_where(monkeypatch, tmp_path):
    out = tmp_path / "sub" / "final.safetensors"
    out.parent.mkdir()
    full_disk_after(monkeypatch, good_writes=0)
    trainer = Trainer(tiny(steps=4, out=str(out)))
    events = list(trainer.run())
    assert [e.kind for e in events].count("failed") == 1 and events[-1].kind == "failed"
    assert events[-1].path == str(out) and str(out) in events[-1].message
    assert list(out.parent.iterdir()) == []
    monkeypatch.undo()
    elsewhere = checkpoint_module.save_checkpoint(
        tmp_path / "elsewhere.safetensors", trainer.snapshot(), trainer.tokenizer
    )
    ck = load_checkpoint(elsewhere)
    for k, v in ck.model.state_dict().items():
        torch.testing.assert_close(v, trainer.model.state_dict()[k])


KILLED_WRITER = textwrap.dedent(
    """
    import os, sys, time
    import torch
    from explorer.seq2seq import checkpoint
    from explorer.seq2seq.checkpoint import load_checkpoint, save_checkpoint

    ck = load_checkpoint(sys.argv[1])
    with torch.no_grad():
        for p in ck.model.parameters():
            p.add_(1.0)  # the new weights differ from the saved ones everywhere
    real_fdopen = os.fdopen

    class Slow:
        def __init__(self, f):
            self.f, self.n = f, 0
        def write(self, data):
            self.n += 1
            n = self.f.write(data)
            if self.n == 3:
                self.f.flush()
                print("writing", flush=True)
            time.sleep(0.05)
            return n
        def __getattr__(self, name):
            return getattr(self.f, name)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            self.f.close()

    os.fdopen = lambda *a, **k: Slow(real_fdopen(*a, **k))
    checkpoint._CHUNK_BYTES = 1024
    save_checkpoint(sys.argv[1], ck.model, ck.tokenizer, history=ck.history, corpus=ck.corpus,
                    card=ck.card, train_state=ck.train_state)
    print("finished", flush=True)
    """
)


def test_process_killed_mid_save_leaves_the_previous_checkpoint_loadable(tmp_path):
    out = tmp_path / "k.safetensors"
    opts = tiny(steps=6, out=str(out))
    list(Trainer(opts).run())
    before = load_checkpoint(out)
    saved = {k: v.clone() for k, v in before.model.state_dict().items()}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        assert line == "writing\n", proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    partial = [p for p in tmp_path.iterdir() if p.name != out.name]
    assert len(partial) == 1 and partial[0].name.startswith(".k.safetensors.")  # hidden temp
    assert partial[0].stat().st_size < out.stat().st_size

    after = load_checkpoint(out)  # the previous checkpoint, whole
    assert after.train_state["step"] == 6
    for k, v in after.model.state_dict().items():
        torch.testing.assert_close(v, saved[k])
    resumed = list(
        Trainer(TrainOptions.from_dict({**opts.to_dict(), "steps": 9}), resume=out).run()
    )
    assert [e.step for e in resumed if e.kind == "step"] == [7, 8, 9]
    assert resumed[-1].kind == "done"
    # the resumed run's save cleared the killed write's temporary file
    assert [p.name for p in tmp_path.iterdir()] == [out.name]
