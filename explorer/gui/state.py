"""Application state shared by the panels: the loaded models and which one is current.

The panels subscribe to these signals and redraw; they never reach into each other. A model here is
only ever used for decoding on the UI side (training works on its own copy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal


@dataclass(eq=False)
class LoadedModel:
    """A checkpoint ready to decode with."""

    name: str  # shown in pickers, e.g. "bahdanau (classroom)"
    model: Any  # explorer.seq2seq.models.base.Seq2Seq, eval mode, on the CPU
    tokenizer: Any  # explorer.seq2seq.data.tokenizer.Tokenizer
    path: Path | None = None  # None for a model trained in this session and not saved yet
    config: dict = field(default_factory=dict)
    card: dict = field(default_factory=dict)
    corpus: dict = field(default_factory=dict)
    history: list = field(default_factory=list)

    @property
    def arch(self) -> str:
        return self.config.get("arch", getattr(self.model, "arch", ""))

    @property
    def classroom(self) -> bool:
        return self.corpus.get("name") == "classroom"

    def prepare(self, sentence: str) -> str:
        """The sentence as the model's corpus writes it (classroom: lowercase, no punctuation)."""
        from explorer.seq2seq.data.inputs import corpus_text

        return corpus_text(sentence, self.corpus)

    def encode(self, sentence: str) -> Any:
        """The sentence through the one input policy (``prepare_source``): as the corpus writes
        it, cut to what the model takes (with a notice), or ``SourceTextError`` when nothing is
        left to translate."""
        from explorer.seq2seq.data.inputs import prepare_source, source_limit

        return prepare_source(
            self.tokenizer, sentence, source_limit(self.model), corpus=self.corpus
        )

    @classmethod
    def from_checkpoint(cls, ck: Any) -> LoadedModel:
        """From an ``explorer.seq2seq.checkpoint.Checkpoint``."""
        corpus = ck.corpus or {}
        name = f"{ck.config.get('arch', '?')} ({corpus.get('name', 'custom')})"
        if ck.path is not None:
            name = f"{Path(ck.path).stem} · {name}"
        return cls(
            name=name,
            model=ck.model,
            tokenizer=ck.tokenizer,
            path=Path(ck.path) if ck.path else None,
            config=dict(ck.config),
            card=dict(ck.card or {}),
            corpus=dict(corpus),
            history=list(ck.history or []),
        )


MAX_UNSAVED = 4  # trained models kept in a session without a file; the oldest beyond go


class AppState(QObject):
    """The loaded models and the current one. Panels connect to the signals.

    Every finished training run joins the models, so a session left open all day would keep every
    model ever trained. At most ``max_unsaved`` models without a file stay: adding one more drops
    the oldest unsaved one (never the current one, never one that has a file, since a checkpoint
    can always be opened again) and says so on the status bar."""

    models_changed = Signal()  # the list of loaded models changed
    current_changed = Signal(object)  # LoadedModel | None
    status = Signal(str)  # a line for the status bar
    error = Signal(str)  # an error to show (status bar and dialog)
    open_in_step = Signal(object, object)  # (LoadedModel, Trace): show this trace in Step-through

    def __init__(self, max_unsaved: int = MAX_UNSAVED) -> None:
        super().__init__()
        self.models: list[LoadedModel] = []
        self.current: LoadedModel | None = None
        self.max_unsaved = max_unsaved

    def add(self, entry: LoadedModel, *, make_current: bool = True) -> None:
        # A model loaded again from the same file replaces the old entry (and, when that was
        # the current model, as the current model: no panel may keep showing a dropped entry).
        if entry.path is not None:
            replaced = [m for m in self.models if m.path == entry.path]
            make_current = make_current or any(m is self.current for m in replaced)
            self.models = [m for m in self.models if m.path != entry.path]
        self.models.append(entry)
        dropped = self._drop_oldest_unsaved(keep=entry)
        self.models_changed.emit()
        if make_current:
            self.set_current(entry)
        if dropped:
            names = ", ".join(m.name for m in dropped)
            self.status.emit(
                f"closed {names}: only the {self.max_unsaved} newest unsaved trained models stay "
                "open (save a model to keep it)"
            )

    def _drop_oldest_unsaved(self, keep: LoadedModel) -> list[LoadedModel]:
        unsaved = [m for m in self.models if m.path is None]
        excess = len(unsaved) - self.max_unsaved
        dropped = [m for m in unsaved if m is not keep and m is not self.current][: max(excess, 0)]
        if dropped:
            self.models = [m for m in self.models if all(m is not d for d in dropped)]
        return dropped

    def set_current(self, entry: LoadedModel | None) -> None:
        if entry is self.current:
            return
        self.current = entry
        self.current_changed.emit(entry)

    def by_name(self, name: str) -> LoadedModel | None:
        return next((m for m in self.models if m.name == name), None)
