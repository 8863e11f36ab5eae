"""Hostile files, one builder per class of attack, and the command lines that must survive them.

    cases = hostile_cases(Path(folder))   # writes the files into folder, returns the cases

Each :class:`Case` is a command line of ``attention-explorer`` run against files a stranger could
send, with what must happen: ``refused`` (exit status 2 and one ``error:`` line naming ``names``)
or ``accepted`` (exit status 0, and ``check`` of standard output passes). Paths in ``argv`` are
relative to the folder; the command may write only ``out`` (and the temporary folder).

Classes, after issue 15: ``paths`` (a checkpoint choosing files, sizes or threads), ``memory``
(bombs), ``tracebacks`` (malformed fields), ``output`` (text that would forge lines or drive the
terminal) and ``loss`` (input that silently lost data or produced garbage).
"""

from __future__ import annotations

import gzip
import json
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from explorer.seq2seq.checkpoint import save_checkpoint
from explorer.seq2seq.checkpoint_checks import ShapesOnly
from explorer.seq2seq.data.tokenizer import train_tokenizer
from explorer.seq2seq.models.families import build_model
from explorer.seq2seq.training.options import TrainOptions

CLASSES = ("paths", "memory", "tracebacks", "output", "loss")
EN = ["the cat sleeps", "the dog eats", "a cat eats", "a dog sleeps"] * 3
FR = ["le chat dort", "le chien mange", "un chat mange", "un chien dort"] * 3
MODEL = dict(d_model=8, heads=2, enc_layers=1, dec_layers=1, d_ff=16, max_len=32, dropout=0.0)


@dataclass
class Case:
    cls: str
    name: str
    argv: list[str]
    expect: str  # "refused" | "accepted"
    names: str = ""  # the file a refusal must name
    out: str | None = None  # the one path the command may write
    stdin: str | None = None  # a file whose bytes are standard input (streamed)
    check: str = ""  # accepted: a named check of standard output (see CHECKS)
    extra: dict = field(default_factory=dict)


def _no_escape_sequences(stdout: str) -> bool:
    return "\x1b" not in stdout and "\x07" not in stdout


def _three_sentences(stdout: str) -> bool:
    return json.loads(stdout)["sentences"] == 3


def _valid_json(stdout: str) -> bool:
    def refuse(word: str):
        raise ValueError(f"{word} is not JSON")

    json.loads(stdout, parse_constant=refuse)  # json.loads itself accepts NaN and Infinity
    return True


CHECKS: dict[str, Callable[[str], bool]] = {
    "": lambda stdout: True,
    "no_escapes": _no_escape_sequences,
    "three_sentences": _three_sentences,
    "json": _valid_json,
}


# building blocks ------------------------------------------------------------------------------


def _options(**changes) -> dict:
    o = TrainOptions(
        corpus="copy", corpus_size=60, arch="transformer", model=dict(MODEL), vocab_size=30,
        steps=3, eval_every=0, bleu_sentences=4, batch_size=8, optimizer_state=False, max_words=8,
    )  # fmt: skip
    return {**o.to_dict(), **changes}


def save_tiny(path: Path, *, vocab_extra: int = 0, **records) -> Path:
    """A valid tiny Transformer checkpoint (records replaced as given); ``vocab_extra`` more
    embedding rows than its tokenizer has pieces."""
    tok = train_tokenizer(EN, FR, vocab_size=30)
    config = dict(
        arch="transformer",
        src_vocab=tok.src_vocab_size + vocab_extra,
        tgt_vocab=tok.tgt_vocab_size + vocab_extra,
        **MODEL,
    )
    torch.manual_seed(0)
    records.setdefault("train_state", {"step": 1, "options": _options()})
    records.setdefault("history", [{"step": 1, "loss": 3.0}])
    return save_checkpoint(path, build_model(config), tok, **records)


def _rewrite(src: Path, dest: Path, *, tensors=None, meta=None) -> Path:
    """A copy of ``src`` with tensors replaced or added and metadata fields replaced (str)."""
    from safetensors import safe_open

    with safe_open(str(src), framework="pt") as f:
        metadata = dict(f.metadata())
    weights = load_file(str(src))
    weights.update(tensors or {})
    metadata.update(meta or {})
    save_file(weights, str(dest), metadata=metadata)
    return dest


def _edit_header(src: Path, dest: Path, edit: Callable[[dict], None]) -> Path:
    data = src.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    edit(header)
    raw = json.dumps(header).encode()
    dest.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])
    return dest


def _gzip_bomb(path: Path, unpacked: int) -> Path:
    """A valid multi-member gzip file that unpacks to ``unpacked`` bytes of "a\\tb" lines."""
    block = 16 * 2**20
    member = gzip.compress(b"a\tb\n" * (block // 4), compresslevel=9, mtime=0)
    path.write_bytes(member * max(1, unpacked // block))
    return path


def _repeat(path: Path, unit: bytes, size: int) -> None:
    """A file of about ``size`` bytes of ``unit`` repeated (no line end), written in blocks."""
    block = unit * (2**20 // len(unit))
    with open(path, "wb") as f:
        for _ in range(size // len(block)):
            f.write(block)


# the cases ------------------------------------------------------------------------------------


def _paths(d: Path, valid: Path) -> list[Case]:
    (d / "victim.txt").write_text("a file the checkpoint names as its output\n")
    os.mkfifo(d / "pipe.tsv")
    stolen = save_tiny(d / "names_victim.safetensors", train_state={
        "step": 1, "options": _options(out=str(d / "victim.txt"))})  # fmt: skip
    zero = save_tiny(d / "corpus_dev_zero.safetensors", train_state={
        "step": 1, "options": _options(corpus="/dev/zero")})  # fmt: skip
    fifo = save_tiny(d / "corpus_fifo.safetensors", train_state={
        "step": 1, "options": _options(corpus=str(d / "pipe.tsv"))})  # fmt: skip
    huge = save_tiny(d / "corpus_size_1e9.safetensors", train_state={
        "step": 1, "options": _options(corpus_size=10**9)})  # fmt: skip
    threads = save_tiny(d / "threads_100000.safetensors", train_state={
        "step": 1, "options": _options(threads=100_000)})  # fmt: skip
    resume = ["train", "--quiet", "--resume"]
    tiny = ["--arch", "transformer", "--d-model", "8", "--heads", "2", "--enc-layers", "1",
            "--dec-layers", "1", "--d-ff", "16", "--vocab-size", "30", "--steps", "2",
            "--eval-every", "0"]  # fmt: skip
    return [
        Case("paths", "resume without --out keeps to the resumed file", [*resume, stolen.name],
             "accepted", out=stolen.name),
        Case("paths", "evaluate: stored corpus /dev/zero", ["evaluate", "--checkpoint",
             zero.name], "refused", names=zero.name),
        Case("paths", "resume: stored corpus is a FIFO", [*resume, fifo.name, "--out", "o1"],
             "refused", names=fifo.name),
        Case("paths", "resume --corpus /dev/zero", [*resume, zero.name, "--corpus", "/dev/zero",
             "--out", "o2"], "refused", names="/dev/zero"),
        Case("paths", "train --corpus FIFO", ["train", "--corpus", "pipe.tsv", *tiny, "--out",
             "o3"], "refused", names="pipe.tsv"),
        Case("paths", "resume: stored corpus size 10^9", [*resume, huge.name, "--out", "o4"],
             "refused", names=huge.name),
        Case("paths", "resume: stored threads 100,000", [*resume, threads.name, "--out", "o5"],
             "accepted", out="o5"),
        Case("paths", "train --threads 3000", ["train", "--corpus", "copy", "--corpus-size", "60",
             *tiny, "--threads", "3000", "--out", "o6"], "accepted", out="o6"),
    ]  # fmt: skip


def _memory(d: Path, valid: Path) -> list[Case]:
    names = list(load_file(str(valid)))
    # 60+60 layers of width 1,024: 1.7 billion weights (6.7 GB), each an alias of one 4 MB tensor
    config = {"arch": "transformer", **MODEL, "src_vocab": 30, "tgt_vocab": 30, "d_model": 1024,
              "d_ff": 4096, "enc_layers": 60, "dec_layers": 60}  # fmt: skip
    with torch.device("meta"), ShapesOnly():  # the model's weight names, without storage
        model_names = list(build_model(config).state_dict())
    weights = {"model.big": torch.zeros(1024, 1024)}
    spm = {k: v for k, v in load_file(str(valid)).items() if k.startswith("spm.")}
    save_file({**weights, **spm}, str(d / "alias_bomb.safetensors"), metadata={
        "format": "attention-explorer-checkpoint", "format_version": "1",
        "config": json.dumps(config), "history": "[]", "corpus": "{}", "card": "{}",
        "train_state": "{}", "num_parameters": "-1",
        "aliases": json.dumps({n: "big" for n in model_names}),
    })  # fmt: skip

    def shape_bomb(header: dict) -> None:
        header[names[0]]["shape"] = [[0], 1_000_000_000]
        header["__metadata__"]["num_parameters"] = "-1"

    _edit_header(valid, d / "shape_bomb.safetensors", shape_bomb)
    _gzip_bomb(d / "bomb.tsv.gz", 2**30)
    _repeat(d / "long_line.txt", b"the cat ", 80 * 2**20)
    (d / "one_long_pair.tsv").write_text(("the cat " * 20_000) + "\tle chat\nthe dog\tle chien\n")
    return [
        Case("memory", "aliases of one tensor for a 6.7 GB model", ["translate", "--checkpoint",
             "alias_bomb.safetensors", "the cat"], "refused", names="alias_bomb.safetensors"),
        Case("memory", "shape [[0], 10^9] in info", ["info", "shape_bomb.safetensors"],
             "refused", names="shape_bomb.safetensors"),
        Case("memory", "gzip bomb (1 GiB unpacked)", ["evaluate", "--checkpoint", valid.name,
             "--corpus", "bomb.tsv.gz"], "refused", names="bomb.tsv.gz"),
        Case("memory", "80 MB sentence on stdin", ["translate", "--checkpoint", valid.name],
             "accepted", stdin="long_line.txt"),
        Case("memory", "20,000-word source in evaluate (max_len 32)", ["evaluate", "--checkpoint",
             valid.name, "--corpus", "one_long_pair.tsv", "--json"], "accepted", check="json"),
    ]  # fmt: skip


def _tracebacks(d: Path, valid: Path) -> list[Case]:
    save_tiny(d / "vocab_bigger.safetensors", vocab_extra=5)
    big_int = "1" + "0" * 5000
    _rewrite(
        valid,
        d / "int_5000_digits.safetensors",
        meta={
            "config": json.dumps({"arch": "transformer", **MODEL})[:-1] + f', "d_ff": {big_int}}}'
        },
    )
    _rewrite(
        valid,
        d / "optimizer_index.safetensors",
        meta={"optimizer": json.dumps({"param_groups": [], "state": {"\u00b2": {}}})},
    )
    save_tiny(d / "history_bad.safetensors", history=[{"step": "x", "val_bleu": "high"}])
    save_tiny(
        d / "batch_size_0.safetensors", train_state={"step": 1, "options": _options(batch_size=0)}
    )
    save_tiny(
        d / "threads_text.safetensors", train_state={"step": 1, "options": _options(threads="many")}
    )
    (d / "all_long.tsv").write_text("".join(f"{'w ' * 100}{i}\tm {i}\n" for i in range(20)))
    (d / "align.tsv").write_text("the cat\tle chat\n")
    (d / "align.tsv.align").write_text("0-0 \u00b2-0\n")
    tr = ["translate", "--checkpoint", valid.name]
    return [
        Case("tracebacks", "tokenizer smaller than the embeddings", ["translate",
             "--checkpoint", "vocab_bigger.safetensors", "the cat"], "refused",
             names="vocab_bigger.safetensors"),
        Case("tracebacks", "--temperature 1e-300", [*tr, "--temperature", "1e-300", "the cat"],
             "refused"),
        Case("tracebacks", "--top-p 1e-300", [*tr, "--temperature", "1", "--top-p", "1e-300",
             "the cat"], "accepted"),
        Case("tracebacks", "integer of 5,000 digits in the config", [*tr[:2],
             "int_5000_digits.safetensors", "x"], "refused",
             names="int_5000_digits.safetensors"),
        Case("tracebacks", "optimizer state index '²'", [*tr[:2],
             "optimizer_index.safetensors", "x"], "refused", names="optimizer_index.safetensors"),
        Case("tracebacks", "malformed history in info", ["info", "history_bad.safetensors"],
             "refused", names="history_bad.safetensors"),
        Case("tracebacks", "stored batch size 0", ["train", "--resume",
             "batch_size_0.safetensors", "--out", "o7"], "refused",
             names="batch_size_0.safetensors"),
        Case("tracebacks", "stored thread count is text", ["train", "--resume",
             "threads_text.safetensors", "--out", "o8"], "refused",
             names="threads_text.safetensors"),
        Case("tracebacks", "no training pairs after filtering", ["train", "--corpus",
             "all_long.tsv", "--arch", "transformer", "--steps", "1", "--out", "o9"], "refused",
             names="all_long.tsv"),
        Case("tracebacks", "alignment link '²-0'", ["evaluate", "--checkpoint", valid.name,
             "--corpus", "align.tsv"], "refused", names="align.tsv.align"),
    ]  # fmt: skip


def _output(d: Path, valid: Path) -> list[Case]:
    _rewrite(valid, d / "newline_name.safetensors",
             tensors={"model.x\nerror: looks fine": torch.zeros(1)})  # fmt: skip
    save_tiny(d / "ansi_card.safetensors", card={"command": "\x1b[2J\x1b]0;pwned\x07",
          "device": "cpu\r\nforged line"}, corpus={"name": "\x1b[31mred"})  # fmt: skip
    return [
        Case("output", "tensor name with a newline", ["translate", "--checkpoint",
             "newline_name.safetensors", "x"], "refused", names="newline_name.safetensors"),
        Case("output", "ANSI escapes in card and corpus", ["info", "ansi_card.safetensors"],
             "accepted", check="no_escapes"),
    ]  # fmt: skip


def _loss(d: Path, valid: Path) -> list[Case]:
    (d / "mac.tsv").write_bytes(b"the cat\tle chat\rthe dog\tle chien\ra cat\tun chat\r")
    big = {k: torch.full_like(v, 3e38) for k, v in load_file(str(valid)).items()
           if k.startswith("model.") and v.is_floating_point()}  # fmt: skip
    _rewrite(valid, d / "weights_3e38.safetensors", tensors=big)
    return [
        Case("loss", "CR-only line ends", ["evaluate", "--checkpoint", valid.name, "--corpus",
             "mac.tsv", "--json"], "accepted", check="three_sentences"),
        Case("loss", "weights of 3e38", ["translate", "--checkpoint", "weights_3e38.safetensors",
             "--json", "the cat"], "refused", names="weights_3e38.safetensors"),
        Case("loss", "punctuation-only sentence", ["translate", "--checkpoint", valid.name,
             "?!"], "refused"),
        Case("loss", "output folder missing", ["train", "--corpus", "copy", "--out",
             "missing/m.safetensors"], "refused", names="missing/m.safetensors"),
    ]  # fmt: skip


BUILDERS = {"paths": _paths, "memory": _memory, "tracebacks": _tracebacks,
            "output": _output, "loss": _loss}  # fmt: skip


def hostile_cases(folder: Path, classes: tuple[str, ...] = CLASSES) -> list[Case]:
    """Write the hostile files of ``classes`` into ``folder``; the cases that use them."""
    valid = save_tiny(folder / "valid.safetensors")
    return [case for cls in classes for case in BUILDERS[cls](folder, valid)]
