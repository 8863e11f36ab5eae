"""Open a Marian (opus-mt) model saved by Hugging Face as a model of our own Transformer family.

A Marian folder holds ``config.json``, ``model.safetensors`` or ``pytorch_model.bin``, the two
sentencepiece models ``source.spm`` and ``target.spm``, and ``vocab.json`` (plus
``target_vocab.json`` when source and target vocabularies are separate). Marian is a post-LN
Transformer with SiLU ("swish") feed-forward layers, sinusoidal positions laid out as [sin | cos]
halves, embeddings scaled by sqrt(d_model) and a bias on the output logits: all options of
``TransformerConfig``, so every panel and the arithmetic work on it unchanged.

Ids. Marian numbers pieces through ``vocab.json`` (``</s>`` = 0, ``<unk>`` = 1, ``<pad>`` last) and
starts the decoder with ``<pad>``. Our ids are fixed (PAD=0, UNK=1, BOS=2, EOS=3), so each side's
vocabulary is permuted: ours = [pad, unk, decoder start, eos, every other piece in Marian's order],
one row more than Marian's (BOS is a copy of the decoder-start row). PAD and BOS are never emitted
(their logits are -inf), as Marian's generation config forbids the pad token; the remaining tokens'
probabilities are therefore renormalised over them (``generate(renormalize_logits=True)``).

Nothing here imports ``transformers``; ``pytorch_model.bin`` is read with
``torch.load(weights_only=True)`` and every config field is checked.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explorer.seq2seq.data.tokenizer import Tokenizer, TokenizerError
from explorer.seq2seq.messages import first_line
from explorer.seq2seq.models.base import SPECIAL_PIECES
from explorer.seq2seq.models.transformer import TransformerConfig, TransformerSeq2Seq
from explorer.seq2seq.untrusted import NotRegularFileError, open_regular

ACTIVATIONS = {"swish": "silu", "silu": "silu", "relu": "relu", "gelu": "gelu"}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# opus-mt's files: config.json 1 kB, vocab.json ~1.5 MB, each .spm ~0.8 MB
MAX_SMALL_FILE = 64 * 2**20
HUB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_OUR_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".bin", ".json")
_LAYER_PARTS = {  # ours → Marian's, inside a layer
    "self_attn.W_q": "self_attn.q_proj",
    "self_attn.W_k": "self_attn.k_proj",
    "self_attn.W_v": "self_attn.v_proj",
    "self_attn.W_o": "self_attn.out_proj",
    "ffn.W_1": "fc1",
    "ffn.W_2": "fc2",
}
_ENCODER_NORMS = {"ln_1": "self_attn_layer_norm", "ln_2": "final_layer_norm"}
_DECODER_PARTS = {
    "cross_attn.W_q": "encoder_attn.q_proj",
    "cross_attn.W_k": "encoder_attn.k_proj",
    "cross_attn.W_v": "encoder_attn.v_proj",
    "cross_attn.W_o": "encoder_attn.out_proj",
    "ln_1": "self_attn_layer_norm",
    "ln_2": "encoder_attn_layer_norm",
    "ln_3": "final_layer_norm",
}


class MarianError(ValueError):
    """A Marian folder or hub name could not be opened: one line naming the file and the problem."""


@dataclass(frozen=True)
class MarianVocab:
    """One side's vocabulary: our pieces by our id, and the Marian id behind each of our ids."""

    pieces: tuple[str, ...]
    marian_ids: np.ndarray  # (V_ours,) our id → Marian id

    def to_ours(self, marian_ids: Any) -> list[int]:
        """Marian ids → our ids (the decoder start maps to BOS)."""
        inverse = {int(m): i for i, m in reversed(list(enumerate(self.marian_ids)))}
        return [inverse[int(m)] for m in marian_ids]


@dataclass(frozen=True)
class MarianModel:
    model: TransformerSeq2Seq
    tokenizer: Tokenizer
    src_vocab: MarianVocab
    tgt_vocab: MarianVocab
    config: dict[str, Any]  # config.json as read
    folder: Path


# ---- where a model comes from -----------------------------------------------------------------


def is_marian_source(path: str | os.PathLike) -> bool:
    """True for what ``open_marian`` should open: a folder, or a hub name (``owner/name``) that is
    not a file here. The single checkpoint-opening function asks this first."""
    p = Path(path)
    if p.is_dir():
        return True
    text = str(path)
    return not p.exists() and bool(HUB_NAME.match(text)) and not text.endswith(_OUR_SUFFIXES)


def resolve(path: str | os.PathLike) -> Path:
    """A local folder as it is; a hub name downloaded once into huggingface_hub's cache."""
    p = Path(path)
    if p.is_dir():
        return p
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise MarianError(
            f"{path}: no such file or folder; to open it as a Hugging Face hub name, "
            "install huggingface_hub (pip install huggingface_hub)"
        ) from None
    patterns = ["config.json", "*.spm", "*vocab.json", *WEIGHT_FILES]
    try:
        return Path(snapshot_download(str(path), allow_patterns=patterns))
    except Exception as e:  # offline with an empty cache, unknown name, network error, ...
        text = str(e).strip().splitlines()
        raise MarianError(
            f"{path}: no such file or folder, and fetching it as a Hugging Face hub name failed: "
            f"{text[0] if text else type(e).__name__}"
        ) from None


# ---- config.json ------------------------------------------------------------------------------


def _read_small(file: Path, what: str) -> bytes:
    """A config, vocabulary or sentencepiece file: a regular file of at most MAX_SMALL_FILE
    bytes (a FIFO would wait for ever, a device never end, a huge file exhaust memory)."""
    try:
        with open_regular(file) as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_SMALL_FILE:
                raise MarianError(f"{file}: {size:,} bytes, more than a {what} can be")
            return f.read(MAX_SMALL_FILE + 1)
    except FileNotFoundError:
        raise MarianError(f"{file}: missing ({what})") from None
    except NotRegularFileError as e:
        raise MarianError(f"{file}: is {e.kind}, not a file ({what})") from None
    except OSError as e:
        raise MarianError(f"{file}: cannot read it: {e.strerror or first_line(e)}") from None


def _read_json(file: Path, what: str) -> Any:
    data = _read_small(file, what)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise MarianError(f"{file}: not readable JSON: {first_line(e)}") from None


def _field(cfg: dict[str, Any], file: Path, name: str, kind: str, default: Any = None) -> Any:
    value = cfg.get(name, default)
    if kind == "int" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise MarianError(f"{file}: field {name!r} must be a non-negative integer, got {value!r}")
    if kind == "pos" and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise MarianError(f"{file}: field {name!r} must be a positive integer, got {value!r}")
    if kind == "bool" and not isinstance(value, bool):
        raise MarianError(f"{file}: field {name!r} must be true or false, got {value!r}")
    return value


def read_config(folder: Path) -> dict[str, Any]:
    """config.json, checked field by field; the keys of the result are what the loader uses."""
    file = folder / "config.json"
    if not file.is_file():
        raise MarianError(f"{folder}: not a Marian model folder (no config.json)")
    cfg = _read_json(file, "model config")
    if not isinstance(cfg, dict) or cfg.get("model_type") != "marian":
        kind = cfg.get("model_type") if isinstance(cfg, dict) else type(cfg).__name__
        raise MarianError(f"{file}: not a Marian model (model_type {kind!r}, expected 'marian')")
    out = {
        name: _field(cfg, file, name, "pos")
        for name in (
            "d_model",
            "encoder_layers",
            "decoder_layers",
            "encoder_attention_heads",
            "encoder_ffn_dim",
            "vocab_size",
            "max_position_embeddings",
        )
    }
    for name in ("decoder_attention_heads", "decoder_ffn_dim"):
        twin = name.replace("decoder", "encoder")
        if _field(cfg, file, name, "pos") != out[twin]:
            raise MarianError(f"{file}: field {name!r} must equal {twin!r} ({out[twin]})")
    out["decoder_vocab_size"] = _field(
        cfg, file, "decoder_vocab_size", "pos", cfg.get("decoder_vocab_size") or out["vocab_size"]
    )
    for name in ("pad_token_id", "eos_token_id", "decoder_start_token_id"):
        out[name] = _field(cfg, file, name, "int")
        if out[name] >= out["decoder_vocab_size"]:
            raise MarianError(
                f"{file}: field {name!r}={out[name]} is outside the target vocabulary"
            )
    for name, default in (
        ("scale_embedding", False),
        ("share_encoder_decoder_embeddings", True),
        ("tie_word_embeddings", True),
        ("normalize_before", False),
        ("normalize_embedding", False),
        ("add_final_layer_norm", False),
    ):
        out[name] = _field(cfg, file, name, "bool", default)
    for name in ("normalize_before", "normalize_embedding", "add_final_layer_norm"):
        if out[name]:
            raise MarianError(f"{file}: field {name!r}=true is not supported (Marian is post-LN)")
    act = cfg.get("activation_function", "gelu")
    if act not in ACTIVATIONS:
        raise MarianError(
            f"{file}: field 'activation_function'={act!r} is not one of {', '.join(ACTIVATIONS)}"
        )
    out["activation_function"] = act
    if out["d_model"] % out["encoder_attention_heads"] or out["d_model"] % 2:
        raise MarianError(f"{file}: field 'd_model' must be even and divisible by the heads")
    if out["share_encoder_decoder_embeddings"] and out["decoder_vocab_size"] != out["vocab_size"]:
        raise MarianError(f"{file}: shared embeddings need decoder_vocab_size == vocab_size")
    return out


# ---- vocabularies ------------------------------------------------------------------------------


def _read_vocab(file: Path, size: int) -> list[str]:
    """vocab.json: piece → Marian id, a bijection onto 0 .. size-1. Returns pieces by id."""
    table = _read_json(file, "vocabulary")
    if not isinstance(table, dict):
        raise MarianError(f"{file}: must be a JSON object mapping pieces to ids")
    if len(table) != size:
        raise MarianError(f"{file}: holds {len(table)} pieces but the config says {size}")
    pieces: list[str | None] = [None] * size
    for piece, i in table.items():
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < size or pieces[i]:
            raise MarianError(
                f"{file}: piece {piece!r} has id {i!r}, not a free id in 0..{size - 1}"
            )
        pieces[i] = piece
    return pieces  # type: ignore[return-value]


def _side_vocab(pieces: list[str], file: Path, eos: int, pad: int, start: int) -> MarianVocab:
    if "<unk>" not in pieces:
        raise MarianError(f"{file}: has no '<unk>' piece")
    unk = pieces.index("<unk>")
    if len({pad, unk, eos}) < 3:
        raise MarianError(f"{file}: pad, unk and eos must be three different ids")
    rest = [i for i in range(len(pieces)) if i not in (pad, unk, eos)]
    marian_ids = np.array([pad, unk, start, eos, *rest], dtype=np.int64)
    ours = SPECIAL_PIECES + tuple(pieces[i] for i in rest)
    return MarianVocab(ours, marian_ids)


def read_vocabs(folder: Path, cfg: dict[str, Any]) -> tuple[MarianVocab, MarianVocab]:
    src_file, tgt_file = folder / "vocab.json", folder / "target_vocab.json"
    separate = tgt_file.is_file()  # as Marian's tokenizer: separate_vocabs with this file
    if separate and cfg["share_encoder_decoder_embeddings"]:
        raise MarianError(
            f"{tgt_file}: separate vocabularies need unshared embeddings in config.json"
        )
    tgt_file = tgt_file if separate else src_file
    src = _read_vocab(src_file, cfg["vocab_size"])
    tgt = _read_vocab(tgt_file, cfg["decoder_vocab_size"]) if separate else src
    pad, eos, start = cfg["pad_token_id"], cfg["eos_token_id"], cfg["decoder_start_token_id"]
    if separate:  # the encoder's own specials, found by name as Marian's tokenizer does
        for piece in ("</s>", "<pad>"):
            if piece not in src:
                raise MarianError(f"{src_file}: has no {piece!r} piece")
        s_pad, s_eos = src.index("<pad>"), src.index("</s>")
        src_vocab = _side_vocab(src, src_file, s_eos, s_pad, s_pad)
    else:
        src_vocab = _side_vocab(src, src_file, eos, pad, pad)
    return src_vocab, _side_vocab(tgt, tgt_file, eos, pad, start)


def read_tokenizer(folder: Path, src: MarianVocab, tgt: MarianVocab) -> Tokenizer:
    models = []
    for name in ("source.spm", "target.spm"):
        models.append(_read_small(folder / name, "sentencepiece model"))
    try:
        return Tokenizer(models[0], models[1], vocabs=(src.pieces, tgt.pieces))
    except TokenizerError as e:
        raise MarianError(f"{folder}: {e}") from None


# ---- weights -----------------------------------------------------------------------------------


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """Marian's tensors by name, without the ``model.`` prefix. Never unpickles."""
    file = next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), None)
    if file is None:
        if (folder / "model.safetensors.index.json").is_file():
            raise MarianError(f"{folder}: sharded weights are not supported")
        raise MarianError(f"{folder}: no weights ({' or '.join(WEIGHT_FILES)})")
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            tensors = load_file(str(file), device="cpu")
        else:
            tensors = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt file, or a pickle that weights_only refuses
        raise MarianError(f"{file}: cannot read the weights: {first_line(e)}") from None
    if not isinstance(tensors, dict) or not all(
        isinstance(t, torch.Tensor) for t in tensors.values()
    ):
        raise MarianError(f"{file}: not a flat dictionary of tensors")
    _check_aliases(file, tensors)
    out = {}
    for name, t in tensors.items():
        out[name[len("model.") :] if name.startswith("model.") else name] = t.float()
    return out


def _check_aliases(file: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Tensors of a pytorch_model.bin may share storage: tied embeddings do (up to four names:
    shared, both embed_tokens and lm_head). Many names over one storage would each become a copy
    of it when converted, so a small file could claim a huge model: beyond the tied embeddings'
    share, every named byte must be stored."""
    stored: dict[int, int] = {}
    for t in tensors.values():
        s = t.untyped_storage()
        stored[s.data_ptr()] = max(stored.get(s.data_ptr(), 0), s.nbytes())
    sizes = [t.numel() * t.element_size() for t in tensors.values()]
    named = sum(sizes)
    if named > sum(stored.values()) + 3 * max(sizes, default=0):
        raise MarianError(
            f"{file}: its tensors name {named:,} bytes but store {sum(stored.values()):,}: "
            "they share storage beyond tied embeddings"
        )


class _Weights:
    """Marian's tensors, each checked for presence and shape as it is taken."""

    def __init__(self, tensors: dict[str, torch.Tensor], folder: Path):
        self.tensors, self.folder = tensors, folder

    def get(self, name: str, shape: tuple[int, ...], *alternatives: str) -> torch.Tensor:
        for n in (name, *alternatives):
            if n in self.tensors:
                t = self.tensors[n]
                if tuple(t.shape) != shape:
                    raise MarianError(
                        f"{self.folder}: weight {n!r} has shape {tuple(t.shape)}, "
                        f"the config says {shape}"
                    )
                return t
        raise MarianError(f"{self.folder}: weight {name!r} is missing")


def _layer_weights(w: _Weights, ours: str, theirs: str, D: int, F: int, parts: dict) -> dict:
    out = {}
    for mine, their in parts.items():
        if mine.startswith("ln"):
            shape_w: tuple[int, ...] = (D,)
        elif mine == "ffn.W_1":
            shape_w = (F, D)
        elif mine == "ffn.W_2":
            shape_w = (D, F)
        else:
            shape_w = (D, D)
        out[f"{ours}.{mine}.weight"] = w.get(f"{theirs}.{their}.weight", shape_w)
        out[f"{ours}.{mine}.bias"] = w.get(f"{theirs}.{their}.bias", (shape_w[0],))
    return out


def convert_weights(
    w: _Weights, cfg: dict[str, Any], src: MarianVocab, tgt: MarianVocab
) -> dict[str, torch.Tensor]:
    """Marian's state dict → ours, rows of the vocabulary matrices permuted into our ids."""
    D, F = cfg["d_model"], cfg["encoder_ffn_dim"]
    Vs, Vt = cfg["vocab_size"], cfg["decoder_vocab_size"]
    shared = ("shared.weight",) if cfg["share_encoder_decoder_embeddings"] else ()
    src_emb = w.get("encoder.embed_tokens.weight", (Vs, D), *shared)
    tgt_emb = w.get("decoder.embed_tokens.weight", (Vt, D), *shared)
    state = {
        "src_embed.tok.weight": src_emb[torch.from_numpy(src.marian_ids)],
        "tgt_embed.tok.weight": tgt_emb[torch.from_numpy(tgt.marian_ids)],
        "b_out": w.get("final_logits_bias", (1, Vt))[0, torch.from_numpy(tgt.marian_ids)],
    }
    if not cfg["tie_word_embeddings"]:
        state["W_out.weight"] = w.get("lm_head.weight", (Vt, D))[torch.from_numpy(tgt.marian_ids)]
    enc_parts = {**_LAYER_PARTS, **_ENCODER_NORMS}
    for l in range(cfg["encoder_layers"]):
        state.update(_layer_weights(w, f"encoder.{l}", f"encoder.layers.{l}", D, F, enc_parts))
    dec_parts = {**_LAYER_PARTS, **_DECODER_PARTS}
    for l in range(cfg["decoder_layers"]):
        state.update(_layer_weights(w, f"decoder.{l}", f"decoder.layers.{l}", D, F, dec_parts))
    return {k: v.contiguous() for k, v in state.items()}


def transformer_config(
    cfg: dict[str, Any], src: MarianVocab, tgt: MarianVocab
) -> TransformerConfig:
    return TransformerConfig(
        src_vocab=len(src.pieces),
        tgt_vocab=len(tgt.pieces),
        d_model=cfg["d_model"],
        heads=cfg["encoder_attention_heads"],
        enc_layers=cfg["encoder_layers"],
        dec_layers=cfg["decoder_layers"],
        d_ff=cfg["encoder_ffn_dim"],
        dropout=0.0,
        positions="sinusoidal-halves",
        norm="post",
        max_len=cfg["max_position_embeddings"],
        tie_embeddings=cfg["tie_word_embeddings"],
        activation=ACTIVATIONS[cfg["activation_function"]],
        scale_embeddings=cfg["scale_embedding"],
        output_bias=True,
        never_pad_bos=True,
    )


# ---- opening -----------------------------------------------------------------------------------


def load_marian(path: str | os.PathLike, device: str | torch.device = "cpu") -> MarianModel:
    """A Marian folder (or hub name) as a model of our Transformer family, in eval mode."""
    folder = resolve(path)
    cfg = read_config(folder)
    src, tgt = read_vocabs(folder, cfg)
    tokenizer = read_tokenizer(folder, src, tgt)
    weights = read_weights(folder)  # shapes are checked against the config before anything is built
    state = convert_weights(_Weights(weights, folder), cfg, src, tgt)
    model = TransformerSeq2Seq(transformer_config(cfg, src, tgt))
    model.load_state_dict(state, strict=True)
    model.to(device).eval()
    return MarianModel(model, tokenizer, src, tgt, cfg, folder)


def card(m: MarianModel, name: str) -> dict[str, Any]:
    c = m.config
    return {
        "name": name,
        "kind": "Marian (opus-mt) model, converted to the Transformer family",
        "folder": str(m.folder),
        "layers": f"{c['encoder_layers']}+{c['decoder_layers']}",
        "d_model": c["d_model"],
        "heads": c["encoder_attention_heads"],
        "vocabulary": f"{len(m.src_vocab.pieces) - 1} source, {len(m.tgt_vocab.pieces) - 1} target"
        + (" (shared)" if c["share_encoder_decoder_embeddings"] else " (separate)"),
        "parameters": m.model.num_parameters,
    }


def open_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> Any:
    """The Marian model at ``path`` as a ``Checkpoint`` (what ``load_checkpoint`` returns)."""
    from explorer.seq2seq.checkpoint import Checkpoint, CheckpointError

    try:
        m = load_marian(path, device)
    except MarianError as e:
        raise CheckpointError(str(e)) from None
    from explorer.seq2seq.models.families import config_to_dict

    return Checkpoint(
        model=m.model,
        tokenizer=m.tokenizer,
        config=config_to_dict(m.model.config),
        history=[],
        corpus={},
        card=card(m, str(path)),
        train_state={},
        optimizer_state=None,
        path=Path(path),
    )


def read_card(path: str | os.PathLike) -> dict[str, Any]:
    """What ``checkpoint.read_card`` reports, for a Marian folder or hub name."""
    ck = open_checkpoint(path)
    folder = Path(ck.card["folder"])
    return {
        "path": str(path),
        "config": ck.config,
        "history": [],
        "corpus": {},
        "card": ck.card,
        "train_state": {},
        "num_parameters": ck.model.num_parameters,
        "has_optimizer_state": False,
        "size_bytes": sum(f.stat().st_size for f in folder.iterdir() if f.is_file()),
    }
