"""Training speed side by side with JoeyNMT 2.3.0 on Multi30k de→en (developer tooling).

    python -m explorer.tools.peer_joeynmt --joey-python /tmp/joey/bin/python \\
        --data ../shared/data/multi30k --window 90 --threads 2

Runs ``attention-explorer train`` and ``python -m joeynmt train`` in turn (ours, joey, ours,
joey, ...) with the same configuration and the same torch threads, each for ``--window``
seconds of training counted from its first progress line, then interrupts it (SIGINT, which
both save on). Progress lines are stamped as they arrive, so both sides are timed the same way;
the rate is the steady one after ``--warmup`` seconds. Sentences per second (steps x batch ÷
seconds) is the fair unit: JoeyNMT's tokens are lowercased words plus EOS, ours are
sentencepiece pieces. JoeyNMT lives in its own virtual environment (see
``../shared/reference/joeynmt/README.md``); nothing here imports it.

``--precision float32 bfloat16`` measures both trainers in each: bfloat16 is our ``--cpu-amp``
and JoeyNMT's ``fp16: true``, which JoeyNMT 2.3.0 turns off on a CPU; ``JOEY_BFLOAT16_PATCH``
(printed by ``-h``) makes it autocast to bfloat16 there instead, float32 runs unchanged. Without
the patch the script stops at JoeyNMT's first bfloat16 run, which would be float32.
"""

from __future__ import annotations

import argparse
import codecs
import gzip
import json
import os
import re
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BATCH = 64
SPLITS = ("train", "val", "test_2016_flickr")
PRECISIONS = ("float32", "bfloat16")
# Two edits of JoeyNMT 2.3.0's joeynmt/config.py, in its CPU-only venv: fp16 stays on for a CPU,
# and autocasts to bfloat16 (float16 has no CPU kernels for most products).
JOEY_BFLOAT16_PATCH = r"""sed -i -e 's/if device.type == "cpu" and fp16:/if False:/' \
    -e 's/autocast\["dtype"\] = torch.float16 .*/autocast["dtype"] = torch.bfloat16/' \
    /tmp/joey/lib/python3.11/site-packages/joeynmt/config.py"""
# what JoeyNMT logs when it turns fp16 off on a CPU (unpatched)
_JOEY_NO_HALF = "half-precision training may raise an error"

# the two configurations of issue 19: (our train options, JoeyNMT's model and training sections)
_RNN_OURS = (
    "--arch bahdanau --cell gru --bidirectional --emb-dim 128 --hidden-dim 256 --layers 1 "
    "--dropout 0.3 --lr 1e-3"
)
_TRANSFORMER_OURS = (
    "--arch transformer --d-model 256 --heads 4 --enc-layers 3 --dec-layers 3 --d-ff 1024 "
    "--norm pre --positions sinusoidal --dropout 0.1 --lr 5e-4"
)


def _joey_rnn() -> dict:
    side = {"rnn_type": "gru", "embeddings": {"embedding_dim": 128}, "hidden_size": 256}
    side.update(dropout=0.3, num_layers=1, activation="tanh")
    return {
        "initializer": "xavier_uniform",
        "bias_initializer": "zeros",
        "embed_initializer": "normal",
        "embed_init_weight": 0.1,
        "encoder": {"type": "recurrent", **side, "bidirectional": True},
        "decoder": {
            "type": "recurrent",
            **side,
            "hidden_dropout": 0.3,
            "input_feeding": True,
            "init_hidden": "bridge",
            "attention": "bahdanau",
        },
    }


def _joey_transformer() -> dict:
    side = {"type": "transformer", "num_layers": 3, "num_heads": 4, "hidden_size": 256}
    side.update(ff_size=1024, dropout=0.1, layer_norm="pre", activation="relu")
    side["embeddings"] = {"embedding_dim": 256, "scale": True}
    return {
        "initializer": "xavier_uniform",
        "bias_initializer": "zeros",
        "embed_initializer": "xavier_uniform",
        "encoder": dict(side),
        "decoder": dict(side),
    }


CONFIGS = {
    "gru-bahdanau": (_RNN_OURS, _joey_rnn, 1e-3),
    "transformer": (_TRANSFORMER_OURS, _joey_transformer, 5e-4),
}


def joey_config(name: str, data: Path, model_dir: Path, precision: str = "float32") -> dict:
    """JoeyNMT's configuration for ``name``: word level, lowercased, vocabulary min frequency 2,
    batches of 64 sentences, Adam, clip 1.0, and no validation inside the timed window."""
    _, model, lr = CONFIGS[name]
    lang = {"max_length": 50, "lowercase": True, "level": "word", "voc_min_freq": 2}
    specials = {"unk_token": "<unk>", "unk_id": 0, "pad_token": "<pad>", "pad_id": 1}
    specials.update(bos_token="<s>", bos_id=2, eos_token="</s>", eos_id=3)
    return {
        "name": f"m30k_deen_{name}",
        "joeynmt_version": "2.3.0",
        "model_dir": str(model_dir),
        "use_cuda": False,
        "fp16": precision == "bfloat16",  # bfloat16 on a CPU once patched (see above)
        "random_seed": 42,
        "data": {
            "train": str(data / "train"),
            "dev": str(data / "val"),
            "test": str(data / "test_2016_flickr"),
            "dataset_type": "plain",
            "src": {"lang": "de", **lang},
            "trg": {"lang": "en", **lang},
            "special_symbols": specials,
        },
        "testing": {"beam_size": 1, "batch_size": BATCH, "batch_type": "sentence"},
        "training": {
            "optimizer": "adam",
            "learning_rate": lr,
            "batch_size": BATCH,
            "batch_type": "sentence",
            "scheduling": "plateau",
            "patience": 5,
            "epochs": 100,
            "validation_freq": 10**6,
            "logging_freq": 5,
            "early_stopping_metric": "loss",
            "overwrite": True,
            "shuffle": True,
            "clip_grad_norm": 1.0,
        },
        "model": model(),
    }


def our_command(
    name: str, data: Path, out: Path, threads: int, vocab: int, precision: str = "float32"
) -> list[str]:
    """``attention-explorer train`` with the configuration ``name`` on ``data``/train.{de,en}."""
    ours = CONFIGS[name][0].split() + (["--cpu-amp"] if precision == "bfloat16" else [])
    return [
        sys.executable, "-m", "explorer", "train",
        "--corpus", str(data / "train"), "--src-lang", "de", "--tgt-lang", "en",
        *ours,
        "--no-tie-embeddings", "--batch-size", str(BATCH), "--clip", "1.0",
        "--schedule", "constant", "--label-smoothing", "0", "--vocab-size", str(vocab),
        "--steps", "1000000", "--eval-every", "0", "--threads", str(threads),
        "--out", str(out),
    ]  # fmt: skip


# -- reading the two trainers' progress -----------------------------------------------------------
@dataclass
class Sample:
    """One progress line: when it arrived, the step it reported and the trainer's tokens/s."""

    t: float
    step: int
    tokens_per_second: float | None


_OURS = re.compile(r"\|\s*(\d+)/\d+ \[[^\]]*?(?:tok/s=(\d+))?\]")
_JOEY = re.compile(r"Step:\s*(\d+),.*Tokens per Sec:\s*([\d.]+)")
_JOEY_PARAMS = re.compile(r"Total params:\s*(\d+)")


def parse_ours(line: str, t: float) -> Sample | None:
    """Our progress bar (tqdm: ``  3%|▏   | 412/1000000 [00:30<.., loss=.., tok/s=2790]``)."""
    m = _OURS.search(line)
    if not m:
        return None
    return Sample(t, int(m.group(1)), float(m.group(2)) if m.group(2) else None)


def parse_joey(line: str, t: float) -> Sample | None:
    """JoeyNMT's log (``Epoch 1, Step: 20, Batch Loss: .., Tokens per Sec: 1234, Lr: ..``)."""
    m = _JOEY.search(line)
    return Sample(t, int(m.group(1)), float(m.group(2))) if m else None


@dataclass
class Rate:
    """The steady rate of one run, after the warm-up."""

    steps: int
    seconds: float
    sentences_per_second: float
    tokens_per_second: float | None


def steady_rate(samples: list[Sample], warmup: float, batch: int = BATCH) -> Rate | None:
    """Sentences/s between the first sample ``warmup`` seconds after the first one and the
    last; tokens/s is the median the trainer itself reported over the same span."""
    if not samples:
        return None
    kept = [s for s in samples if s.t - samples[0].t >= warmup]
    if len(kept) < 2 or kept[-1].t <= kept[0].t:
        return None
    steps = kept[-1].step - kept[0].step
    seconds = kept[-1].t - kept[0].t
    reported = [s.tokens_per_second for s in kept[1:] if s.tokens_per_second]
    tokens = statistics.median(reported) if reported else None
    return Rate(steps, seconds, steps * batch / seconds, tokens)


@dataclass
class Run:
    trainer: str  # ours | joey
    config: str
    samples: list[Sample] = field(default_factory=list)
    parameters: int | None = None
    log: list[str] = field(default_factory=list)
    precision: str = "float32"


def _interruptible() -> None:
    """In the child: SIGINT back to its default, so that the trainer's Python turns it into
    KeyboardInterrupt (and saves) even when this script runs in the background of a
    non-interactive shell, which starts it with SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def watch(cmd: list[str], env: dict, window: float, parse, run: Run, grace: float = 60.0) -> Run:
    """Run ``cmd``, stamping its output lines as they arrive, and interrupt it ``window``
    seconds after its first progress line (killing it if it has not stopped ``grace`` later)."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, preexec_fn=_interruptible
    )
    fd, pending, deadline, interrupted = proc.stdout.fileno(), "", None, None
    text = codecs.getincrementaldecoder("utf-8")(errors="replace")
    while True:
        now = time.monotonic()
        if deadline is not None and interrupted is None and now >= deadline:
            proc.send_signal(signal.SIGINT)
            interrupted = now
        if interrupted is not None and now - interrupted > grace:
            proc.kill()
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        raw = os.read(fd, 65536)
        if not raw:
            break
        chunk = text.decode(raw)
        *lines, pending = re.split(r"[\r\n]", pending + chunk)
        for line in filter(None, lines):
            stamp = time.monotonic()
            sample = parse(line, stamp)
            if sample is not None and sample.step > 0 and interrupted is None:
                run.samples.append(sample)  # (step 0: before the first batch)
                deadline = deadline or stamp + window
            elif m := _JOEY_PARAMS.search(line):
                run.parameters = int(m.group(1))
            elif sample is None and "%|" not in line:
                run.log.append(line)
    proc.wait()
    return run


def our_parameters(checkpoint: Path) -> int | None:
    """The parameter count on the checkpoint's card."""
    from explorer.seq2seq.checkpoint import CheckpointError, read_card

    try:
        return int(read_card(checkpoint)["num_parameters"])
    except (OSError, CheckpointError):
        return None


def unpack(data: Path, into: Path) -> Path:
    """Plain-text copies of the corpus files JoeyNMT reads (it does not read .gz)."""
    for split in SPLITS:
        for lang in ("de", "en"):
            plain, packed = data / f"{split}.{lang}", data / f"{split}.{lang}.gz"
            target = into / f"{split}.{lang}"
            if plain.is_file():
                target.write_bytes(plain.read_bytes())
            elif packed.is_file():
                target.write_bytes(gzip.decompress(packed.read_bytes()))
            else:
                raise SystemExit(f"error: {data}: no {split}.{lang} or {split}.{lang}.gz")
    return into


def thread_env(threads: int) -> dict[str, str]:
    """The environment of a trainer limited to ``threads`` OpenMP and MKL threads."""
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


# -- the session ----------------------------------------------------------------------------------
def measure(args: argparse.Namespace, work: Path) -> list[Run]:
    """Every run of the session, alternating ours and JoeyNMT's for each configuration and
    precision."""
    plain = unpack(args.data, work)
    runs = []
    for name in args.configs:
        for precision in args.precision:
            for i in range(args.rounds):
                runs += [
                    _ours(args, name, precision, work / f"ours-{name}-{precision}-{i}.safetensors"),
                    _joey(args, name, precision, plain, work / f"joey-{name}-{precision}-{i}"),
                ]
    return runs


def _timed(args: argparse.Namespace, cmd: list[str], parse, run: Run) -> Run:
    """``cmd`` with the session's threads, for its window."""
    return watch(cmd, thread_env(args.threads), args.window, parse, run)


def _ours(args: argparse.Namespace, name: str, precision: str, out: Path) -> Run:
    cmd = our_command(name, args.data, out, args.threads, args.vocab_size, precision)
    run = _report(_timed(args, cmd, parse_ours, Run("ours", name, precision=precision)), args)
    run.parameters = our_parameters(out)
    if run.parameters is None:
        tail = "\n    ".join(run.log[-8:])
        print(f"ours {name}: no checkpoint at {out}; its last lines:\n    {tail}")
    return run


def _joey(args: argparse.Namespace, name: str, precision: str, plain: Path, out: Path) -> Run:
    cfg = out.with_suffix(".yaml")
    cfg.write_text(json.dumps(joey_config(name, plain, out, precision)))
    cmd = [str(args.joey_python), "-m", "joeynmt", "train", str(cfg), "--skip-test"]
    run = _timed(args, cmd, parse_joey, Run("joey", name, precision=precision))
    if precision == "bfloat16" and any(_JOEY_NO_HALF in line for line in run.log):
        raise SystemExit(
            "error: JoeyNMT turned fp16 off on the CPU and trained in float32; patch it first:\n"
            + JOEY_BFLOAT16_PATCH
        )
    return _report(run, args)


def _report(run: Run, args: argparse.Namespace) -> Run:
    """Print the run's rate as soon as it is known (or its last lines, when it has none)."""
    rate = steady_rate(run.samples, args.warmup)
    if rate is None:
        tail = "\n    ".join(run.log[-15:])
        print(f"{run.trainer} {run.config}: no steady rate measured; its last lines:\n    {tail}")
    else:
        print(
            f"{run.trainer:4s} {run.config:12s} {run.precision:8s} {rate.steps:5d} steps in "
            f"{rate.seconds:5.1f} s: "
            f"{rate.sentences_per_second:6.1f} sentences/s, "
            f"{rate.tokens_per_second or 0:6.0f} target tokens/s",
            flush=True,
        )
    return run


def table(runs: list[Run], warmup: float) -> str:
    """The Markdown table: one row per trainer, configuration and precision, the runs' rates
    listed."""
    lines = [
        "| configuration | precision | trainer | parameters | sentences/s (each run) "
        "| mean sentences/s | target tokens/s (median) | ours ÷ JoeyNMT |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, precision in dict.fromkeys((r.config, r.precision) for r in runs):
        means = {}
        for trainer in ("ours", "joey"):
            mine = [
                r for r in runs if (r.config, r.precision, r.trainer) == (name, precision, trainer)
            ]
            rates = [steady_rate(r.samples, warmup) for r in mine]
            sents = [x.sentences_per_second for x in rates if x]
            toks = [x.tokens_per_second for x in rates if x and x.tokens_per_second]
            means[trainer] = statistics.mean(sents) if sents else None
            params = next((r.parameters for r in mine if r.parameters), None)
            ratio = ""
            if trainer == "joey" and means["ours"] and means["joey"]:
                ratio = f"**{means['ours'] / means['joey']:.2f}×**"
            lines.append(
                f"| {name} | {precision} | {'ours' if trainer == 'ours' else 'JoeyNMT 2.3.0'} "
                f"| {f'{params:,}' if params else '?'} "
                f"| {' / '.join(f'{x:.1f}' for x in sents) or 'none'} "
                f"| {f'{means[trainer]:.1f}' if means[trainer] else '–'} "
                f"| {f'{statistics.median(toks):,.0f}' if toks else '–'} | {ratio} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m explorer.tools.peer_joeynmt",
        description=__doc__,
        epilog=f"JOEY_BFLOAT16_PATCH:\n{JOEY_BFLOAT16_PATCH}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--joey-python", type=Path, required=True, help="python of JoeyNMT's venv")
    p.add_argument("--data", type=Path, required=True, help="folder with train/val/test .de/.en")
    p.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    p.add_argument("--window", type=float, default=90.0, help="seconds of training per run")
    p.add_argument("--warmup", type=float, default=20.0, help="seconds left out of each rate")
    p.add_argument("--rounds", type=int, default=2, help="runs of each trainer per configuration")
    p.add_argument("--threads", type=int, default=2, help="torch threads, both trainers")
    p.add_argument("--vocab-size", type=int, default=8000, help="our sentencepiece vocabulary")
    p.add_argument(
        "--precision", nargs="+", choices=PRECISIONS, default=["float32"],
        help="bfloat16: our --cpu-amp and JoeyNMT's fp16 (patched: see below)",
    )  # fmt: skip
    args = p.parse_args(argv)
    if not args.joey_python.is_file():
        p.error(f"--joey-python {args.joey_python}: no such file")
    if args.window <= args.warmup:
        p.error("--window must be longer than --warmup")
    with tempfile.TemporaryDirectory(prefix="peer-joeynmt-") as tmp:
        runs = measure(args, Path(tmp))
    print(table(runs, args.warmup))
    return 0


if __name__ == "__main__":
    sys.exit(main())
