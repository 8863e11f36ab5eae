"""bfloat16 mixed precision on the CPU (``cpu_amp``): the training step's products in bfloat16,
the weights, the loss and every evaluation in float32; off unless asked for."""

from __future__ import annotations

import pytest
import torch

import explorer.seq2seq.training.options as options_module
from explorer.cli import _parser, format_card
from explorer.cli_train import train_options_from_args
from explorer.seq2seq.checkpoint import read_card
from explorer.seq2seq.training.options import (
    TrainOptionError,
    describe_precision,
    mixed_precision,
)
from explorer.seq2seq.training.train import Trainer, TrainOptions

CPU = torch.device("cpu")


def test_the_cpu_computes_in_float32_unless_cpu_amp_is_set():
    assert mixed_precision(TrainOptions(), CPU) is None
    assert mixed_precision(TrainOptions(amp=True, cpu_amp=False), CPU) is None  # amp is CUDA's
    assert mixed_precision(TrainOptions(cpu_amp=True), CPU) is torch.bfloat16
    # cpu_amp leaves a GPU alone; amp off there means float32
    assert mixed_precision(TrainOptions(amp=False, cpu_amp=True), torch.device("cuda")) is None


def test_the_start_message_names_the_precision_and_warns_where_bfloat16_is_emulated(monkeypatch):
    assert describe_precision(None, CPU) == "float32"
    monkeypatch.setattr(options_module, "native_cpu_bfloat16", lambda: True)
    assert describe_precision(torch.bfloat16, CPU) == "bfloat16 mixed precision"
    monkeypatch.setattr(options_module, "native_cpu_bfloat16", lambda: None)  # cannot tell
    assert describe_precision(torch.bfloat16, CPU) == "bfloat16 mixed precision"
    monkeypatch.setattr(options_module, "native_cpu_bfloat16", lambda: False)
    assert "emulated" in describe_precision(torch.bfloat16, CPU)


def run_recording_output_types(tmp_path, **overrides):
    """A tiny run of 30 steps; the types the output layer computed in, training and evaluating."""
    tmp_path.mkdir(exist_ok=True)
    o = TrainOptions.from_preset(
        "tiny", steps=30, eval_every=15, bleu_sentences=4, threads=1,
        out=str(tmp_path / "m.safetensors"), **overrides,
    )  # fmt: skip
    trainer = Trainer(o)
    seen = {True: set(), False: set()}  # training mode → output types
    events = []
    for e in trainer.run():
        if e.kind == "start":
            out = trainer.model.out
            out.register_forward_hook(lambda m, i, y: seen[m.training].add(y.dtype))
        events.append(e)
    return trainer, events, seen


def test_a_cpu_amp_run_trains_in_bfloat16_and_evaluates_in_float32(tmp_path):
    trainer, events, seen = run_recording_output_types(tmp_path, cpu_amp=True)
    assert seen[True] == {torch.bfloat16}
    assert seen[False] == {torch.float32}  # validation loss, BLEU, the probe
    assert "bfloat16 mixed precision" in events[0].message
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    steps = [e for e in events if e.kind == "step"]
    assert len(steps) == 30 and steps[-1].loss < steps[0].loss
    assert all(e.val_loss is not None for e in events if e.kind == "eval")
    meta = read_card(tmp_path / "m.safetensors")
    assert meta["train_state"]["options"]["cpu_amp"] is True  # a resumed run goes on in bfloat16
    assert meta["card"]["precision"].startswith("bfloat16 mixed precision")
    assert "precision      bfloat16 mixed precision" in format_card(meta)  # what info prints


def test_without_cpu_amp_everything_is_float32_and_the_first_losses_agree(tmp_path):
    _, plain, seen = run_recording_output_types(tmp_path / "a")
    assert seen == {True: {torch.float32}, False: {torch.float32}}
    assert plain[0].message.endswith(", float32")
    assert read_card(tmp_path / "a" / "m.safetensors")["card"]["precision"] == "float32"
    _, mixed, _ = run_recording_output_types(tmp_path / "b", cpu_amp=True)
    first = [next(e.loss for e in run if e.kind == "step") for run in (plain, mixed)]
    # the same weights and batch: bfloat16's 8-bit mantissa moves the loss by well under 1 %
    assert first[1] == pytest.approx(first[0], rel=0.01)
    assert first[1] != first[0]


def test_the_command_line_turns_it_on_and_off():
    def parsed(*flags):
        return train_options_from_args(_parser().parse_args(["train", "--preset", "tiny", *flags]))

    assert parsed().cpu_amp is False
    assert parsed("--cpu-amp").cpu_amp is True
    assert parsed("--cpu-amp", "--no-cpu-amp").cpu_amp is False


def test_a_stored_cpu_amp_that_is_not_a_flag_is_refused_by_name():
    with pytest.raises(TrainOptionError, match="'cpu_amp' = 'yes': must be one of False, True"):
        TrainOptions.from_dict({"cpu_amp": "yes"})
