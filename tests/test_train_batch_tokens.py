"""Token-based batches (``batch_tokens``): at most that many padded tokens in a batch, the same
number of batches every epoch, and a run that trains on them."""

from __future__ import annotations

import random

import pytest

from explorer.seq2seq.training.batch import batches_per_epoch, epoch_batches
from explorer.seq2seq.training.options import TrainOptionError
from explorer.seq2seq.training.train import Trainer, TrainOptions


def sentences(n: int = 500, seed: int = 1) -> tuple[list[list[int]], list[list[int]]]:
    rng = random.Random(seed)
    src = [[5] * rng.randint(1, 30) for _ in range(n)]
    tgt = [[6] * max(1, len(s) + rng.randint(-3, 3)) for s in src]
    return src, tgt


def padded(batch: list[int], src, tgt) -> int:
    return len(batch) * max(max(len(src[i]), len(tgt[i])) for i in batch)


def test_token_batches_hold_at_most_batch_tokens_and_every_epoch_has_as_many():
    src, tgt = sentences()
    o = TrainOptions(batch_size=1000, batch_tokens=200)
    n = batches_per_epoch(o, src, tgt)
    total_tokens = sum(max(len(s), len(t)) for s, t in zip(src, tgt))
    assert n >= total_tokens / 200  # no batch over the limit: at least this many
    for epoch in range(4):
        batches = epoch_batches(o, src, tgt, epoch)
        assert len(batches) == n
        assert all(padded(b, src, tgt) <= 200 for b in batches)
        seen = [i for b in batches for i in b]
        # cut anew each epoch to the same count: all but a few batches' worth of the sentences
        assert len(set(seen)) >= len(src) - 3 * 30
    assert epoch_batches(o, src, tgt, 1) != epoch_batches(o, src, tgt, 2)  # reshuffled


def test_sentence_batches_are_unchanged_without_batch_tokens():
    src, tgt = sentences(130)
    o = TrainOptions(batch_size=32)
    assert batches_per_epoch(o, src, tgt) == 5  # ceil(130 / 32)
    batches = epoch_batches(o, src, tgt, 0)
    assert sorted(i for b in batches for i in b) == list(range(130))
    assert max(len(b) for b in batches) == 32


def test_a_run_with_token_batches_trains_for_its_epochs():
    o = TrainOptions.from_preset(
        "tiny", corpus_size=200, steps=None, epochs=2.0, batch_size=500, batch_tokens=300,
        eval_every=0, bleu_sentences=2,
    )  # fmt: skip
    trainer = Trainer(o)
    steps = [e for e in trainer.run() if e.kind == "step"]
    per_epoch = batches_per_epoch(o, trainer.train_src, trainer.train_tgt)
    assert len(steps) == 2 * per_epoch
    assert steps[-1].epoch == pytest.approx(2.0)
    assert steps[-1].loss < steps[0].loss


@pytest.mark.parametrize("value", [0, -5, 2.5, 1 << 25])
def test_a_bad_batch_tokens_is_refused_by_name(value):
    with pytest.raises(TrainOptionError, match="'batch_tokens'"):
        TrainOptions(batch_tokens=value).validated()


def test_a_resumed_run_takes_the_batches_the_whole_run_would_have(tmp_path, monkeypatch):
    import explorer.seq2seq.training.train as train_module

    taken: list[list[int]] = []
    make_batch = train_module.make_batch

    def recording(idx, *args):
        taken.append(list(idx))
        return make_batch(idx, *args)

    monkeypatch.setattr(train_module, "make_batch", recording)
    base = {"corpus_size": 200, "batch_size": 500, "batch_tokens": 300, "eval_every": 0}
    whole = Trainer(TrainOptions.from_preset("tiny", steps=1, **base))
    list(whole.run())
    per_epoch = batches_per_epoch(whole.options, whole.train_src, whole.train_tgt)
    total, stop_at = 2 * per_epoch + 2, per_epoch + 1  # stop inside the second epoch
    taken.clear()
    list(Trainer(TrainOptions.from_preset("tiny", steps=total, **base)).run())
    want, taken[:] = list(taken), []
    path = tmp_path / "r.safetensors"
    first = Trainer(TrainOptions.from_preset("tiny", steps=total, out=str(path), **base))
    for ev in first.run():
        if ev.kind == "step" and ev.step == stop_at:
            first.request_stop()
    second = Trainer(TrainOptions.from_preset("tiny", steps=total, **base), resume=path)
    assert [e.step for e in second.run() if e.kind == "step"] == list(range(stop_at + 1, total + 1))
    assert taken == want and len(want) == total
