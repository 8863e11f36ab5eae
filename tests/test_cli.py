"""The headless command line, end to end, on a model trained here in seconds."""

import json
import subprocess
import sys

import pytest

from explorer.cli import run


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "tiny.safetensors"
    rc = run(
        [
            "train",
            "--preset",
            "tiny",
            "--steps",
            "40",
            "--corpus-size",
            "400",
            "--out",
            str(path),
            "--quiet",
        ]
    )
    assert rc == 0 and path.is_file()
    return path


def test_translate_json_has_the_documented_fields(checkpoint, capsys):
    assert (
        run(
            [
                "translate",
                "--checkpoint",
                str(checkpoint),
                "--beam",
                "3",
                "--nbest",
                "2",
                "--length-penalty",
                "gnmt",
                "--alpha",
                "0.6",
                "--json",
                "a b c",
                "d e f g",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert len(out) == 2
    for sentence in out:
        assert len(sentence["nbest"]) == 2
        for h in sentence["nbest"] + [sentence["greedy"]]:
            assert set(h) >= {
                "text",
                "pieces",
                "token_logprobs",
                "score",
                "normalized_score",
                "formula",
            }
            assert h["score"] == pytest.approx(sum(h["token_logprobs"]), abs=1e-5)
        best = sentence["nbest"][0]
        L = len(best["token_logprobs"])
        assert best["normalized_score"] == pytest.approx(
            best["score"] / ((5 + L) / 6) ** 0.6, abs=1e-5
        )
        assert len(sentence["attention"]) == L


def test_translate_tree_file(checkpoint, tmp_path, capsys):
    tree = tmp_path / "tree.json"
    assert (
        run(
            [
                "translate",
                "--checkpoint",
                str(checkpoint),
                "--beam",
                "4",
                "--tree",
                str(tree),
                "a b c d",
            ]
        )
        == 0
    )
    data = json.loads(tree.read_text())
    node = data["nodes"][1]
    assert set(node) >= {
        "id",
        "parent",
        "step",
        "piece",
        "logprob",
        "score",
        "normalized_score",
        "rank",
        "fate",
    }
    assert data["nodes"][0]["parent"] == -1
    assert capsys.readouterr().out.count("\n") == 1  # one line: the (maybe empty) translation


def test_translate_sampling_is_reproducible(checkpoint, capsys):
    args = [
        "translate",
        "--checkpoint",
        str(checkpoint),
        "--temperature",
        "1.5",
        "--seed",
        "3",
        "--json",
        "a b c d e",
    ]
    run(args)
    first = capsys.readouterr().out
    run(args)
    assert capsys.readouterr().out == first


def test_evaluate_json_on_the_training_corpus_test_split(checkpoint, capsys):
    assert run(["evaluate", "--checkpoint", str(checkpoint), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert 0 <= res["bleu"] <= 100 and 0 <= res["chrf"] <= 100
    assert res["by_length"][0]["range"][0] <= res["by_length"][-1]["range"][0]
    assert sum(b["count"] for b in res["by_length"]) == res["sentences"]
    assert "aer" in res  # the toy corpus has gold alignments
    assert "(test split)" in res["corpus"]


def test_info_prints_the_model_card(checkpoint, capsys):
    assert run(["info", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "bahdanau" in out and "parameters" in out


def test_corpus_classroom_writes_tsv_and_alignments(tmp_path, capsys):
    assert run(["corpus", "classroom", "--out", str(tmp_path), "--size", "50", "--seed", "1"]) == 0
    tsv = (tmp_path / "classroom.tsv").read_text().splitlines()
    align = (tmp_path / "classroom.align").read_text().splitlines()
    assert len(tsv) == len(align) == 50
    assert all(line.count("\t") == 1 for line in tsv)


def test_bad_inputs_get_one_line_errors(checkpoint, tmp_path, capsys):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 3)
    assert run(["info", str(junk)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "junk.safetensors" in err and "\n" not in err
    assert run(["translate", "--checkpoint", str(checkpoint), "   "]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "only spaces" in err
    bad = tmp_path / "bad.tsv"
    bad.write_text("only one column\n")
    assert (
        run(
            [
                "train",
                "--corpus",
                str(bad),
                "--arch",
                "bahdanau",
                "--out",
                str(tmp_path / "x.safetensors"),
                "--quiet",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "bad.tsv:1" in err and "\n" not in err


def test_python_dash_m_explorer_runs_headless_without_qt():
    code = (
        "import sys, runpy; sys.argv=['explorer','corpus','--help']\n"
        "try:\n    runpy.run_module('explorer', run_name='__main__')\n"
        "except SystemExit: pass\n"
        "assert not [m for m in sys.modules if m.startswith('PySide6')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
