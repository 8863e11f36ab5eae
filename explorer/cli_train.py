"""The ``train`` subcommand: options from the command line, and a progress bar over the run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from explorer.cli_common import (
    MODEL_FIELDS,
    CliError,
    check_output_path,
    rescue_path,
    stored_corpus,
    stored_options,
)


# -- train ------------------------------------------------------------------------------------
def train_options_from_args(args: argparse.Namespace):
    from explorer.seq2seq.training.presets import DEFAULT_PRESET
    from explorer.seq2seq.training.train import TrainOptions

    preset = args.preset or DEFAULT_PRESET[args.arch or "bahdanau"]
    o = TrainOptions.from_preset(preset)
    if args.arch and args.arch != o.arch:
        o.arch = args.arch
        o.model = {}  # another family's sizes do not apply
    if args.corpus and args.corpus != o.corpus:
        o.corpus = args.corpus
        o.corpus_size = None
    family = "transformer" if o.arch == "transformer" else "rnn"
    model = dict(o.model)
    for name in MODEL_FIELDS[family]:
        v = getattr(args, name)
        if v is not None:
            model[name] = v
    o.model = model
    for name in (
        "src_lang",
        "tgt_lang",
        "corpus_size",
        "vocab_size",
        "spm_type",
        "joint_vocab",
        "batch_size",
        "batch_tokens",
        "lr",
        "schedule",
        "warmup",
        "clip",
        "label_smoothing",
        "teacher_forcing",
        "tf_ratio",
        "eval_every",
        "checkpoint_every",
        "average_last",
        "seed",
        "threads",
        "max_minutes",
        "device",
        "amp",
        "cpu_amp",
        "out",
    ):
        v = getattr(args, name)
        if v is not None:
            setattr(o, name, v)
    if args.steps is not None:
        o.steps, o.epochs = args.steps, None
    if args.epochs is not None:
        o.epochs = args.epochs
    return o


def cmd_train(args: argparse.Namespace) -> int:
    from explorer.seq2seq.training.distributed import from_environment
    from explorer.seq2seq.training.presets import PRESETS
    from explorer.seq2seq.training.train import Trainer, TrainingError

    if args.list_presets:
        for name, p in PRESETS.items():
            print(f"{name:24s} arch={p['arch']} corpus={p['corpus']} steps={p.get('steps')}")
        return 0
    try:
        dist = from_environment()  # one of several torchrun processes, or the only one
    except TrainingError as e:
        raise CliError(str(e)) from None
    if args.resume:
        o = _resumed_options(args)
        trainer = Trainer(o, resume=args.resume, command=_command_line(args), distributed=dist)
    else:
        o = train_options_from_args(args).validated()
        if not o.out:
            raise CliError("--out FILE is required (where to save the trained model)")
        trainer = Trainer(o, command=_command_line(args), distributed=dist)
    if dist.is_main:
        check_output_path(o.out)
    try:
        return _drive(trainer, quiet=args.quiet or not dist.is_main, main=dist.is_main)
    except TrainingError as e:  # raised before the first step: nothing trained, nothing lost
        raise CliError(f"rank {dist.rank}: {e}" if dist.active else str(e)) from None


def _resumed_options(args: argparse.Namespace):
    """The stored run's options, with the command line deciding what touches this machine: the
    checkpoint is written back to the resumed file (or --out), the corpus file read is the one
    --corpus names (a built-in corpus may come from the checkpoint), --threads and --device
    apply, and stored thread counts are clamped to the CPUs."""
    from explorer.seq2seq.checkpoint import read_card

    meta = read_card(args.resume)
    train_state = meta.get("train_state") or {}
    stored = train_state.get("options") if isinstance(train_state, dict) else None
    if not stored:
        raise CliError(f"{args.resume}: the checkpoint has no training state to resume from")
    o = stored_options(args.resume, stored)
    o.corpus = stored_corpus(args.resume, o.corpus, args.corpus)
    for name in ("src_lang", "tgt_lang", "threads", "device"):
        if getattr(args, name) is not None:
            setattr(o, name, getattr(args, name))
    if args.steps is not None:
        o.steps, o.epochs = args.steps, None
    o.out = args.out or args.resume
    return o.validated()


def _command_line(args: argparse.Namespace) -> str:
    import shlex

    return "attention-explorer " + " ".join(shlex.quote(a) for a in args.argv)


def _drive(trainer, *, quiet: bool, main: bool = True) -> int:
    """Show the run's progress; a process other than a distributed run's rank 0 shows only
    its failures."""
    from tqdm import tqdm

    bar = None
    status = 0
    rates: list[tuple[float, float | None]] = []  # each step's model FLOP/s and utilisation
    try:
        for ev in trainer.run():
            if not main and ev.kind != "failed":
                continue
            if bar is None and ev.total_steps:
                bar = tqdm(
                    total=ev.total_steps,
                    initial=ev.step,
                    disable=quiet,
                    unit="step",
                    file=sys.stderr,
                    dynamic_ncols=True,
                )
            if ev.kind == "step":
                bar.update(ev.step - bar.n)
                bar.set_postfix(_step_postfix(ev), refresh=False)
                if ev.flops_per_second is not None:
                    rates.append((ev.flops_per_second, ev.mfu))
            elif ev.kind == "evaluating":
                bar.set_postfix_str("evaluating…")
            elif ev.kind == "eval":
                (bar.write if bar else print)(_eval_line(ev), file=sys.stderr)
            elif ev.kind in ("diagnostic", "checkpoint", "start"):
                (bar.write if bar else print)(ev.message, file=sys.stderr)
            elif ev.kind == "failed":
                (bar.write if bar else print)(f"error: {ev.message}", file=sys.stderr)
                if main:  # the model as of the last step all processes finished
                    _save_somewhere(trainer, save_failed=ev.path is not None)
                status = 1
            elif ev.kind in ("done", "stopped"):
                (bar.write if bar else print)(
                    f"{ev.message} in {ev.elapsed:.0f} s{_rate_summary(rates)}", file=sys.stderr
                )
    except KeyboardInterrupt:
        trainer.request_stop()
        if main:
            print("stopping: saving the model trained so far", file=sys.stderr)
        for ev in trainer.save_after_interrupt():
            if ev.kind == "checkpoint":
                print(ev.message, file=sys.stderr)
            elif ev.kind == "failed":
                print(f"error: {ev.message}", file=sys.stderr)
                _save_somewhere(trainer, save_failed=True)
        return 130
    finally:
        if bar is not None:
            bar.close()
    return status


def _step_postfix(ev) -> dict[str, str]:
    """The progress bar's figures after a step: loss, learning rate, throughput, utilisation."""
    post = {"loss": f"{ev.loss:.3f}", "lr": f"{ev.lr:.2g}"}
    if ev.tokens_per_second:
        post["tok/s"] = f"{ev.tokens_per_second:.0f}"
    if ev.mfu is not None:
        post["MFU"] = f"{ev.mfu:.0%}"
    return post


def _rate_summary(rates: list[tuple[float, float | None]]) -> str:
    """The run's model FLOP/s and, where the device's peak is known, its model FLOPs
    utilisation: the median of the steps' readings (each the latest window of a second or
    more); nothing for a family whose FLOPs are not counted."""
    if not rates:
        return ""
    flops, mfu = sorted(rates, key=lambda r: r[0])[len(rates) // 2]
    text = f", {flops / 1e12:.3g} model TFLOP/s"
    if mfu is not None:
        text += f", model FLOPs utilisation {mfu:.1%}"
    n = len(rates)
    return text + f" (the median over {n} step{'s' if n != 1 else ''})"


def _eval_line(ev) -> str:
    """An evaluation's line: validation loss and BLEU, the probe's attention entropy and output."""
    bleu = "n/a" if ev.val_bleu is None else f"{ev.val_bleu:.1f}"
    msg = f"step {ev.step}: val loss {ev.val_loss:.3f}, val BLEU {bleu}"
    if ev.probe and ev.probe.entropy is not None:
        msg += f", attention entropy {ev.probe.entropy:.2f}"
    if ev.probe:
        msg += f", probe → {ev.probe.output!r}"
    return msg


def _save_somewhere(trainer, *, save_failed: bool) -> None:
    """A run that failed keeps its model: it goes to --out (unless that save is what failed),
    else to a new file in the temporary folder, and the path is printed either way."""
    import time

    if trainer.model is None:
        return
    targets = [] if save_failed else [trainer.options.out]
    for target in (*targets, None):
        path = rescue_path(trainer.options.out) if target is None else Path(target)
        try:
            trainer._write_checkpoint(path, time.perf_counter())
        except OSError as e:
            print(f"error: could not write {path}: {e.strerror or e}", file=sys.stderr)
            if target is None:
                path.unlink(missing_ok=True)
            continue
        print(f"the model of step {trainer.step} is saved in {path}", file=sys.stderr)
        return
    print("error: the model could not be saved anywhere", file=sys.stderr)
