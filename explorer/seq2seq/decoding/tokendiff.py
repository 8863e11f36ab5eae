"""Token-level differences between decodes of one sentence (two or three models, or a decode and
its edited copy).

Outputs are aligned by their longest common subsequence (``difflib.SequenceMatcher`` without its
junk heuristic), so a word inserted early does not mark every later word as different.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class DiffOp:
    """One stretch of an alignment of ``a`` with ``b``: ``a[a0:a1]`` against ``b[b0:b1]``."""

    kind: str  # "equal" | "replace" | "delete" (only in a) | "insert" (only in b)
    a0: int
    a1: int
    b0: int
    b1: int


def diff_ops(a: Sequence[str], b: Sequence[str]) -> list[DiffOp]:
    """The alignment of two token sequences, stretch by stretch, covering both completely."""
    matcher = difflib.SequenceMatcher(a=list(a), b=list(b), autojunk=False)
    return [DiffOp(*op) for op in matcher.get_opcodes()]


def _matched(a: Sequence[str], b: Sequence[str]) -> list[bool]:
    """For each token of ``a``: is it aligned with an equal token of ``b``?"""
    same = [False] * len(a)
    for op in diff_ops(a, b):
        if op.kind == "equal":
            same[op.a0 : op.a1] = [True] * (op.a1 - op.a0)
    return same


def differing(outputs: Sequence[Sequence[str]]) -> list[list[bool]]:
    """For each output, which of its tokens differ: a token is marked unless every other output
    has an equal token aligned with it. One output alone has nothing to differ from."""
    if len(outputs) < 2:
        return [[False] * len(a) for a in outputs]
    marks = []
    for i, a in enumerate(outputs):
        others = [_matched(a, b) for j, b in enumerate(outputs) if j != i]
        marks.append([not all(col) for col in zip(*others, strict=True)])
    return marks


def first_difference(a: Sequence[str], b: Sequence[str]) -> int | None:
    """The first position where the two outputs differ (a length difference counts), or None."""
    for t, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return t
    return None if len(a) == len(b) else min(len(a), len(b))
