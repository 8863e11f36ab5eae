"""`attention-explorer figure`: every view written as PNG and SVG with its data, offscreen; bad
input answered in one line; the other commands unharmed where Qt cannot load."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from explorer.cli import run

resvg_py = pytest.importorskip("resvg_py")

MODEL = "classroom-bahdanau"
SENTENCE = "the black cat sat on the mat"
SIZE = (640, 400)
STEP_VIEWS = ("alignment", "attention", "context", "topk", "hidden", "arithmetic")


def figure(tmp_path, view: str, out: str, *extra: str) -> int:
    args = ["figure", "--checkpoint", MODEL, "--sentence", SENTENCE, "--view", view,
            "--out", str(tmp_path / out), "--size", "x".join(map(str, SIZE)), *extra]  # fmt: skip
    return run(args)


def png_size(path) -> tuple[int, int]:
    from PySide6.QtGui import QImage

    image = QImage(str(path))
    assert not image.isNull(), f"{path} is not a PNG"
    return image.width(), image.height()


def rendered_size(path) -> tuple[int, int]:
    """The SVG drawn by resvg (it raises on a file it cannot read)."""
    from PySide6.QtGui import QImage

    image = QImage()
    assert image.loadFromData(bytes(resvg_py.svg_to_bytes(svg_path=str(path))), "PNG")
    return image.width(), image.height()


@pytest.mark.parametrize("view", (*STEP_VIEWS, "bottleneck", "tree"))
def test_each_view_as_png_svg_json_and_csv(view, tmp_path):
    assert figure(tmp_path, view, "f.png", "--step", "3", "--data", str(tmp_path / "f.json")) == 0
    assert figure(tmp_path, view, "f.svg", "--step", "3", "--data", str(tmp_path / "f.csv")) == 0
    w, h = png_size(tmp_path / "f.png")
    assert (w, h) == (2 * SIZE[0], 2 * SIZE[1])  # PNG at twice the view's size
    assert rendered_size(tmp_path / "f.svg") == (w // 2, h // 2)
    data = json.loads((tmp_path / "f.json").read_text("utf-8"))
    assert data["model"].startswith(MODEL) and data["source"] == SENTENCE
    assert data["step"] == (3 if view in STEP_VIEWS else None)
    assert data["rows"] and len(data["columns"]) == len(data["rows"][0])
    text = (tmp_path / "f.csv").read_text("utf-8")
    assert f"# source: {SENTENCE}\n" in text and f"# model: {data['model']}\n" in text
    body = [line for line in text.splitlines() if not line.startswith("#")]
    assert next(csv.reader(body)) == data["columns"]
    assert SENTENCE in (tmp_path / "f.svg").read_text("utf-8")  # the SVG's description


def test_the_step_chooses_the_numbers(tmp_path):
    from explorer.assets import checkpoint_path
    from explorer.gui.session import decode_job
    from explorer.gui.state import LoadedModel
    from explorer.seq2seq.checkpoint import load_checkpoint

    trace = decode_job(
        LoadedModel.from_checkpoint(load_checkpoint(checkpoint_path(MODEL))), "greedy", SENTENCE
    )
    for step in (1, len(trace)):
        out = tmp_path / f"{step}.json"
        assert figure(tmp_path, "attention", "a.png", "--step", str(step), "--data", str(out)) == 0
        rows = json.loads(out.read_text("utf-8"))["rows"]
        alpha = [row[3] for row in rows]
        assert alpha == pytest.approx(trace.attention_matrix()[step - 1].tolist(), abs=1e-6)


def test_the_sweep_with_a_few_pairs(tmp_path):
    assert (
        figure(tmp_path, "sweep", "s.png", "--pairs", "3", "--data", str(tmp_path / "s.json")) == 0
    )
    data = json.loads((tmp_path / "s.json").read_text("utf-8"))
    assert [row[0] for row in data["rows"]] == [1, 2, 4, 8, 16]
    # sacrebleu's exp(mean log p_n)·100 lands a rounding error above 100 on a perfect match
    assert all(0 <= bleu <= 100 + 1e-9 and length > 0 for _, bleu, length in data["rows"])
    assert "first 3 pairs" in data["source"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--view", "heatmap"], "--view heatmap: unknown view; expected one of alignment"),
        (["--step", "99"], "--step 99: the decode of “the black cat sat on the mat” has"),
        (["--step", "0"], "--step 0: steps count from 1"),
        (["--out", "/nonexistent-folder/f.png"], "the folder /nonexistent-folder does not exist"),
        (["--out", "{tmp}/f.bmp"], "f.bmp: expected a .png or .svg file"),
        (["--data", "{tmp}/f.xlsx"], "f.xlsx: expected a .json or .csv file"),
        (["--theme", "blue"], "--theme blue: expected one of light, dark"),
        (["--size", "big"], "--size big: expected WIDTHxHEIGHT"),
    ],
)
def test_bad_input_is_one_line(args, message, tmp_path, capsys):
    base = {"--view": "alignment", "--out": str(tmp_path / "f.png")}
    given = dict(zip(args[::2], (a.replace("{tmp}", str(tmp_path)) for a in args[1::2])))
    argv = ["figure", "--checkpoint", MODEL, "--sentence", SENTENCE]
    for key, value in {**base, **given}.items():
        argv += [key, value]
    assert run(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "f.png").exists()


BLOCK_QT = "import sys; sys.modules['PySide6'] = None; from explorer.cli import run; "


def test_without_qt_the_other_commands_run_and_figure_says_why(tmp_path):
    def python(code: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", BLOCK_QT + code], capture_output=True,
                              text=True, timeout=120)  # fmt: skip

    helped = python("sys.exit(run(['--help']))")
    assert helped.returncode == 0 and "figure" in helped.stdout
    info = python(f"sys.exit(run(['info', '{MODEL}']))")
    assert info.returncode == 0, info.stderr
    out = tmp_path / "f.png"
    fig = python(f"sys.exit(run(['figure', '--checkpoint', '{MODEL}', '--sentence', 'a cat', "
                 f"'--view', 'alignment', '--out', '{out}']))")  # fmt: skip
    assert fig.returncode == 2
    lines = fig.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs Qt (PySide6)" in lines[0], fig.stderr
    assert not out.exists()
