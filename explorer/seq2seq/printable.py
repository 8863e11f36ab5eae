"""Text from a file, made safe to print on one line of a terminal.

A stranger's file may name a tensor ``"x\\nerror: looks fine"`` or put ANSI escapes in a model
card; printed raw, the first forges a second line and the second clears the screen. ``printable``
writes every non-printable character (controls, format characters, line separators) as its
Python escape, and leaves the rest
(accents, CJK, emoji) as they are.
"""

from __future__ import annotations


def _escape(c: str) -> str:
    return c.encode("unicode_escape").decode("ascii")


def printable(value: object, limit: int = 200) -> str:
    """``str(value)`` with control characters escaped, cut to ``limit`` characters (with "…")."""
    text = str(value)
    cut = len(text) > limit
    out = "".join(_escape(c) if not c.isprintable() else c for c in text[:limit])
    return out + "…" if cut else out
