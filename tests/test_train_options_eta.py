"""Training options a user types (learning rate, gradient clipping), the time-left estimate, and
a run whose loss stops being finite, from the library and the command line."""

from __future__ import annotations

import math

import pytest
import torch

from explorer.cli import run
from explorer.seq2seq.checkpoint import load_checkpoint
from explorer.seq2seq.training import train as train_module
from explorer.seq2seq.training.clock import Clock, EtaEstimator
from explorer.seq2seq.training.options import TrainOptionError, clip_norm
from explorer.seq2seq.training.train import Trainer, TrainOptions


def tiny(**overrides) -> TrainOptions:
    base = {"steps": 30, "eval_every": 10, "corpus_size": 300, "bleu_sentences": 10}
    return TrainOptions.from_preset("tiny", **{**base, **overrides})


# -- the estimator --------------------------------------------------------------------------
def test_eta_waits_for_warmup_and_ignores_the_first_step():
    eta = EtaEstimator(alpha=0.5, warmup=3)
    eta.step_took(30.0)  # the first step pays for lazy set-up: not counted
    for _ in range(2):
        eta.step_took(1.0)
        assert eta.remaining(3, 100, 0) is None
    eta.step_took(1.0)
    # 97 steps left at 1 s, one final evaluation of unknown (not yet measured) length
    assert eta.remaining(4, 100, 0) == pytest.approx(96.0)


def test_eta_is_a_moving_average_of_step_times_plus_the_evaluations_due():
    eta = EtaEstimator(alpha=0.5, warmup=1)
    for seconds in (9.0, 2.0, 4.0):
        eta.step_took(seconds)
    assert eta.step_s == pytest.approx(3.0)  # 2, then 2 + 0.5 * (4 - 2)
    eta.eval_took(10.0)
    eta.eval_took(20.0)
    # step 25 of 100, evaluations every 10: at 30, 40, ..., 90 and the final one = 8 due
    assert eta.remaining(25, 100, 10) == pytest.approx(75 * 3.0 + 8 * 15.0)
    # evaluations every 50: the one at 50 and the final one
    assert eta.remaining(25, 100, 50) == pytest.approx(75 * 3.0 + 2 * 15.0)
    assert eta.remaining(100, 100, 10) == 0.0
    eta.step_took(float("nan"))  # a broken clock reading changes nothing
    eta.step_took(-1.0)
    assert eta.step_s == pytest.approx(3.0)


def test_throughput_counts_the_time_in_steps_not_the_pauses_between_them():
    clock = Clock(total=10, per_epoch=5)
    clock.count(600, 0.2)  # under a second of wall time: no figure yet
    assert clock.tokens_per_second is None
    clock.window_t0 -= 30.0  # thirty seconds later (an evaluation, a pause) ...
    clock.count(400, 0.3)  # ... the window's 1,000 tokens took 0.5 s of steps
    assert clock.tokens_per_second == pytest.approx(2000.0)
    assert (clock.window_tokens, clock.window_busy) == (0, 0.0)


class FakeTime:
    """perf_counter for the training loop: each step takes 1 s, each evaluation 100 s."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


def test_a_runs_eta_does_not_jump_after_an_evaluation(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(train_module, "time", fake)
    real_forward, real_evaluate = Trainer._forward, Trainer._evaluate

    def forward(self, *args):
        fake.now += 1.0
        return real_forward(self, *args)

    def evaluate(self, *args):
        fake.now += 100.0
        return real_evaluate(self, *args)

    monkeypatch.setattr(Trainer, "_forward", forward)
    monkeypatch.setattr(Trainer, "_evaluate", evaluate)
    events = list(Trainer(tiny(steps=12, eval_every=4, bleu_sentences=2)).run())
    eta = {e.step: e.eta for e in events if e.kind == "step"}
    assert all(eta[s] is None for s in (1, 2, 3))
    # steps of 1 s and evaluations of 100 s (at 0, 4, 8 and the end), exactly
    for step in range(4, 13):
        due = 1 + (11 // 4 - step // 4)
        assert eta[step] == pytest.approx((12 - step) * 1.0 + due * 100.0), step
    kinds = [e.kind for e in events]
    # each evaluation is announced before it runs, with what it measures
    for i, kind in enumerate(kinds):
        if kind == "eval":
            assert kinds[i - 1] == "evaluating" and events[i - 1].step == events[i].step
    assert kinds.count("evaluating") == kinds.count("eval") == 4
    assert "BLEU of 2 sentences" in next(e for e in events if e.kind == "evaluating").message


# -- options ----------------------------------------------------------------------------------
@pytest.mark.parametrize("lr", [1e38, float("inf"), float("nan"), 0.0, -1e-3, 1.5])
def test_a_learning_rate_outside_the_sane_range_is_refused_by_name(lr):
    with pytest.raises(TrainOptionError, match=r"'lr'.*above 0 and at most 1"):
        TrainOptions(lr=lr).validated()


def test_gradient_clipping_zero_means_no_clipping():
    assert clip_norm(TrainOptions(clip=0.0).validated()) == math.inf
    assert clip_norm(TrainOptions(clip=2.5).validated()) == 2.5
    with pytest.raises(TrainOptionError, match="'clip'"):
        TrainOptions(clip=-1.0).validated()


def test_a_run_without_clipping_learns():
    trainer = Trainer(tiny(clip=0.0, steps=6, eval_every=0))
    gen = trainer.run()
    first = next(e for e in gen if e.kind == "step")
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    rest = [e for e in gen if e.kind == "step"]
    assert first.grad_norm > 0 and all(e.grad_norm > 0 for e in rest)
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed  # torch's max_norm 0 would have zeroed every gradient: nothing would move


# -- the command line -------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["1e38", "nan", "0"])
def test_cli_refuses_a_bad_learning_rate_in_one_line(value, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert run(["train", "--preset", "tiny", "--lr", value, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "'lr'" in err and "\n" not in err
    assert not out.exists()


def test_cli_run_whose_loss_becomes_nan_stops_in_one_line_and_keeps_good_weights(
    monkeypatch, tmp_path, capsys
):
    real_forward = Trainer._forward

    def forward(self, *args):
        loss, value = real_forward(self, *args)
        return loss, (float("nan") if self.step >= 57 else value)

    monkeypatch.setattr(Trainer, "_forward", forward)
    out = tmp_path / "m.safetensors"
    args = ["train", "--preset", "tiny", "--steps", "80", "--corpus-size", "300"]
    assert run([*args, "--eval-every", "0", "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    failed = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(failed) == 1 and "became nan at step 58" in failed[0]
    assert "weights of step 50 are kept" in failed[0]
    assert f"the model of step 50 is saved in {out}" in err
    ck = load_checkpoint(out)
    assert ck.train_state["step"] == 50
    assert max(h["step"] for h in ck.history) == 50
    assert all(torch.isfinite(p).all() for p in ck.model.parameters())


def test_cli_trains_without_clipping_and_records_it(tmp_path):
    out = tmp_path / "m.safetensors"
    args = ["train", "--preset", "tiny", "--steps", "3", "--corpus-size", "300", "--clip", "0"]
    assert run([*args, "--eval-every", "0", "--out", str(out), "--quiet"]) == 0
    assert load_checkpoint(out).train_state["options"]["clip"] == 0.0
