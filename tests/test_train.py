import math

import numpy as np
import pytest
import torch

from explorer.seq2seq.checkpoint import load_checkpoint, read_card
from explorer.seq2seq.metrics import attention_entropy
from explorer.seq2seq.training.train import (
    Trainer,
    TrainOptions,
    learning_rate,
    pick_device,
    teacher_forcing_ratio,
)


def tiny(**overrides) -> TrainOptions:
    base = {"steps": 30, "eval_every": 15, "corpus_size": 400, "bleu_sentences": 20}
    return TrainOptions.from_preset("tiny", **{**base, **overrides})


def test_teacher_forcing_schedules_known_values():
    o = TrainOptions(teacher_forcing="step")
    # the lectures' step schedule: 100% for the first third, 50% for the second, then 0%
    assert [teacher_forcing_ratio(o, s, 90) for s in (0, 29, 30, 59, 60, 89)] == [
        1.0,
        1.0,
        0.5,
        0.5,
        0.0,
        0.0,
    ]
    o = TrainOptions(teacher_forcing="linear", tf_ratio=0.5)
    assert teacher_forcing_ratio(o, 0, 100) == 0.5
    assert teacher_forcing_ratio(o, 50, 100) == pytest.approx(0.25)
    o = TrainOptions(teacher_forcing="constant", tf_ratio=0.7)
    assert teacher_forcing_ratio(o, 99, 100) == 0.7


def test_learning_rate_schedules_known_values():
    o = TrainOptions(lr=1e-3, schedule="step", decay_every=100, decay_factor=0.5)
    assert [learning_rate(o, s) for s in (0, 99, 100, 250)] == [1e-3, 1e-3, 5e-4, 2.5e-4]
    o = TrainOptions(lr=1e-3, schedule="noam", warmup=100)
    assert learning_rate(o, 99) == pytest.approx(1e-3)  # the peak is at the end of warm-up
    assert learning_rate(o, 49) == pytest.approx(5e-4)  # linear rise
    assert learning_rate(o, 399) == pytest.approx(5e-4)  # inverse square root decay


def test_mean_entropy_of_uniform_and_one_hot_rows():
    assert attention_entropy(np.full((2, 4), 0.25)) == pytest.approx(math.log(4))
    assert attention_entropy(np.eye(3)) == pytest.approx(0.0, abs=1e-9)


def test_pick_device_auto_is_cpu_here_and_absent_devices_are_refused():
    if not torch.cuda.is_available():
        assert pick_device("auto").type in ("cpu", "mps")
        with pytest.raises(Exception, match="no CUDA GPU"):
            pick_device("cuda")


def test_cpu_is_described_with_its_thread_count_in_words():
    from explorer.seq2seq.training.options import describe_device

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert describe_device(torch.device("cpu")) == "CPU (1 thread)"
        torch.set_num_threads(2)
        assert describe_device(torch.device("cpu")) == "CPU (2 threads)"
    finally:
        torch.set_num_threads(before)


def test_a_runs_thread_count_holds_for_the_run_only():
    before = torch.get_num_threads()
    seen = []
    trainer = Trainer(TrainOptions.from_preset("tiny", steps=2, eval_every=0, threads=1))
    for _ in trainer.run():
        seen.append(torch.get_num_threads())
    assert seen[-1] == 1 and torch.get_num_threads() == before


def test_options_reject_unknown_fields_and_presets():
    with pytest.raises(ValueError, match="unknown training option"):
        TrainOptions.from_dict({"stepz": 3})
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        TrainOptions.from_preset("nope")


def test_training_yields_progress_learns_and_saves(tmp_path):
    out = tmp_path / "m.safetensors"
    trainer = Trainer(tiny(out=str(out)))
    events = list(trainer.run())
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    steps = [e for e in events if e.kind == "step"]
    assert [e.step for e in steps] == list(range(1, 31))
    assert all(e.loss is not None and e.lr is not None and e.grad_norm is not None for e in steps)
    evals = [e for e in events if e.kind == "eval"]
    assert [e.step for e in evals] == [0, 15, 30]
    assert evals[-1].val_loss < evals[0].val_loss  # it learns
    # the probe's attention map is recorded at every evaluation, rows summing to one
    for e in evals:
        a = e.probe.attention
        assert a.shape == (len(e.probe.target_pieces), len(e.probe.source_pieces))
        np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-5)
    ck = load_checkpoint(out)
    assert ck.train_state["step"] == 30
    assert [h["step"] for h in ck.history if "val_loss" in h] == [0, 15, 30]
    assert read_card(out)["card"]["steps"] == 30


def test_stop_is_honoured_before_the_next_batch(tmp_path):
    trainer = Trainer(tiny(steps=200, eval_every=0, out=str(tmp_path / "s.safetensors")))
    seen = []
    for ev in trainer.run():
        seen.append(ev)
        if ev.kind == "step" and ev.step == 5:
            trainer.request_stop()
    after = seen[[e.kind for e in seen].index("step") :]
    assert max(e.step for e in after if e.kind == "step") == 5  # no batch after the request
    assert seen[-1].kind == "stopped" and seen[-1].step == 5
    assert load_checkpoint(tmp_path / "s.safetensors").train_state["step"] == 5


def test_resume_continues_where_the_run_stopped(tmp_path):
    path = tmp_path / "r.safetensors"
    first = Trainer(tiny(steps=20, eval_every=10, out=str(path)))
    list(first.run())
    state = read_card(path)["train_state"]
    opts = TrainOptions.from_dict({**state["options"], "steps": 30})
    second = Trainer(opts, resume=path)
    events = list(second.run())
    steps = [e.step for e in events if e.kind == "step"]
    assert steps == list(range(21, 31))
    ck = load_checkpoint(path)
    assert ck.train_state["step"] == 30
    # history carries on from the first run, step numbers increasing
    hist = [h["step"] for h in ck.history if "loss" in h]
    assert hist == list(range(1, 31))


def test_nan_loss_stops_and_keeps_the_last_good_weights(monkeypatch):
    trainer = Trainer(tiny(steps=120, eval_every=0))
    gen = trainer.run()
    events = []
    for ev in gen:
        events.append(ev)
        if ev.kind == "step" and ev.step == 60:
            break
    good = {k: v.clone() for k, v in trainer.last_good.items()}
    model = trainer.model
    real_logits = model.logits  # a training step's forward pass

    def poisoned(*args, **kwargs):
        return real_logits(*args, **kwargs) * float("nan")

    monkeypatch.setattr(model, "logits", poisoned)
    rest = list(gen)
    assert rest[-1].kind == "failed"
    assert "lower the learning rate" in rest[-1].message.lower()
    assert not any(e.kind == "step" for e in rest)
    for k, v in model.state_dict().items():
        assert torch.isfinite(v).all()
        torch.testing.assert_close(v, good[k])


def test_snapshot_is_an_independent_eval_copy():
    trainer = Trainer(tiny(steps=5, eval_every=0))
    list(trainer.run())
    snap = trainer.snapshot()
    assert not snap.training
    p_snap = next(snap.parameters())
    p_live = next(trainer.model.parameters())
    assert p_snap.data_ptr() != p_live.data_ptr()
    torch.testing.assert_close(p_snap, p_live.detach().cpu())


def test_time_budget_ends_the_run_and_saves(tmp_path):
    out = tmp_path / "b.safetensors"
    events = list(Trainer(tiny(steps=100_000, eval_every=0, max_minutes=1e-4, out=str(out))).run())
    assert events[-1].kind == "done"
    assert events[-1].step < 100_000
    assert load_checkpoint(out).train_state["step"] == events[-1].step


def test_a_stop_asked_for_during_a_batch_drops_that_batch():
    trainer = Trainer(tiny(steps=50, eval_every=0))
    gen = trainer.run()
    for ev in gen:
        if ev.kind == "step" and ev.step == 3:
            break
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    model = trainer.model
    real_logits = model.logits  # a training step's forward pass

    def forward_then_stop(*args, **kwargs):
        out = real_logits(*args, **kwargs)
        trainer.request_stop()  # as if the stop button were pressed mid-batch
        return out

    model.logits = forward_then_stop
    rest = list(gen)
    assert [e.kind for e in rest] == ["stopped"] and rest[0].step == 3
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])  # the dropped batch changed nothing
    assert all(p.grad is None for p in model.parameters())
