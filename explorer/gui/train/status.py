"""What the Train panel's progress line says, from the run's latest event: plain functions, so
a test reads them without a window.

While an evaluation runs (between its "evaluating" and "eval" events) the bar says so instead of
sitting still; while the run is paused no time left is shown, since none is passing.
"""

from __future__ import annotations

BAR_FORMAT = "step %v of %m"
EVALUATING = "evaluating…"


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "time left: estimating…"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"about {seconds} s left"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"about {m} min {s:02d} s left"
    h, m = divmod(m, 60)
    return f"about {h} h {m:02d} min left"


def bar_format(evaluating: bool) -> str:
    """The progress bar's text (Qt fills in %v and %m)."""
    return f"{BAR_FORMAT} · {EVALUATING}" if evaluating else BAR_FORMAT


def time_text(ev, *, paused: bool, evaluating: bool) -> str:
    """Beside the bar: the time left while training, "paused" while paused, nothing while an
    evaluation runs (the bar says so), the run's duration once it has ended."""
    if ev is None:
        return ""
    if ev.kind in ("done", "stopped", "failed"):
        return f"{ev.elapsed:.0f} s"
    if paused:
        return "paused"
    if evaluating:
        return ""
    if ev.kind == "step":
        return format_eta(ev.eta)
    return ""
