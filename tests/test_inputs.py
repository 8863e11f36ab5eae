"""The one input policy: the command line and the GUI read a typed sentence the same way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer.cli import run
from explorer.seq2seq.checkpoint import load_checkpoint
from explorer.seq2seq.data.inputs import (
    PreparedSource,
    SourceTextError,
    corpus_text,
    prepare_source,
    source_limit,
)
from explorer.seq2seq.decoding.beam import beam_search
from explorer.seq2seq.decoding.decode import greedy
from explorer.seq2seq.models.base import EOS

CLASSROOM = {"name": "classroom"}
BUNDLED = str(Path(__file__).resolve().parent.parent / "models" / "classroom-bahdanau.safetensors")


@pytest.fixture(scope="module")
def bahdanau():
    return load_checkpoint(BUNDLED)


def test_corpus_text_follows_the_corpus():
    typed = "  The Black\tCat\x07 sat!  "
    assert corpus_text(typed, CLASSROOM) == "the black cat sat"
    assert corpus_text(typed, {"name": "custom"}) == "The Black Cat sat!"
    assert corpus_text(typed) == "The Black Cat sat!"
    assert corpus_text("?!", CLASSROOM) == ""


def test_prepared_source_is_a_source_and_unpacks_as_ids_and_notice(bahdanau):
    tok = bahdanau.tokenizer
    source = prepare_source(tok, "The cat sleeps.", corpus=CLASSROOM)
    assert isinstance(source, PreparedSource)
    assert source.text == "the cat sleeps"
    assert source.ids == tuple(tok.encode_src("the cat sleeps")) and source.ids[-1] == EOS
    ids, notice = source
    assert ids == list(source.ids) and notice is None
    # decoders take it as it is: the trace names the prepared text, the steps are the ids'
    by_source = greedy(bahdanau.model, tok, source)
    by_ids = greedy(bahdanau.model, tok, ids)
    assert by_source.source == "the cat sleeps"
    assert by_source.tokens == by_ids.tokens
    [result] = beam_search(bahdanau.model, tok, source, beam=2)
    assert result.tree.source == "the cat sleeps"


def test_a_long_sentence_is_cut_with_a_notice(bahdanau):
    source = prepare_source(bahdanau.tokenizer, "the cat sleeps " * 40, 12, corpus=CLASSROOM)
    assert len(source.ids) == 12 and source.ids[-1] == EOS
    assert source.notice.startswith("source truncated: kept the first 11 of")


def test_punctuation_only_is_refused_for_a_classroom_model(bahdanau):
    with pytest.raises(SourceTextError, match=r"source sentence '\?!' has no words the classroom"):
        prepare_source(bahdanau.tokenizer, "?!", corpus=CLASSROOM)


def test_the_command_line_goes_through_the_same_policy(bahdanau, capsys):
    typed = "  The little dog SLEEPS!\x00 "
    assert run(["translate", "--checkpoint", BUNDLED, "--json", typed]) == 0
    [row] = json.loads(capsys.readouterr().out)
    source = prepare_source(
        bahdanau.tokenizer, typed, source_limit(bahdanau.model), corpus=bahdanau.corpus
    )
    assert row["source"] == source.text == "the little dog sleeps"
    [result] = beam_search(bahdanau.model, bahdanau.tokenizer, source, beam=1)
    assert row["nbest"][0]["text"] == result.best.text
    assert run(["translate", "--checkpoint", BUNDLED, "?!"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: source sentence '?!' has no words") and err.count("\n") == 1


def test_the_gui_model_entry_prepares_text_with_the_same_function(bahdanau):
    pytest.importorskip("PySide6")
    from explorer.gui.state import LoadedModel

    entry = LoadedModel.from_checkpoint(bahdanau)
    typed = "The black cat, sat!"
    assert entry.prepare(typed) == corpus_text(typed, bahdanau.corpus) == "the black cat sat"
