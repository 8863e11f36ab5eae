"""Sentences typed by anyone: each is translated, truncated with a notice, or refused with a
one-line ValueError. The model is a tiny untrained Transformer (behaviour, not quality)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.seq2seq.checkpoint import load_checkpoint
from explorer.seq2seq.data.inputs import SourceTextError, clean_text, prepare_source, source_limit
from explorer.seq2seq.decoding import decode
from explorer.seq2seq.decoding.decode import greedy
from explorer.seq2seq.models.base import EOS

VALID = Path(__file__).parent / "data" / "bad_checkpoints" / "valid.safetensors"


@pytest.fixture(scope="module")
def loaded():
    torch.manual_seed(0)
    ck = load_checkpoint(VALID)  # tiny Transformer, max_len=16
    return ck.model, ck.tokenizer


SENTENCES = {
    "plain": "the cat sleeps",
    "emoji": "the cat 😀 sleeps 👩‍👩‍👧",
    "cjk": "猫が寝ている 猫在睡觉",
    "rtl": "\u200fהחתול ישן القط نائم",
    "control": "the\x07cat\x1b[31m sleeps\x7f",
    "nul": "the\x00cat\x00sleeps",
    "tabs_newlines": "the\tcat\r\nsleeps\n",
    "combining": "e\u0301e\u0301 cafe\u0301",
    "long": "the cat sleeps " * 400,  # 6,000 characters
}


@pytest.mark.parametrize("name", sorted(SENTENCES))
def test_each_sentence_is_translated_through_prepare_source(name, loaded):
    model, tok = loaded
    limit = source_limit(model)
    assert limit == 16
    ids, notice = prepare_source(tok, SENTENCES[name], max_tokens=limit)
    assert ids[-1] == EOS and 2 <= len(ids) <= limit
    if name == "long":
        assert notice is not None and "source truncated: kept the first 15 of" in notice
        assert "\n" not in notice
    else:
        assert notice is None
    trace = greedy(model, tok, ids, max_len=limit - 1)
    assert 1 <= len(trace.steps) <= limit - 1
    for step in trace.steps:
        assert np.isfinite(step.logprobs).all()
        assert step.cross_attention is None or np.isfinite(step.cross_attention).all()
    assert isinstance(tok.decode_tgt([s.token for s in trace.steps]), str)


def test_control_characters_never_reach_the_tokenizer():
    assert clean_text("the\x00cat\x1b[31m\x7f  sleeps\u2028") == "the cat [31m sleeps"
    assert clean_text("\u200fשלום") == "\u200fשלום"  # right-to-left mark kept


@pytest.mark.parametrize(
    "text,word", [("", "empty"), ("   \t\n ", "only spaces"), ("\x00\x01\x1b", "only spaces")]
)
def test_nothing_to_translate_is_a_clear_error(text, word, loaded):
    _, tok = loaded
    with pytest.raises(SourceTextError, match=f"source sentence is {word}") as info:
        prepare_source(tok, text, max_tokens=16)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_non_text_is_a_clear_error(loaded):
    with pytest.raises(SourceTextError, match="source must be text, got bytes"):
        prepare_source(loaded[1], b"the cat", max_tokens=16)


@pytest.mark.parametrize("name", sorted(SENTENCES))
def test_raw_text_through_decode_translates_or_refuses_in_one_line(name, loaded):
    """Without prepare_source, decode must still answer with a trace or a ValueError."""
    model, tok = loaded
    try:
        trace = decode.greedy(model, tok, SENTENCES[name], max_len=8)
    except ValueError as e:
        assert "\n" not in str(e).strip()
        assert name == "long" and "max_len" in str(e)
        return
    assert 1 <= len(trace.steps) <= 8


def test_empty_string_through_decode_is_translated_or_refused(loaded):
    model, tok = loaded
    try:
        trace = decode.greedy(model, tok, "", max_len=4)
    except ValueError as e:
        assert "\n" not in str(e)
    else:
        assert 1 <= len(trace.steps) <= 4
