"""Where the step-through views put their labels, worked out without a window.

:func:`fit_labels` decides how a row of labels centred on equal cells (source pieces under an
alignment matrix, under attention bars) fits the pixels there are: whole on one row, staggered
on two, turned upright, abbreviated, or every k-th one. :func:`place_labels` puts a label beside
each point of a scatter (the PCA trajectory) so that no two labels overlap. Both work in pixels
from measured text sizes; the views measure with the font they draw in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

GAP = 6.0  # px between neighbouring labels
UPRIGHT_GAP = 1.0  # px between the ink of neighbouring upright labels (no side bearings)
ELLIPSIS = "…"


@dataclass(frozen=True)
class TickPlan:
    """The labels as drawn ("" for one left out) and on how many alternating rows."""

    texts: tuple[str, ...]
    rows: int  # 1, or 2: label i on row i % 2
    how: str  # "whole" | "staggered" | "rotated" | "abbreviated" | "thinned"
    thickness: tuple[float, ...] = ()  # "rotated": how wide each label is, standing upright


def _fits(widths: Sequence[float], cell: float, every: int, gap: float) -> bool:
    """Labels every ``every`` cells apart (centred on their cells) leave ``gap`` between them."""
    return all(
        (widths[i] + widths[i + every]) / 2 + gap <= every * cell
        for i in range(len(widths) - every)
    )


def abbreviate(text: str, room: float, measure: Callable[[str], float]) -> str:
    """The longest start of ``text`` (with "…" when cut) whose width is at most ``room``."""
    if measure(text) <= room:
        return text
    for n in range(len(text) - 1, 0, -1):
        cut = text[:n] + ELLIPSIS
        if measure(cut) <= room:
            return cut
    return ""


def fit_labels(
    labels: Sequence[str],
    cell: float,
    measure: Callable[[str], float],
    *,
    gap: float = GAP,
    min_chars: int = 3,
    two_rows: bool = True,
    upright: Callable[[str], float] | None = None,
    upright_room: float = float("inf"),
) -> TickPlan:
    """How ``labels``, one per cell of ``cell`` px, centred on it, are drawn without overlap.

    In order of preference: whole on one row; whole on two alternating rows; turned upright,
    when ``upright`` (a label's thickness standing upright: its ink's height) is given, each
    cut to ``upright_room`` px long; abbreviated on two rows (each keeping at least
    ``min_chars`` characters before "…" in both cases); or every k-th label whole on one row,
    k as small as fits (the others left out). ``two_rows`` False (a vertical axis,
    ``measure`` giving heights): whole or thinned only.
    """
    labels = [str(s) for s in labels]
    widths = [measure(s) for s in labels]
    if _fits(widths, cell, 1, gap):
        return TickPlan(tuple(labels), 1, "whole")
    if two_rows and _fits(widths, cell, 2, gap):
        return TickPlan(tuple(labels), 2, "staggered")
    if upright is not None:
        tall = [abbreviate(s, upright_room, measure) for s in labels]
        thick = [upright(s) for s in tall]
        kept = all(len(c) >= min(len(s), min_chars + 1) for c, s in zip(tall, labels))
        if kept and _fits(thick, cell, 1, UPRIGHT_GAP):
            return TickPlan(tuple(tall), 1, "rotated", tuple(thick))
    room = 2 * cell - gap  # each label's share of its row when staggered
    short = [abbreviate(s, room, measure) for s in labels] if two_rows else []
    if two_rows and all(len(c) >= min(len(s), min_chars + 1) for c, s in zip(short, labels)):
        return TickPlan(tuple(short), 2, "abbreviated")
    every = 2
    while every < len(labels) and not _fits(widths[::every], every * cell, 1, gap):
        every += 1
    kept = tuple(s if i % every == 0 else "" for i, s in enumerate(labels))
    return TickPlan(kept, 1, "thinned")


def plan_overlaps(plan: TickPlan, cell: float, measure: Callable[[str], float]) -> bool:
    """Whether two drawn labels of one row overlap (the property :func:`fit_labels` keeps)."""
    widths = plan.thickness if plan.how == "rotated" else [measure(s) for s in plan.texts]
    for row in range(plan.rows):
        spans = [
            (i * cell - widths[i] / 2, i * cell + widths[i] / 2)
            for i, s in enumerate(plan.texts)
            if s and i % plan.rows == row
        ]
        if any(a[1] > b[0] for a, b in zip(spans, spans[1:])):
            return True
    return False


# the eight places round a point, nearest first: right-above, right-below, left-above, …
_SIDES = ((1, -1), (1, 1), (-1, -1), (-1, 1), (1, 0), (-1, 0), (0, -1), (0, 1))


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Boxes (x0, y0, x1, y1) that share more than an edge."""
    return bool(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])


def _within(box: np.ndarray, area: tuple[float, float, float, float]) -> bool:
    return bool(box[0] >= area[0] and box[1] >= area[1] and box[2] <= area[2] and box[3] <= area[3])


def place_labels(
    points: np.ndarray,  # (N, 2) pixels, y down
    sizes: np.ndarray,  # (N, 2) label width, height in pixels
    *,
    pad: float = 4.0,
    rings: int = 40,
    inside: tuple[float, float, float, float] | None = None,
) -> np.ndarray:
    """(N, 4) boxes (x0, y0, x1, y1) in pixels, one label beside each point, no two overlapping
    and none over a point.

    Each label tries the eight places round its point, then the same places further out, ring
    by ring, and takes the first that is free and lies ``inside`` (x0, y0, x1, y1), when given;
    after ``rings`` rings it goes straight below every box placed so far, which is always free.
    """
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    sizes = np.asarray(sizes, dtype=float).reshape(-1, 2)
    dots = np.concatenate([points - pad / 2, points + pad / 2], axis=1)  # the points' own boxes
    boxes = np.zeros((len(points), 4))
    for n, ((x, y), (w, h)) in enumerate(zip(points, sizes)):
        taken = list(boxes[:n]) + list(dots)
        box = None
        for ring in range(rings):
            reach = pad + ring * max(h, 1.0) * 0.75
            for sx, sy in _SIDES:
                cx = x + sx * (reach + w / 2)
                cy = y + sy * (reach + h / 2)
                cand = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
                if inside is not None and not _within(cand, inside):
                    continue
                if not any(_overlap(cand, b) for b in taken):
                    box = cand
                    break
            if box is not None:
                break
        if box is None:
            top = max(b[3] for b in taken) + pad
            box = np.array([x - w / 2, top, x + w / 2, top + h])
        boxes[n] = box
    return boxes


def boxes_overlap(boxes: np.ndarray) -> bool:
    """Whether any two of the boxes overlap."""
    boxes = np.asarray(boxes, dtype=float)
    return any(
        _overlap(boxes[i], boxes[j]) for i in range(len(boxes)) for j in range(i + 1, len(boxes))
    )


def row_font_scale(row: float, line: float, floor: float = 0.6) -> float:
    """How much to shrink a font whose lines are ``line`` px high so that one line fits a row
    of ``row`` px (1 when it fits; never below ``floor``, where rows are too short to read)."""
    if line <= 0 or row >= line:
        return 1.0
    return max(floor, row / line)
