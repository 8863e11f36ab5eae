"""A training run's clocks: the steps planned, tokens per second, and the time left.

The time left comes from :class:`EtaEstimator`: an exponential moving average of the duration of
one optimiser step, measured from the start of a batch to its progress event, so neither an
evaluation nor a pause between two batches counts as training time, plus the evaluations still
due at the mean duration of those already run. A naive estimate (time so far / steps so far)
jumps after each evaluation and keeps counting through a pause.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field


@dataclass
class EtaEstimator:
    """Seconds left in a run. Feed it :meth:`step_took` after each optimiser step and
    :meth:`eval_took` after each evaluation; :meth:`remaining` is None until ``warmup`` steps
    after the first (which pays for lazy set-up and is not counted) have been measured."""

    alpha: float = 0.05  # weight of the newest step in the moving average
    warmup: int = 3
    step_s: float | None = None  # the moving average of one step's duration
    measured: int = 0  # steps measured, the first one included
    eval_s: float = 0.0  # total seconds of the evaluations measured
    evals: int = 0

    def step_took(self, seconds: float) -> None:
        if not math.isfinite(seconds) or seconds < 0:
            return
        self.measured += 1
        if self.measured == 1:
            return
        if self.step_s is None:
            self.step_s = seconds
        else:
            self.step_s += self.alpha * (seconds - self.step_s)

    def eval_took(self, seconds: float) -> None:
        if math.isfinite(seconds) and seconds >= 0:
            self.eval_s += seconds
            self.evals += 1

    def remaining(self, step: int, total: int, eval_every: int) -> float | None:
        """Seconds left after ``step`` of ``total``: the steps left at the average step time,
        and the evaluations still due (every ``eval_every`` steps, and one at the end) at the
        mean evaluation time."""
        if self.step_s is None or self.measured <= self.warmup:
            return None
        left = max(0, total - step)
        if left == 0:
            return 0.0
        due = 1  # the final evaluation
        if eval_every > 0:  # those at the multiples of eval_every in (step, total)
            due += (total - 1) // eval_every - step // eval_every
        per_eval = self.eval_s / self.evals if self.evals else 0.0
        return left * self.step_s + due * per_eval


@dataclass
class Clock:
    """The run's steps planned (``total``), its start, and the window that measures tokens/s
    and model FLOP/s: a second or more of wall time, over the time spent in its steps (not in
    evaluations or pauses, which made the throughput plot dip after each). With the device's
    ``peak`` FLOP/s, the model FLOPs utilisation ``mfu`` as well (``flops.py``)."""

    total: int
    per_epoch: int
    peak: float | None = None
    t0: float = field(default_factory=time.perf_counter)
    window_tokens: int = 0
    window_flops: int | None = 0  # None once a step of the window had no count
    window_busy: float = 0.0  # seconds spent in the window's steps
    window_t0: float = field(default_factory=time.perf_counter)
    tokens_per_second: float | None = None
    flops_per_second: float | None = None

    def count(self, tokens: int, seconds: float, flops: int | None = None) -> float:
        """Add a batch's tokens, model FLOPs and the seconds its step took to the window; the
        time now."""
        self.window_tokens += tokens
        self.window_flops = (
            None if flops is None or self.window_flops is None else (self.window_flops + flops)
        )
        self.window_busy += seconds
        now = time.perf_counter()
        if now - self.window_t0 >= 1.0 and self.window_busy > 0:
            self.tokens_per_second = self.window_tokens / self.window_busy
            if self.window_flops is not None:
                self.flops_per_second = self.window_flops / self.window_busy
            self.window_tokens, self.window_flops, self.window_busy = 0, 0, 0.0
            self.window_t0 = now
        return now

    @property
    def mfu(self) -> float | None:
        """The model FLOPs utilisation of the latest window: its FLOP/s over the peak."""
        if self.peak is None or self.flops_per_second is None:
            return None
        return self.flops_per_second / self.peak
