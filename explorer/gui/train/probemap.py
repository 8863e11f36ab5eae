"""The probe's attention map as the Train panel draws it: readable at any vocabulary size.

A small vocabulary (the tiny preset's 40 pieces) cuts a sentence into dozens of one-letter
pieces, and dozens of rows and columns leave cells too small to see and labels piled on each
other. When the pieces do not fit at ``MIN_CELL_PX`` a cell, the map is drawn per word: a source
word's column is the attention summed over its pieces (so each row still sums to 1) and a target
word's row the mean of its pieces' rows. When even the words do not fit, only every k-th label
is written. Plain functions of arrays and sizes, so a test reads them without a window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_CELL_PX = 18  # a cell a label can sit under (a line of the axis font, and a margin)
MARKER = "\u2581"  # sentencepiece's word-boundary marker, shown alone for a bare-marker piece


@dataclass(frozen=True)
class ProbeMap:
    """What the replay draws: a (rows × columns) matrix, one label per row and per column
    ("" where a label is left out), and whether pieces were merged into words."""

    attention: np.ndarray
    source_labels: list[str]
    target_labels: list[str]
    merged: bool
    pieces: tuple[int, int]  # the probe's (source, target) piece counts


def word_groups(words: list[int]) -> list[list[int]]:
    """Consecutive positions of the same word index, in order; a special (-1) stays alone."""
    groups: list[list[int]] = []
    for i, w in enumerate(words):
        if groups and w >= 0 and words[groups[-1][0]] == w:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _label(pieces: list[str], group: list[int]) -> str:
    text = "".join(pieces[i] for i in group)
    return text.replace(MARKER, "") or text


def merge_words(
    attention: np.ndarray,
    source_pieces: list[str],
    target_pieces: list[str],
    source_words: list[int],
    target_words: list[int],
) -> tuple[np.ndarray, list[str], list[str]]:
    """Attention per word: columns summed over a source word's pieces, rows averaged over a
    target word's pieces; with the words as labels."""
    a = np.asarray(attention, dtype=float)
    src, tgt = word_groups(source_words), word_groups(target_words)
    cols = np.stack([a[:, g].sum(axis=1) for g in src], axis=1)
    rows = np.stack([cols[g].mean(axis=0) for g in tgt], axis=0)
    return rows, [_label(source_pieces, g) for g in src], [_label(target_pieces, g) for g in tgt]


def thin(labels: list[str], pixels: float, min_cell: float = MIN_CELL_PX) -> list[str]:
    """Every k-th label (the others ""), k the smallest step that leaves ``min_cell`` pixels
    a label."""
    n = len(labels)
    every = max(1, math.ceil(n * min_cell / max(pixels, 1.0)))
    return [s if i % every == 0 else "" for i, s in enumerate(labels)]


def probe_map(probe, width: float, height: float, min_cell: float = MIN_CELL_PX) -> ProbeMap:
    """The map of ``probe`` (a Probe with attention) for a view of ``width`` × ``height``
    pixels: its pieces when they fit, else its words (when the probe knows them)."""
    a = np.asarray(probe.attention, dtype=float)
    t, s = a.shape
    src, tgt = list(probe.source_pieces), list(probe.target_pieces)
    fits = s * min_cell <= width and t * min_cell <= height
    known = probe.source_words is not None and probe.target_words is not None
    merged = not fits and known
    if merged:
        a, src, tgt = merge_words(a, src, tgt, probe.source_words, probe.target_words)
    return ProbeMap(
        attention=a,
        source_labels=thin(src, width, min_cell),
        target_labels=thin(tgt, height, min_cell),
        merged=merged,
        pieces=(s, t),
    )
