"""Feed the loaders bad input on purpose and count what happens, for the benchmark's table.

    counts = run_reliability(report=True)
    counts["checkpoints"]  # {"tried": 160, "refused": 120, "accepted": 40, "crashes": 0, "lost": 0}

Categories: ``checkpoints`` (cuts, flipped bytes, random bytes, payload pickles of a valid tiny
checkpoint), ``corpora`` (random line soups under errors="skip") and ``sentences`` (hostile text
through prepare_source and greedy). ``refused`` is a clean one-line ValueError naming the input;
``crashes`` is any other exception, or a refusal spanning several lines; ``lost`` counts accepted
inputs that lost data: non-finite weights after loading a checkpoint, non-blank corpus lines that
became neither a pair nor a skipped entry, a payload that ran.
"""

from __future__ import annotations

import pathlib
import pickle
import random
import tempfile
from pathlib import Path

import torch

from explorer.seq2seq.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from explorer.seq2seq.data.corpus import CorpusError, load_corpus
from explorer.seq2seq.data.inputs import prepare_source, source_limit
from explorer.seq2seq.data.tokenizer import train_tokenizer
from explorer.seq2seq.decoding.decode import greedy
from explorer.seq2seq.models.base import EOS
from explorer.seq2seq.models.families import build_model

MARKER = "RELIABILITY_PAYLOAD_RAN"
FIELDS = ("tried", "refused", "accepted", "crashes", "lost")


class _Payload:
    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(MARKER),)


def _counts() -> dict[str, int]:
    return dict.fromkeys(FIELDS, 0)


def _refused(counts: dict[str, int], e: Exception, name: str) -> None:
    clean = "\n" not in str(e) and name in str(e)
    counts["refused" if clean else "crashes"] += 1


def _tiny_checkpoint(folder: Path) -> tuple[bytes, object, object]:
    en = ["the cat sleeps", "the dog eats", "a cat eats", "a dog sleeps"] * 3
    fr = ["le chat dort", "le chien mange", "un chat mange", "un chien dort"] * 3
    tok = train_tokenizer(en, fr, vocab_size=30)
    config = dict(
        arch="transformer",
        src_vocab=tok.src_vocab_size,
        tgt_vocab=tok.tgt_vocab_size,
        d_model=8,
        heads=2,
        enc_layers=1,
        dec_layers=1,
        d_ff=16,
        max_len=32,
        dropout=0.0,
    )
    model = build_model(config)
    path = save_checkpoint(folder / "valid.safetensors", model, tok)
    return path.read_bytes(), model, tok


def _checkpoint_cases(valid: bytes, rng: random.Random, n: int) -> list[bytes]:
    cases = [pickle.dumps(_Payload()), pickle.dumps(_Payload(), protocol=0), b""]
    for _ in range(n):
        cases.append(valid[: rng.randrange(len(valid))])
        flipped = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            flipped[rng.randrange(len(flipped))] ^= rng.randint(1, 255)
        cases.append(bytes(flipped))
        cases.append(bytes(rng.randrange(256) for _ in range(rng.randint(0, 512))))
    return cases


def _try_checkpoints(folder: Path, valid: bytes, rng: random.Random, n: int) -> dict[str, int]:
    counts = _counts()
    for i, data in enumerate(_checkpoint_cases(valid, rng, n)):
        path = folder / f"case{i}.safetensors"
        path.write_bytes(data)
        counts["tried"] += 1
        try:
            loaded = load_checkpoint(path)
        except CheckpointError as e:
            _refused(counts, e, str(path))
        except Exception:
            counts["crashes"] += 1
        else:
            counts["accepted"] += 1
            finite = all(
                bool(torch.isfinite(t).all())
                for t in loaded.model.state_dict().values()
                if t.is_floating_point()
            )
            counts["lost"] += not finite
        path.unlink()
    counts["lost"] += (folder / MARKER).exists()
    return counts


def _non_blank(data: bytes) -> int:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    count = 0
    for i, raw in enumerate(lines):
        raw = raw.removesuffix(b"\r")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            count += 1
            continue
        count += bool((text.removeprefix("\ufeff") if i == 0 else text).strip())
    return count


def _try_corpora(folder: Path, rng: random.Random, n: int) -> dict[str, int]:
    pieces = ["the cat", "\t", " ", "", "\r", "\ufeff", "é", "日本", "😀", "\u2028", "a\tb"]
    counts = _counts()
    for i in range(n):
        if i % 4 == 3:
            data = bytes(rng.randrange(1, 256) for _ in range(rng.randint(0, 200)))
        else:
            lines = ["".join(rng.choices(pieces, k=rng.randint(0, 5))) for _ in range(8)]
            data = "\n".join(lines).encode("utf-8")
            if i % 4 == 2:
                data += "caf\u00e9\tcaf\u00e9\n".encode("latin-1")
        path = folder / f"case{i}.tsv"
        path.write_bytes(data)
        counts["tried"] += 1
        try:
            corpus = load_corpus(str(path), errors="skip")
        except CorpusError as e:
            _refused(counts, e, str(path))
        except Exception:
            counts["crashes"] += 1
        else:
            counts["accepted"] += 1
            counts["lost"] += len(corpus.pairs) + len(corpus.skipped) != _non_blank(data)
    return counts


SENTENCES = [
    "the cat sleeps",
    "",
    "   ",
    "😀 👩‍👩‍👧",
    "猫が寝ている",
    "\u200fהחתול ישן",
    "the\x00cat",
    "\x07\x1b[31m",
    "the cat sleeps " * 400,
]


def _try_sentences(model, tok) -> dict[str, int]:
    counts = _counts()
    limit = source_limit(model)
    for text in SENTENCES:
        counts["tried"] += 1
        try:
            ids, _ = prepare_source(tok, text, max_tokens=limit)
            trace = greedy(model, tok, ids, max_len=limit - 1)
        except ValueError as e:
            counts["refused" if "\n" not in str(e) else "crashes"] += 1
        except Exception:
            counts["crashes"] += 1
        else:
            counts["accepted"] += 1
            counts["lost"] += not (ids[-1] == EOS and 1 <= len(trace.steps) < limit)
    return counts


def run_reliability(report: bool = True, cases: int = 40, seed: int = 0) -> dict:
    """Counts per category (tried, refused, accepted, crashes, lost); prints a table if asked."""
    import os

    rng = random.Random(seed)
    torch.manual_seed(seed)
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.chdir(folder)  # a payload that ran would leave MARKER here
        try:
            valid, model, tok = _tiny_checkpoint(folder)
            results = {
                "checkpoints": _try_checkpoints(folder, valid, rng, cases),
                "corpora": _try_corpora(folder, rng, cases),
                "sentences": _try_sentences(model.eval(), tok),
            }
        finally:
            os.chdir(cwd)
    if report:
        print(f"{'category':<12}" + "".join(f"{f:>10}" for f in FIELDS))
        for name, counts in results.items():
            print(f"{name:<12}" + "".join(f"{counts[f]:>10}" for f in FIELDS))
    return results
