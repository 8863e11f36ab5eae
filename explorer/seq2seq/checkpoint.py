"""One-file checkpoints: a safetensors file that never needs unpickling.

Layout of the file (safetensors: an 8-byte little-endian header length, a JSON header, raw data):

    tensors   model.<name>                 model weights and buffers (tied weights stored once)
              optim.state.<index>.<key>    optimizer state tensors (optional)
              spm.src, spm.tgt             the sentencepiece models as uint8 bytes
    metadata  format = "attention-explorer-checkpoint", format_version = "1"
              config, history, corpus, card, train_state, aliases, num_parameters   (JSON strings)
              (corpus may hold "words", the training words: data/words.py, checked on load)
              optimizer                    param_groups and non-tensor state (JSON, optional)

Writes are atomic: the bytes go to a temporary file in the same directory, are flushed and
fsynced, and then replace the old file, so a crash mid-write leaves the previous checkpoint whole.
Loading validates the header against the file size before safetensors sees it, and every
problem becomes a one-line ``CheckpointError`` naming the file.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import os
import re
import struct
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_save

from explorer.seq2seq.checkpoint_checks import (
    CheckpointError,
    check_history_entry,
    check_vocabularies,
    check_weights,
    planned_model,
    tensor_entry,
)
from explorer.seq2seq.data import words
from explorer.seq2seq.data.tokenizer import Tokenizer, TokenizerError
from explorer.seq2seq.messages import first_line
from explorer.seq2seq.models import families, marian
from explorer.seq2seq.models.base import Seq2Seq
from explorer.seq2seq.untrusted import NotRegularFileError, open_regular

FORMAT = "attention-explorer-checkpoint"
FORMAT_VERSION = "1"
# A header is parsed whole and JSON costs ~27 bytes of memory per byte: 32 MiB stays under 1 GB
# and holds the history of some 200,000 training steps.
MAX_HEADER_BYTES = 32 * 1024 * 1024
# Temporary files of a save live this long even when their writer's pid is alive (a reused pid).
STALE_TEMPORARY_SECONDS = 24 * 3600
JSON_FIELDS = ("config", "history", "corpus", "card", "train_state")
_FIELD_TYPES = {"config": dict, "history": list, "corpus": dict, "card": dict, "train_state": dict}
_KNOWN_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"PK\x03\x04": "a zip archive (torch.save or similar); it is never unpickled",
    b"\x80": "a pickle file; it is never unpickled",
}


@dataclass
class Checkpoint:
    model: Seq2Seq  # in eval mode, on the requested device
    tokenizer: Tokenizer
    config: dict[str, Any]
    history: list[dict[str, Any]]
    corpus: dict[str, Any]
    card: dict[str, Any]
    train_state: dict[str, Any]
    optimizer_state: dict[str, Any] | None  # for torch.optim.Optimizer.load_state_dict
    path: Path


# saving -------------------------------------------------------------------------------------


def _json_default(x: Any) -> Any:
    if isinstance(x, torch.Tensor) and x.numel() == 1:
        return x.item()
    if hasattr(x, "tolist"):  # numpy scalars and arrays, tensors
        return x.tolist()
    if isinstance(x, (set, frozenset, tuple)):
        return list(x)
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"{type(x).__name__} is not JSON serialisable")


def _to_json(value: Any, field: str) -> str:
    try:
        return json.dumps(value, default=_json_default)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"cannot save metadata field {field!r}: {e}") from None


def _config_dict(model: Seq2Seq) -> dict[str, Any]:
    config = model.config
    if dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    if not isinstance(config, dict) or not isinstance(config.get("arch"), str):
        raise CheckpointError(f"cannot save {type(model).__name__}: its config has no 'arch'")
    return dict(config)


def _storage_key(t: torch.Tensor) -> tuple:
    return (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), t.shape, t.stride())


def _model_tensors(
    model: Seq2Seq, half: bool = False
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Weights moved to the CPU, each stored once: a tensor tied to an earlier name becomes an
    alias (name -> stored name) instead of a second copy. ``half`` stores the floating-point
    weights as float16 (loading turns them back into the model's float32)."""
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, t in model.state_dict(keep_vars=False).items():
        key = _storage_key(t)
        if key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        t = t.detach().to("cpu").contiguous().clone()
        if half and t.is_floating_point():
            t = t.to(torch.float16)
            if not bool(torch.isfinite(t).all()):
                raise CheckpointError(f"cannot store weight {name} in 16 bits: it overflows")
        tensors[f"model.{name}"] = t
    return tensors, aliases


def _optimizer_tensors(optimizer: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state_dict = optimizer.state_dict() if hasattr(optimizer, "state_dict") else optimizer
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for index, state in state_dict["state"].items():
        for key, value in state.items():
            if "." in str(key):
                raise CheckpointError(f"cannot save optimizer state key {key!r}: it contains '.'")
            if isinstance(value, torch.Tensor):
                t = value.detach().to("cpu").contiguous().clone()
                tensors[f"optim.state.{int(index)}.{key}"] = t
            else:
                plain.setdefault(str(int(index)), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "state": plain}


def _bytes_tensor(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).clone()


def save_checkpoint(
    path: str | os.PathLike,
    model: Seq2Seq,
    tokenizer: Tokenizer,
    *,
    history: Iterable[dict[str, Any]] = (),
    corpus: dict[str, Any] | None = None,
    card: dict[str, Any] | None = None,
    train_state: dict[str, Any] | None = None,
    optimizer: Any = None,
    half: bool = False,
) -> Path:
    """Write model, tokenizer and training records to ``path`` atomically; returns the path.
    ``half`` stores the weights in 16 bits (float16): half the file, for a finished model."""
    path = Path(path)
    tensors, aliases = _model_tensors(model, half)
    src_model, tgt_model = tokenizer.to_bytes()
    tensors["spm.src"] = _bytes_tensor(src_model)
    tensors["spm.tgt"] = _bytes_tensor(tgt_model)
    records = {
        "config": _config_dict(model),
        "history": [dict(h) for h in history],
        "corpus": dict(corpus or {}),
        "card": dict(card or {}),
        "train_state": dict(train_state or {}),
    }
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION}
    metadata.update({field: _to_json(value, field) for field, value in records.items()})
    metadata["aliases"] = json.dumps(aliases)
    metadata["num_parameters"] = str(model.num_parameters)
    if optimizer is not None:
        optim_tensors, optim_meta = _optimizer_tensors(optimizer)
        tensors.update(optim_tensors)
        metadata["optimizer"] = _to_json(optim_meta, "optimizer")
    _atomic_write(path, safetensors_save(tensors, metadata=metadata))
    return path


_CHUNK_BYTES = 1 << 20


def _writer_gone(stale: Path, prefix: str, now: float) -> bool:
    """A temporary file whose writer was killed: its pid (in its name) no longer runs, or it is
    older than a day (the pid may have been reused)."""
    try:
        if now - stale.stat().st_mtime > STALE_TEMPORARY_SECONDS:
            return True
        pid = int(stale.name[len(prefix) :].split(".")[0])
    except (OSError, ValueError):  # gone already, or a name without a pid: left to the age rule
        return False
    if pid == os.getpid():
        return False  # another thread of this process may be writing it now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, someone else's process
        return False
    return False


def _remove_stale_temporaries(path: Path) -> None:
    """Temporary files of earlier writes to ``path`` that were killed before their rename; a
    temporary file another live writer is still filling is left alone."""
    now = time.time()
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        if _writer_gone(stale, f".{path.name}.", now):
            stale.unlink(missing_ok=True)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` (named with this process's pid, so a
    later save can tell a killed writer's leftovers), fsync it, rename it over ``path``."""
    _remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            view = memoryview(data)
            for start in range(0, len(view), _CHUNK_BYTES):
                f.write(view[start : start + _CHUNK_BYTES])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# loading ------------------------------------------------------------------------------------


def _read_header(path: Path) -> dict[str, Any]:
    """The safetensors JSON header, after checking its declared length against the file and the
    types of every tensor entry (shape, dtype, data offsets)."""
    shown = str(path)
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(9)
            if len(head) < 9 or head[8:9] != b"{":
                for magic, what in _KNOWN_MAGIC.items():
                    if head.startswith(magic):
                        raise CheckpointError(f"{shown}: not a checkpoint: this is {what}")
                raise CheckpointError(f"{shown}: not a checkpoint (no safetensors header)")
            (n,) = struct.unpack("<Q", head[:8])
            if n > MAX_HEADER_BYTES:
                raise CheckpointError(
                    f"{shown}: header too large ({n} bytes declared, limit {MAX_HEADER_BYTES})"
                )
            if 8 + n > size:
                raise CheckpointError(
                    f"{shown}: truncated (header declares {n} bytes, file has {size - 8} after "
                    "the length)"
                )
            f.seek(8)
            raw = f.read(n)
    except FileNotFoundError:
        raise CheckpointError(f"{shown}: no such file") from None
    except NotRegularFileError as e:
        raise CheckpointError(f"{shown}: is {e.kind}, not a checkpoint file") from None
    except OSError as e:
        raise CheckpointError(f"{shown}: cannot read: {e.strerror or e}") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, an integer of 5,000 digits
        raise CheckpointError(f"{shown}: not a checkpoint (header is not JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{shown}: not a checkpoint (header is not a JSON object)")
    end = max((tensor_entry(shown, k, v)[1] for k, v in header.items() if k != "__metadata__"),
              default=0)  # fmt: skip
    if 8 + n + end > size:
        raise CheckpointError(
            f"{shown}: truncated (tensor data needs {end} bytes, file has {size - 8 - n})"
        )
    return header


def _metadata(path: Path, header: dict[str, Any]) -> dict[str, Any]:
    """Checked format and the decoded JSON records of the header metadata."""
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(
            f"{path}: unknown format {found!r}; expected {FORMAT!r} (a plain safetensors file "
            "has weights but no config or tokenizer)"
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: unsupported format_version {meta.get('format_version')!r}; "
            f"this version reads {FORMAT_VERSION!r}"
        )
    records: dict[str, Any] = {}
    for field in (*JSON_FIELDS, "aliases"):
        records[field] = _json_field(path, meta, field, dict if field == "aliases" else None)
    for field in ("optimizer",):
        records[field] = _json_field(path, meta, field, dict) if field in meta else None
    if words.FIELD in records["corpus"]:
        try:
            words.check_words(records["corpus"][words.FIELD])
        except words.WordListError as e:
            raise CheckpointError(f"{path}: corpus word list {e}") from None
    config = records["config"]
    if not isinstance(config.get("arch"), str):
        raise CheckpointError(f"{path}: metadata field 'config' has no 'arch'")
    for alias, target in records["aliases"].items():
        if not isinstance(target, str):
            raise CheckpointError(f"{path}: alias {alias} does not name a weight")
    try:
        records["num_parameters"] = int(meta.get("num_parameters", "-1"))
    except (TypeError, ValueError, OverflowError):
        raise CheckpointError(
            f"{path}: metadata field 'num_parameters' is not an integer"
        ) from None
    return records


def _json_field(path: Path, meta: dict[str, str], field: str, kind: type | None) -> Any:
    if field not in meta:
        raise CheckpointError(f"{path}: missing metadata field {field!r}")
    try:
        value = json.loads(meta[field])
    except (TypeError, ValueError, RecursionError) as e:  # ValueError: an int of 5,000 digits
        raise CheckpointError(
            f"{path}: metadata field {field!r} is not JSON ({first_line(e)})"
        ) from None
    kind = kind or _FIELD_TYPES[field]
    if not isinstance(value, kind):
        raise CheckpointError(
            f"{path}: metadata field {field!r} is a {type(value).__name__}, "
            f"expected a {kind.__name__}"
        )
    if field == "history":
        for i, entry in enumerate(value):
            check_history_entry(path, i, entry)
    return value


def load_checkpoint(
    path: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    build: Callable[[dict[str, Any]], Seq2Seq] = families.build_model,
) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint``; the model is in eval mode on ``device``.
    A folder or hub name opens as a Marian model (``models/marian.py``)."""
    if marian.is_marian_source(path):
        return marian.open_checkpoint(path, device)
    path = Path(path)
    header = _read_header(path)
    records = _metadata(path, header)
    names = [k for k in header if k != "__metadata__"]
    for required in ("spm.src", "spm.tgt"):
        if required not in names:
            raise CheckpointError(f"{path}: tensor {required!r} (sentencepiece model) is missing")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            tensors = {name: f.get_tensor(name) for name in names}
    except (SafetensorError, RuntimeError, OSError) as e:
        raise CheckpointError(f"{path}: corrupt tensor data: {first_line(e)}") from None

    tokenizer = _tokenizer(path, tensors)
    stored = {k[len("model.") :]: t for k, t in tensors.items() if k.startswith("model.")}
    weights = dict(stored)
    for alias, target in records["aliases"].items():
        if target not in stored:
            raise CheckpointError(f"{path}: alias {alias} names a missing weight {target}")
        weights[alias] = stored[target]
    planned = planned_model(path, build, stored, records["config"])
    check_weights(path, planned, weights)
    check_vocabularies(path, planned, tokenizer)
    try:
        model = build(dict(records["config"]))
        model.load_state_dict(weights, strict=True)
    except Exception as e:  # the meta-device build succeeded, so this is unexpected
        raise CheckpointError(f"{path}: cannot build the model: {first_line(e)}") from None
    model.to(device).eval()

    optimizer_state = None
    if records["optimizer"] is not None:
        optimizer_state = _optimizer_state(path, records["optimizer"], tensors)
    return Checkpoint(
        model=model,
        tokenizer=tokenizer,
        config=records["config"],
        history=records["history"],
        corpus=records["corpus"],
        card=records["card"],
        train_state=records["train_state"],
        optimizer_state=optimizer_state,
        path=path,
    )


def _tokenizer(path: Path, tensors: dict[str, torch.Tensor]) -> Tokenizer:
    for name in ("spm.src", "spm.tgt"):
        if tensors[name].dtype != torch.uint8 or tensors[name].dim() != 1:
            raise CheckpointError(f"{path}: tensor {name!r} is not a 1-D uint8 byte string")
    try:
        return Tokenizer.from_bytes(
            tensors["spm.src"].cpu().numpy().tobytes(), tensors["spm.tgt"].cpu().numpy().tobytes()
        )
    except TokenizerError as e:
        raise CheckpointError(f"{path}: {e}") from None
    except (ValueError, RuntimeError) as e:  # sentencepiece's own errors, bad UTF-8 in them too
        raise CheckpointError(f"{path}: corrupt sentencepiece model: {first_line(e)}") from None


_INDEX = re.compile(r"[0-9]{1,9}")  # str.isdigit() accepts "²", which int() refuses


def _optimizer_state(
    path: Path, meta: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> dict[str, Any]:
    if not isinstance(meta.get("param_groups"), list) or not isinstance(meta.get("state"), dict):
        raise CheckpointError(f"{path}: metadata field 'optimizer' lacks param_groups or state")
    state: dict[int, dict[str, Any]] = {}
    for index, values in meta["state"].items():
        if not _INDEX.fullmatch(index) or not isinstance(values, dict):
            raise CheckpointError(f"{path}: malformed optimizer state entry {index!r}")
        state.setdefault(int(index), {}).update(values)
    prefix = "optim.state."
    for name, t in tensors.items():
        if name.startswith(prefix):
            index, _, key = name[len(prefix) :].partition(".")
            if not _INDEX.fullmatch(index) or not key:
                raise CheckpointError(f"{path}: malformed optimizer tensor name {name!r}")
            state.setdefault(int(index), {})[key] = t
    return {"state": state, "param_groups": meta["param_groups"]}


def read_card(path: str | os.PathLike) -> dict[str, Any]:
    """Metadata only (no weights read, no model built): config, history, corpus, card,
    train_state, parameter count, and whether optimizer state is stored."""
    if marian.is_marian_source(path):
        return marian.read_card(path)
    path = Path(path)
    header = _read_header(path)
    records = _metadata(path, header)
    num_parameters = records["num_parameters"]
    if num_parameters < 0:  # count stored weights from their shapes
        try:
            num_parameters = sum(
                math.prod(info["shape"]) for k, info in header.items() if k.startswith("model.")
            )
        except (TypeError, KeyError):
            raise CheckpointError(f"{path}: corrupt tensor shapes in the header") from None
    return {
        "path": str(path),
        "config": records["config"],
        "history": records["history"],
        "corpus": records["corpus"],
        "card": records["card"],
        "train_state": records["train_state"],
        "num_parameters": num_parameters,
        "has_optimizer_state": records["optimizer"] is not None,
        "size_bytes": path.stat().st_size,
    }
