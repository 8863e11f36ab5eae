"""Evaluate a model on a set of sentence pairs: BLEU, chrF, BLEU by source length, and the
alignment error rate of its attention against gold word alignments."""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

import numpy as np

from explorer.seq2seq.models.base import Seq2Seq

LENGTH_BUCKETS = ((2, 10), (11, 20), (21, 30), (31, 40))
CLASSROOM_PRESET = "classroom-bahdanau"  # every bundled classroom model shares its corpus split


@lru_cache(maxsize=1)
def _classroom_test_split() -> tuple[tuple[str, str], ...]:
    from explorer.seq2seq.training.train import TrainOptions, load_splits

    _, (_, _, test) = load_splits(TrainOptions.from_preset(CLASSROOM_PRESET))
    return tuple(test.pairs)


CLASSROOM_LANGUAGES = ("en", "fr")  # the classroom corpus: English → French


def not_for_classroom(corpus: dict) -> str | None:
    """Why a model trained on ``corpus`` (a checkpoint's corpus record) is not scored on the
    classroom test set: it translates another pair of languages (German → English scores 0 on
    English → French, which says nothing of the model). None when it may be, or when the record
    names no languages."""
    src, tgt = corpus.get("src_lang"), corpus.get("tgt_lang")
    if src and tgt and (src, tgt) != CLASSROOM_LANGUAGES:
        return f"{src}→{tgt}, not the classroom test set's en→fr"
    return None


def classroom_test_pairs(n: int | None = None) -> list[tuple[str, str]]:
    """The first ``n`` (all when None) pairs of the classroom test split the bundled models never
    saw: exactly the split ``load_splits`` makes for the classroom presets."""
    pairs = _classroom_test_split()
    return list(pairs if n is None else pairs[: max(0, int(n))])


def translate_all(
    model: Seq2Seq, tokenizer, srcs: list[str], *, batch_size: int = 64, beam: int | None = None
) -> list[str]:
    """Greedy (or, with ``beam`` > 1, beam-search) translations of ``srcs``, in batches."""
    from explorer.seq2seq.decoding.decode import greedy_batch

    if not (beam and beam > 1):
        return [
            tokenizer.decode_tgt(ids)
            for ids in greedy_batch(model, tokenizer, srcs, batch_size=batch_size)
        ]
    from explorer.seq2seq.decoding.beam import beam_search

    hyps = []
    for i in range(0, len(srcs), batch_size):
        batch = srcs[i : i + batch_size]
        for r in beam_search(
            model, tokenizer, batch, beam=beam, record_tree=False, with_greedy=False
        ):
            hyps.append(r.nbest[0].text)
    return hyps


def alignment_scores(
    model: Seq2Seq,
    tokenizer,
    pairs: list[tuple[str, str]],
    alignments: list,
    fitted: list[tuple[list[int], str | None]],
    limit: int,
) -> dict[str, float]:
    """``aer`` and ``attention_entropy`` of the attention teacher-forced along the references;
    empty when the model has no attention. ``fitted``: each source's ids as :func:`fit_source`
    cut them; a pair whose source was cut, or whose reference is longer than ``limit``, is left
    out (gold links of words the model never saw, or positions it lacks)."""
    from explorer.seq2seq.decoding.decode import teacher_forced
    from explorer.seq2seq.metrics import alignment_error_rate, attention_entropy, word_alignment

    predicted, gold, entropies = [], [], []
    for (_, ref), sure, (ids, cut) in zip(pairs, alignments, fitted):
        if cut is not None or len(tokenizer.encode_tgt(ref)) >= limit:
            continue
        tr = teacher_forced(model, tokenizer, ids, ref)
        attn = tr.attention_matrix()
        if attn is None:
            break
        predicted.append(
            word_alignment(
                attn,
                tokenizer.word_index(list(tr.src_tokens), side="src"),
                tokenizer.word_index(tr.tokens, side="tgt"),
            )
        )
        gold.append(set(map(tuple, sure)))
        entropies.append(attention_entropy(attn))
    if not predicted:
        return {}
    return {
        "aer": alignment_error_rate(predicted, gold),
        "attention_entropy": float(np.mean(entropies)),
    }


def evaluate_pairs(
    model: Seq2Seq,
    tokenizer,
    pairs: list[tuple[str, str]],
    alignments: list | None = None,
    *,
    batch_size: int = 64,
    beam: int | None = None,
    max_aer_sentences: int = 500,
) -> dict[str, Any]:
    """Greedy (or beam) translations of ``pairs`` scored against their references.

    Returns ``bleu``, ``chrf``, ``by_length`` (buckets shortest first, each with ``range``,
    ``count`` and ``bleu``), ``sentences``, ``seconds``, and, when the model has attention and
    gold alignments are given, ``aer`` and ``attention_entropy`` (teacher-forced along the
    references, over at most ``max_aer_sentences`` pairs).
    """
    from explorer.seq2seq.data.inputs import fit_source, source_limit
    from explorer.seq2seq.metrics import bleu_by_length, corpus_bleu, corpus_chrf

    model.eval()
    srcs = [s for s, _ in pairs]
    limit = source_limit(model)
    fitted = [fit_source(tokenizer, s, limit) for s in srcs]  # cut to what the model takes
    inputs = [ids for ids, _ in fitted]
    refs = [t for _, t in pairs]
    t0 = time.perf_counter()
    hyps = translate_all(model, tokenizer, inputs, batch_size=batch_size, beam=beam)
    seconds = time.perf_counter() - t0
    out: dict[str, Any] = {
        "sentences": len(pairs),
        "bleu": corpus_bleu(hyps, refs),
        "chrf": corpus_chrf(hyps, refs),
        "by_length": bleu_by_length(srcs, hyps, refs, buckets=LENGTH_BUCKETS),
        "seconds": round(seconds, 2),
        "avg_length": float(np.mean([len(h.split()) for h in hyps])) if hyps else 0.0,
        "hypotheses": hyps,
    }
    if alignments and getattr(model, "arch", "") != "none":
        n = max_aer_sentences
        out.update(alignment_scores(model, tokenizer, pairs[:n], alignments[:n], fitted[:n], limit))
    return out
