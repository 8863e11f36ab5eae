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
import struct
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_save
from torch.overrides import TorchFunctionMode

from explorer.seq2seq.data import words
from explorer.seq2seq.data.tokenizer import Tokenizer, TokenizerError
from explorer.seq2seq.messages import first_line as _first_line
from explorer.seq2seq.models import families, marian
from explorer.seq2seq.models.base import Seq2Seq

FORMAT = "attention-explorer-checkpoint"
FORMAT_VERSION = "1"
MAX_HEADER_BYTES = 100 * 1024 * 1024
# Elements a model may hold beyond the weights stored in its file (non-persistent buffers such as
# sinusoidal position tables). A config that implies more is refused before anything is allocated.
MAX_UNSTORED_ELEMENTS = 1 << 24
JSON_FIELDS = ("config", "history", "corpus", "card", "train_state")
_FIELD_TYPES = {"config": dict, "history": list, "corpus": dict, "card": dict, "train_state": dict}
_KNOWN_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"PK\x03\x04": "a zip archive (torch.save or similar); it is never unpickled",
    b"\x80": "a pickle file; it is never unpickled",
}


class CheckpointError(ValueError):
    """A checkpoint file could not be read: one line naming the file and the problem."""


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


def _model_tensors(model: Seq2Seq) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Weights moved to the CPU, each stored once: a tensor tied to an earlier name becomes an
    alias (name -> stored name) instead of a second copy."""
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, t in model.state_dict(keep_vars=False).items():
        key = _storage_key(t)
        if key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensors[f"model.{name}"] = t.detach().to("cpu").contiguous().clone()
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
) -> Path:
    """Write model, tokenizer and training records to ``path`` atomically; returns the path."""
    path = Path(path)
    tensors, aliases = _model_tensors(model)
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


def _remove_stale_temporaries(path: Path) -> None:
    """Temporary files of earlier writes to ``path`` that were killed before their rename."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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
    _remove_stale_temporaries(path)
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
    """The safetensors JSON header, after checking its declared length against the file."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(9)
            if len(head) < 9 or head[8:9] != b"{":
                for magic, what in _KNOWN_MAGIC.items():
                    if head.startswith(magic):
                        raise CheckpointError(f"{path}: not a checkpoint: this is {what}")
                raise CheckpointError(f"{path}: not a checkpoint (no safetensors header)")
            (n,) = struct.unpack("<Q", head[:8])
            if n > MAX_HEADER_BYTES:
                raise CheckpointError(
                    f"{path}: header too large ({n} bytes declared, limit {MAX_HEADER_BYTES})"
                )
            if 8 + n > size:
                raise CheckpointError(
                    f"{path}: truncated (header declares {n} bytes, file has {size - 8} after "
                    "the length)"
                )
            f.seek(8)
            raw = f.read(n)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise CheckpointError(f"{path}: not a checkpoint (header is not JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a checkpoint (header is not a JSON object)")
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            lo, hi = info["data_offsets"]
            end = max(end, int(hi))
        except (TypeError, KeyError, ValueError, OverflowError):
            raise CheckpointError(f"{path}: corrupt header entry for tensor {name!r}") from None
    if 8 + n + end > size:
        raise CheckpointError(
            f"{path}: truncated (tensor data needs {end} bytes, file has {size - 8 - n})"
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
    except (TypeError, json.JSONDecodeError, RecursionError) as e:
        raise CheckpointError(
            f"{path}: metadata field {field!r} is not JSON ({_first_line(e)})"
        ) from None
    kind = kind or _FIELD_TYPES[field]
    if not isinstance(value, kind):
        raise CheckpointError(
            f"{path}: metadata field {field!r} is a {type(value).__name__}, "
            f"expected a {kind.__name__}"
        )
    return value


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


class _ShapesOnly(TorchFunctionMode):
    """Inside a ``torch.device("meta")`` build (this thread only: torch function modes are per
    thread): ``torch.nn.init`` functions and in-place random fills return their tensor untouched."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _RANDOM_FILLS or getattr(func, "__module__", None) == "torch.nn.init":
            return args[0] if args else next(iter(kwargs.values()))
        return func(*args, **kwargs)


def _planned_model(
    path: Path,
    build: Callable[[dict[str, Any]], Seq2Seq],
    weights: dict[str, torch.Tensor],
    config: dict[str, Any],
) -> Seq2Seq:
    """The model the config describes, built on the meta device: shapes without storage."""
    stored = sum(t.numel() for t in weights.values())
    _check_config_sizes(path, config, stored, len(weights))
    try:
        with torch.device("meta"), _ShapesOnly():
            model = build(dict(config))
    except Exception as e:  # an untrusted config may upset a constructor in any way
        raise CheckpointError(f"{path}: cannot build the model: {_first_line(e)}") from None
    if not isinstance(model, Seq2Seq):
        raise CheckpointError(f"{path}: the config did not build a Seq2Seq model")
    total = sum(t.numel() for t in (*model.parameters(), *model.buffers()))
    if total > stored + MAX_UNSTORED_ELEMENTS:
        raise CheckpointError(
            f"{path}: the config describes a model of {total} elements but the file stores {stored}"
        )
    return model


def _check_weights(path: Path, model: Seq2Seq, weights: dict[str, torch.Tensor]) -> None:
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
        raise CheckpointError(f"{path}: corrupt tensor data: {_first_line(e)}") from None

    for name in ("spm.src", "spm.tgt"):
        if tensors[name].dtype != torch.uint8 or tensors[name].dim() != 1:
            raise CheckpointError(f"{path}: tensor {name!r} is not a 1-D uint8 byte string")
    try:
        tokenizer = Tokenizer.from_bytes(
            tensors["spm.src"].cpu().numpy().tobytes(), tensors["spm.tgt"].cpu().numpy().tobytes()
        )
    except TokenizerError as e:
        raise CheckpointError(f"{path}: {e}") from None

    weights = {k[len("model.") :]: t for k, t in tensors.items() if k.startswith("model.")}
    for alias, target in records["aliases"].items():
        if target not in weights:
            raise CheckpointError(f"{path}: alias {alias} names a missing weight {target}")
        weights[alias] = weights[target]
    _check_weights(path, _planned_model(path, build, weights, records["config"]), weights)
    try:
        model = build(dict(records["config"]))
        model.load_state_dict(weights, strict=True)
    except Exception as e:  # the meta-device build succeeded, so this is unexpected
        raise CheckpointError(f"{path}: cannot build the model: {_first_line(e)}") from None
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


def _optimizer_state(
    path: Path, meta: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> dict[str, Any]:
    if not isinstance(meta.get("param_groups"), list) or not isinstance(meta.get("state"), dict):
        raise CheckpointError(f"{path}: metadata field 'optimizer' lacks param_groups or state")
    state: dict[int, dict[str, Any]] = {}
    for index, values in meta["state"].items():
        if not index.isdigit() or not isinstance(values, dict):
            raise CheckpointError(f"{path}: malformed optimizer state entry {index!r}")
        state.setdefault(int(index), {}).update(values)
    prefix = "optim.state."
    for name, t in tensors.items():
        if name.startswith(prefix):
            index, _, key = name[len(prefix) :].partition(".")
            if not index.isdigit() or not key:
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
