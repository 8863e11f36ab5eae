"""Training options, their schedules, the device, and the events a training run yields.

:class:`TrainOptions` defines a run completely (it is stored in the checkpoint so a run can
resume); :class:`Progress` is what :meth:`explorer.seq2seq.training.train.Trainer.run` yields.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch

from explorer.seq2seq.data.corpus import MAX_PAIRS
from explorer.seq2seq.models.families import ARCHS
from explorer.seq2seq.training.presets import PRESETS


class TrainingError(RuntimeError):
    """Training could not continue; the message says why and what to do."""


class TrainOptionError(ValueError):
    """A training option of the wrong type or outside its range; names the option."""


def usable_threads(requested: int) -> int:
    """``requested`` CPU threads, at most the CPUs this process may run on (0: torch's default).
    torch crashes on thousands of threads (SIGSEGV, or an abort in libgomp)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    return max(0, min(int(requested), cpus))


def _whole(lo: int, hi: int, optional: bool = False):
    def check(v: Any) -> str | None:
        if optional and v is None:
            return None
        if isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi:
            return None
        return f"must be a whole number from {lo:,} to {hi:,}" + (" (or null)" if optional else "")

    return check


def _number(lo: float, hi: float, *, low_open: bool = False, optional: bool = False):
    def check(v: Any) -> str | None:
        if optional and v is None:
            return None
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        if ok and (lo < v if low_open else lo <= v) and v <= hi:
            return None
        if low_open:
            return f"must be a number above {lo:g} and at most {hi:g}"
        return f"must be a number from {lo:g} to {hi:g}"

    return check


def _one_of(*choices: Any):
    def check(v: Any) -> str | None:
        return (
            None
            if v in choices and type(v) is type(choices[0])
            else (f"must be one of {', '.join(map(str, choices))}")
        )

    return check


def _text(max_len: int, optional: bool = False):
    def check(v: Any) -> str | None:
        if optional and v is None:
            return None
        if isinstance(v, str) and 0 < len(v) <= max_len:
            return None
        return f"must be text of 1 to {max_len} characters" + (" (or null)" if optional else "")

    return check


def _model_sizes(v: Any) -> str | None:
    if isinstance(v, dict) and all(
        isinstance(k, str) and (x is None or isinstance(x, (bool, int, float, str)))
        for k, x in v.items()
    ):
        return None
    return "must map field names to numbers, text or true/false"


_BIG = 10**9
# Adam's learning rate: above 1 every step overshoots (the presets use 2e-3 to 3e-3; the noam
# schedule peaks at lr itself), so a larger one is a typo, not an experiment.
MAX_LR = 1.0
# Checkpoint averaging keeps this many copies of the weights in memory at most (fairseq's
# recipes average 5 to 10; Vaswani et al. 20).
MAX_AVERAGED = 50
# Each field's check: None when the value is acceptable, else what it must be. A stored run's
# options come from a file, so nothing here may be trusted to be the right type.
_CHECKS = {
    "corpus": _text(4096),
    "src_lang": _text(64, optional=True),
    "tgt_lang": _text(64, optional=True),
    "corpus_size": _whole(1, MAX_PAIRS, optional=True),
    "max_words": _whole(1, 10_000),
    "valid_fraction": _number(0, 0.9),
    "test_fraction": _number(0, 0.9),
    "arch": _one_of(*ARCHS),
    "model": _model_sizes,
    "vocab_size": _whole(8, 1_000_000),
    "spm_type": _one_of("bpe", "unigram"),
    "joint_vocab": _one_of(False, True),
    "steps": _whole(1, _BIG, optional=True),
    "epochs": _number(0, 1e6, low_open=True, optional=True),
    "max_minutes": _number(0, 1e7, low_open=True, optional=True),
    "batch_size": _whole(1, 1 << 20),
    "batch_tokens": _whole(1, 1 << 24, optional=True),
    "lr": _number(0, MAX_LR, low_open=True),
    "schedule": _one_of("constant", "step", "noam"),
    "decay_every": _whole(1, _BIG),
    "decay_factor": _number(0, 10, low_open=True),
    "warmup": _whole(1, _BIG),
    "clip": _number(0, 1e9),  # 0: no clipping (as fairseq's --clip-norm 0)
    "label_smoothing": _number(0, 0.99),
    "teacher_forcing": _one_of("constant", "linear", "step"),
    "tf_ratio": _number(0, 1),
    "device": _text(64),
    "amp": _one_of(False, True),
    "cpu_amp": _one_of(False, True),
    "eval_every": _whole(0, _BIG),
    "bleu_sentences": _whole(0, 1_000_000),
    "checkpoint_every": _whole(0, _BIG),
    "average_last": _whole(0, MAX_AVERAGED),
    "out": _text(4096, optional=True),
    "optimizer_state": _one_of(False, True),
    "seed": _whole(-(2**63), 2**63 - 1),
    "threads": _whole(0, _BIG),  # clamped to the machine where it is used (usable_threads)
}


@dataclass
class TrainOptions:
    """Everything that defines a training run. Stored in the checkpoint, so a run can resume."""

    corpus: str = "classroom"
    src_lang: str | None = None
    tgt_lang: str | None = None
    corpus_size: int | None = None  # generated corpora: number of pairs; files: keep the first N
    max_words: int = 80  # drop pairs with a longer side (in words)
    valid_fraction: float = 0.03  # of the pairs, chosen by a hash of the source sentence
    test_fraction: float = 0.05
    arch: str = "bahdanau"
    model: dict[str, Any] = field(default_factory=dict)  # family config fields
    vocab_size: int = 1000
    spm_type: str = "bpe"
    joint_vocab: bool = False
    steps: int | None = 3000
    epochs: float | None = None
    max_minutes: float | None = None  # a time budget: the run ends at the first batch past it
    batch_size: int = 64  # sentences in a batch, at most
    batch_tokens: int | None = None  # padded tokens in a batch, at most (None: no limit)
    lr: float = 3e-3
    schedule: str = "step"  # constant | step | noam
    decay_every: int = 1000  # step schedule: multiply lr by decay_factor every N steps
    decay_factor: float = 0.5
    warmup: int = 400  # noam schedule
    clip: float = 1.0  # the gradient norm is rescaled to at most this; 0: no clipping
    label_smoothing: float = 0.0
    teacher_forcing: str = "constant"  # constant | linear | step (100% → 50% → 0%)
    tf_ratio: float = 1.0  # constant: the ratio; linear: the starting ratio, decaying to 0
    device: str = "auto"
    amp: bool = True  # mixed precision on CUDA
    cpu_amp: bool = False  # bfloat16 mixed precision on the CPU (see mixed_precision)
    eval_every: int = 250
    bleu_sentences: int = 200
    checkpoint_every: int = 0  # 0: only at the end (when out is set)
    average_last: int = 0  # the final model: the mean of the weights at the last N evaluations
    out: str | None = None
    optimizer_state: bool = True  # store Adam's moments so the run can resume (triples the file)
    seed: int = 0
    threads: int = 0  # CPU threads for torch (0: torch's default)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> TrainOptions:
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
        values = dict(PRESETS[name])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainOptions:
        """Options from a dict (a preset, or a checkpoint's stored run), every field checked."""
        if not isinstance(values, dict):
            raise TrainOptionError(f"training options must be a dict, not {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(map(str, values)) - known)
        if unknown:
            raise TrainOptionError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**values).validated()

    def validated(self) -> TrainOptions:
        """These options, after checking each field's type and range; ``TrainOptionError``
        names the first that is wrong."""
        for name, check in _CHECKS.items():
            value = getattr(self, name)
            problem = check(value)
            if problem:
                shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:60] + "…"
                raise TrainOptionError(f"training option {name!r} = {shown}: {problem}")
        if self.valid_fraction + self.test_fraction >= 0.95:
            raise TrainOptionError(
                "training options 'valid_fraction' and 'test_fraction' leave under 5% for training"
            )
        if self.average_last > 1 and not self.eval_every:
            raise TrainOptionError(
                "training option 'average_last' averages the weights at the last evaluations: "
                "it needs 'eval_every' above 0"
            )
        if self.steps is None and self.epochs is None:
            raise TrainOptionError("training options give neither 'steps' nor 'epochs'")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Probe:
    """The probe sentence's attention at one evaluation: the alignment emerging over training."""

    step: int
    source_pieces: list[str]
    target_pieces: list[str]
    attention: np.ndarray | None  # (T, S) teacher-forced along the probe's reference
    entropy: float | None  # mean row entropy of ``attention``, in nats
    output: str  # the greedy translation of the probe
    # the word each piece belongs to (tokenizer.word_index; -1 for specials), to draw per word
    source_words: list[int] | None = None
    target_words: list[int] | None = None


@dataclass
class Progress:
    """One event of a training run."""

    # start | step | evaluating (one is starting) | eval | checkpoint | diagnostic | done |
    # stopped | failed
    kind: str
    step: int
    total_steps: int
    epoch: float = 0.0
    loss: float | None = None
    perplexity: float | None = None
    lr: float | None = None
    grad_norm: float | None = None
    tokens_per_second: float | None = None
    flops_per_second: float | None = None  # the model FLOPs (training/flops.py) a second
    mfu: float | None = None  # flops_per_second over the device's peak, where it is known
    teacher_forcing: float | None = None
    elapsed: float = 0.0
    eta: float | None = None
    val_loss: float | None = None
    val_bleu: float | None = None
    probe: Probe | None = None
    message: str = ""
    path: str | None = None  # checkpoint: where it was saved; failed: where it could not be
    # failed: option changes that let the run continue, e.g. {"label": "Use CPU",
    # "options": {"device": "cpu"}}; pass "options" to Trainer.continue_with
    suggestions: list[dict[str, Any]] = field(default_factory=list)


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA, then Apple MPS, then CPU. A named device that is absent is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"device {name!r} asked for, but no CUDA GPU is available")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise TrainingError(f"device {name!r} asked for, but Apple MPS is not available")
    return dev


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        i = device.index or 0
        props = torch.cuda.get_device_properties(i)
        return f"{props.name} ({props.total_memory / 2**30:.0f} GiB)"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    n = torch.get_num_threads()
    return f"CPU ({n} thread{'s' if n != 1 else ''})"


def describe_run(device: torch.device, precision: str, world_size: int, peak: float | None) -> str:
    """Where a run trains, for its start message: the device, the processes, the precision, and
    the peak its model FLOPs utilisation is measured against."""
    where = describe_device(device)
    if world_size > 1:
        where += f" in each of {world_size} processes"
    where += f", {precision}"
    if peak:
        where += f"; model FLOPs utilisation against a peak of {peak / 1e12:.0f} TFLOP/s"
    return where


def mixed_precision(opts: TrainOptions, device: torch.device) -> torch.dtype | None:
    """The type training's forward pass computes in under autocast, None for float32 throughout.
    On CUDA (``amp``): bfloat16 where the GPU has it, else float16 with loss scaling. On the CPU
    (``cpu_amp``): bfloat16, whose matrix products run about twice as fast as float32's on
    processors with AVX-512 BF16 or AMX. The weights, Adam's moments, the loss and every
    evaluation stay float32."""
    if device.type == "cuda" and opts.amp:
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and opts.cpu_amp:
        return torch.bfloat16
    return None


def describe_precision(dtype: torch.dtype | None, device: torch.device) -> str:
    """How a run computes, for its start message: "float32" or "bfloat16 mixed precision", with
    a warning where this CPU has to emulate bfloat16 (slower than float32)."""
    if dtype is None:
        return "float32"
    text = f"{str(dtype).removeprefix('torch.')} mixed precision"
    if device.type == "cpu" and native_cpu_bfloat16() is False:
        text += " (emulated: this CPU has no bfloat16 arithmetic, so it is slower than float32)"
    return text


def native_cpu_bfloat16() -> bool | None:
    """Whether this CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX); None where torch
    cannot tell (its probes are x86 ones)."""
    probes = [
        getattr(torch.cpu, n, None) for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    ]
    answers = [bool(p()) for p in probes if callable(p)]
    return any(answers) if answers else None


def clip_norm(opts: TrainOptions) -> float:
    """The max_norm for ``clip_grad_norm_``: ``clip``, or infinity (the norm is measured, the
    gradient left alone) when ``clip`` is 0, as fairseq's ``--clip-norm 0`` and JoeyNMT without
    ``clip_grad_norm`` do. torch's own max_norm 0 would zero every gradient."""
    return opts.clip if opts.clip > 0 else math.inf


def fused_adam(params: Any, lr: float, state: dict | None = None) -> torch.optim.Adam:
    """Adam (betas 0.9, 0.98) as torch's fused kernel: the same update as the per-tensor loop,
    in one pass over the weights (a sixth of the time on a CPU for 6 M weights). ``state``, a
    saved optimizer's, is loaded; a state saved with the per-tensor loop runs fused all the same."""
    opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.98), fused=True)
    if state is not None:
        opt.load_state_dict(state)
        for group in opt.param_groups:  # a saved group's flags come back with it
            group.update(fused=True, foreach=None)
    return opt


def teacher_forcing_ratio(opts: TrainOptions, step: int, total: int) -> float:
    """The probability of feeding the gold previous token at ``step`` (0-based)."""
    frac = step / max(1, total)
    if opts.teacher_forcing == "constant":
        return opts.tf_ratio
    if opts.teacher_forcing == "linear":
        return opts.tf_ratio * (1.0 - frac)
    if opts.teacher_forcing == "step":
        return 1.0 if frac < 1 / 3 else 0.5 if frac < 2 / 3 else 0.0
    raise ValueError(f"unknown teacher forcing schedule {opts.teacher_forcing!r}")


def learning_rate(opts: TrainOptions, step: int) -> float:
    """Learning rate at ``step`` (0-based). ``noam`` peaks at ``lr`` after ``warmup`` steps."""
    if opts.schedule == "constant":
        return opts.lr
    if opts.schedule == "step":
        return opts.lr * opts.decay_factor ** (step // max(1, opts.decay_every))
    if opts.schedule == "noam":
        s = step + 1
        return opts.lr * min(s / opts.warmup, math.sqrt(opts.warmup / s))
    raise ValueError(f"unknown learning-rate schedule {opts.schedule!r}")


def load_splits(o: TrainOptions):
    """The corpus a run trains on and its (train, valid, test) split, alignments kept in step.

    Deterministic for the options, so evaluation finds the same test set the run never saw.
    """
    from explorer.seq2seq.data.corpus import filter_length, load_corpus, split

    corpus = load_corpus(
        o.corpus, src_lang=o.src_lang, tgt_lang=o.tgt_lang, size=o.corpus_size, seed=o.seed
    )
    corpus = filter_length(corpus, min_len=1, max_len=o.max_words)
    return corpus, split(corpus, valid=o.valid_fraction, test=o.test_fraction, seed=o.seed)


def seed_everything(seed: int) -> None:
    """Python's, numpy's and torch's random generators seeded alike: the same run twice."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
