"""Model FLOPs and utilisation (``explorer.seq2seq.training.flops``): the count agrees with
torch's own FLOP counter on the Transformer's forward and backward passes, the clock turns it
into FLOP/s over the time in steps, and the peak comes from the GPU's name."""

from __future__ import annotations

import time

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from explorer.seq2seq.models.families import build_model, make_config
from explorer.seq2seq.training import flops as flops_module
from explorer.seq2seq.training import train as train_module
from explorer.seq2seq.training.clock import Clock
from explorer.seq2seq.training.flops import Lengths, forward_flops, peak_flops, step_flops
from explorer.seq2seq.training.train import Trainer, TrainOptions


def transformer(**sizes):
    torch.manual_seed(0)
    config = {"d_model": 32, "heads": 4, "enc_layers": 2, "dec_layers": 3, "d_ff": 48}
    return build_model(
        make_config("transformer", src_vocab=50, tgt_vocab=60, dropout=0.0, **{**config, **sizes})
    )


def counted(model, pairs: list[tuple[int, int]], backward: bool = True) -> int:
    """torch's count of a teacher-forced pass over sentences of these lengths, one batch each
    (no padding). The attention runs as plain matrix products, which the counter sees."""
    total = 0
    for s, t in pairs:
        src = torch.randint(4, 50, (1, s))
        tgt = torch.randint(4, 60, (1, t))
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc:
            out = model.logits(src, torch.tensor([s]), tgt, torch.ones(1, t, dtype=torch.bool))
            if backward:
                out.pow(2).sum().backward()
        total += fc.get_total_flops()
    return total


@pytest.mark.parametrize(
    "sizes",
    [{}, {"norm": "post", "tie_embeddings": False}, {"d_model": 16, "heads": 2, "d_ff": 40}],
)
def test_the_count_is_torchs_for_forward_and_backward(sizes):
    model = transformer(**sizes)
    pairs = [(7, 5), (3, 9), (12, 1), (1, 4)]
    n = Lengths.of(pairs)
    assert forward_flops(model, n) == counted(model, pairs, backward=False)
    assert step_flops(model, n) == counted(model, pairs) == 3 * forward_flops(model, n)


def test_lengths_sum_the_pairs_and_what_attention_costs():
    assert Lengths.of([(2, 3), (4, 1)]) == Lengths(s=6, t=4, ss=20, tt=10, st=10)
    assert Lengths.of([]) == Lengths()
    assert step_flops(transformer(), Lengths()) == 0


def test_a_family_without_a_count_has_none():
    rnn = build_model(make_config("bahdanau", src_vocab=20, tgt_vocab=20, emb_dim=8, hidden_dim=8))
    assert forward_flops(rnn, Lengths.of([(3, 3)])) is None
    assert step_flops(rnn, Lengths.of([(3, 3)])) is None


def test_the_clock_gives_flops_per_second_and_the_utilisation_against_the_peak():
    clock = Clock(total=10, per_epoch=5, peak=16e9)
    clock.count(600, 0.2, 1_000_000_000)  # under a second of wall time: no figure yet
    assert clock.flops_per_second is None and clock.mfu is None
    clock.window_t0 -= 30.0  # after a pause: the window's 4e9 FLOPs took 0.5 s of steps
    clock.count(400, 0.3, 3_000_000_000)
    assert clock.flops_per_second == pytest.approx(8e9)
    assert clock.mfu == pytest.approx(0.5)
    assert clock.window_flops == 0


def test_a_window_with_an_uncounted_step_leaves_the_figure_as_it_was():
    clock = Clock(total=10, per_epoch=5)
    clock.count(10, 0.5, None)
    clock.window_t0 -= 2.0
    clock.count(10, 0.5, 2_000)
    assert clock.flops_per_second is None and clock.tokens_per_second == pytest.approx(20.0)
    assert clock.mfu is None  # no peak known


@pytest.mark.parametrize(
    "name, amp, tf32, peak",
    [
        ("NVIDIA H100 80GB HBM3", torch.bfloat16, False, 989e12),
        ("NVIDIA H100 PCIe", torch.bfloat16, False, 756e12),
        ("NVIDIA H100 NVL", torch.float16, False, 835.5e12),
        ("NVIDIA H200", torch.bfloat16, False, 989e12),
        ("NVIDIA A100-SXM4-80GB", torch.bfloat16, False, 312e12),
        ("NVIDIA L4", torch.bfloat16, False, 121e12),
        ("NVIDIA L40S", torch.bfloat16, False, 362e12),
        ("NVIDIA H100 80GB HBM3", None, True, 494.7e12),  # float32 products in TF32
        ("NVIDIA H100 80GB HBM3", None, False, None),  # plain float32: no table entry
        ("Tesla T4", torch.float16, False, None),  # not in the table
    ],
)
def test_the_peak_comes_from_the_gpus_name(monkeypatch, name, amp, tf32, peak):
    monkeypatch.setattr(flops_module.torch.cuda, "get_device_name", lambda device: name)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", tf32)
    assert peak_flops(torch.device("cuda"), amp) == peak


def test_no_peak_on_the_cpu():
    assert peak_flops(torch.device("cpu"), None) is None
    assert peak_flops(torch.device("cpu"), torch.bfloat16) is None


class SteadyClock:
    """perf_counter advancing a second at every reading: every step closes a window. (It
    starts from the real one, which the clock's fields took as their start.)"""

    def __init__(self) -> None:
        self.now = time.perf_counter()

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now


def tiny_run(monkeypatch, arch: str, peak: float | None):
    clock = SteadyClock()
    monkeypatch.setattr(train_module, "time", clock)
    monkeypatch.setattr("explorer.seq2seq.training.clock.time", clock)
    monkeypatch.setattr(train_module, "peak_flops", lambda device, amp: peak)
    model = {"d_model": 16, "heads": 2, "enc_layers": 1, "dec_layers": 1, "d_ff": 32}
    options = TrainOptions.from_preset(
        "tiny", arch=arch, steps=4, eval_every=0, corpus_size=200, threads=1,
        **({"model": model} if arch == "transformer" else {}),
    )  # fmt: skip
    return list(Trainer(options).run())


def test_a_transformer_run_reports_its_flops_and_utilisation(monkeypatch):
    events = tiny_run(monkeypatch, "transformer", peak=1e9)
    assert "model FLOPs utilisation against a peak of 0 TFLOP/s" in events[0].message
    steps = [e for e in events if e.kind == "step"]
    assert len(steps) == 4
    for e in steps:
        assert e.flops_per_second > 0
        assert e.mfu == pytest.approx(e.flops_per_second / 1e9)


def test_a_run_without_a_count_or_a_peak_reports_none(monkeypatch):
    steps = [e for e in tiny_run(monkeypatch, "bahdanau", peak=1e9) if e.kind == "step"]
    assert steps and all(e.flops_per_second is None and e.mfu is None for e in steps)
    steps = [e for e in tiny_run(monkeypatch, "transformer", peak=None) if e.kind == "step"]
    assert all(e.flops_per_second > 0 and e.mfu is None for e in steps)


def test_the_command_line_sums_up_the_run_with_the_median_step():
    from explorer.cli_train import _rate_summary

    assert _rate_summary([]) == ""
    rates = [(1e12, 0.5), (3e12, 0.1), (2e12, 0.2)]
    assert _rate_summary(rates) == (
        ", 2 model TFLOP/s, model FLOPs utilisation 20.0% (the median over 3 steps)"
    )
    assert _rate_summary([(6.34e10, None)]) == ", 0.0634 model TFLOP/s (the median over 1 step)"
