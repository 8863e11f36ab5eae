"""Checkpoint averaging (``average_last``): the saved model is the mean of the weights at the
last N evaluations, and N = 0 leaves the run as it was."""

from __future__ import annotations

import pytest
import torch

from explorer.cli import run
from explorer.seq2seq.checkpoint import load_checkpoint, read_card
from explorer.seq2seq.training.averaging import WeightAverage
from explorer.seq2seq.training.options import TrainOptionError
from explorer.seq2seq.training.train import Trainer, TrainOptions


def tiny(**overrides) -> TrainOptions:
    base = {"steps": 20, "eval_every": 5, "corpus_size": 200, "bleu_sentences": 3}
    return TrainOptions.from_preset("tiny", **{**base, **overrides})


def weights_at_evaluations(trainer: Trainer) -> tuple[list, dict[int, dict]]:
    """Run ``trainer``; the events, and a copy of the model's weights at each evaluation."""
    events, seen = [], {}
    for ev in trainer.run():
        events.append(ev)
        if ev.kind == "eval":
            seen[ev.step] = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    return events, seen


def test_the_saved_model_is_the_mean_of_the_last_evaluations_weights(tmp_path, capsys):
    out = tmp_path / "avg.safetensors"
    trainer = Trainer(tiny(average_last=3, out=str(out)))
    events, seen = weights_at_evaluations(trainer)
    assert sorted(seen) == [0, 5, 10, 15, 20]
    saved = load_checkpoint(out).model.state_dict()
    for name, value in saved.items():
        want = (seen[10][name] + seen[15][name] + seen[20][name]) / 3
        torch.testing.assert_close(value, want, rtol=0, atol=1e-6)
    assert any(not torch.equal(saved[k], seen[20][k]) for k in saved)  # not the last weights
    card = read_card(out)["card"]
    assert card["averaged"]["steps"] == [10, 15, 20]
    note = next(e for e in events if e.kind == "diagnostic" and "mean of the weights" in e.message)
    assert "steps 10, 15, 20" in note.message
    assert card["val_bleu"] == card["averaged"]["val_bleu"] == note.val_bleu
    assert card["options"]["average_last"] == 3
    capsys.readouterr()
    assert run(["info", str(out)]) == 0
    assert "averaged       the weights at steps 10, 15, 20" in capsys.readouterr().out


def test_average_last_zero_changes_nothing(tmp_path):
    plain = tmp_path / "plain.safetensors"
    _, seen_plain = weights_at_evaluations(Trainer(tiny(out=str(plain))))
    zero = tmp_path / "zero.safetensors"
    events, seen = weights_at_evaluations(Trainer(tiny(average_last=0, out=str(zero))))
    assert not any("mean of the weights" in e.message for e in events)
    a, b = load_checkpoint(plain).model.state_dict(), load_checkpoint(zero).model.state_dict()
    for name in a:
        assert torch.equal(a[name], b[name]), name
        assert torch.equal(b[name], seen[20][name]), name  # the last weights, as trained
    assert "averaged" not in read_card(zero)["card"]


def test_keeping_weights_does_not_change_the_training_itself():
    _, plain = weights_at_evaluations(Trainer(tiny(steps=10)))
    _, kept = weights_at_evaluations(Trainer(tiny(steps=10, average_last=2)))
    assert plain.keys() == kept.keys()
    assert all(torch.equal(plain[10][k], v) for k, v in kept[10].items())


def test_weight_average_keeps_the_last_n_and_skips_step_zero():
    model = torch.nn.Linear(2, 1)
    average = WeightAverage(keep=2)
    for step, value in [(0, 100.0), (1, 1.0), (2, 2.0), (2, 9.0), (3, 4.0)]:
        torch.nn.init.constant_(model.weight, value)
        average.add(step, model)
    assert average.steps == [2, 3]  # step 0 is untrained; a step already kept is not kept twice
    assert torch.equal(average.mean()["weight"], torch.full((1, 2), 3.0))
    assert average.mean()["weight"].dtype == torch.float32


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"average_last": -1}, "'average_last' = -1: must be a whole number from 0 to 50"),
        ({"average_last": 51}, "'average_last' = 51: must be a whole number from 0 to 50"),
        ({"average_last": 2.5}, "'average_last'"),
        ({"average_last": 3, "eval_every": 0}, "needs 'eval_every' above 0"),
    ],
)
def test_bad_average_last_is_refused_by_name(overrides, words):
    with pytest.raises(TrainOptionError, match=words.replace("(", r"\(")):
        TrainOptions(**overrides).validated()


def test_cli_average_last_in_one_line(tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert run(["train", "--preset", "tiny", "--average-last", "99", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "'average_last'" in err and "\n" not in err
    assert not out.exists()
