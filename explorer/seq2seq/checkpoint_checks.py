"""What a checkpoint from anywhere must satisfy before anything is built from it.

Every check raises a one-line ``CheckpointError`` naming the file. Sizes are bounded before they
are used: the model a config describes is planned on the meta device (shapes, no storage) and
must fit the weights the file stores, aliases not counted, plus MAX_UNSTORED_ELEMENTS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from explorer.seq2seq.data.tokenizer import Tokenizer
from explorer.seq2seq.messages import first_line
from explorer.seq2seq.models.base import Seq2Seq
from explorer.seq2seq.untrusted import printable

MAX_DIMS = 8  # the most dimensions a stored tensor may have
# Weights of a trained model are small numbers; beyond this the file is corrupt or made to
# overflow every activation into inf and NaN.
MAX_WEIGHT_MAGNITUDE = 1e6
# Elements a model may hold beyond the weights stored in its file (non-persistent buffers such as
# sinusoidal position tables). A config that implies more is refused before anything is allocated.
MAX_UNSTORED_ELEMENTS = 1 << 24


class CheckpointError(ValueError):
    """A checkpoint file could not be read: one line naming the file and the problem."""

    def __init__(self, message: str):
        # Names, paths and text in the message come from the file: escaped, it stays one line.
        super().__init__(printable(message, limit=2000))


def _is_count(x: Any, limit: int = 1 << 62) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= limit


def tensor_entry(shown: str, name: str, info: Any) -> tuple[int, int]:
    """The (start, end) data offsets of one header entry, after checking its fields' types."""
    offsets = info.get("data_offsets") if isinstance(info, dict) else None
    shape = info.get("shape") if isinstance(info, dict) else None
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(_is_count(x) for x in offsets)
        and offsets[0] <= offsets[1]
        and isinstance(shape, list)
        and len(shape) <= MAX_DIMS
        and all(_is_count(x, 1 << 40) for x in shape)
        and isinstance(info.get("dtype"), str)
    ):
        raise CheckpointError(f"{shown}: corrupt header entry for tensor '{printable(name, 80)}'")
    return offsets[0], offsets[1]


# History fields the card and the plots read, and the types they must have.
_HISTORY_NUMBERS = (
    "loss", "lr", "grad_norm", "tokens_per_second", "teacher_forcing", "val_loss", "val_bleu",
    "attention_entropy", "elapsed",
)  # fmt: skip


def check_history_entry(path: Path, i: int, entry: Any) -> None:
    def number(x: Any) -> bool:
        return x is None or (isinstance(x, (int, float)) and not isinstance(x, bool))

    problem = None
    if not isinstance(entry, dict):
        problem = f"is a {type(entry).__name__}, expected a dict"
    elif not (isinstance(entry.get("step"), int) and not isinstance(entry["step"], bool)):
        problem = "has no integer 'step'"
    elif bad := next((k for k in _HISTORY_NUMBERS if not number(entry.get(k))), None):
        problem = f"field {bad!r} is a {type(entry[bad]).__name__}, expected a number"
    elif not isinstance(entry.get("probe_output", ""), str):
        problem = "field 'probe_output' is not text"
    if problem:
        raise CheckpointError(f"{path}: history entry {i} {problem}")


def _names(names: Iterable[str], limit: int = 5) -> str:
    names = sorted(names)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _check_config_sizes(path: Path, config: dict[str, Any], stored: int, tensors: int) -> None:
    """Refuse sizes no model in this file can have, before even a meta-device build (which takes
    seconds per thousand layers). A dimension is at most the number of elements of the weights it
    shapes; every layer holds at least one stored weight tensor."""
    limit = stored + MAX_UNSTORED_ELEMENTS
    for field, value in config.items():
        if not isinstance(value, int) or isinstance(value, bool):
            continue
        if "layers" in field and value > tensors:
            raise CheckpointError(
                f"{path}: config field {field!r} = {value} is more layers than the file has "
                f"weight tensors ({tensors})"
            )
        if abs(value) > limit:
            raise CheckpointError(
                f"{path}: config field {field!r} = {value} is larger than the whole model stored "
                f"in the file ({stored} weight elements)"
            )


# In-place random fills: on the meta device they go through torch._refs, whose first use imports
# torch._dynamo (seconds). A planned model needs shapes, never values, so they are skipped there.
_RANDOM_FILLS = frozenset(
    getattr(torch.Tensor, name)
    for name in (
        "normal_", "uniform_", "bernoulli_", "exponential_", "random_", "cauchy_",
        "log_normal_", "geometric_",
    )
)  # fmt: skip


class ShapesOnly(TorchFunctionMode):
    """Inside a ``torch.device("meta")`` build (this thread only: torch function modes are per
    thread): ``torch.nn.init`` functions and in-place random fills return their tensor untouched."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _RANDOM_FILLS or getattr(func, "__module__", None) == "torch.nn.init":
            return args[0] if args else next(iter(kwargs.values()))
        return func(*args, **kwargs)


def planned_model(
    path: Path,
    build: Callable[[dict[str, Any]], Seq2Seq],
    stored_weights: dict[str, torch.Tensor],
    config: dict[str, Any],
) -> Seq2Seq:
    """The model the config describes, built on the meta device: shapes without storage.
    ``stored_weights`` are the tensors the file holds, aliases not counted: an alias costs the
    file nothing, so a thousand of them must not vouch for a thousand weights' worth of model."""
    stored = sum(t.numel() for t in stored_weights.values())
    _check_config_sizes(path, config, stored, len(stored_weights))
    try:
        with torch.device("meta"), ShapesOnly():
            model = build(dict(config))
    except Exception as e:  # an untrusted config may upset a constructor in any way
        raise CheckpointError(f"{path}: cannot build the model: {first_line(e)}") from None
    if not isinstance(model, Seq2Seq):
        raise CheckpointError(f"{path}: the config did not build a Seq2Seq model")
    total = sum(t.numel() for t in (*model.parameters(), *model.buffers()))
    if total > stored + MAX_UNSTORED_ELEMENTS:
        raise CheckpointError(
            f"{path}: the config describes a model of {total} elements but the file stores {stored}"
        )
    return model


def check_weights(path: Path, model: Seq2Seq, weights: dict[str, torch.Tensor]) -> None:
    expected = model.state_dict()
    missing = set(expected) - set(weights)
    if missing:
        raise CheckpointError(f"{path}: weight(s) missing: {_names(missing)}")
    unexpected = set(weights) - set(expected)
    if unexpected:
        raise CheckpointError(f"{path}: unexpected weight(s): {_names(unexpected)}")
    for name, want in expected.items():
        t = weights[name]
        if t.shape != want.shape:
            raise CheckpointError(
                f"{path}: weight {name} has shape {tuple(t.shape)} but the config gives "
                f"{tuple(want.shape)}"
            )
        if t.is_complex() or (want.is_floating_point() and t.dtype == torch.bool):
            raise CheckpointError(f"{path}: weight {name} has dtype {t.dtype}")
        if want.is_floating_point():
            t = t.to(want.dtype)  # as load_state_dict will store it: a float64 1e300 is inf
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            kind = "NaN" if bool(torch.isnan(t).any()) else "infinite"
            raise CheckpointError(f"{path}: weight {name} contains {kind} values")
        if t.is_floating_point() and t.numel() and float(t.abs().max()) > MAX_WEIGHT_MAGNITUDE:
            raise CheckpointError(
                f"{path}: weight {name} holds values up to {float(t.abs().max()):.3g}; a trained "
                f"model's stay far below {MAX_WEIGHT_MAGNITUDE:g} (these overflow to inf and NaN)"
            )


def check_vocabularies(path: Path, model: Seq2Seq, tokenizer: Tokenizer) -> None:
    """The sentencepiece models must give the ids the embeddings have rows for."""
    for side, have in (("src", tokenizer.src_vocab_size), ("tgt", tokenizer.tgt_vocab_size)):
        want = getattr(model.config, f"{side}_vocab", None)
        if want is not None and want != have:
            word = "source" if side == "src" else "target"
            raise CheckpointError(
                f"{path}: the {word} sentencepiece model has {have} pieces but the model's "
                f"{word} vocabulary has {want}"
            )
