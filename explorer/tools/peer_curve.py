"""Learning curves side by side with JoeyNMT 2.3.0 on Multi30k de→en (developer tooling).

    python -m explorer.tools.peer_curve --joey-python /tmp/joey/bin/python \\
        --data ../shared/data/multi30k --minutes 30 --threads 1

Starts both trainers at once, each with ``--threads`` torch threads, on the Transformer recipe of
the ``multi30k-de-en-transformer`` preset: 3+3 pre-norm layers, d 256, 4 heads, ff 1024, batches
of about 2,048 tokens, label smoothing 0.1, Adam with a 500-step warm-up to 2e-3 and an inverse
square-root decay, a validation every 250 steps. Ours is the preset itself (``--minutes`` of wall
time); JoeyNMT gets the same recipe in its own terms (word level, lowercased, the softmax tied to
the target embeddings) and is interrupted after the same wall time. Each validation's BLEU is
stamped with the minutes since its trainer started. Afterwards both translate test2016 greedily
and sacrebleu scores them lowercased (JoeyNMT's output is lowercase); ours cased as well.

The two validation sets differ (ours: 2% of the training pairs held out, 200 of them scored;
JoeyNMT's: Multi30k's val, 1,014 sentences, lowercased), so compare the curves' shapes and the
test rows. JoeyNMT lives in its own virtual environment (``../shared/reference/joeynmt/``).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from explorer.tools.peer_joeynmt import _interruptible, joey_config, thread_env, unpack

_OURS_EVAL = re.compile(r"step (\d+): val loss [\d.]+, val BLEU ([\d.]+)")
_JOEY_STEP = re.compile(r"Step:\s*(\d+),")
_JOEY_EVAL = re.compile(r"Evaluation result \(greedy\).*?bleu:\s*([\d.]+)")


def joey_recipe(plain: Path, model_dir: Path) -> dict:
    """JoeyNMT's configuration: the Transformer of peer_joeynmt with the preset's recipe."""
    cfg = joey_config("transformer", plain, model_dir)
    cfg["training"].update(
        batch_type="token", batch_size=2048, label_smoothing=0.1,
        scheduling="warmupinversesquareroot", learning_rate=2e-3, learning_rate_warmup=500,
        validation_freq=250, logging_freq=50, epochs=1000,
        eval_metrics=["bleu"], early_stopping_metric="bleu", keep_best_ckpts=1,
    )  # fmt: skip
    cfg["testing"].update(eval_metrics=["bleu"], max_output_length=50)
    cfg["model"]["tied_softmax"] = True
    return cfg


class Follow(threading.Thread):
    """Reads a process's output, stamping each line (split at CR and LF) with its arrival."""

    def __init__(self, proc: subprocess.Popen, t0: float):
        super().__init__(daemon=True)
        self.proc, self.t0, self.lines = proc, t0, []

    def run(self) -> None:
        pending = ""
        for chunk in iter(lambda: self.proc.stdout.read1(65536), b""):
            *done, pending = re.split(r"[\r\n]", pending + chunk.decode("utf-8", "replace"))
            now = (time.monotonic() - self.t0) / 60
            self.lines += [(now, line) for line in done if line.strip()]


def curve(lines: list[tuple[float, str]], joey: bool) -> list[tuple[float, int, float]]:
    """(minutes, step, BLEU) of every validation in a trainer's output."""
    points, step = [], 0
    for minutes, line in lines:
        if joey:
            if m := _JOEY_STEP.search(line):
                step = int(m.group(1))
            elif m := _JOEY_EVAL.search(line):
                points.append((minutes, step, float(m.group(1))))
        elif m := _OURS_EVAL.search(line):
            points.append((minutes, int(m.group(1)), float(m.group(2))))
    return points


def start(cmd: list[str], env: dict) -> Follow:
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, preexec_fn=_interruptible
    )
    follow = Follow(proc, time.monotonic())
    follow.start()
    return follow


def train_both(args: argparse.Namespace, work: Path, plain: Path) -> tuple[Follow, Follow]:
    env = thread_env(args.threads)
    cfg = work / "joey.yaml"
    cfg.write_text(json.dumps(joey_recipe(plain, work / "joey")))
    ours = start(
        [sys.executable, "-m", "explorer", "train", "--preset", "multi30k-de-en-transformer",
         "--corpus", str(args.data / "train"), "--threads", str(args.threads),
         "--minutes", str(args.minutes), "--out", str(work / "ours.safetensors")],
        env,
    )  # fmt: skip
    joey = start([str(args.joey_python), "-m", "joeynmt", "train", str(cfg), "--skip-test"], env)
    deadline = joey.t0 + 60 * args.minutes
    while joey.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(1)
    if joey.proc.poll() is None:
        joey.proc.send_signal(signal.SIGINT)
    joey.proc.wait()
    ours.proc.wait()
    ours.join(5)
    joey.join(5)
    return ours, joey


def bleu(hyp_file: Path, ref_file: Path, lowercase: bool) -> float:
    import sacrebleu

    hyps = hyp_file.read_text(encoding="utf-8").splitlines()
    refs = ref_file.read_text(encoding="utf-8").splitlines()
    return sacrebleu.corpus_bleu(hyps, [refs], lowercase=lowercase).score


def test2016_scores(args: argparse.Namespace, work: Path, plain: Path) -> dict[str, float]:
    """test2016 BLEU: both lowercased, ours also cased (sacrebleu's default)."""
    src, ref = plain / "test_2016_flickr.de", plain / "test_2016_flickr.en"
    ours_hyp = work / "ours.test.en"
    # translate's notices (one per sentence with a word never seen) stay out of the report
    with src.open("rb") as stdin, ours_hyp.open("wb") as stdout:
        done = subprocess.run(
            [sys.executable, "-m", "explorer", "translate", "--checkpoint",
             str(work / "ours.safetensors"), "--beam", "1"],
            stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise SystemExit(f"error: translating test2016: {last}")
    subprocess.run(
        [str(args.joey_python), "-m", "joeynmt", "test", str(work / "joey.yaml"),
         "-o", str(work / "joey.out")],
        check=True, capture_output=True,
    )  # fmt: skip
    return {
        "ours, cased": bleu(ours_hyp, ref, lowercase=False),
        "ours, lowercased": bleu(ours_hyp, ref, lowercase=True),
        "JoeyNMT, lowercased": bleu(work / "joey.out.test", ref, lowercase=True),
    }


def report(ours: list, joey: list, scores: dict[str, float], minutes: float, threads: int) -> str:
    out = [
        f"Validation BLEU against wall-clock minutes ({minutes:g} min, {threads} thread(s) each, "
        "both at once):",
        "",
        "| ours: minutes | step | val BLEU | JoeyNMT: minutes | step | val BLEU |",
        "|---|---|---|---|---|---|",
    ]
    for i in range(max(len(ours), len(joey))):
        a = "| {:.1f} | {} | {:.1f} ".format(*ours[i]) if i < len(ours) else "| | | "
        b = "| {:.1f} | {} | {:.1f} |".format(*joey[i]) if i < len(joey) else "| | | |"
        out.append(a + b)
    out += ["", "test2016, greedy: " + ", ".join(f"{k} {v:.1f}" for k, v in scores.items())]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m explorer.tools.peer_curve", description=__doc__)
    p.add_argument("--joey-python", type=Path, required=True, help="python of JoeyNMT's venv")
    p.add_argument("--data", type=Path, required=True, help="folder with train/val/test .de/.en")
    p.add_argument("--minutes", type=float, default=30.0, help="wall time of each trainer")
    p.add_argument("--threads", type=int, default=1, help="torch threads of each trainer")
    p.add_argument("--keep", type=Path, help="a folder to keep the checkpoints and logs in")
    args = p.parse_args(argv)
    if not args.joey_python.is_file():
        p.error(f"--joey-python {args.joey_python}: no such file")
    with tempfile.TemporaryDirectory(prefix="peer-curve-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        plain = unpack(args.data, work)
        ours, joey = train_both(args, work, plain)
        for name, follow in (("ours", ours), ("joey", joey)):
            log = "\n".join(f"{m:7.2f} {line}" for m, line in follow.lines)
            (work / f"{name}.log").write_text(log, encoding="utf-8")
        scores = test2016_scores(args, work, plain)
        print(report(curve(ours.lines, False), curve(joey.lines, True), scores, args.minutes,
                     args.threads))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
