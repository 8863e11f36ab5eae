"""Lesson files: scenes a teacher prepares before class and replays with Page Down / Page Up.

A lesson is one JSON file (plain data: nothing in it can run code)::

    {"format": "attention-explorer lesson", "version": 1, "title": "…",
     "scenes": [{"title": "…", "model": "classroom-bahdanau", "sha256": "…",
                 "sentence": "the black cat sat on the mat", "step": 3, "tab": "step",
                 "view": "arithmetic", "forced": [{"step": 2, "piece": "le"}],
                 "edits": [{"step": 3, "source": 1}], "beam": {"beam": 5},
                 "note": "…"}]}

``model`` is a bundled model's name or a checkpoint file given relative to the lesson's folder
(it may not leave that folder, by ``..``, an absolute path or a link); ``sha256`` is the file's
checksum, and a file whose checksum differs is refused. ``step`` counts from 1. ``edits`` are
attention edits (``step`` from 1; ``source`` a piece counted from 0, or ``weights``; ``layer`` and
``head`` for a Transformer, absent for every layer or every head), applied in step order with the
forced tokens. Each kind of bad input is
refused with one line that names the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from explorer.assets import BUNDLED, CHECKPOINT_SUFFIX, models_dir
from explorer.seq2seq.decoding.edit import AttentionEdit

FORMAT = "attention-explorer lesson"
VERSION = 1
TABS = ("train", "step", "beam")
VIEWS = ("arithmetic", "hand exercise", "hidden states", "transformer", "neighbours")
MAX_BYTES = 1 << 20  # a lesson file is text: 1 MiB is hundreds of scenes
MAX_SCENES = 500
MAX_TEXT = 2000  # characters of a sentence, title or piece
MAX_NOTE = 8000
MAX_LIST = 200  # forced tokens or edits in one scene
MAX_STEP = 1000
BEAM_LIMITS = {"beam": (1, 64), "nbest": (1, 64), "max_len": (1, 500)}
PENALTIES = ("none", "avg", "gnmt")


class LessonError(ValueError):
    """A lesson file that cannot be used; the message is one line naming the file and field."""


@dataclass(frozen=True)
class Forced:
    step: int  # 1-based: the step whose token is forced
    piece: str  # the target piece written there


def edit_to_dict(e: AttentionEdit) -> dict:
    """An attention edit as the file writes it (its step counted from 1, like a scene's)."""
    d = {"step": e.step + 1, "source": e.source_index, "weights": e.weights,
         "layer": e.layer, "head": e.head}  # fmt: skip
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items() if v is not None}


@dataclass(frozen=True)
class Scene:
    model: str  # a bundled name or a path relative to the lesson's folder
    sha256: str
    sentence: str = ""
    step: int = 1
    tab: str = "step"
    view: str | None = None
    forced: tuple[Forced, ...] = ()
    edits: tuple[AttentionEdit, ...] = ()
    beam: dict = field(default_factory=dict)
    note: str = ""
    title: str = ""
    path: Path | None = field(default=None, compare=False)  # the checkpoint, once resolved

    def to_dict(self) -> dict:
        d: dict[str, Any] = {
            "title": self.title, "model": self.model, "sha256": self.sha256,
            "sentence": self.sentence, "step": self.step, "tab": self.tab,
        }  # fmt: skip
        if self.view:
            d["view"] = self.view
        if self.forced:
            d["forced"] = [{"step": f.step, "piece": f.piece} for f in self.forced]
        if self.edits:
            d["edits"] = [edit_to_dict(e) for e in self.edits]
        if self.beam:
            d["beam"] = dict(self.beam)
        d["note"] = self.note
        return d


@dataclass(frozen=True)
class Lesson:
    title: str
    scenes: tuple[Scene, ...]
    folder: Path | None = None  # where relative model paths resolve

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "title": self.title,
                "scenes": [s.to_dict() for s in self.scenes]}  # fmt: skip


# -- reading ----------------------------------------------------------------------------------
class _Object:
    """A JSON object being read: fields are taken one by one and anything left is refused."""

    def __init__(self, value: Any, where: str, file: str) -> None:
        self.file, self.where = file, where
        if not isinstance(value, dict):
            self.fail("", f"expected an object, got {_kind(value)}")
        self.left = dict(value)

    def fail(self, key: str, message: str):
        name = f"{self.where}.{key}" if self.where and key else (key or self.where or "top level")
        raise LessonError(f"{self.file}: {name}: {message}")

    def take(self, key: str, check: Callable[[Any], Any], default: Any = ..., *, need=False):
        if key not in self.left:
            if need or default is ...:
                self.fail(key, "missing")
            return default
        value = self.left.pop(key)
        try:
            return check(value)
        except _Bad as e:
            self.fail(key, str(e))

    def done(self) -> None:
        if self.left:
            unknown = ", ".join(sorted(map(str, self.left))[:5])
            self.fail("", f"unknown field(s): {unknown}")


class _Bad(ValueError):
    pass


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false",
             type(None): "null", int: "a number", float: "a number"}  # fmt: skip
    return names.get(type(value), type(value).__name__)


def _text(limit: int = MAX_TEXT) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if not isinstance(v, str):
            raise _Bad(f"expected a string, got {_kind(v)}")
        if len(v) > limit:
            raise _Bad(f"longer than {limit} characters")
        if any(ord(c) < 32 and c not in "\n\t" for c in v):
            raise _Bad("holds control characters")
        return v

    return check


def _whole(lo: int, hi: int) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise _Bad(f"expected a whole number from {lo} to {hi}, got {_kind(v)}")
        if not lo <= v <= hi:
            raise _Bad(f"expected a whole number from {lo} to {hi}, got {v}")
        return v

    return check


def _number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _Bad(f"expected a finite number, got {_kind(v)}")
    return float(v)


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in options:
            raise _Bad(f"expected one of {', '.join(options)}, got {json.dumps(v)[:40]}")
        return v

    return check


def _sha256(v: Any) -> str:
    if not isinstance(v, str) or len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
        raise _Bad("expected 64 lowercase hexadecimal digits (the checkpoint's sha256)")
    return v


def _list(v: Any) -> list:
    if not isinstance(v, list):
        raise _Bad(f"expected a list, got {_kind(v)}")
    if len(v) > MAX_LIST:
        raise _Bad(f"more than {MAX_LIST} entries")
    return v


def _forced(items: list, where: str, file: str) -> tuple[Forced, ...]:
    out = []
    for i, item in enumerate(items):
        o = _Object(item, f"{where}[{i}]", file)
        out.append(Forced(o.take("step", _whole(1, MAX_STEP)), o.take("piece", _text(200))))
        o.done()
    return tuple(out)


def _weights(v: Any) -> tuple[float, ...]:
    ws = tuple(_number(w) for w in _list(v))
    if not ws or any(w < 0 for w in ws) or sum(ws) <= 0:
        raise _Bad("expected weights ≥ 0, at least one of them > 0")
    return ws


def _edits(items: list, where: str, file: str) -> tuple[AttentionEdit, ...]:
    out = []
    for i, item in enumerate(items):
        o = _Object(item, f"{where}[{i}]", file)
        step = o.take("step", _whole(1, MAX_STEP))
        source = o.take("source", _whole(0, MAX_STEP), None)
        weights = o.take("weights", _weights, None)
        layer, head = o.take("layer", _whole(0, 64), None), o.take("head", _whole(0, 64), None)
        if (source is None) == (weights is None):
            o.fail("", "give either source (one-hot) or weights")
        o.done()
        out.append(AttentionEdit(step - 1, source, weights, layer, head))
    return tuple(out)


def _beam(value: Any, where: str, file: str) -> dict:
    o = _Object(value, where, file)
    beam: dict[str, Any] = {}
    for key, (lo, hi) in BEAM_LIMITS.items():
        if key in o.left:
            beam[key] = o.take(key, _whole(lo, hi))
    if "length_penalty" in o.left:
        beam["length_penalty"] = o.take("length_penalty", _choice(PENALTIES))
    for key in ("alpha", "beta"):
        if key in o.left:
            beam[key] = o.take(key, _number)
    o.done()
    return beam


def _scene(value: Any, where: str, file: str) -> Scene:
    o = _Object(value, where, file)
    scene = Scene(
        title=o.take("title", _text(), ""),
        model=o.take("model", _text(1000), need=True),
        sha256=o.take("sha256", _sha256, need=True),
        sentence=o.take("sentence", _text(), ""),
        step=o.take("step", _whole(1, MAX_STEP), 1),
        tab=o.take("tab", _choice(TABS), "step"),
        view=o.take("view", _choice(VIEWS), None),
        forced=_forced(o.take("forced", _list, []), f"{where}.forced", file),
        edits=_edits(o.take("edits", _list, []), f"{where}.edits", file),
        beam=_beam(o.take("beam", lambda v: v, {}), f"{where}.beam", file),
        note=o.take("note", _text(MAX_NOTE), ""),
    )
    o.done()
    return scene


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise _Bad(f"field {twice[0]!r} given twice in one object")
    return dict(pairs)


def _constant(name: str) -> float:
    raise _Bad(f"{name} is not a number JSON allows")


def parse_lesson(text: str, file: str = "lesson", folder: Path | None = None) -> Lesson:
    """A lesson from JSON text; model paths are not looked at here (see :func:`resolve`)."""
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_constant)
    except json.JSONDecodeError as e:
        raise LessonError(
            f"{file}: line {e.lineno}, column {e.colno}: not JSON ({e.msg})"
        ) from None
    except _Bad as e:
        raise LessonError(f"{file}: {e}") from None
    except RecursionError:
        raise LessonError(f"{file}: nested too deeply") from None
    o = _Object(data, "", file)
    o.take("format", _choice((FORMAT,)), need=True)
    o.take("version", _whole(VERSION, VERSION), need=True)
    title = o.take("title", _text(), "")
    scenes = o.take("scenes", _list_of_scenes, need=True)
    o.done()
    return Lesson(title, tuple(_scene(s, f"scenes[{i}]", file) for i, s in enumerate(scenes)),
                  folder)  # fmt: skip


def _list_of_scenes(v: Any) -> list:
    if not isinstance(v, list):
        raise _Bad(f"expected a list, got {_kind(v)}")
    if not v:
        raise _Bad("a lesson needs at least one scene")
    if len(v) > MAX_SCENES:
        raise _Bad(f"more than {MAX_SCENES} scenes")
    return v


# -- models: where they are, and that they are the ones the lesson was made with ---------------
def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_path(spec: str, folder: Path, where: str) -> Path:
    """The checkpoint a scene names: a bundled model, or a file inside ``folder``."""
    if spec in BUNDLED:
        return models_dir() / f"{spec}{CHECKPOINT_SUFFIX}"
    rel = PurePosixPath(spec)
    if not spec or "\\" in spec or rel.is_absolute() or ".." in rel.parts or ":" in spec:
        raise LessonError(
            f"{where}: {spec!r} is neither a bundled model ({', '.join(BUNDLED)}) nor a path "
            "inside the lesson's folder"
        )
    base = folder.resolve()
    path = (base / rel).resolve()
    if not path.is_relative_to(base):
        raise LessonError(f"{where}: {spec!r} leads out of the lesson's folder (a link)")
    if not path.is_file():
        raise LessonError(f"{where}: {spec!r}: no such checkpoint file beside the lesson")
    return path


def resolve(lesson: Lesson, file: str = "lesson") -> Lesson:
    """Every scene with its checkpoint's path, after checking its sha256 (each file read once);
    a missing file or a different checksum is refused."""
    folder = lesson.folder or Path(".")
    sums: dict[Path, str] = {}
    scenes = []
    for i, s in enumerate(lesson.scenes):
        where = f"{file}: scenes[{i}].model"
        path = model_path(s.model, folder, where)
        if path not in sums:
            try:
                sums[path] = sha256_of(path)
            except OSError as e:
                raise LessonError(f"{where}: cannot read {path.name}: {e.strerror}") from None
        if sums[path] != s.sha256:
            raise LessonError(
                f"{where}: {path.name} has sha256 {sums[path][:12]}…, the lesson expects "
                f"{s.sha256[:12]}…: refused (not the model the lesson was prepared with)"
            )
        scenes.append(_with_path(s, path))
    return Lesson(lesson.title, tuple(scenes), lesson.folder)


def _with_path(scene: Scene, path: Path) -> Scene:
    from dataclasses import replace

    return replace(scene, path=path)


def load_lesson(path: str | Path) -> Lesson:
    """Read, check and resolve a lesson file."""
    path = Path(path)
    name = path.name
    try:
        if not path.is_file():
            raise LessonError(f"{name}: no such lesson file")
        if path.stat().st_size > MAX_BYTES:
            raise LessonError(f"{name}: larger than {MAX_BYTES >> 20} MiB: not a lesson file")
        raw = path.read_bytes()
    except OSError as e:
        raise LessonError(f"{name}: cannot read: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LessonError(f"{name}: not UTF-8 text (byte {e.start})") from None
    return resolve(parse_lesson(text, name, path.parent), name)


# -- writing ----------------------------------------------------------------------------------
def model_reference(checkpoint: Path, folder: Path) -> str:
    """How a lesson saved in ``folder`` names ``checkpoint``: a bundled model by its name, a file
    inside the folder by its relative path; any other file cannot be named."""
    checkpoint = Path(checkpoint).resolve()
    for name in BUNDLED:
        bundled = models_dir() / f"{name}{CHECKPOINT_SUFFIX}"
        if bundled.is_file() and bundled.resolve() == checkpoint:
            return name
    base = Path(folder).resolve()
    if checkpoint.is_relative_to(base):
        return checkpoint.relative_to(base).as_posix()
    raise LessonError(
        f"{checkpoint.name} is outside the lesson's folder {base}: save the lesson in a folder "
        "that holds the checkpoint (or copy the checkpoint beside the lesson)"
    )


def save_lesson(lesson: Lesson, path: str | Path) -> Path:
    """Write the lesson as JSON (atomically), each scene's model named relative to the file's
    folder; the result reads back with :func:`load_lesson`."""
    from dataclasses import replace

    from explorer.seq2seq.checkpoint import _atomic_write

    path = Path(path)
    scenes = []
    for s in lesson.scenes:
        if s.path is None:
            raise LessonError(f"scene {s.title or s.sentence!r}: its model has no file")
        scenes.append(replace(s, model=model_reference(s.path, path.parent)))
    out = Lesson(lesson.title, tuple(scenes), path.parent)
    text = json.dumps(out.to_dict(), ensure_ascii=False, indent=2) + "\n"
    _atomic_write(path, text.encode("utf-8"))
    return path
