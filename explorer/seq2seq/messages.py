"""Error messages for people: one line that says what was wrong."""

from __future__ import annotations


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), for a
    one-line refusal that does not drag a library's multi-line report along."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
