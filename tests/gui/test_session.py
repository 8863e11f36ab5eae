"""The session without a window: what changes, what it announces, and what it drops."""

from __future__ import annotations

import threading

import pytest

from explorer.gui.runner import Runner
from explorer.gui.session import COMPUTING, NO_MODEL, NO_SENTENCE, NOT_YET, Session
from explorer.seq2seq.decoding import decode

SENTENCE = "the good cow did not laugh"


@pytest.fixture
def session(qapp, tiny_models):
    s = Session(run=Runner())
    s.changed.connect(lambda part: s.heard.append(part))
    s.heard = []
    s.add(tiny_models.bahdanau)
    s.add(tiny_models.none, make_current=False)
    yield s
    assert s.runner.wait_idle(30_000)


def test_a_part_no_view_shows_is_not_computed(session):
    session.set_sentence(SENTENCE)
    assert session.trace is None and session.why("trace") == NOT_YET
    assert not session.runner.busy


def test_the_trace_follows_sentence_and_model_and_names_both(session, tiny_models):
    assert session.why("trace") == NO_SENTENCE
    session.want("trace")
    session.set_sentence(f"  {SENTENCE} ")
    assert session.sentence == SENTENCE and session.why("trace") == COMPUTING
    assert session.runner.wait_idle(30_000)
    entry = tiny_models.bahdanau
    expected = decode.greedy(entry.model, entry.tokenizer, entry.prepare(SENTENCE))
    assert session.trace.tokens == expected.tokens
    assert session.trace.origin.model == entry.name and session.trace.origin.text == SENTENCE
    assert "sentence" in session.heard and "trace" in session.heard
    session.set_current(tiny_models.none)
    assert session.trace is None and session.why("trace") == COMPUTING  # never the old one
    assert session.runner.wait_idle(30_000)
    assert session.trace.origin.model == tiny_models.none.name
    session.set_current(None)
    assert session.trace is None and session.why("trace") == NO_MODEL


def test_a_wanted_part_goes_straight_to_computing_never_through_not_computed(session, tiny_models):
    """Whoever waits for the trace (a lesson's scene) reads each announced reason as the
    answer: a passing "not computed yet" before "computing…" stopped the scene with an error."""
    heard: list[str] = []
    session.changed.connect(lambda part: part == "trace" and heard.append(session.why("trace")))
    session.want("trace")
    session.set_sentence(SENTENCE)
    session.set_current(tiny_models.none)
    session.set_sentence("the cow")
    assert session.runner.wait_idle(30_000)
    assert NOT_YET not in heard and COMPUTING in heard and heard[-1] == "", heard
    assert session.trace is not None and session.trace.origin.text == "the cow"


def test_a_late_result_for_an_older_sentence_is_dropped(session, monkeypatch, qtbot):
    gate = threading.Event()
    real = decode.greedy

    def slow(model, tok, src, **kw):
        if src.text == "the cow":  # the sentence as read through the input policy
            gate.wait(10)
        return real(model, tok, src, **kw)

    monkeypatch.setattr(decode, "greedy", slow)
    session.want("trace")
    session.set_sentence("the cow")
    session.set_sentence(SENTENCE)  # while "the cow" is still being decoded
    qtbot.waitUntil(lambda: session.trace is not None, timeout=30_000)
    assert session.trace.source == SENTENCE and session.runner.running("trace") == 1
    gate.set()  # now "the cow" arrives, late
    assert session.runner.wait_idle(30_000)
    assert session.trace.source == SENTENCE


def test_forcing_keeps_a_history_and_restore_goes_back(session, tiny_models):
    session.want("trace")
    session.set_sentence(SENTENCE)
    assert session.runner.wait_idle(30_000)
    original = session.trace
    session.set_step(1)
    token = next(t for t, _ in original.steps[1].topk(5) if t != original.tokens[1])
    session.force(token)
    assert session.runner.wait_idle(30_000)
    assert session.trace.tokens[:2] == [original.tokens[0], token] and session.step == 1
    assert session.forced == [(1, token)] and session.original is original
    assert session.trace.origin == original.origin  # same model, same source
    session.restore()
    assert session.trace is original and session.forced == [] and session.original is None


def test_settings_that_change_a_result_drop_it(session, tiny_models):
    session.want("beam")
    session.set_beam_params(max_len=10)  # exact search over outputs of at most 10 tokens
    session.set_sentence(SENTENCE)
    assert session.runner.wait_idle(30_000)
    tree = session.beam.tree
    assert tree.origin.model == tiny_models.bahdanau.name and tree.origin.text == SENTENCE
    assert session.run_exact() and session.runner.wait_idle(30_000)
    assert session.records["exact"].origin.text == SENTENCE
    session.set_beam_params(beam=2)
    assert session.records["exact"] is None and "Run exact search" in session.why("exact")
    with pytest.raises(ValueError, match="unknown beam settings: width"):
        session.set_beam_params(width=3)
    assert session.runner.wait_idle(30_000) and session.beam.tree.settings["beam"] == 2


def test_the_comparison_names_its_own_model_and_goes_with_it(session, tiny_models):
    session.want("compare")
    session.set_sentence(SENTENCE)
    assert "second model" in session.why("compare")
    session.set_compare(tiny_models.none.name)
    assert session.runner.wait_idle(30_000)
    assert session.records["compare"].origin.model == tiny_models.none.name
    session.models.remove(tiny_models.none)
    session.models_changed.emit()
    assert session.records["compare"] is None and session.compare_name is None


def session_saying(tiny_models) -> tuple[Session, list[str]]:
    """A session on the tiny Bahdanau model with its training words (so that it knows which
    words it never saw), on "The cat sat near the airport!", and the status lines it says."""
    from dataclasses import replace

    from explorer.seq2seq.data.words import words_record

    base = tiny_models.bahdanau
    words = words_record(tiny_models.pairs, base.corpus)
    assert "the" in words["words"].split() and "airport" not in words["words"].split()
    entry = replace(base, name="tiny bahdanau with its words", corpus={**base.corpus, **words})
    s = Session(run=Runner())
    said: list[str] = []
    s.status.connect(said.append)
    s.add(entry)
    s.want("trace")
    s.set_sentence("The cat sat near the airport!")
    return s, said


def test_words_outside_the_models_world_are_said_in_the_status_bar(qapp, qtbot, tiny_models):
    s, said = session_saying(tiny_models)
    qtbot.waitUntil(lambda: s.trace is not None, timeout=30_000)
    qtbot.waitUntil(lambda: any("never seen in training" in line for line in said), timeout=5_000)
    line = next(line for line in said if "never seen in training" in line)
    assert "airport" in line and " the" not in line.split(":", 1)[1]
    assert s.runner.wait_idle(30_000)


def test_a_model_opened_again_from_its_file_replaces_the_current_one_as_current(qapp, tiny_models):
    from dataclasses import replace
    from pathlib import Path

    s = Session(run=Runner())
    first = replace(tiny_models.bahdanau, path=Path("/models/m.safetensors"))
    other = replace(tiny_models.none, path=Path("/models/other.safetensors"))
    s.add(first)
    s.add(other, make_current=False)
    again = replace(first)  # the same file read again: a new entry
    s.add(again, make_current=False)
    assert s.current is again and [m.path.name for m in s.models] == [
        "other.safetensors",
        "m.safetensors",
    ]
    s.add(replace(other), make_current=False)  # not the current one: the current one stays
    assert s.current is again and len(s.models) == 2


def test_the_status_line_on_a_sentence_goes_when_the_next_sentence_has_none(
    qapp, qtbot, tiny_models
):
    """A line on words outside the model's world belongs to its sentence: the next sentence,
    all of whose words the model knows, takes it away ("" clears the status bar)."""
    s, said = session_saying(tiny_models)
    qtbot.waitUntil(lambda: bool(said), timeout=30_000)
    assert "airport" in said[-1]
    s.set_sentence("the cat sat")
    qtbot.waitUntil(lambda: said[-1] == "", timeout=30_000)
    s.set_sentence("the cat")
    qtbot.waitUntil(lambda: s.trace is not None and s.trace.source == s.source(), timeout=30_000)
    assert s.runner.wait_idle(30_000)
    assert said.count("") == 1  # nothing more to take away
