"""Small random Marian models saved by Hugging Face ``transformers`` (a test-only dependency),
in the folder layout of the real opus-mt models: config.json, model.safetensors, source.spm,
target.spm, vocab.json (and target_vocab.json when the vocabularies are separate)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import sentencepiece as spm
import torch

EN = [
    "the cat sleeps on the mat",
    "a dog runs in the park",
    "there is a cat at the station",
    "i love you",
    "hello world",
    "the black cat sees the white dog",
    "we eat bread and drink water",
]
FR = [
    "le chat dort sur le tapis",
    "un chien court dans le parc",
    "il y a un chat à la gare",
    "je t'aime",
    "bonjour le monde",
    "le chat noir voit le chien blanc",
    "nous mangeons du pain et buvons de l'eau",
]

TINY = dict(
    d_model=16,
    encoder_layers=2,
    decoder_layers=2,
    encoder_attention_heads=2,
    decoder_attention_heads=2,
    encoder_ffn_dim=32,
    decoder_ffn_dim=32,
)


def _spm(sentences: list[str], size: int) -> bytes:
    writer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences * 3),
        model_writer=writer,
        vocab_size=size,
        model_type="unigram",
        hard_vocab_limit=False,
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
    )
    return writer.getvalue()


def _vocab(models: list[bytes]) -> dict[str, int]:
    """As Marian's converter writes it: </s> = 0, <unk> = 1, the pieces, <pad> last."""
    vocab = {"</s>": 0, "<unk>": 1}
    for model in models:
        sp = spm.SentencePieceProcessor(model_proto=model)
        for i in range(sp.get_piece_size()):
            piece = sp.id_to_piece(i)
            if piece not in vocab and piece not in ("<s>", "<unk>", "</s>"):
                vocab[piece] = len(vocab)
    vocab["<pad>"] = len(vocab)
    return vocab


def build_marian(
    folder: Path,
    *,
    separate: bool = False,
    seed: int = 0,
    std: float = 0.3,
    eos_bias: float = 6.0,
    vocab_size: int = 60,
    **config,
):
    """A random MarianMTModel saved into ``folder``; returns the (eval-mode) HF model.

    Weights are drawn wider than Marian's init (std) so that the distributions are peaked and
    decisions are not near-ties, and the end-of-sentence logit gets a bias so that hypotheses
    of several lengths finish."""
    from transformers import MarianConfig, MarianMTModel

    folder.mkdir(parents=True, exist_ok=True)
    src_spm, tgt_spm = _spm(EN, vocab_size), _spm(FR, vocab_size)
    (folder / "source.spm").write_bytes(src_spm)
    (folder / "target.spm").write_bytes(tgt_spm)
    if separate:
        src_vocab, tgt_vocab = _vocab([src_spm]), _vocab([tgt_spm])
        # Marian's encoder embedding takes the (target) pad id as its padding index, so the source
        # vocabulary must be the larger one: add pieces no sentencepiece model produces
        pad = src_vocab.pop("<pad>")
        while len(src_vocab) < len(tgt_vocab) + 5:
            src_vocab[f"\u2581unused{len(src_vocab)}"] = len(src_vocab)
        src_vocab["<pad>"] = len(src_vocab)
        (folder / "target_vocab.json").write_text(json.dumps(tgt_vocab))
    else:
        src_vocab = tgt_vocab = _vocab([src_spm, tgt_spm])
    (folder / "vocab.json").write_text(json.dumps(src_vocab))
    pad = len(tgt_vocab) - 1
    cfg = MarianConfig(
        vocab_size=len(src_vocab),
        decoder_vocab_size=len(tgt_vocab),
        share_encoder_decoder_embeddings=not separate,
        pad_token_id=pad,
        decoder_start_token_id=pad,
        eos_token_id=0,
        forced_eos_token_id=None,
        max_position_embeddings=64,
        **{**TINY, **config},
    )
    torch.manual_seed(seed)
    model = MarianMTModel(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
            elif p.dim() == 2:
                p.normal_(0.0, std)
        model.final_logits_bias.normal_(0.0, 1.0)
        model.final_logits_bias[0, 0] = eos_bias
    model.generation_config.bad_words_ids = [[pad]]  # as the opus-mt generation configs say
    model.save_pretrained(folder)
    return model
