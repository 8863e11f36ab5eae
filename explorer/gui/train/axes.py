"""Plain tick labels for the training plots: numbers as a class reads them.

pyqtgraph's defaults put a unit prefix in the axis title ("BLEU (x0.001)") and write log-axis
ticks as powers of ten ("4·10¹"). Here a linear axis keeps the numbers themselves, and a log axis
ticks at 1, 2 and 5 times powers of ten (… 2, 5, 10, 20, 50 …) labelled plainly.
"""

from __future__ import annotations

import math

from explorer.gui.widgets.plotting import pg

MAX_LOG_TICKS = 8  # more 1-2-5 ticks than this: powers of ten only


def log_ticks(lo: float, hi: float) -> list[float]:
    """Tick values (not logarithms) between 10**lo and 10**hi: the 1-2-5 sequence, or powers
    of ten alone when that would be crowded, or 1 to 9 times a power of ten when fewer than two
    1-2-5 values fall inside."""
    lo, hi = sorted((lo, hi))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    first, last = math.floor(lo), math.ceil(hi)
    inside = lambda vs: [v for v in vs if lo - 1e-9 <= math.log10(v) <= hi + 1e-9]  # noqa: E731
    decades = [10.0**e for e in range(first, last + 1)]
    ticks = inside([m * d for d in decades for m in (1, 2, 5)])
    if len(ticks) > MAX_LOG_TICKS:
        return inside(decades)
    if len(ticks) < 2:
        return inside([m * d for d in decades for m in range(1, 10)])
    return ticks


def plain_number(v: float) -> str:
    """2, 50, 1,200, 0.5, 0.003: no exponent, no unit prefix."""
    if v == 0:
        return "0"
    if abs(v) >= 1:
        return f"{v:,.0f}" if abs(v - round(v)) < 1e-6 * abs(v) else f"{v:,.1f}"
    return f"{v:.{max(1, 1 - math.floor(math.log10(abs(v))))}f}".rstrip("0").rstrip(".")


class PlainAxis(pg.AxisItem):
    """An axis with plain labels: no "(x0.001)" in its title; on a log scale, ticks at 1-2-5
    times powers of ten labelled 2, 5, 10, 20, 50."""

    def __init__(self, orientation: str, **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.enableAutoSIPrefix(False)

    def tickValues(self, minVal: float, maxVal: float, size: float):
        if not self.logMode:
            return super().tickValues(minVal, maxVal, size)
        values = [math.log10(v) for v in log_ticks(minVal, maxVal)]
        return [(1.0, values)] if values else super().tickValues(minVal, maxVal, size)

    def tickStrings(self, values, scale, spacing):
        if self.logMode:
            return [plain_number(10.0**v) for v in values]
        # the default format (as many decimals as the spacing needs), less trailing zeros
        strings = super().tickStrings(values, scale, spacing)
        return [s.rstrip("0").rstrip(".") if "." in s and "e" not in s else s for s in strings]


def plain_axes() -> dict[str, PlainAxis]:
    """The axisItems for a PlotItem whose left and bottom axes read plainly."""
    return {"left": PlainAxis("left"), "bottom": PlainAxis("bottom")}
