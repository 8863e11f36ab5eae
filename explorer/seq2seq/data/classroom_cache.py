"""Generated classroom corpora kept on disk, so a corpus is generated once per machine.

Generating the 30,000-pair classroom corpus is seconds of Python (the grammar samples and
realises every sentence); reading it back from here takes about a tenth of that (2.3 MB
compressed). A file is named by the corpus size, the seed and a fingerprint of everything the
generator's output depends on (the lexicon, the grammar and the generator's source), so an edited
grammar or a new release never reads an old corpus. Files hold arrays only (``numpy.load``
without pickle); one that cannot be read is generated anew and replaced.

The folder is ``$ATTENTION_EXPLORER_CACHE`` (``off`` or empty: no cache), else
``$XDG_CACHE_HOME/attention-explorer``, else ``~/.cache/attention-explorer``. Corpora of more than
``MAX_PAIRS`` pairs are not kept, and only the ``KEEP`` files used last stay.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

CACHE_ENV = "ATTENTION_EXPLORER_CACHE"
MAX_PAIRS = 200_000
KEEP = 8
FORMAT = 1

log = logging.getLogger(__name__)

Pairs = tuple[tuple[str, str], ...]
Alignments = tuple[tuple[tuple[int, int], ...], ...]


def cache_dir() -> Path | None:
    """Where corpora are kept; None when caching is off."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        value = value.strip()
        return None if value in ("", "off") else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "attention-explorer"


def fingerprint(sources: Iterable[Path]) -> str:
    """A digest of the files the generator's output depends on, and of this file format."""
    h = hashlib.sha256(f"classroom corpus format {FORMAT}\n".encode())
    for path in sources:
        h.update(path.name.encode() + b"\0" + Path(path).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def path_for(size: int, seed: int, sources: Iterable[Path]) -> Path | None:
    folder = cache_dir()
    if folder is None or size > MAX_PAIRS:
        return None
    return folder / f"classroom-{size}-{seed}-{fingerprint(sources)}.npz"


def read(size: int, seed: int, sources: list[Path]) -> tuple[Pairs, Alignments] | None:
    """The corpus kept for (size, seed), or None (not kept, caching off, or unreadable)."""
    path = path_for(size, seed, sources)
    if path is None or not path.is_file():
        return None
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as f:
            meta = f["meta"].tolist()
            text = f["text"].tobytes().decode("utf-8")
            links = f["links"].tolist()
            counts = f["counts"].tolist()
        if meta != [FORMAT, size, seed] or len(counts) != size or 2 * sum(counts) != len(links):
            raise ValueError("its header does not match its name")
        pairs = tuple(tuple(line.split("\t")) for line in text.split("\n"))
        if len(pairs) != size or any(len(p) != 2 for p in pairs):
            raise ValueError("its sentence pairs are damaged")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:  # damaged
        log.warning("%s: cannot read the kept classroom corpus (%s); generating it anew", path, e)
        return None
    alignments, start = [], 0
    for n in counts:
        seg = links[start : start + 2 * n]
        alignments.append(tuple(zip(seg[0::2], seg[1::2])))
        start += 2 * n
    os.utime(path)  # used now: the last to be pruned
    return pairs, tuple(alignments)


def write(size: int, seed: int, pairs: Pairs, alignments: Alignments, sources: list[Path]) -> bool:
    """Keep the corpus for next time (atomically); whether it was written."""
    path = path_for(size, seed, sources)
    if path is None:
        return False
    import numpy as np

    links = np.fromiter((i for a in alignments for link in a for i in link), dtype=np.int32)
    small = links.size == 0 or int(links.max()) < 2**15
    arrays = {
        "meta": np.array([FORMAT, size, seed], dtype=np.int64),
        "text": np.frombuffer("\n".join(f"{s}\t{t}" for s, t in pairs).encode(), dtype=np.uint8),
        "links": links.astype(np.int16) if small else links,
        "counts": np.array([len(a) for a in alignments], dtype=np.int32),
    }
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
            tmp = Path(f.name)
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    except OSError as e:  # a read-only or full disk: the corpus is simply generated next time
        log.warning("cannot keep the classroom corpus in %s (%s)", path.parent, e)
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        return False
    _prune(path.parent)
    return True


def _prune(folder: Path) -> None:
    """Remove all but the KEEP corpora used last (another process may be pruning too)."""
    dated = []
    for p in folder.glob("classroom-*.npz"):
        try:
            dated.append((p.stat().st_mtime, p))
        except FileNotFoundError:
            continue
    for _, old in sorted(dated, reverse=True)[KEEP:]:
        old.unlink(missing_ok=True)
