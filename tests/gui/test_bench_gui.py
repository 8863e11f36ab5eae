"""The GUI benchmark's step-through redraw: it measures the trace it was given, on the tab it was
asked for, and says which tab it could not find."""

from __future__ import annotations

import pytest

from explorer.seq2seq.decoding.decode import greedy
from explorer.tools.bench_gui import step_redraw

SENTENCE = "the cat sees the dog"


def test_redraw_scrubs_every_step_of_the_given_source_on_the_transformer_tab(tiny_models):
    e = tiny_models.transformer
    steps = len(greedy(e.model, e.tokenizer, SENTENCE, max_len=30))
    r = step_redraw(e.model, e.tokenizer, "tiny", 1, source=SENTENCE, tab="Transformer")
    assert r["steps"] == steps
    assert r["paints"] >= 1  # scrubbing painted something at every step
    assert r["scrub"]["median"] <= r["scrub"]["p95"] <= r["scrub"]["max"]


def test_an_unknown_tab_is_named(tiny_models):
    e = tiny_models.transformer
    with pytest.raises(LookupError, match="'Attention heads'"):
        step_redraw(e.model, e.tokenizer, "tiny", 1, source=SENTENCE, tab="Attention heads")
