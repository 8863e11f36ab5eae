"""What a finished worker leaves behind, and how the runner clears it.

Training, loading and searching run in worker threads, and glibc's allocator gives threads their
own arenas. What a finished worker freed there (a training run's corpus, batches, optimiser
state) stays mapped to the process, so over a long session the resident size only grows: in the
1,000-action test, tens of MB that ``explorer.seq2seq.heap.release_free_memory``
(``malloc_trim``) hands back at once; the runner calls it when a worker ends.
"""

from __future__ import annotations


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
