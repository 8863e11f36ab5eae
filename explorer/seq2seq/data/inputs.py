"""Turn a sentence typed by anyone into source ids a model can take, or a clear refusal.

The one input policy of the command line and the GUI alike::

    source = prepare_source(tokenizer, text, source_limit(model), corpus=checkpoint.corpus)
    if source.notice: show(source.notice)       # "source truncated: kept 62 of 1,204 tokens"
    if source.outside: show(source.outside)     # "never seen in training: airport"
    trace = greedy(model, tokenizer, source)    # or: ids, notice = prepare_source(...)

Control characters (NUL included) become spaces: sentencepiece and the display never see them.
A model trained on the classroom corpus reads its sentences as that corpus writes them (lowercase,
no punctuation). Text with nothing left to translate, or only punctuation, is refused with
``SourceTextError``. Words the model never saw in training and words with a piece that
became ``<unk>`` are listed on the prepared source (``data/words.py``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from explorer.seq2seq.data.words import outside_notice, unk_words, unseen_words
from explorer.seq2seq.decoding.decode import Source
from explorer.seq2seq.models.base import EOS

if TYPE_CHECKING:
    from explorer.seq2seq.data.tokenizer import TokenizerLike

DEFAULT_MAX_TOKENS = 256
MAX_CHARS_PER_TOKEN = 64  # sentencepiece's pieces are at most 16 characters by default


class SourceTextError(ValueError):
    """A source sentence that cannot be translated (empty, only spaces or control characters)."""


def clean_text(text: str) -> str:
    """Control and format characters other than the right-to-left marks become spaces."""
    if not isinstance(text, str):
        raise SourceTextError(f"source must be text, got {type(text).__name__}")
    keep = {"\u200e", "\u200f", "\u200d"}  # LRM, RLM, ZWJ (emoji sequences)
    chars = [
        " "
        if unicodedata.category(c) in ("Cc", "Cs")
        or (c not in keep and unicodedata.category(c) == "Cf")
        else c
        for c in text
    ]
    return " ".join("".join(chars).split())


def source_limit(model: Any, default: int = DEFAULT_MAX_TOKENS) -> int:
    """The most source tokens (EOS included) the model takes: its config's max_len, if any."""
    limit = getattr(getattr(model, "config", None), "max_len", None)
    return int(limit) if isinstance(limit, int) and limit > 0 else default


def corpus_text(text: str, corpus: Mapping[str, Any] | None = None) -> str:
    """``text`` as the model's corpus writes it: control characters become spaces and white space
    is folded; for the classroom corpus also lowercase, without punctuation. ``corpus``: the
    checkpoint's corpus description (its ``name`` decides)."""
    cleaned = clean_text(text)
    if (corpus or {}).get("name") == "classroom":
        from explorer.seq2seq.data.classroom_grammar import normalize

        return normalize(cleaned)
    return cleaned


@dataclass(frozen=True)
class PreparedSource(Source):
    """A typed sentence made ready: ``text`` as the corpus writes it, ``ids`` (EOS included, at
    most the model's limit) and a ``notice`` when the sentence was cut. ``unseen``: its words the
    model never saw in training (None: the checkpoint does not record them, as for Marian
    models); ``unknown``: its words with a piece that became ``<unk>``. Every decoder takes it as
    its source; it also unpacks as ``ids, notice``."""

    notice: str | None = None
    unseen: tuple[str, ...] | None = None
    unknown: tuple[str, ...] = ()

    @property
    def outside(self) -> str | None:
        """One line on what lies outside the model's world ("never seen in training: zebra,
        airport; became <unk>: pizza"), or None."""
        return outside_notice(self.unseen, self.unknown)

    def __iter__(self) -> Iterator:
        return iter((list(self.ids), self.notice))


def _nothing_left(text: str, corpus: Mapping[str, Any] | None) -> SourceTextError:
    if clean_text(text):
        name = (corpus or {}).get("name")
        return SourceTextError(
            f"source sentence {text!r} has no words the {name} model reads (only punctuation): "
            "type something to translate"
        )
    what = "empty" if not text else "only spaces or control characters"
    return SourceTextError(f"source sentence is {what}: type something to translate")


def prepare_source(
    tokenizer: TokenizerLike,
    text: str,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    *,
    corpus: Mapping[str, Any] | None = None,
) -> PreparedSource:
    """The sentence as the model reads it (:func:`corpus_text`), encoded: at most ``max_tokens``
    ids ending in EOS, with a notice when cut, and the words outside the model's world."""
    if max_tokens < 2:
        raise ValueError(f"max_tokens must be at least 2, got {max_tokens}")
    prepared = corpus_text(text, corpus)
    if not prepared:
        raise _nothing_left(text, corpus)
    if all(unicodedata.category(c).startswith(("P", "Z")) for c in prepared):
        raise SourceTextError("source sentence is only punctuation: type something to translate")
    ids, total = fit_source(tokenizer, prepared, max_tokens)
    read = prepared[: max_tokens * MAX_CHARS_PER_TOKEN]  # what fit_source encoded
    world = {"unseen": unseen_words(read, corpus), "unknown": unk_words(tokenizer, read, ids)}
    if total is None:
        return PreparedSource(prepared, tuple(ids), **world)
    notice = (
        f"source truncated: kept the first {len(ids) - 1:,} of {total} tokens "
        "(the model takes no more)"
    )
    return PreparedSource(prepared, tuple(ids), notice, **world)


def fit_source(tokenizer: Any, text: str, max_tokens: int) -> tuple[list[int], str | None]:
    """Source ids ending in EOS, cut to ``max_tokens``, and how many tokens the text had (as
    text, e.g. "1,204" or "more than 255") when it was cut, else None. The text is cut before
    encoding: a piece covers at most a few characters, so the cut keeps every token the model
    can take and spares encoding a whole book pasted in."""
    cut = text[: max_tokens * MAX_CHARS_PER_TOKEN]
    ids = [int(i) for i in tokenizer.encode_src(cut)]
    if cut == text and len(ids) <= max_tokens:
        return ids, None
    kept = min(len(ids), max_tokens) - 1
    total = f"{len(ids) - 1:,}" if cut == text else f"more than {kept:,}"
    return ids[:kept] + [EOS], total
