"""Pieces shared by the command line's modules."""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from explorer.seq2seq.untrusted import printable


class CliError(Exception):
    """A problem with the command line's input; printed as one line, exit status 2."""


MODEL_FIELDS = {
    "rnn": (
        "emb_dim",
        "hidden_dim",
        "layers",
        "cell",
        "bidirectional",
        "tie_embeddings",
        "dropout",
    ),
    "transformer": (
        "d_model",
        "heads",
        "enc_layers",
        "dec_layers",
        "d_ff",
        "positions",
        "norm",
        "tie_embeddings",
        "dropout",
    ),
}

BUILTIN_CORPORA = ("classroom", "reverse", "copy")
MAX_SENTENCE_BYTES = 16 * 1024  # of one line on standard input: far more than a model takes


def stored_options(checkpoint: str, stored: object):
    """A checkpoint's stored training options, checked field by field; the refusal names the
    file. They are data: paths and thread counts in them decide nothing (see ``stored_corpus``)."""
    from explorer.seq2seq.training.options import TrainOptionError, TrainOptions

    try:
        return TrainOptions.from_dict(stored)
    except TrainOptionError as e:
        raise CliError(f"{printable(checkpoint)}: stored training state: {e}") from None


def stored_corpus(checkpoint: str, trained_on: str, given: str | None) -> str:
    """The corpus to read: the command line's, else the checkpoint's if it is a built-in one.
    A corpus file named by a checkpoint is never opened: a stranger's file could name
    ``/dev/zero``, a FIFO or someone's private file."""
    if given:
        return given
    if trained_on in BUILTIN_CORPORA:
        return trained_on
    raise CliError(
        f"{printable(checkpoint)} was trained on the corpus file '{printable(trained_on, 200)}': "
        "give --corpus to say which file to read (a checkpoint never chooses the files read)"
    )


def check_output_path(out: str) -> None:
    """Refuse, before any training, a checkpoint path that cannot be written: a missing or
    read-only folder, or something other than a regular file in the way."""
    path = Path(out)
    folder = path.parent
    if not folder.is_dir():
        raise CliError(f"--out {printable(out)}: the folder {printable(folder)} does not exist")
    if path.exists() and not path.is_file():
        raise CliError(f"--out {printable(out)}: exists and is not a regular file")
    try:  # access() says yes to root on a read-only mount: try it
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.probe.", dir=folder)
    except OSError as e:
        raise CliError(f"--out {printable(out)}: cannot write there ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(probe)


def rescue_path(out: str | None) -> Path:
    """A new file in the temporary folder for a model whose own path could not be written."""
    stem = Path(out).stem if out else "model"
    fd, name = tempfile.mkstemp(prefix=f"{stem}-unsaved-", suffix=".safetensors")
    os.close(fd)
    return Path(name)


def read_sentences(stream: BinaryIO) -> list[str]:
    """Non-blank lines of a byte stream as sentences. A line longer than MAX_SENTENCE_BYTES is
    cut there, with a notice on standard error, and the rest of it is read and dropped a block
    at a time: no line is ever held whole."""
    sentences = []
    lineno = 0
    while line := stream.readline(MAX_SENTENCE_BYTES + 1):
        lineno += 1
        if len(line) > MAX_SENTENCE_BYTES and not line.endswith(b"\n"):
            line = line[:MAX_SENTENCE_BYTES]
            while (rest := stream.readline(MAX_SENTENCE_BYTES)) and not rest.endswith(b"\n"):
                pass
            print(
                f"notice: line {lineno} of standard input cut to its first "
                f"{MAX_SENTENCE_BYTES:,} bytes",
                file=sys.stderr,
            )
        text = line.decode("utf-8", errors="replace").rstrip("\r\n")
        if text.strip():
            sentences.append(text)
    return sentences


def finite_json(value: Any) -> str:
    """JSON text of ``value`` with NaN and infinities written as null (bare NaN is not JSON),
    saying so on standard error."""
    replaced = 0

    def clean(x: Any) -> Any:
        nonlocal replaced
        if isinstance(x, float) and not math.isfinite(x):
            replaced += 1
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    text = json.dumps(clean(value), ensure_ascii=False, allow_nan=False, default=str)
    if replaced:
        print(
            f"warning: {replaced} number(s) were NaN or infinite and are written as null "
            "(JSON has no NaN)",
            file=sys.stderr,
        )
    return text


def escaped(value: Any) -> Any:
    """``value`` with every string in it (keys too) passed through ``printable``: a card or corpus
    description from a file cannot move the cursor, clear the screen or forge a line."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {escaped(k): escaped(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [escaped(v) for v in value]
    return value
