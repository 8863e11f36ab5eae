import math

import numpy as np
import pytest
import sacrebleu

from explorer.seq2seq.metrics import (
    MetricsError,
    alignment_error_rate,
    attention_entropy,
    bleu_by_length,
    corpus_bleu,
    corpus_chrf,
    read_pharaoh,
    sentence_bleu_details,
    word_alignment,
)

# BLEU and chrF ------------------------------------------------------------------------------


def test_identical_corpus_scores_100_and_disjoint_scores_0():
    refs = ["the cat sat on the mat", "a dog is in the garden today"]
    assert corpus_bleu(refs, refs) == pytest.approx(100.0)
    assert corpus_chrf(refs, refs) == pytest.approx(100.0)
    wrong = ["xx yy zz ww vv", "qq rr ss tt uu"]
    assert corpus_bleu(wrong, refs) == 0.0
    assert corpus_chrf(wrong, refs) < 5.0


def test_corpus_scores_are_sacrebleus():
    hyps = ["le chat est sur le tapis", "un chien dort dans le jardin"]
    refs = ["le chat est assis sur le tapis", "le chien dort dans le jardin"]
    assert corpus_bleu(hyps, refs) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert corpus_chrf(hyps, refs) == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert 0 < corpus_bleu(hyps, refs) < 100


def test_mismatched_or_empty_corpora_are_errors():
    with pytest.raises(MetricsError, match="2 hypotheses but 1 references"):
        corpus_bleu(["a b", "c d"], ["a b"])
    with pytest.raises(MetricsError, match="no sentences"):
        corpus_chrf([], [])


def test_sentence_bleu_walkthrough_by_hand():
    hyp = "le chat est sur le tapis"  # 6 words
    ref = "le chat est assis sur le tapis"  # 7 words
    d = sentence_bleu_details(hyp, ref)
    # 1-grams: all 6 in the reference ("le" twice in both).
    # 2-grams: le chat, chat est, sur le, le tapis match; "est sur" does not.
    # 3-grams: "le chat est", "sur le tapis" match; "chat est sur", "est sur le" do not.
    # 4-grams: none of the 3 matches.
    assert d["matches"] == [6, 4, 2, 0]
    assert d["totals"] == [6, 5, 4, 3]
    assert d["precisions"] == pytest.approx([100.0, 80.0, 50.0, 0.0])
    # the zero 4-gram precision is smoothed to 100 / (2 * 3)
    assert d["smoothed_precisions"] == pytest.approx([100.0, 80.0, 50.0, 100 / 6])
    assert d["matched"][1] == ["chat est", "le chat", "le tapis", "sur le"]
    assert d["matched"][2] == ["le chat est", "sur le tapis"]
    assert d["matched"][3] == []
    assert (d["hyp_len"], d["ref_len"]) == (6, 7)
    bp = math.exp(1 - 7 / 6)
    assert d["bp"] == pytest.approx(bp)
    by_hand = bp * (100 * 80 * 50 * (100 / 6)) ** 0.25
    assert d["bleu"] == pytest.approx(by_hand)
    assert d["bleu"] == pytest.approx(43.0125, abs=1e-3)
    assert d["bleu"] == pytest.approx(sacrebleu.sentence_bleu(hyp, [ref]).score)


def test_sentence_bleu_clips_repeated_words():
    d = sentence_bleu_details("the the the the", "the cat")
    assert d["matches"][0] == 1 and d["totals"][0] == 4
    assert d["matched"][0] == ["the"]
    assert d["bp"] == 1.0  # hypothesis longer than the reference


def test_bleu_by_length_buckets():
    long_src = " ".join(["w"] * 45)
    srcs = ["one", "a b c d e", "x " * 12, long_src, "a b c d e f g"]
    refs = [
        "le chat dort sur le tapis",
        "le chien mange une pomme rouge",
        "les enfants jouent dans le jardin",
        "ma soeur lit un long livre",
        "il fait beau ce matin ici",
    ]
    hyps = list(refs)
    hyps[1] = "le chien mange une pomme verte"
    out = bleu_by_length(srcs, hyps, refs)
    assert [b["range"] for b in out] == [[0, 1], [2, 10], [11, 20], [21, 30], [31, 40], [41, None]]
    assert [b["label"] for b in out] == ["0-1", "2-10", "11-20", "21-30", "31-40", "41+"]
    assert [b["count"] for b in out] == [1, 2, 1, 0, 0, 1]
    assert out[0]["bleu"] == pytest.approx(100.0)
    assert out[1]["bleu"] == pytest.approx(corpus_bleu([hyps[1], hyps[4]], [refs[1], refs[4]]))
    assert out[1]["bleu"] < 100.0
    assert out[2]["bleu"] == pytest.approx(100.0)
    assert out[3]["bleu"] is None and out[4]["bleu"] is None


def test_bleu_by_length_adds_no_extra_buckets_when_not_needed():
    srcs = ["a b c", "d e f g h i j k l m n o"]
    refs = ["le chat dort bien ici", "le chien mange bien ici"]
    out = bleu_by_length(srcs, refs, refs)
    assert [b["range"] for b in out] == [[2, 10], [11, 20], [21, 30], [31, 40]]
    custom = bleu_by_length(srcs, refs, refs, buckets=((1, 5), (6, 100)))
    assert [b["count"] for b in custom] == [1, 1]
    with pytest.raises(MetricsError, match="contiguous"):
        bleu_by_length(srcs, refs, refs, buckets=((1, 5), (8, 100)))
    with pytest.raises(MetricsError, match="3 sources but 2 hypotheses"):
        bleu_by_length(srcs + ["x"], refs, refs)


# attention ----------------------------------------------------------------------------------


def test_attention_entropy_known_values():
    uniform = np.full((1, 4), 0.25)
    one_hot = np.array([[0.0, 1.0, 0.0, 0.0]])
    assert attention_entropy(uniform) == pytest.approx(math.log(4))
    assert attention_entropy(one_hot) == 0.0
    assert attention_entropy(np.vstack([uniform, one_hot])) == pytest.approx(math.log(4) / 2)
    half = np.array([[0.5, 0.5, 0.0]])
    assert attention_entropy(half) == pytest.approx(math.log(2))
    # leading dimensions (layers, heads) are rows too
    assert attention_entropy(np.full((2, 3, 5, 4), 0.25)) == pytest.approx(math.log(4))
    with pytest.raises(MetricsError, match="non-negative"):
        attention_entropy(np.array([[1.5, -0.5]]))


def test_word_alignment_sums_source_pieces_and_averages_target_pieces():
    # source: "the" "cata|logue" </s>; target: "le|s" "catalogue" </s>
    src_words = [0, 1, 1, -1]
    tgt_words = [0, 0, 1, -1]
    attn = np.array(
        [
            [0.60, 0.20, 0.10, 0.10],  # by word: the 0.60, catalogue 0.30
            [0.20, 0.30, 0.30, 0.20],  # by word: the 0.20, catalogue 0.60
            [0.45, 0.30, 0.25, 0.00],  # the 0.45 < catalogue 0.55, though piece 0 is the max
            [0.00, 0.00, 0.00, 1.00],  # EOS row: dropped
        ]
    )
    # target word 0: mean (0.40, 0.45) -> source word 1; target word 1: (0.45, 0.55) -> 1
    assert word_alignment(attn, src_words, tgt_words) == {(1, 0), (1, 1)}
    attn[0] = [0.9, 0.05, 0.0, 0.05]  # now word 0 averages (0.55, 0.325) -> source word 0
    assert word_alignment(attn, src_words, tgt_words) == {(0, 0), (1, 1)}


def test_word_alignment_shape_mismatch():
    with pytest.raises(MetricsError, match=r"shape \(2, 3\) but there are 2 target and 4 source"):
        word_alignment(np.zeros((2, 3)), [0, 1, 2, -1], [0, -1])


def test_alignment_error_rate_by_hand():
    predicted = [{(0, 0), (1, 2), (2, 1)}, {(0, 1)}]
    sure = [{(0, 0), (2, 1)}, {(0, 0)}]
    possible = [{(1, 1)}, {(0, 1)}]  # sure links count as possible too
    # sentence 1: |A∩S| = 2, |A∩P| = 2, |A| = 3, |S| = 2
    # sentence 2: |A∩S| = 0, |A∩P| = 1, |A| = 1, |S| = 1
    assert alignment_error_rate(predicted, sure, possible) == pytest.approx(1 - 5 / 7)
    assert alignment_error_rate(predicted[:1], sure[:1], possible[:1]) == pytest.approx(0.2)
    assert alignment_error_rate(predicted[1:], sure[1:], possible[1:]) == pytest.approx(0.5)
    # without possible links P = S: sentence 2 scores nothing
    assert alignment_error_rate(predicted, sure) == pytest.approx(1 - 4 / 7)
    assert alignment_error_rate(sure, sure) == 0.0
    assert alignment_error_rate([{(5, 5)}], [{(0, 0)}]) == 1.0
    with pytest.raises(MetricsError, match="one of each per sentence"):
        alignment_error_rate(predicted, sure[:1])


def test_read_pharaoh():
    assert read_pharaoh(["0-0 1-2 2-1\n", ""]) == [{(0, 0), (1, 2), (2, 1)}, set()]
    with pytest.raises(MetricsError, match="line 1: bad alignment link '1:2'"):
        read_pharaoh(["0-0 1:2"])
    with pytest.raises(MetricsError, match="line 2: bad alignment link '3-x'"):
        read_pharaoh(["0-0", "3-x"])
