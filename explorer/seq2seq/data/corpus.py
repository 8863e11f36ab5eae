"""Read parallel corpora and cut them into splits and length-sorted batches.

A corpus is named by a spec string:

- ``classroom``: the built-in English→French corpus, with gold word alignments;
- ``reverse`` / ``copy``: the toy symbol tasks;
- ``PATH``: a tab-separated file (source, target; further columns are ignored), with gold
  alignments read from ``PATH.align`` or, failing that, PATH with its suffix replaced by
  ``.align`` (``classroom.tsv`` → ``classroom.align``) when such a file exists (one Pharaoh line
  per TSV line);
- ``SRC_PATH,TGT_PATH``: two line-aligned files;
- ``PREFIX`` with ``src_lang`` and ``tgt_lang``: the files ``PREFIX.LANG`` or ``PREFIX.LANG.gz``.

Any file may be gzipped (recognised by its magic bytes). A UTF-8 byte order mark and CRLF line
ends are accepted. Problems are reported as ``CorpusError("FILE:LINE: problem")``.
"""

from __future__ import annotations

import gzip
import hashlib
import random
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from itertools import zip_longest
from pathlib import Path
from typing import BinaryIO, Literal

from explorer.seq2seq.untrusted import NotRegularFileError, open_regular, printable

Pair = tuple[str, str]
Alignment = list[tuple[int, int]]
Errors = Literal["raise", "skip"]

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = "\ufeff"
# Bounds on what a file may make us hold: a corpus is read as a stream and refused past them.
MAX_CORPUS_BYTES = 256 * 2**20  # text of one file (after gunzip)
MAX_LINE_BYTES = 2**20
MAX_PAIRS = 1_000_000
_BLOCK_BYTES = 2**20


class CorpusError(ValueError):
    """A corpus file that cannot be read; the message names the file (and line)."""

    def __init__(self, message: str):
        # Names, paths and text in the message come from the file: escaped, it stays one line.
        super().__init__(printable(message, limit=2000))


@dataclass
class Corpus:
    pairs: list[Pair]
    alignments: list[Alignment] | None = None
    name: str = ""
    description: dict = field(default_factory=dict)
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.pairs)


# ----------------------------------------------------------------------------- reading files


def _open_regular(path: Path) -> BinaryIO:
    try:
        return open_regular(path)
    except FileNotFoundError:
        raise CorpusError(f"{path}: no such file") from None
    except NotRegularFileError as e:
        raise CorpusError(f"{path}: {e.kind}, not a corpus file") from None
    except OSError as e:
        raise CorpusError(f"{path}: cannot read ({e.strerror or e})") from None


def _blocks(path: Path) -> Iterator[bytes]:
    """The text of a (possibly gzipped) file in blocks, at most MAX_CORPUS_BYTES of it."""
    with _open_regular(path) as raw:
        packed = raw.peek(2)[:2] == GZIP_MAGIC
        stream = gzip.GzipFile(fileobj=raw) if packed else raw
        total = 0
        while True:
            try:
                block = stream.read(_BLOCK_BYTES)
            except (OSError, EOFError, zlib.error) as e:
                raise CorpusError(f"{path}: broken gzip data ({e})") from None
            if not block:
                return
            total += len(block)
            if total > MAX_CORPUS_BYTES:
                unpacked = " once unpacked" if packed else ""
                raise CorpusError(
                    f"{path}: more than {MAX_CORPUS_BYTES:,} bytes of text{unpacked} "
                    "(the most a corpus may hold)"
                )
            if b"\x00" in block:
                raise CorpusError(f"{path}: binary data (NUL bytes), not a text file")
            yield block


def _read_lines(path: Path) -> Iterator[tuple[int, bytes | None]]:
    """(line number, raw line without its end) for each line of a (possibly gzipped) file, read
    as a stream. A line ends at LF, CRLF or a lone CR (old Mac files). A line longer than
    MAX_LINE_BYTES comes as None: its bytes are never held."""
    pending, too_long, lineno, seen_text = b"", False, 0, False
    for block in _blocks(path):
        lines = (pending + block).splitlines(keepends=True)
        pending = lines.pop() if lines and not lines[-1].endswith((b"\n", b"\r")) else b""
        if lines and lines[-1].endswith(b"\r") and not pending:
            pending = lines.pop()  # may be the first half of a CRLF cut by the block boundary
        for line in lines:
            lineno += 1
            line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
            seen_text = seen_text or bool(line.strip())
            yield lineno, None if too_long or len(line) > MAX_LINE_BYTES else line
            too_long = False
        if len(pending) > MAX_LINE_BYTES + 1:
            pending, too_long = b"", True
    if pending or too_long:
        line = pending.removesuffix(b"\r")
        seen_text = seen_text or bool(line.strip()) or too_long
        yield lineno + 1, None if too_long or len(line) > MAX_LINE_BYTES else line
    if not seen_text:
        raise CorpusError(f"{path}: empty file")


def _too_long(path: Path, lineno: int) -> CorpusError:
    return CorpusError(f"{path}:{lineno}: line longer than {MAX_LINE_BYTES:,} bytes")


def _decode(raw: bytes, path: Path, lineno: int) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(
            f"{path}:{lineno}: invalid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})"
        ) from None
    if lineno == 1 and text.startswith(UTF8_BOM):
        text = text[1:]
    return text


class _Problems:
    """Per-line problems: raised at once, or collected as (line, reason) under errors='skip'."""

    def __init__(self, errors: Errors):
        if errors not in ("raise", "skip"):
            raise ValueError(f"errors must be 'raise' or 'skip', not {errors!r}")
        self.errors = errors
        self.skipped: list[tuple[int, str]] = []

    def report(self, err: CorpusError, lineno: int) -> None:
        if self.errors == "raise":
            raise err
        self.skipped.append((lineno, str(err)))


def _pair_limit(limit: int | None) -> int:
    return MAX_PAIRS if limit is None else min(limit, MAX_PAIRS)


def _too_many(where: str) -> CorpusError:
    return CorpusError(
        f"{where}: more than {MAX_PAIRS:,} sentence pairs (the most a corpus may hold); keep "
        "the first N with a corpus size"
    )


def read_tsv(
    path: str | Path, errors: Errors = "raise", limit: int | None = None
) -> tuple[list[Pair], list[int], list]:
    """(pairs, their 1-based line numbers, skipped) from a tab-separated file; with ``limit``,
    reading stops after that many pairs."""
    path = Path(path)
    problems = _Problems(errors)
    pairs, linenos = [], []
    for lineno, raw in _read_lines(path):
        if len(pairs) == _pair_limit(limit):
            if limit is None or limit > MAX_PAIRS:
                raise _too_many(str(path))
            break
        try:
            if raw is None:
                raise _too_long(path, lineno)
            text = _decode(raw, path, lineno)
            if not text.strip():
                continue
            cols = text.split("\t")
            if len(cols) < 2:
                raise CorpusError(
                    f"{path}:{lineno}: expected 2 tab-separated columns (source, target), found 1"
                )
            src, tgt = cols[0].strip(), cols[1].strip()
            if not src or not tgt:
                raise CorpusError(f"{path}:{lineno}: empty {'source' if not src else 'target'}")
        except CorpusError as err:
            problems.report(err, lineno)
            continue
        pairs.append((src, tgt))
        linenos.append(lineno)
    if not pairs:
        raise CorpusError(f"{path}: no sentence pairs")
    return pairs, linenos, problems.skipped


def read_parallel(
    src_path: str | Path, tgt_path: str | Path, errors: Errors = "raise", limit: int | None = None
) -> tuple[list[Pair], list]:
    """(pairs, skipped) from two line-aligned files; a pair with a blank side is left out. With
    ``limit``, reading stops after that many pairs."""
    src_path, tgt_path = Path(src_path), Path(tgt_path)
    where = f"{src_path}, {tgt_path}"
    problems = _Problems(errors)
    pairs: list[Pair] = []
    src_lines, tgt_lines = _read_lines(src_path), _read_lines(tgt_path)
    for line_s, line_t in zip_longest(src_lines, tgt_lines):
        if line_s is None or line_t is None:  # one file ended first: count both to the end
            n_src = (line_t[0] - 1 if line_s is None else line_s[0]) + sum(1 for _ in src_lines)
            n_tgt = (line_s[0] - 1 if line_t is None else line_t[0]) + sum(1 for _ in tgt_lines)
            raise CorpusError(f"{where}: line counts differ ({n_src} vs {n_tgt})")
        (lineno, raw_s), (_, raw_t) = line_s, line_t
        if len(pairs) == _pair_limit(limit):
            if limit is None or limit > MAX_PAIRS:
                raise _too_many(where)
            break
        try:
            if raw_s is None or raw_t is None:
                raise _too_long(src_path if raw_s is None else tgt_path, lineno)
            src = _decode(raw_s, src_path, lineno).strip()
            tgt = _decode(raw_t, tgt_path, lineno).strip()
        except CorpusError as err:
            problems.report(err, lineno)
            continue
        if src and tgt:
            pairs.append((src, tgt))
    if not pairs:
        raise CorpusError(f"{where}: no sentence pairs")
    return pairs, problems.skipped


_LINK = re.compile(r"([0-9]{1,6})-([0-9]{1,6})")


def parse_pharaoh(line: str, where: str = "alignment") -> Alignment:
    """'0-0 1-2 2-1' -> [(0, 0), (1, 2), (2, 1)]."""
    links = []
    for item in line.split():
        match = _LINK.fullmatch(item)
        if match is None:
            prefix = f"{where}: " if where else ""
            raise CorpusError(
                f"{prefix}bad alignment link '{printable(item, 40)}' (expected I-J, word "
                "positions of at most 6 digits)"
            )
        links.append((int(match[1]), int(match[2])))
    return links


def format_pharaoh(alignment: Alignment) -> str:
    return " ".join(f"{i}-{j}" for i, j in alignment)


def read_alignments(path: Path, pairs: list[Pair], linenos: list[int]) -> list[Alignment]:
    """Gold alignments from a sidecar file that is line-aligned with the TSV file."""
    wanted = dict(zip(linenos, pairs, strict=True))
    found: dict[int, Alignment] = {}
    last = 0
    for last, raw in _read_lines(path):
        lineno = last
        if lineno > linenos[-1]:
            break
        if lineno not in wanted:
            continue
        where = f"{path}:{lineno}"
        if raw is None:
            raise _too_long(path, lineno)
        links = parse_pharaoh(_decode(raw, path, lineno), where)
        src, tgt = wanted[lineno]
        n_src, n_tgt = len(src.split()), len(tgt.split())
        for i, j in links:
            if i >= n_src or j >= n_tgt:
                raise CorpusError(
                    f"{where}: link {i}-{j} outside a pair of {n_src} x {n_tgt} words"
                )
        found[lineno] = links
    if len(found) < len(linenos):
        raise CorpusError(f"{path}: {last} lines, but the corpus has a pair on line {linenos[-1]}")
    return [found[n] for n in linenos]


# ----------------------------------------------------------------------------- load_corpus


def _lang_file(prefix: str, lang: str) -> Path:
    for candidate in (Path(f"{prefix}.{lang}"), Path(f"{prefix}.{lang}.gz")):
        if candidate.is_file():
            return candidate
    name = f"{prefix}.{lang}"
    raise CorpusError(f"{name}: no such file (nor {name}.gz)")


def load_corpus(
    spec: str,
    *,
    src_lang: str | None = None,
    tgt_lang: str | None = None,
    size: int | None = None,
    seed: int = 0,
    errors: Errors = "raise",
) -> Corpus:
    """Load a corpus named by ``spec`` (see the module docstring).

    ``size`` is the number of pairs generated for a built-in corpus, and the number of leading
    pairs kept for a file corpus. ``seed`` only affects the built-in corpora.
    """
    if size is not None and (
        not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_PAIRS
    ):
        raise CorpusError(
            f"corpus size must be a whole number from 1 to {MAX_PAIRS:,}, not {size!r}"
        )
    langs = {"src_lang": src_lang, "tgt_lang": tgt_lang}
    if spec in ("classroom", "reverse", "copy"):
        from explorer.seq2seq.data import classroom
    if spec == "classroom":
        n = size or classroom.DEFAULT_SIZE
        pairs, alignments = classroom.generate(size=n, seed=seed)
        desc = {"name": spec, "generator": "explorer.seq2seq.data.classroom", "seed": seed}
        langs = {"src_lang": "en", "tgt_lang": "fr"}
        return _finish(spec, pairs, alignments, desc | langs, [])
    if spec in ("reverse", "copy"):
        pairs, alignments = classroom.toy_pairs(spec, size or classroom.DEFAULT_TOY_SIZE, seed)
        desc = {
            "name": spec,
            "generator": "explorer.seq2seq.data.classroom.toy_pairs",
            "seed": seed,
        }
        return _finish(spec, pairs, alignments, desc, [])

    alignments = None
    if src_lang and tgt_lang and not Path(spec).is_file():
        files = [_lang_file(spec, src_lang), _lang_file(spec, tgt_lang)]
        pairs, skipped = read_parallel(*files, errors=errors, limit=size)
    elif "," in spec and not Path(spec).exists():
        files = [Path(p.strip()) for p in spec.split(",")]
        if len(files) != 2:
            raise CorpusError(f"{spec}: expected SRC_PATH,TGT_PATH (two files)")
        pairs, skipped = read_parallel(*files, errors=errors, limit=size)
    else:
        files = [Path(spec)]
        pairs, linenos, skipped = read_tsv(files[0], errors=errors, limit=size)
        for align_path in (Path(f"{spec}.align"), files[0].with_suffix(".align")):
            if align_path.is_file() and align_path != files[0]:
                alignments = read_alignments(align_path, pairs, linenos)
                files.append(align_path)
                break
    name = Path(spec.split(",")[0]).name
    desc = {"name": name, "files": [str(f) for f in files]}
    desc |= {k: v for k, v in langs.items() if v}
    return _finish(name, pairs, alignments, desc, skipped)


def _finish(name, pairs, alignments, desc, skipped) -> Corpus:
    desc = dict(desc, pairs=len(pairs), skipped=len(skipped))
    return Corpus(pairs, alignments, name, desc, skipped)


# ----------------------------------------------------------------------------- filtering, splits


def _select(corpus: Corpus | list[Pair], keep: list[int]):
    if isinstance(corpus, Corpus):
        aligns = corpus.alignments
        return replace(
            corpus,
            pairs=[corpus.pairs[i] for i in keep],
            alignments=None if aligns is None else [aligns[i] for i in keep],
            description=dict(corpus.description, pairs=len(keep)),
        )
    return [corpus[i] for i in keep]


def filter_length(corpus: Corpus | list[Pair], min_len: int = 1, max_len: int = 100):
    """Keep pairs whose source and target both have min_len..max_len words (a Corpus keeps its
    alignments in step)."""
    pairs = corpus.pairs if isinstance(corpus, Corpus) else corpus
    keep = [
        i
        for i, (s, t) in enumerate(pairs)
        if min_len <= len(s.split()) <= max_len and min_len <= len(t.split()) <= max_len
    ]
    return _select(corpus, keep)


def dedupe(corpus: Corpus | list[Pair]):
    """Drop repeated (source, target) pairs, keeping the first of each."""
    pairs = corpus.pairs if isinstance(corpus, Corpus) else corpus
    seen: set[Pair] = set()
    keep = []
    for i, pair in enumerate(pairs):
        if pair not in seen:
            seen.add(pair)
            keep.append(i)
    return _select(corpus, keep)


def split_fraction(source: str, seed: int = 0) -> float:
    """A number in [0, 1) fixed by the source sentence and the seed (a keyed BLAKE2b hash)."""
    key = seed.to_bytes(8, "little", signed=True)
    digest = hashlib.blake2b(source.encode("utf-8"), digest_size=8, key=key).digest()
    return int.from_bytes(digest, "little") / 2**64


def split(
    corpus: Corpus, valid: float = 0.05, test: float = 0.05, seed: int = 0
) -> tuple[Corpus, Corpus, Corpus]:
    """(train, valid, test). Each pair's split depends only on its source sentence and the seed,
    so a sentence stays in the same split when the corpus grows or shrinks, and repeated
    sources never straddle two splits."""
    if not (0 <= valid < 1 and 0 <= test < 1 and valid + test < 1):
        raise ValueError(f"valid={valid} and test={test} must be fractions summing below 1")
    parts: dict[str, list[int]] = {"train": [], "valid": [], "test": []}
    for i, (src, _) in enumerate(corpus.pairs):
        u = split_fraction(src, seed)
        parts["test" if u < test else "valid" if u < test + valid else "train"].append(i)
    out = []
    for part, keep in parts.items():
        sub = _select(corpus, keep)
        sub.name = f"{corpus.name}:{part}"
        sub.description = dict(sub.description, split=part, split_seed=seed)
        out.append(sub)
    return out[0], out[1], out[2]


# ----------------------------------------------------------------------------- batches


def length_batches(
    lengths: list[int],
    batch_tokens: int | None = None,
    batch_size: int | None = None,
    shuffle: bool = True,
    seed: int = 0,
    chunk: int = 100,
) -> list[list[int]]:
    """Batches of indices into ``lengths``, grouped by length so that little padding is needed.

    Every index appears in exactly one batch. A batch holds at most ``batch_size`` items and its
    padded size (items x longest length) is at most ``batch_tokens``, except that an item longer
    than ``batch_tokens`` gets a batch of its own. With ``shuffle`` the indices are shuffled,
    sorted by length within chunks of ``chunk`` batches' worth, cut, and the batches shuffled;
    without it the indices are sorted by length once.
    """
    if batch_tokens is None and batch_size is None:
        raise ValueError("give batch_tokens, batch_size or both")
    if any(b is not None and b < 1 for b in (batch_tokens, batch_size)):
        raise ValueError("batch_tokens and batch_size must be positive")
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    if shuffle:
        rng.shuffle(order)
        mean_len = max(1.0, sum(lengths) / max(1, len(lengths)))
        per_batch = batch_size or max(1, int(batch_tokens / mean_len))
        if batch_tokens is not None:
            per_batch = min(per_batch, max(1, int(batch_tokens / mean_len)))
        step = max(1, per_batch * chunk)
        chunks = [order[i : i + step] for i in range(0, len(order), step)]
    else:
        chunks = [order]
    batches: list[list[int]] = []
    for part in chunks:
        part.sort(key=lambda i: lengths[i])
        batch: list[int] = []
        longest = 0
        for i in part:
            grown = max(longest, lengths[i])
            too_many = batch_size is not None and len(batch) + 1 > batch_size
            too_big = batch_tokens is not None and grown * (len(batch) + 1) > batch_tokens
            if batch and (too_many or too_big):
                batches.append(batch)
                batch, grown = [], lengths[i]
            batch.append(i)
            longest = grown
        if batch:
            batches.append(batch)
    if shuffle:
        rng.shuffle(batches)
    return batches
