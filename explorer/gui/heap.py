"""Give the heap memory that the process freed back to the operating system.

Training, loading and searching run in worker threads, and glibc's allocator gives threads their
own arenas. What a finished training run freed there (its corpus, batches, optimiser state) stays
mapped to the process, so over a long session the resident size only grows: in the 1,000-action
test, tens of MB that ``malloc_trim`` hands back at once. Elsewhere (macOS, Windows, musl) this
does nothing.
"""

from __future__ import annotations

import ctypes
import sys
from functools import cache


@cache
def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


def release_free_memory() -> bool:
    """Return the free pages of every malloc arena to the system; whether this libc can."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def drop_stale_warning_hook() -> bool:
    """superqt's workers (0.9) point ``warnings.showwarning`` at a lambda holding the worker, inside
    ``warnings.catch_warnings``; two workers that overlap restore each other's hook, so one finished
    worker (and its arguments: a whole model) can stay installed for good. Called when a worker
    finishes (the runner calls it): puts back the standard hook. Whether a stale one was found."""
    import warnings

    if "WorkerBase.run" in getattr(warnings.showwarning, "__qualname__", ""):
        warnings.showwarning = warnings._showwarning_orig
        return True
    return False
