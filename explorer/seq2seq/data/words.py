"""The words a model saw in training, and the words of a sentence it never saw.

A checkpoint's corpus description carries ``words``: every distinct word of the training split's
source side as the corpus's own text policy writes it (:func:`inputs.corpus_text`: for the
classroom corpus lowercase, without punctuation), sorted, each once, joined by single spaces::

    "a always am an and apple ..."

An exact list rather than a Bloom filter: a false positive would hide exactly the word a class
should be warned about, and the list is small (the classroom corpus has under 300 words, a corpus
of 30,000 real sentences some tens of thousands: a few hundred kilobytes). A corpus whose list
would pass :data:`MAX_WORDS_CHARS` records none, and its sentences are checked for ``<unk>``
pieces only. A checkpoint without the list (Marian models, older files) says "unknown" the same way.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from explorer.seq2seq.models.base import UNK

if TYPE_CHECKING:
    from explorer.seq2seq.data.inputs import PreparedSource
    from explorer.seq2seq.data.tokenizer import Tokenizer, TokenizerLike

FIELD = "words"
# The longest word list a checkpoint may carry (characters, separators included): a list read
# from a stranger's file never makes us hold more than this.
MAX_WORDS_CHARS = 4_000_000


class WordListError(ValueError):
    """A stored word list that is not one this program writes."""


def training_words(sources: Iterable[str], corpus: Mapping[str, Any] | None) -> str | None:
    """The word list of these training sources (read as :func:`inputs.corpus_text` reads a typed
    sentence), or None when it would be longer than :data:`MAX_WORDS_CHARS`."""
    from explorer.seq2seq.data.inputs import corpus_text

    words: set[str] = set()
    for text in sources:
        words.update(corpus_text(text, corpus).split())
    listed = " ".join(sorted(words))
    return listed if len(listed) <= MAX_WORDS_CHARS else None


def words_record(pairs: Iterable[tuple[str, str]], corpus: Mapping[str, Any]) -> dict[str, str]:
    """The ``words`` entry of a corpus description for these training pairs (empty when the list
    would be too long)."""
    listed = training_words((pair[0] for pair in pairs), corpus)
    return {} if listed is None else {FIELD: listed}


def check_words(value: Any) -> str:
    """``value`` if it is a word list this program writes; otherwise :class:`WordListError`
    saying what is wrong (one line)."""
    if not isinstance(value, str):
        raise WordListError(f"is a {type(value).__name__}, expected a string of words")
    if len(value) > MAX_WORDS_CHARS:
        raise WordListError(f"has {len(value):,} characters, limit {MAX_WORDS_CHARS:,}")
    words = value.split(" ")
    for i, word in enumerate(words):
        if not word or word != "".join(word.split()):
            raise WordListError(
                f"word {i + 1} is {word[:40]!r}: words are separated by single spaces"
            )
        if i and word <= words[i - 1]:
            raise WordListError(
                f"word {i + 1} {word[:40]!r} is out of order after {words[i - 1][:40]!r} "
                "(the list is sorted, each word once)"
            )
    return value


# What a word of real text may carry at its ends ("Magazine.", "„Hallo", "Tüte,"): anything but
# letters and digits.
_ENDS = re.compile(r"^\W+|\W+$")


def _core(word: str) -> str:
    """A word without the punctuation at its ends: "Magazine." and "Magazine" are one word seen."""
    return _ENDS.sub("", word)


@functools.lru_cache(maxsize=8)
def _word_set(listed: str) -> frozenset[str]:
    """The listed words and their cores (:func:`_core`)."""
    listed_words = listed.split(" ") if listed else []
    return frozenset(listed_words) | frozenset(map(_core, listed_words))


def known_words(corpus: Mapping[str, Any] | None) -> frozenset[str] | None:
    """The words the model saw in training, or None when its checkpoint does not record them."""
    listed = (corpus or {}).get(FIELD)
    return _word_set(listed) if isinstance(listed, str) else None


def _each_once(words: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(words))


def unseen_words(text: str, corpus: Mapping[str, Any] | None) -> tuple[str, ...] | None:
    """Words of ``text`` (as the corpus writes it) never seen in training, in sentence order,
    each once; None when the checkpoint does not record its training words. A word is seen
    when it, or it without the punctuation at its ends, was (the training sentences' "Magazine."
    makes a typed "Magazine" seen, and the other way round); punctuation alone is never named."""
    known = known_words(corpus)
    if known is None:
        return None
    return _each_once(
        w for w in text.split() if w not in known and _core(w) and _core(w) not in known
    )


def unk_words(tokenizer: TokenizerLike, text: str, ids: Iterable[int]) -> tuple[str, ...]:
    """Words of ``text`` with a piece that encoded as ``<unk>`` (``ids``: ``text`` encoded, read
    only to skip the search when no id is ``<unk>``), in sentence order, each once."""
    if UNK not in ids:
        return ()
    words = text.split()
    return _each_once(words[i] for i in tokenizer.unk_word_indices(text, "src") if i < len(words))


def token_marks(tokenizer: Tokenizer, source: PreparedSource) -> tuple[str, ...]:
    """One mark per source id, for a view that colours source tokens: ``"unk"`` for an ``<unk>``
    piece, ``"unseen"`` for a piece of a word never seen in training, ``""`` otherwise."""
    unseen = set(source.unseen or ())
    words = source.text.split()
    marks = []
    for i, w in zip(source.ids, tokenizer.word_index(source.ids, "src"), strict=True):
        if i == UNK:
            marks.append("unk")
        else:
            marks.append("unseen" if 0 <= w < len(words) and words[w] in unseen else "")
    return tuple(marks)


NOTICE_WORDS = 12  # words a notice names before "and N more"


def _listed(words: tuple[str, ...]) -> str:
    more = len(words) - NOTICE_WORDS
    return ", ".join(words[:NOTICE_WORDS]) + (f" and {more:,} more" if more > 0 else "")


def outside_notice(unseen: tuple[str, ...] | None, unknown: tuple[str, ...]) -> str | None:
    """One line naming what lies outside the model's world (at most :data:`NOTICE_WORDS` words
    of each kind), or None when nothing does."""
    parts = []
    if unseen:
        parts.append("never seen in training: " + _listed(unseen))
    if unknown:
        parts.append("became <unk>: " + _listed(unknown))
    return "; ".join(parts) or None
