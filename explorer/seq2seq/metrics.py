"""Translation quality (BLEU and chrF through sacrebleu) and attention diagnostics.

- ``corpus_bleu``, ``corpus_chrf``: sacrebleu's corpus scores, one reference per hypothesis.
- ``sentence_bleu_details``: the numbers behind one sentence's BLEU, for the lecture walkthrough.
- ``bleu_by_length``: BLEU per bucket of source length (attention's "long sentence" story).
- ``attention_entropy``: how spread out the attention rows are, in nats.
- ``word_alignment`` and ``alignment_error_rate``: attention as a word aligner, scored against
  gold alignments (Och & Ney 2003): AER = 1 - (|A ∩ S| + |A ∩ P|) / (|A| + |S|).

Alignments are sets of ``(source word, target word)`` index pairs, as in Pharaoh's ``i-j``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.metrics.helpers import extract_all_word_ngrams

Alignment = set[tuple[int, int]]
DEFAULT_BUCKETS = ((2, 10), (11, 20), (21, 30), (31, 40))


class MetricsError(ValueError):
    """Inputs to a metric that do not fit together (lengths, shapes, bad alignment text)."""


def _check_pairs(hyps: Sequence[str], refs: Sequence[str]) -> tuple[list[str], list[str]]:
    hyps, refs = list(hyps), list(refs)
    if len(hyps) != len(refs):
        raise MetricsError(f"{len(hyps)} hypotheses but {len(refs)} references")
    if not hyps:
        raise MetricsError("no sentences to score")
    return hyps, refs


def corpus_bleu(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """sacrebleu's corpus BLEU (13a tokenisation, 0-100)."""
    hyps, refs = _check_pairs(hyps, refs)
    return float(BLEU().corpus_score(hyps, [refs]).score)


def corpus_chrf(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """sacrebleu's corpus chrF (character 6-grams, beta 2; 0-100)."""
    hyps, refs = _check_pairs(hyps, refs)
    return float(CHRF().corpus_score(hyps, [refs]).score)


def sentence_bleu_details(hyp: str, ref: str) -> dict:
    """Everything that goes into one sentence's BLEU (sacrebleu's ``sentence_bleu``).

    Returns ``bleu``; per n-gram order 1-4: ``matches`` (clipped counts), ``totals`` (n-grams
    in the hypothesis), ``precisions`` (100·matches/totals) and ``smoothed_precisions`` (what
    the geometric mean uses: sacrebleu's "exp" smoothing replaces a zero precision by
    100 / (2^k · total) for the k-th zero); ``matched`` (the matched n-grams as strings);
    ``bp`` (brevity penalty), ``hyp_len``, ``ref_len`` (13a tokens).

    BLEU = bp · exp(mean(log smoothed_precisions)), with bp = min(1, exp(1 - ref_len/hyp_len)).
    """
    metric = BLEU(effective_order=True)
    score = metric.sentence_score(hyp, [ref])
    order = metric.max_ngram_order
    hyp_ngrams, _ = extract_all_word_ngrams(metric.tokenizer(hyp.rstrip()), 1, order)
    ref_ngrams, _ = extract_all_word_ngrams(metric.tokenizer(ref.rstrip()), 1, order)
    matched: list[list[str]] = [[] for _ in range(order)]
    for ngram, count in hyp_ngrams.items():
        clipped = min(count, ref_ngrams.get(ngram, 0))
        matched[len(ngram) - 1].extend([" ".join(ngram)] * clipped)
    return {
        "bleu": float(score.score),
        "matches": [int(m) for m in score.counts],
        "totals": [int(t) for t in score.totals],
        "precisions": [
            100.0 * m / t if t else 0.0 for m, t in zip(score.counts, score.totals, strict=True)
        ],
        "smoothed_precisions": [float(p) for p in score.precisions],
        "matched": [sorted(m) for m in matched],
        "bp": float(score.bp),
        "hyp_len": int(score.sys_len),
        "ref_len": int(score.ref_len),
    }


def bleu_by_length(
    srcs: Sequence[str],
    hyps: Sequence[str],
    refs: Sequence[str],
    buckets: Sequence[tuple[int, int]] = DEFAULT_BUCKETS,
) -> list[dict]:
    """Corpus BLEU of the sentences in each bucket of source word count, shortest first.

    Each entry is ``{"range": [lo, hi], "label": "lo-hi", "count": n, "bleu": b}`` with
    ``bleu`` None for an empty bucket. Sources longer than the last bucket go to an extra
    ``[last + 1, None]`` bucket (label ``"41+"``), and sources shorter than the first to an
    extra ``[0, first - 1]`` bucket, each only when such sentences exist.
    """
    hyps, refs = _check_pairs(hyps, refs)
    srcs = list(srcs)
    if len(srcs) != len(hyps):
        raise MetricsError(f"{len(srcs)} sources but {len(hyps)} hypotheses")
    buckets = [(int(lo), int(hi)) for lo, hi in buckets]
    if not buckets:
        raise MetricsError("no length buckets given")
    contiguous = all(buckets[k][1] + 1 == buckets[k + 1][0] for k in range(len(buckets) - 1))
    if not contiguous or not all(0 <= lo <= hi for lo, hi in buckets):
        raise MetricsError(f"length buckets must be contiguous ranges, got {buckets}")
    first, last = buckets[0][0], buckets[-1][1]
    lengths = [len(s.split()) for s in srcs]
    ranges: list[tuple[int, int | None]] = list(buckets)
    if any(n < first for n in lengths):
        ranges.insert(0, (0, first - 1))
    if any(n > last for n in lengths):
        ranges.append((last + 1, None))
    out = []
    for lo, hi in ranges:
        members = [i for i, n in enumerate(lengths) if lo <= n and (hi is None or n <= hi)]
        bleu = None
        if members:
            bleu = corpus_bleu([hyps[i] for i in members], [refs[i] for i in members])
        label = f"{lo}+" if hi is None else f"{lo}-{hi}"
        out.append({"range": [lo, hi], "label": label, "count": len(members), "bleu": bleu})
    return out


def attention_entropy(attn: np.ndarray) -> float:
    """Mean entropy (nats) of the attention rows: ``attn`` is (T, S) or (..., S), each row a
    distribution over source positions. 0 for one-hot rows, log S for uniform ones."""
    p = np.asarray(attn, dtype=np.float64)
    if p.ndim < 1 or p.size == 0:
        raise MetricsError(f"attention must be a non-empty (T, S) array, got shape {p.shape}")
    if np.any(p < 0) or not np.all(np.isfinite(p)):
        raise MetricsError("attention weights must be finite and non-negative")
    rows = p.reshape(-1, p.shape[-1])  # (T, S)
    plogp = np.where(rows > 0, rows * np.log(np.where(rows > 0, rows, 1.0)), 0.0)
    return float(-plogp.sum(axis=1).mean())


def word_alignment(
    attn: np.ndarray, src_word_index: Sequence[int], tgt_word_index: Sequence[int]
) -> Alignment:
    """Hard word alignment read off subword attention.

    ``attn`` (T_pieces, S_pieces); ``*_word_index[k]`` is the word of piece k, -1 for EOS and
    other specials (dropped). The attention a target piece pays to a source word is the sum over
    that word's pieces; a target word's row is the mean of its pieces' rows; each target word is
    aligned to the source word it attends to most. Returns ``{(source word, target word)}``.
    """
    a = np.asarray(attn, dtype=np.float64)
    src_index = np.asarray(src_word_index, dtype=np.int64)
    tgt_index = np.asarray(tgt_word_index, dtype=np.int64)
    if a.ndim != 2 or a.shape != (len(tgt_index), len(src_index)):
        raise MetricsError(
            f"attention has shape {a.shape} but there are {len(tgt_index)} target and "
            f"{len(src_index)} source word indices"
        )
    n_src = int(src_index.max(initial=-1)) + 1
    n_tgt = int(tgt_index.max(initial=-1)) + 1
    if n_src == 0 or n_tgt == 0:
        return set()
    src_onehot = _one_hot(src_index, n_src)  # (S_pieces, S_words), zero rows for specials
    tgt_onehot = _one_hot(tgt_index, n_tgt)  # (T_pieces, T_words)
    counts = tgt_onehot.sum(axis=0)  # (T_words,) pieces per target word
    rows = tgt_onehot.T @ a @ src_onehot  # (T_words, S_words) summed over pieces
    alignment = set()
    for j in range(n_tgt):
        if counts[j] > 0:
            alignment.add((int(np.argmax(rows[j] / counts[j])), j))
    return alignment


def _one_hot(index: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((len(index), n))
    keep = index >= 0
    out[np.flatnonzero(keep), index[keep]] = 1.0
    return out


def alignment_error_rate(
    predicted: Sequence[Alignment],
    sure: Sequence[Alignment],
    possible: Sequence[Alignment] | None = None,
) -> float:
    """Corpus AER = 1 - (|A ∩ S| + |A ∩ P|) / (|A| + |S|), counts summed over sentences.

    ``possible`` defaults to ``sure``; the sure links are always counted as possible (P ⊇ S).
    Lower is better; 0 when every predicted link is possible and every sure link predicted.
    With nothing predicted and nothing sure the rate is 0.
    """
    predicted, sure = list(predicted), list(sure)
    possible = list(sure) if possible is None else list(possible)
    if not len(predicted) == len(sure) == len(possible):
        raise MetricsError(
            f"{len(predicted)} predicted, {len(sure)} sure and {len(possible)} possible "
            "alignments: one of each per sentence"
        )
    a_and_s = a_and_p = n_a = n_s = 0
    for A, S, P in zip(predicted, sure, possible, strict=True):
        A, S = set(A), set(S)
        P = set(P) | S
        a_and_s += len(A & S)
        a_and_p += len(A & P)
        n_a += len(A)
        n_s += len(S)
    if n_a + n_s == 0:
        return 0.0
    return 1.0 - (a_and_s + a_and_p) / (n_a + n_s)


def read_pharaoh(lines: Iterable[str]) -> list[Alignment]:
    """One alignment per line (``"0-0 1-2 2-1"``: source word, target word), e.g. from a gold
    ``.align`` file, each as a set of links."""
    from explorer.seq2seq.data.corpus import CorpusError, parse_pharaoh

    try:
        return [set(parse_pharaoh(line, f"line {n}")) for n, line in enumerate(lines, start=1)]
    except CorpusError as e:
        raise MetricsError(str(e)) from None
