"""Reading files that come from strangers: open only regular files, print their text escaped.

A stranger's file may name a tensor ``"x\\nerror: looks fine"`` or put ANSI escapes in a model
card; printed raw, the first forges a second line and the second clears the screen. ``printable``
writes every non-printable character (controls, format characters, line separators) as its
Python escape and leaves the rest (accents, CJK, emoji) as they are.

A path may name a FIFO (opening it to read waits for a writer forever) or a device such as
``/dev/zero`` (it never ends). ``open_regular`` opens without blocking and refuses anything but a
regular file, checking the opened file itself so that nothing can be swapped in between.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFileError(OSError):
    """The path names a directory, FIFO, device or socket; ``kind`` says which."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


def printable(value: object, limit: int = 1000) -> str:
    """``str(value)`` with non-printable characters escaped, cut to ``limit`` characters."""
    text = str(value)
    out = "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode() for c in text[:limit]
    )
    return out + "…" if len(text) > limit else out


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """``path`` opened for binary reading; ``NotRegularFileError`` unless it is a regular file
    (``FileNotFoundError`` and other ``OSError``\\ s as ``open`` raises them)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegularFileError(next((k for is_kind, k in _KINDS if is_kind(mode)), "not a file"))
    os.set_blocking(fd, True)
    return open(fd, "rb")  # noqa: SIM115  (the caller closes it)
