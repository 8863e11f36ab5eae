"""Turn a sentence typed by anyone into source ids a model can take, or a clear refusal.

    ids, notice = prepare_source(tokenizer, text, max_tokens=source_limit(model))
    if notice: show(notice)                     # "source truncated: kept 62 of 1,204 tokens"
    trace = greedy(model, tokenizer, ids)

Control characters (NUL included) become spaces: sentencepiece and the display never see them.
Text with nothing left to translate, or only punctuation, is refused with ``SourceTextError``.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from explorer.seq2seq.models.base import EOS

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


def prepare_source(
    tokenizer: Any, text: str, max_tokens: int = DEFAULT_MAX_TOKENS
) -> tuple[list[int], str | None]:
    """Source ids ending in EOS, at most ``max_tokens`` of them, and a notice when cut."""
    if max_tokens < 2:
        raise ValueError(f"max_tokens must be at least 2, got {max_tokens}")
    cleaned = clean_text(text)
    if not cleaned:
        what = "empty" if not text else "only spaces or control characters"
        raise SourceTextError(f"source sentence is {what}: type something to translate")
    if all(unicodedata.category(c).startswith(("P", "Z")) for c in cleaned):
        raise SourceTextError("source sentence is only punctuation: type something to translate")
    ids, total = fit_source(tokenizer, cleaned, max_tokens)
    if total is None:
        return ids, None
    notice = (
        f"source truncated: kept the first {len(ids) - 1:,} of {total} tokens "
        "(the model takes no more)"
    )
    return ids, notice


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
