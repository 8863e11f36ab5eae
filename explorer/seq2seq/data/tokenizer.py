"""Subword tokenisation with sentencepiece: training, encoding, and pieces for display.

A ``Tokenizer`` holds two sentencepiece models, one per side. A *joint* tokenizer is one model
trained on both sides and used for both. Every model has the fixed special ids of ``base``:
PAD=0, UNK=1, BOS=2, EOS=3. Encoding appends EOS and never prepends BOS (the decoder input gets
its BOS from the training loop and the decoders)::

    tok = train_tokenizer(english, french, vocab_size=1000, model_type="bpe")
    ids = tok.encode_src("the cat sleeps")     # [.., .., EOS]
    tok.src_pieces(ids)                        # ["the", "cat", "sle", "eps", "</s>"]
    tok.word_index(ids, "src")                 # [0, 1, 2, 2, -1]

Training runs in-process from Python iterables (no temporary files) and is deterministic: the
same corpus, options and seed give byte-identical models.

A tokenizer may also carry its own *vocabularies* (Marian: the sentencepiece models only split the
text into pieces and ``vocab.json`` numbers them): then ids and pieces come from those tables, whose
first four entries are the specials above, and the sentencepiece models' own ids are not used.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Protocol

import sentencepiece as spm

from explorer.seq2seq.messages import first_line
from explorer.seq2seq.models.base import BOS, EOS, PAD, SPECIAL_PIECES, UNK

MODEL_TYPES = ("bpe", "unigram")
WORD_BOUNDARY = "\u2581"  # "▁", sentencepiece's marker for "a space came before this piece"
SIDES = ("src", "tgt")

# ModelProto.trainer_spec is field 2; TrainerSpec.model_type is field 3 (UNIGRAM=1, BPE=2, ...).
_PROTO_MODEL_TYPES = {1: "unigram", 2: "bpe", 3: "word", 4: "char"}


class TokenizerError(ValueError):
    """A tokenizer could not be trained or loaded, or was asked about something it lacks."""


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise TokenizerError("truncated sentencepiece model")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _proto_field(data: bytes, number: int) -> int | bytes | None:
    """The first occurrence of field ``number`` in a serialised protobuf message, or None."""
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise TokenizerError(f"unsupported protobuf wire type {wire} in sentencepiece model")
        if field == number:
            return value
    return None


def _model_type_of(model: bytes) -> str:
    spec = _proto_field(model, 2)
    if not isinstance(spec, bytes):
        return "unigram"
    kind = _proto_field(spec, 3)
    return _PROTO_MODEL_TYPES.get(kind if isinstance(kind, int) else 1, "unigram")


def _load_processor(model: bytes, side: str, own_ids: bool = True) -> spm.SentencePieceProcessor:
    if not isinstance(model, (bytes, bytearray)) or not model:
        raise TokenizerError(f"{side} sentencepiece model is empty")
    try:
        sp = spm.SentencePieceProcessor(model_proto=bytes(model))
    except (RuntimeError, OSError) as e:
        raise TokenizerError(f"corrupt {side} sentencepiece model: {first_line(e)}") from None
    found = (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id())
    if own_ids and found != (PAD, UNK, BOS, EOS):
        raise TokenizerError(
            f"{side} sentencepiece model has special ids pad,unk,bos,eos={found}; "
            f"expected {(PAD, UNK, BOS, EOS)}"
        )
    return sp


def _train_model(
    sentences: Sequence[str], *, vocab_size: int, model_type: str, seed: int, side: str
) -> bytes:
    sentences = [s for s in sentences if s.strip()]
    if not sentences:
        raise TokenizerError(f"cannot train the {side} tokenizer: no non-empty sentences")
    spm.set_random_generator_seed(seed)
    writer = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=writer,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=1.0,
            hard_vocab_limit=False,
            pad_id=PAD,
            unk_id=UNK,
            bos_id=BOS,
            eos_id=EOS,
            num_threads=1,
            minloglevel=2,
        )
    except RuntimeError as e:
        raise TokenizerError(
            f"cannot train the {side} tokenizer (vocab_size={vocab_size}, "
            f"model_type={model_type}): {first_line(e)}"
        ) from None
    return writer.getvalue()


def train_tokenizer(
    src_sentences: Iterable[str],
    tgt_sentences: Iterable[str],
    *,
    vocab_size: int = 1000,
    model_type: str = "bpe",
    joint: bool = False,
    seed: int = 0,
) -> Tokenizer:
    """Train source and target sentencepiece models (or one joint model) on the given sentences.

    ``vocab_size`` is an upper bound: a tiny corpus gets as many pieces as it can support.
    """
    if model_type not in MODEL_TYPES:
        raise TokenizerError(
            f"unknown tokenizer model_type {model_type!r}; expected one of {', '.join(MODEL_TYPES)}"
        )
    if vocab_size < len(SPECIAL_PIECES) + 1:
        raise TokenizerError(f"vocab_size must be at least {len(SPECIAL_PIECES) + 1}")
    src, tgt = list(src_sentences), list(tgt_sentences)
    options = dict(vocab_size=vocab_size, model_type=model_type, seed=seed)
    if joint:
        model = _train_model(src + tgt, side="joint", **options)
        return Tokenizer.from_bytes(model, model)
    return Tokenizer.from_bytes(
        _train_model(src, side="source", **options), _train_model(tgt, side="target", **options)
    )


class TokenizerLike(Protocol):
    """What decoding asks of a tokenizer: :class:`Tokenizer`, or a test's small stand-in.
    (``encode_tgt``, where present, lets a target prefix be given as text.)"""

    @property
    def src_vocab_size(self) -> int: ...

    @property
    def tgt_vocab_size(self) -> int: ...

    def encode_src(self, text: str) -> list[int]: ...

    def decode_tgt(self, ids: Iterable[int]) -> str: ...

    def src_pieces(self, ids: Iterable[int]) -> list[str]: ...

    def tgt_pieces(self, ids: Iterable[int]) -> list[str]: ...

    def tgt_piece(self, id: int) -> str: ...

    def piece_to_id(self, piece: str, side: str) -> int: ...

    def unk_word_indices(self, text: str, side: str = "src") -> list[int]: ...


def _check_vocab(pieces: Sequence[str], side: str) -> tuple[str, ...]:
    pieces = tuple(pieces)
    if pieces[: len(SPECIAL_PIECES)] != SPECIAL_PIECES:
        raise TokenizerError(f"{side} vocabulary must start with {' '.join(SPECIAL_PIECES)}")
    if not all(isinstance(p, str) and p for p in pieces):
        raise TokenizerError(f"{side} vocabulary holds an empty or non-text piece")
    return pieces


class Tokenizer:
    """Source and target sentencepiece models with the fixed special ids of ``base``.

    ``vocabs`` (source pieces, target pieces), each indexed by id, replaces the sentencepiece
    models' own numbering; a piece missing from a table encodes as UNK."""

    def __init__(
        self,
        src_model: bytes,
        tgt_model: bytes,
        vocabs: tuple[Sequence[str], Sequence[str]] | None = None,
    ):
        self._models = {"src": bytes(src_model), "tgt": bytes(tgt_model)}
        own = vocabs is None
        self._sp = {
            "src": _load_processor(self._models["src"], "source", own),
            "tgt": _load_processor(self._models["tgt"], "target", own),
        }
        self._vocab: dict[str, tuple[str, ...]] | None = None
        self._ids: dict[str, dict[str, int]] = {}
        if vocabs is not None:
            self._vocab = {
                side: _check_vocab(v, name)
                for side, v, name in zip(SIDES, vocabs, ("source", "target"))
            }
            for side, table in self._vocab.items():
                ids: dict[str, int] = {}
                for i in range(len(table) - 1, len(SPECIAL_PIECES) - 1, -1):
                    ids[table[i]] = i  # the lowest id wins when a piece repeats
                self._ids[side] = ids
        self.joint: bool = self._models["src"] == self._models["tgt"] and (
            vocabs is None or self._vocab["src"] == self._vocab["tgt"]
        )
        self.model_type: str = _model_type_of(self._models["src"])

    @property
    def vocabs(self) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """The (source, target) piece tables when this tokenizer numbers pieces itself."""
        return None if self._vocab is None else (self._vocab["src"], self._vocab["tgt"])

    @classmethod
    def from_bytes(cls, src_model: bytes, tgt_model: bytes) -> Tokenizer:
        return cls(src_model, tgt_model)

    def to_bytes(self) -> tuple[bytes, bytes]:
        if self._vocab is not None:
            raise TokenizerError("a tokenizer with its own vocabularies (Marian) has no byte form")
        return self._models["src"], self._models["tgt"]

    def __repr__(self) -> str:
        kind = "joint" if self.joint else "separate"
        return (
            f"Tokenizer({self.model_type}, {kind}, src_vocab={self.src_vocab_size}, "
            f"tgt_vocab={self.tgt_vocab_size})"
        )

    # sizes -----------------------------------------------------------------------------------

    @property
    def src_vocab_size(self) -> int:
        return self.vocab_size("src")

    @property
    def tgt_vocab_size(self) -> int:
        return self.vocab_size("tgt")

    def vocab_size(self, side: str) -> int:
        sp = self._processor(side)
        return sp.get_piece_size() if self._vocab is None else len(self._vocab[side])

    # encoding and decoding -------------------------------------------------------------------

    def encode_src(self, text: str) -> list[int]:
        """Source piece ids followed by EOS."""
        return self._encode(text, "src") + [EOS]

    def encode_tgt(self, text: str) -> list[int]:
        """Target piece ids followed by EOS (no BOS)."""
        return self._encode(text, "tgt") + [EOS]

    def _encode(self, text: str, side: str) -> list[int]:
        sp = self._processor(side)
        if self._vocab is None:
            return sp.encode(text)
        ids = self._ids[side]
        return [ids.get(p, UNK) for p in sp.encode(text, out_type=str)]

    def decode_src(self, ids: Iterable[int]) -> str:
        return self._decode(ids, "src")

    def decode_tgt(self, ids: Iterable[int]) -> str:
        """Text of the ids up to the first EOS; PAD, BOS and EOS are dropped."""
        return self._decode(ids, "tgt")

    def _decode(self, ids: Iterable[int], side: str) -> str:
        sp = self._processor(side)
        kept = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i in (PAD, BOS):
                continue
            self._check_id(i, side)
            kept.append(i)
        if self._vocab is None:
            return sp.decode(kept)
        return sp.decode_pieces([self._vocab[side][i] for i in kept])

    # pieces for display ----------------------------------------------------------------------

    def src_pieces(self, ids: Iterable[int]) -> list[str]:
        return [self.piece(i, "src") for i in ids]

    def tgt_pieces(self, ids: Iterable[int]) -> list[str]:
        return [self.piece(i, "tgt") for i in ids]

    def tgt_piece(self, id: int) -> str:
        return self.piece(id, "tgt")

    def src_piece(self, id: int) -> str:
        return self.piece(id, "src")

    def piece(self, id: int, side: str) -> str:
        """The display string of one id: the word-boundary marker removed, specials as
        ``<pad> <unk> <s> </s>``. A piece that is only the marker shows as "▁"."""
        i = int(id)
        self._check_id(i, side)
        if i < len(SPECIAL_PIECES):
            return SPECIAL_PIECES[i]
        raw = self._id_to_piece(i, side)
        return raw.replace(WORD_BOUNDARY, "") or WORD_BOUNDARY

    def raw_piece(self, id: int, side: str) -> str:
        """The piece as sentencepiece stores it, with its "▁" marker."""
        i = int(id)
        self._check_id(i, side)
        return self._id_to_piece(i, side)

    def word_index(self, ids: Iterable[int], side: str = "src") -> list[int]:
        """For each id, the index of the whitespace-separated word it belongs to (specials: -1).

        A piece starts a new word when it carries the "▁" marker; with sentencepiece's default
        normalisation (whitespace collapsed, a marker before the first word) the word indices
        of ``encode(text)`` run over ``range(len(text.split()))``.
        """
        out, word = [], -1
        for i in ids:
            i = int(i)
            self._check_id(i, side)
            if i < len(SPECIAL_PIECES) and i != UNK:
                out.append(-1)
                continue
            if word < 0 or self._id_to_piece(i, side).startswith(WORD_BOUNDARY):
                word += 1
            out.append(word)
        return out

    def unk_word_indices(self, text: str, side: str = "src") -> list[int]:
        """Indices of the whitespace-separated words of ``text`` with a piece that encodes as
        UNK, each once, in order (the pieces as sentencepiece cut them, so a piece outside a
        Marian table counts for its own word)."""
        sp = self._processor(side)
        out, word = [], -1
        for piece, i in zip(sp.encode(text, out_type=str), self._encode(text, side), strict=True):
            if word < 0 or piece.startswith(WORD_BOUNDARY):
                word += 1
            if i == UNK and (not out or out[-1] != word):
                out.append(word)
        return out

    def piece_to_id(self, piece: str, side: str = "tgt") -> int:
        """The id of a piece a user typed. Specials are written ``<s> </s> <unk> <pad>``; a piece
        without the "▁" marker means the word-initial piece when the vocabulary has one, and the
        word-internal piece otherwise."""
        sp = self._processor(side)
        if piece in SPECIAL_PIECES:
            return SPECIAL_PIECES.index(piece)
        if not piece or piece.strip() != piece:
            raise TokenizerError(f"not a {side} piece: {piece!r}")
        candidates = [piece] if piece.startswith(WORD_BOUNDARY) else [WORD_BOUNDARY + piece, piece]
        for candidate in candidates:
            if self._vocab is None:
                i = sp.piece_to_id(candidate)
            else:
                i = self._ids[side].get(candidate, UNK)
            if i != UNK:
                return i
        raise TokenizerError(f"no piece {piece!r} in the {side} vocabulary")

    # helpers ---------------------------------------------------------------------------------

    def _processor(self, side: str) -> spm.SentencePieceProcessor:
        if side not in SIDES:
            raise TokenizerError(f"side must be 'src' or 'tgt', not {side!r}")
        return self._sp[side]

    def _id_to_piece(self, i: int, side: str) -> str:
        if self._vocab is None:
            return self._sp[side].id_to_piece(i)
        return self._vocab[side][i]

    def _check_id(self, i: int, side: str) -> None:
        size = self.vocab_size(side)
        if not 0 <= i < size:
            raise TokenizerError(f"token id {i} is outside the {side} vocabulary (size {size})")
