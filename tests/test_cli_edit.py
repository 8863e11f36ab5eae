"""`translate --edit-attention` with the bundled models: the JSON, and one-line refusals."""

from __future__ import annotations

import json

import pytest

from explorer.cli import run

SENTENCE = "the black cat sat on the mat"


def test_pointing_noir_at_cat_in_json(capsys):
    # the bundled Bahdanau writes "le chat noir ..." ("noir" is step 2); source piece 2 is "cat"
    assert run(["translate", "--checkpoint", "classroom-bahdanau", "--json",
                "--edit-attention", "2=2", SENTENCE]) == 0  # fmt: skip
    (r,) = json.loads(capsys.readouterr().out)
    assert r["source_pieces"][2] == "cat"
    assert r["greedy"]["pieces"][2] == "noir"
    assert r["edited_steps"] == [2]
    assert r["nbest"][0]["pieces"][:2] == r["greedy"]["pieces"][:2]
    assert r["nbest"][0]["pieces"][2] != "noir"
    assert r["differs_at"] and r["differs_at"][0] == 2
    assert r["attention"][2] == [0, 0, 1, 0, 0, 0, 0, 0]


def test_transformer_layer_and_head_form(capsys):
    argv = ["translate", "--checkpoint", "classroom-transformer", "--json"]
    assert run([*argv, "--edit-attention", "2=2@0:1", SENTENCE]) == 0
    (r,) = json.loads(capsys.readouterr().out)
    assert r["edits"] == ["step 2 → source 2 in layer 0 head 1"]


@pytest.mark.parametrize(
    "model, extra, message",
    [
        ("classroom-none", ["--edit-attention", "2=2"], "has no attention"),
        ("classroom-bahdanau", ["--edit-attention", "2=8"], "source index 8 is outside"),
        ("classroom-bahdanau", ["--edit-attention", "2:2"], "expected STEP=SRC_INDEX"),
        ("classroom-bahdanau", ["--edit-attention", "2=1", "--beam", "4"], "decodes greedily"),
        ("classroom-transformer", ["--edit-attention", "2=1@7"], "layer 7 is not in 0..2"),
    ],
)
def test_refusals_are_one_line(model, extra, message, capsys):
    assert run(["translate", "--checkpoint", model, *extra, SENTENCE]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.startswith("error:") and "\n" not in err
