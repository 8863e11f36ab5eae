"""The bundled real-language model, models/multi30k-de-en-transformer.safetensors: a German→English
Transformer trained on Multi30k by the ``multi30k-de-en-transformer`` preset, stored in 16 bits."""

from pathlib import Path

import numpy as np
import pytest
import torch

from explorer import assets
from explorer.seq2seq.checkpoint import load_checkpoint, read_card
from explorer.seq2seq.decoding.decode import greedy

PATH = Path(__file__).resolve().parent.parent / "models" / "multi30k-de-en-transformer.safetensors"
# test2016 sentences (never trained on) that the model translates exactly as the reference does
TEST2016 = [
    ("Eine Frau, die in einer Küche eine Schale mit Essen hält.",
     "A woman holding a bowl of food in a kitchen."),
    ("Der braune Hund steht auf dem Sandstrand.", "The brown dog is standing on the sandy beach."),
    ("Zwei Männer und eine Dame stehen im Freien.", "Two men and a lady are standing outside."),
    ("Die Frau im braunen Shirt sitzt auf einer hellroten Bank.",
     "The woman in the brown shirt is sitting on a bright red bench."),
]  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint():
    return load_checkpoint(PATH)


def test_it_is_bundled_in_16_bits_with_its_card():
    assert "multi30k-de-en-transformer" in assets.BUNDLED
    assert PATH in assets.bundled_paths()
    assert PATH.stat().st_size <= 25 * 2**20  # 9.6 M weights in 16 bits; 38 MB in 32
    meta = read_card(PATH)
    assert meta["config"]["arch"] == "transformer"
    assert (meta["corpus"]["src_lang"], meta["corpus"]["tgt_lang"]) == ("de", "en")
    assert meta["card"]["weights"] == "float16"
    assert "--preset multi30k-de-en-transformer" in meta["card"]["command"]
    assert (PATH.parent / "multi30k-de-en-transformer.md").is_file()  # the model card


def test_its_16_bit_weights_load_as_float32(checkpoint):
    weights = [p for p in checkpoint.model.parameters()]
    assert all(p.dtype == torch.float32 for p in weights)
    # each weight is a float16 value: a round trip through 16 bits changes nothing
    assert all(torch.equal(p, p.half().float()) for p in weights)


@pytest.mark.parametrize("source, reference", TEST2016)
def test_it_translates_unseen_german(checkpoint, source, reference):
    trace = greedy(checkpoint.model, checkpoint.tokenizer, source)
    assert checkpoint.tokenizer.decode_tgt(trace.tokens) == reference


def test_its_beliefs_are_not_all_certain(checkpoint):
    """A real model hesitates: some steps' top probability is far from 1."""
    top = []
    for source, _ in TEST2016:
        trace = greedy(checkpoint.model, checkpoint.tokenizer, source)
        top += [float(np.exp(step.logprobs.max())) for step in trace.steps]
    assert min(top) < 0.6 and max(top) > 0.9


def test_info_counts_all_its_training_words(capsys):
    """The word list runs to 265,000 characters; the card counts its words, not those of the
    first thousand characters that a printed string is cut to."""
    from explorer.cli import run

    words = read_card(PATH)["corpus"]["words"].split()
    assert len(words) > 20_000
    assert run(["info", "multi30k-de-en-transformer"]) == 0
    out = capsys.readouterr().out
    assert f" words={len(words)}" in out and "weights        float16" in out
