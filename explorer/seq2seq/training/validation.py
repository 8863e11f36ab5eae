"""What a training run measures on its validation split: the loss, BLEU, the probe sentence's
attention, and the advice they suggest when training goes wrong."""

from __future__ import annotations

import math

import torch
from torch import nn

from explorer.seq2seq.decoding.decode import pad_sources
from explorer.seq2seq.metrics import attention_entropy
from explorer.seq2seq.models.base import BOS, PAD, Seq2Seq
from explorer.seq2seq.training.options import Probe

# A sentence whose attention map is drawn at every evaluation, per built-in corpus; other corpora
# use their first validation pair.
PROBES = {
    "classroom": (
        "the black cat that i saw yesterday sat",
        "le chat noir que j'ai vu hier s'est assis",
    ),
    "reverse": ("a b c d e f g", "g f e d c b a"),
    "copy": ("a b c d e f g", "a b c d e f g"),
}


def probe_pair(corpus: str, valid_pairs: list, train_pairs: list) -> tuple[str, str]:
    if corpus in PROBES:
        return PROBES[corpus]
    return valid_pairs[0] if valid_pairs else train_pairs[0]


@torch.no_grad()
def validation_loss(
    model: Seq2Seq, src_ids: list[list[int]], tgt_ids: list[list[int]], device: torch.device
) -> float:
    """Mean cross-entropy per target token, teacher-forced, in batches of 128 sentences."""
    loss_fn = nn.CrossEntropyLoss(ignore_index=PAD, reduction="sum")
    tot, ntok = 0.0, 0
    for i in range(0, len(src_ids), 128):
        src, src_len = pad_sources(src_ids[i : i + 128], device)
        tgt, _ = pad_sources([[BOS] + t for t in tgt_ids[i : i + 128]], device)
        tgt_out = tgt[:, 1:]
        keep = tgt_out != PAD
        logits = model.logits(src, src_len, tgt[:, :-1], keep)  # (N, V), no attention weights
        tot += float(loss_fn(logits.float(), tgt_out[keep]))
        ntok += int(keep.sum())
    return tot / max(1, ntok)


@torch.no_grad()
def validation_bleu(model: Seq2Seq, tokenizer, pairs: list[tuple[str, str]]) -> float | None:
    """Corpus BLEU of greedy translations of ``pairs``; None when there are none."""
    from explorer.seq2seq.decoding.decode import greedy_batch
    from explorer.seq2seq.metrics import corpus_bleu

    if not pairs:
        return None
    hyps = greedy_batch(model, tokenizer, [s for s, _ in pairs])
    return corpus_bleu([tokenizer.decode_tgt(h) for h in hyps], [t for _, t in pairs])


@torch.no_grad()
def probe(model: Seq2Seq, tokenizer, pair: tuple[str, str], step: int) -> Probe:
    """The probe's teacher-forced attention along its reference, and its greedy translation."""
    from explorer.seq2seq.decoding.decode import greedy_batch, teacher_forced

    src, ref = pair
    tf = teacher_forced(model, tokenizer, src, ref)
    attn = tf.attention_matrix()
    out = tokenizer.decode_tgt(greedy_batch(model, tokenizer, [src])[0])
    entropy = attention_entropy(attn) if attn is not None else None
    words = tokenizer.word_index(tf.src_tokens, "src"), tokenizer.word_index(tf.tokens, "tgt")
    return Probe(step, list(tf.src_pieces), tf.pieces, attn, entropy, out, *words)


def diagnoses(p: Probe, total: int) -> list[str]:
    """Advice when the probe shows a known failure: attention that stays uniform past the early
    phase, or a translation that repeats a token (mode collapse)."""
    found = []
    if p.attention is not None and p.step >= 0.3 * total and p.entropy is not None:
        uniform = math.log(max(2, p.attention.shape[1]))
        if p.entropy > 0.9 * uniform:
            found.append(
                "Attention is still close to uniform after the early phase: "
                "check the score function (and that the encoder states reach it)."
            )
    words = p.output.split()
    if len(words) >= 4 and any(
        words[i] == words[i + 1] == words[i + 2] for i in range(len(words) - 2)
    ):
        found.append(
            f"The probe translation repeats a token ({p.output!r}): mode collapse. "
            "Keep teacher forcing higher for longer, or add dropout (0.3)."
        )
    return found
