"""The JoeyNMT side-by-side script: its configurations, its reading of both trainers' progress
lines, and its stopping of a run after the window (on a stand-in trainer; JoeyNMT itself is
not installed here)."""

import argparse
import gzip
import json
import sys
from pathlib import Path

import pytest

from explorer.cli import _parser
from explorer.cli_train import train_options_from_args
from explorer.tools.peer_joeynmt import (
    JOEY_BFLOAT16_PATCH,
    Run,
    Sample,
    _joey,
    joey_config,
    our_command,
    parse_joey,
    parse_ours,
    steady_rate,
    table,
    unpack,
    watch,
)

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "joeynmt"


def our_options(name: str):
    cmd = our_command(name, Path("/data/m30k"), Path("/tmp/x.safetensors"), 2, 8000)
    assert cmd[1:4] == ["-m", "explorer", "train"]
    return train_options_from_args(_parser().parse_args(cmd[3:]))


def test_our_gru_bahdanau_command_is_the_issues_configuration():
    o = our_options("gru-bahdanau")
    assert o.arch == "bahdanau"
    assert o.model == {
        "emb_dim": 128, "hidden_dim": 256, "layers": 1, "cell": "gru",
        "bidirectional": True, "dropout": 0.3, "tie_embeddings": False,
    }  # fmt: skip
    assert (o.batch_size, o.lr, o.clip, o.schedule) == (64, 1e-3, 1.0, "constant")
    assert (o.label_smoothing, o.tf_ratio, o.threads, o.eval_every) == (0.0, 1.0, 2, 0)
    assert (o.corpus, o.src_lang, o.tgt_lang) == ("/data/m30k/train", "de", "en")


def test_our_transformer_command_is_the_issues_configuration():
    o = our_options("transformer")
    assert o.arch == "transformer"
    assert o.model == {
        "d_model": 256, "heads": 4, "enc_layers": 3, "dec_layers": 3, "d_ff": 1024,
        "norm": "pre", "positions": "sinusoidal", "dropout": 0.1, "tie_embeddings": False,
    }  # fmt: skip
    assert (o.batch_size, o.lr, o.clip, o.schedule, o.label_smoothing) == (
        64, 5e-4, 1.0, "constant", 0.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("gru-bahdanau", "m30k_gru_bahdanau_small.yaml"),
        ("transformer", "m30k_transformer_small.yaml"),
    ],
)
def test_joey_configuration_matches_the_reference_one(tmp_path, name, reference):
    yaml = pytest.importorskip("yaml")
    path = REFERENCE / reference
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    ref = yaml.safe_load(path.read_text(encoding="utf-8"))
    cfg = joey_config(name, tmp_path / "m30k", tmp_path / "model")
    assert yaml.safe_load(json.dumps(cfg)) == cfg  # written as JSON, read by JoeyNMT as YAML
    assert cfg["model"] == ref["model"]
    assert cfg["data"]["src"] == ref["data"]["src"] and cfg["data"]["trg"] == ref["data"]["trg"]
    assert cfg["data"]["train"] == str(tmp_path / "m30k" / "train")
    for key in ("optimizer", "learning_rate", "batch_size", "batch_type", "clip_grad_norm"):
        assert cfg["training"][key] == ref["training"][key], key


@pytest.mark.parametrize("name", ["gru-bahdanau", "transformer"])
def test_bfloat16_is_our_cpu_amp_and_joeys_fp16(tmp_path, name):
    def ours(precision):
        cmd = our_command(name, Path("/d"), Path("/o.safetensors"), 1, 8000, precision)
        return train_options_from_args(_parser().parse_args(cmd[3:]))

    assert (ours("float32").cpu_amp, ours("bfloat16").cpu_amp) == (False, True)
    assert ours("bfloat16").model == ours("float32").model
    joey = {p: joey_config(name, tmp_path, tmp_path / "m", p) for p in ("float32", "bfloat16")}
    assert (joey["float32"]["fp16"], joey["bfloat16"]["fp16"]) == (False, True)
    assert {**joey["bfloat16"], "fp16": False} == joey["float32"]


def fake_joey(tmp_path, monkeypatch, patched: bool):
    """A stand-in ``python -m joeynmt`` that, unpatched, logs JoeyNMT's line about turning fp16
    off on a CPU when its configuration asks for fp16."""
    package = tmp_path / "fake" / "joeynmt"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(
        "import json, sys, time\n"
        "cfg = json.load(open(sys.argv[2]))\n"
        f"if cfg['fp16'] and not {patched}:\n"
        "    print('WARNING On cpu, half-precision training may raise an error. Disable fp16.')\n"
        "try:\n"
        "    for step in range(1, 10**6):\n"
        "        print(f'Epoch 1, Step: {step}, Tokens per Sec: 500', flush=True)\n"
        "        time.sleep(0.05)\n"
        "except KeyboardInterrupt:\n"
        "    pass\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "fake"))
    return argparse.Namespace(joey_python=Path(sys.executable), threads=1, window=0.6, warmup=0.1)


def test_an_unpatched_joey_asked_for_bfloat16_stops_the_session_with_the_patch(
    tmp_path, monkeypatch
):
    args = fake_joey(tmp_path, monkeypatch, patched=False)
    run = _joey(args, "transformer", "float32", tmp_path, tmp_path / "f32")
    assert run.precision == "float32" and run.samples  # float32 runs need no patch
    with pytest.raises(SystemExit, match="trained in float32; patch it first") as stop:
        _joey(args, "transformer", "bfloat16", tmp_path, tmp_path / "bf16")
    assert JOEY_BFLOAT16_PATCH in str(stop.value)
    args = fake_joey(tmp_path / "patched", monkeypatch, patched=True)
    run = _joey(args, "transformer", "bfloat16", tmp_path, tmp_path / "bf16")
    assert run.precision == "bfloat16" and run.samples
    assert json.loads((tmp_path / "bf16.yaml").read_text())["fp16"] is True


def test_progress_lines_of_both_trainers_are_read():
    ours = "  0%|    | 412/1000000 [01:02<41:51:37,  6.63step/s, loss=4.8, lr=0.001, tok/s=2790]"
    s = parse_ours(ours, 5.0)
    assert (s.t, s.step, s.tokens_per_second) == (5.0, 412, 2790.0)
    early = "  0%|          | 1/1000000 [00:03<?, ?step/s, loss=9.012, lr=0.001]"
    assert parse_ours(early, 1.0).tokens_per_second is None
    joey = (
        "2026-12-06 02:35:41,001 - INFO - joeynmt.training - Epoch   1, Step:       20, "
        "Batch Loss:     5.123456, Batch Acc: 0.101, Tokens per Sec:     1234, Lr: 0.001000"
    )
    s = parse_joey(joey, 7.0)
    assert (s.t, s.step, s.tokens_per_second) == (7.0, 20, 1234.0)
    assert parse_joey("2026-12-06 - INFO - joeynmt.training - EPOCH 1", 0.0) is None
    assert parse_ours("training bahdanau on CPU (2 threads)", 0.0) is None


def test_the_steady_rate_leaves_out_the_warm_up():
    samples = [Sample(0.0, 1, None), Sample(4.0, 3, 50.0)]  # slow start
    samples += [Sample(10.0 + i, 10 + 2 * i, 1000.0 + i) for i in range(11)]  # 2 steps/s
    rate = steady_rate(samples, warmup=10.0, batch=64)
    assert (rate.steps, rate.seconds) == (20, 10.0)
    assert rate.sentences_per_second == pytest.approx(128.0)
    assert rate.tokens_per_second == 1005.5  # median of the ten after the first kept
    assert steady_rate(samples[:2], warmup=10.0) is None


def test_the_table_gives_each_trainers_mean_and_the_ratio():
    def run(trainer, per_second, params):
        return Run(trainer, "transformer", [Sample(t, 1 + per_second * t, 99.0) for t in range(30)],
                   parameters=params)  # fmt: skip

    runs = [run("ours", 3, 10), run("joey", 1, 12), run("ours", 5, 10), run("joey", 1, 12)]
    rows = table(runs, warmup=5.0).splitlines()
    assert rows[2].startswith("| transformer | float32 | ours | 10 | 192.0 / 320.0 | 256.0 | 99 |")
    assert rows[3] == (
        "| transformer | float32 | JoeyNMT 2.3.0 | 12 | 64.0 / 64.0 | 64.0 | 99 | **4.00×** |"
    )
    half = [run("ours", 6, 10), run("joey", 2, 12)]
    for r in half:
        r.precision = "bfloat16"
    rows = table(runs + half, warmup=5.0).splitlines()
    assert len(rows) == 6 and rows[3].endswith("| **4.00×** |")  # each precision its own ratio
    assert rows[5].startswith("| transformer | bfloat16 | JoeyNMT 2.3.0 | 12 | 128.0 |")
    assert rows[5].endswith("| **3.00×** |")


def test_a_run_is_interrupted_after_the_window_and_its_lines_read(tmp_path):
    script = tmp_path / "fake_trainer.py"
    script.write_text(
        "import sys, time\n"
        "print('Total params: 1234', flush=True)\n"
        "try:\n"
        "    for step in range(1, 10**6):\n"
        "        print(f'Epoch 1, Step: {step}, Tokens per Sec: 500', flush=True)\n"
        "        time.sleep(0.05)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted, saving', flush=True)\n"
    )
    run = watch([sys.executable, str(script)], {}, 0.5, parse_joey, Run("joey", "transformer"))
    assert run.parameters == 1234
    assert run.samples and [s.step for s in run.samples] == list(range(1, len(run.samples) + 1))
    assert run.log[-1] == "interrupted, saving"  # it stopped on SIGINT, not killed


def test_the_corpus_is_unpacked_for_joey(tmp_path):
    data, into = tmp_path / "data", tmp_path / "plain"
    data.mkdir(), into.mkdir()
    for split in ("train", "val", "test_2016_flickr"):
        for lang in ("de", "en"):
            (data / f"{split}.{lang}.gz").write_bytes(gzip.compress(f"{split} {lang}\n".encode()))
    unpack(data, into)
    assert (into / "val.en").read_text() == "val en\n"
    (data / "val.en.gz").unlink()
    with pytest.raises(SystemExit, match="no val.en or val.en.gz"):
        unpack(data, into)
