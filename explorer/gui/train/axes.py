"""Plain tick labels for the training plots: numbers as a class reads them, never on top of
each other.

pyqtgraph's defaults put a unit prefix in the axis title ("BLEU (x0.001)"), write log-axis
ticks as powers of ten ("4·10¹") and space ticks by the axis's length alone, so projector mode's
larger labels ran into each other on short plots. Here a linear axis keeps the numbers themselves
at a nice spacing (1, 2, 2.5 or 5 times a power of ten) whose labels stand apart in the axis's
font, and a log axis ticks at 1, 2 and 5 times powers of ten (… 2, 5, 10, 20, 50 …) labelled
plainly, or at fewer powers of ten when those labels would touch.
"""

from __future__ import annotations

import math

from PySide6.QtGui import QFontMetricsF

from explorer.gui.step.ticks import value_step
from explorer.gui.widgets.plotting import pg

MAX_LOG_TICKS = 8  # more 1-2-5 ticks than this: powers of ten only
LABEL_ROOM = 1.5  # from one label's middle to the next: at least this many labels' lengths
MAX_TICKS = 200  # a spacing that would give more ticks than this is not used
MIN_LABEL_PX = 8.0  # the least length of a label along its axis (one digit)


def log_ticks(lo: float, hi: float, pixels: float = math.inf, label: float = 0.0) -> list[float]:
    """Tick values (not logarithms) between 10**lo and 10**hi on an axis ``pixels`` long whose
    labels are ``label`` pixels long along it: the 1-2-5 sequence, or powers of ten alone when
    that would be crowded (more than MAX_LOG_TICKS, or labels closer than LABEL_ROOM labels),
    then every 2nd, 3rd, 5th or 10th power; 1 to 9 times a power of ten when fewer than two 1-2-5
    values fall inside; nice values of the number itself when no such sequence has two."""
    lo, hi = sorted((lo, hi))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    first, last = math.floor(lo), math.ceil(hi)
    inside = lambda vs: [v for v in vs if lo - 1e-9 <= math.log10(v) <= hi + 1e-9]  # noqa: E731
    decades = [10.0**e for e in range(first, last + 1)]
    ones_to_nines = inside([m * d for d in decades for m in range(1, 10)])
    one_two_five = inside([m * d for d in decades for m in (1, 2, 5)])
    sparse = [
        inside([10.0**e for e in range(first, last + 1) if e % k == 0]) for k in (2, 3, 5, 10)
    ]
    if len(one_two_five) < 2:
        candidates = [ones_to_nines, one_two_five]
    else:
        candidates = [one_two_five] if len(one_two_five) <= MAX_LOG_TICKS else []
    candidates += [inside(decades), *sparse]
    per_decade = pixels / (hi - lo) if hi > lo else math.inf
    for ticks in candidates:
        gaps = [math.log10(b / a) * per_decade for a, b in zip(ticks, ticks[1:])]
        if len(ticks) >= 2 and min(gaps) >= LABEL_ROOM * label:
            return ticks
    single = [ticks for ticks in candidates if len(ticks) == 1]
    if single:  # not even two powers of ten fit: one label
        return single[0]
    return linear_ticks(10.0**lo, 10.0**hi, pixels, lambda values: label)[1]


def linear_ticks(lo: float, hi: float, pixels: float, label_length) -> tuple[float, list[float]]:
    """A nice spacing and its multiples between ``lo`` and ``hi`` on an axis ``pixels`` long, far
    enough apart for their labels: ``label_length(values)`` is the length, along the axis, of
    the longest label of those values (first taken as MIN_LABEL_PX; it may grow as the spacing
    does: tried again, up to four times). No values for an empty range or axis."""
    if not (hi > lo and pixels > 0):
        return 1.0, []
    length, step, values = MIN_LABEL_PX, 1.0, []
    for _ in range(4):
        # value_step keeps two of its ``line``s per interval: a label and a gap
        step = value_step(lo, hi, pixels, LABEL_ROOM * length / 2)
        if (hi - lo) / step > MAX_TICKS:
            return step, []
        first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
        values = [k * step for k in range(first, last + 1)]
        longest = label_length(values)
        if longest <= length:
            break
        length = longest
    return step, values


def decimals(spacing: float) -> int:
    """The decimals that write every multiple of ``spacing`` exactly: 500 → 0, 0.5 → 1,
    0.25 → 2 (pyqtgraph's one decimal wrote 1.25 as "1.2")."""
    spacing = abs(spacing)
    for places in range(12):
        if abs(round(spacing, places) - spacing) <= 1e-9 * max(1.0, spacing):
            return places
    return 12


def plain_number(v: float) -> str:
    """2, 50, 1,200, 0.5, 0.003: no exponent, no unit prefix."""
    if v == 0:
        return "0"
    if abs(v) >= 1:
        return f"{v:,.0f}" if abs(v - round(v)) < 1e-6 * abs(v) else f"{v:,.1f}"
    return f"{v:.{max(1, 1 - math.floor(math.log10(abs(v))))}f}".rstrip("0").rstrip(".")


def fitted_tick_values(axis: pg.AxisItem, lo: float, hi: float, size: float) -> list | None:
    """Tick values for ``axis`` (pyqtgraph's ``tickValues``: one level, ``[(step, values)]``)
    whose labels, in the axis's font, stand apart along its ``size`` pixels; None when no
    spacing gives any (an empty or zero-length range)."""
    fm = QFontMetricsF(axis.style.get("tickFont") or axis.font())
    vertical = axis.orientation in ("left", "right")

    def length(values) -> float:
        if vertical:
            return fm.height()
        spacing = abs(values[1] - values[0]) if len(values) > 1 else 1.0
        strings = axis.tickStrings(values, 1.0, spacing)
        return max((fm.horizontalAdvance(s) for s in strings), default=0.0)

    if axis.logMode:
        label = fm.height() if vertical else fm.horizontalAdvance("0,000")
        step, values = 1.0, [math.log10(v) for v in log_ticks(lo, hi, size, label)]
    else:
        step, values = linear_ticks(min(lo, hi), max(lo, hi), size, length)
    return [(step, values)] if values else None


class PlainAxis(pg.AxisItem):
    """An axis with plain labels: no "(x0.001)" in its title; on a log scale, ticks at 1-2-5
    times powers of ten labelled 2, 5, 10, 20, 50."""

    def __init__(self, orientation: str, **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.enableAutoSIPrefix(False)

    def tickValues(self, minVal: float, maxVal: float, size: float):  # noqa: N802
        """One level of ticks whose labels, in the axis's font, stand apart along ``size``
        pixels; pyqtgraph's own where that gives none (an empty or zero-length range)."""
        return fitted_tick_values(self, minVal, maxVal, size) or super().tickValues(
            minVal, maxVal, size
        )

    def tickStrings(self, values, scale, spacing):
        if self.logMode:
            return [plain_number(10.0**v) for v in values]
        places = decimals(spacing * scale)  # 2.5 times a power of ten needs one more
        strings = [f"{v * scale:,.{places}f}" for v in values]
        return [s.rstrip("0").rstrip(".") if "." in s else s for s in strings]


def bar_ends(lo: float, hi: float, pixels: float, label: float) -> list | None:
    """A colour bar too short for two nice multiples (the encoder states' ±0.97 in 120 px under
    projector fonts showed a lone 0): its ends, rounded inwards to two significant digits, and
    0 between them where it has room; None for an empty or flat range."""
    lo, hi = sorted((lo, hi))
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo and pixels > 0):
        return None
    unit = 10.0 ** (math.floor(math.log10(max(abs(lo), abs(hi)))) - 1)
    ends = [math.ceil(lo / unit - 1e-9) * unit, math.floor(hi / unit + 1e-9) * unit]
    if not ends[0] < ends[1]:
        return None
    per_value = pixels / (hi - lo)
    if lo < 0 < hi and min(-ends[0], ends[1]) * per_value >= LABEL_ROOM * label:
        ends.insert(1, 0.0)
    return [(unit, ends)]


def plain_colorbar(bar: pg.ColorBarItem) -> None:
    """The value axis of a colour bar (made by pyqtgraph, not by us) ticked and labelled as a
    PlainAxis: on a short bar under projector fonts its six labels 0 … 1 were drawn on top of
    each other."""
    axis = bar.axis
    axis.enableAutoSIPrefix(False)

    def tick_values(lo: float, hi: float, size: float):
        fitted = fitted_tick_values(axis, lo, hi, size)
        if fitted and len(fitted[0][1]) >= 2:
            return fitted
        label = QFontMetricsF(axis.style.get("tickFont") or axis.font()).height()
        return bar_ends(lo, hi, size, label) or fitted or pg.AxisItem.tickValues(axis, lo, hi, size)

    axis.tickValues = tick_values
    axis.tickStrings = lambda values, scale, spacing: PlainAxis.tickStrings(
        axis, values, scale, spacing
    )


def plain_axes() -> dict[str, PlainAxis]:
    """The axisItems for a PlotItem whose left and bottom axes read plainly."""
    return {"left": PlainAxis("left"), "bottom": PlainAxis("bottom")}
