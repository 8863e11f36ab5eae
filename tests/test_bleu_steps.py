"""BLEU step by step: every intermediate number, and the final one equal to sacrebleu's."""

import math
import random

import pytest
import sacrebleu
from sacrebleu.metrics import BLEU

from explorer.seq2seq.bleu_steps import (
    CORPUS,
    DECK,
    SENTENCE,
    BleuStepsError,
    Recipe,
    corpus_steps,
    differences,
    sentence_steps,
)

# The BSc deck's BLEU slide: "Le chat sur tapis" against "Le chat est sur le tapis".
DECK_HYP, DECK_REF = "Le chat sur tapis", "Le chat est sur le tapis"
WORDS = "le la chat chien est sur tapis dort , . un petit noir mange".split()


def random_pairs(seed: int, n: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)

    def sentence() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))

    return [(sentence(), sentence()) for _ in range(n)]


def test_the_decks_example_step_by_step():
    s = sentence_steps(DECK_HYP, DECK_REF, DECK)
    assert (s.hyp_len, s.ref_len) == (4, 6)
    assert [(o.matches, o.total) for o in s.orders] == [(4, 4), (1, 3), (0, 2)]
    assert s.orders[1].matched == ("Le chat",)
    assert set(s.orders[1].missed) == {"chat sur", "sur tapis"}
    assert round(s.bp, 2) == 0.61  # the slide's BP = e^(1 − 6/4)
    assert s.bp == pytest.approx(math.exp(-0.5))
    assert s.orders[2].used == 0.01  # the slide's stand-in for P3 = 0
    assert s.geo_mean == pytest.approx((1.0 * (1 / 3) * 0.01) ** (1 / 3))
    assert s.bleu == pytest.approx(math.exp(-0.5) * (0.01 / 3) ** (1 / 3))


def test_sacrebleu_smooths_the_same_pair_to_23():
    s = sentence_steps(DECK_HYP, DECK_REF)
    assert s.score == pytest.approx(sacrebleu.sentence_bleu(DECK_HYP, [DECK_REF]).score, abs=1e-6)
    assert round(s.score, 1) == 23.0
    # exp smoothing: the k-th zero precision becomes 1 / (2^k · total)
    assert [o.used for o in s.orders] == pytest.approx([1.0, 1 / 3, 1 / 4, 1 / 4])
    lines = s.lines()
    assert any("exp smoothing: 1/(2^1 · 2)" in line for line in lines)
    assert lines[-1].startswith("5. BLEU = BP × geometric mean = 0.607 × 0.380 = 0.2304")
    diff = differences(s, sentence_steps(DECK_HYP, DECK_REF, DECK))
    assert diff[0] == "sacrebleu sentence_bleu averages 4 precisions, lecture slide (3-grams) 3"
    assert any(d.startswith("p3: 0.250 against 0.010") for d in diff)
    assert any(d.startswith("p4 = 0.250 only in sacrebleu") for d in diff)


@pytest.mark.parametrize("seed", range(6))
def test_sentence_bleu_equals_sacrebleus(seed):
    for hyp, ref in random_pairs(seed, 40):
        ours = sentence_steps(hyp, ref, SENTENCE)
        theirs = sacrebleu.sentence_bleu(hyp, [ref])
        assert ours.score == pytest.approx(theirs.score, abs=1e-6), (hyp, ref)
        assert ours.bp == pytest.approx(theirs.bp, abs=1e-12)
        assert [o.matches for o in ours.orders] == list(theirs.counts)
        assert [o.total for o in ours.orders] == list(theirs.totals)


@pytest.mark.parametrize("seed", range(4))
def test_corpus_bleu_equals_sacrebleus(seed):
    pairs = random_pairs(100 + seed, 25)
    hyps, refs = [h for h, _ in pairs], [r for _, r in pairs]
    ours = corpus_steps(hyps, refs)
    theirs = sacrebleu.corpus_bleu(hyps, [refs])
    assert ours.score == pytest.approx(theirs.score, abs=1e-6)
    assert (ours.hyp_len, ours.ref_len) == (theirs.sys_len, theirs.ref_len)
    assert ours.sentences == 25 and ours.recipe is CORPUS


@pytest.mark.parametrize(
    "smoothing,order,effective", [("none", 4, False), ("floor", 3, False), ("exp", 2, True)]
)
def test_other_recipes_equal_sacrebleu_with_the_same_options(smoothing, order, effective):
    recipe = Recipe("x", max_order=order, smoothing=smoothing, effective_order=effective)
    metric = BLEU(max_ngram_order=order, smooth_method=smoothing, effective_order=effective)
    for hyp, ref in random_pairs(7, 40):
        theirs = metric.sentence_score(hyp, [ref]).score
        assert sentence_steps(hyp, ref, recipe).score == pytest.approx(theirs, abs=1e-6)


def test_short_candidate_uses_effective_order_and_punctuation_is_tokenised():
    s = sentence_steps("le chat.", "le chat noir .")
    assert s.hyp_tokens == ("le", "chat", ".")  # 13a splits the full stop off
    assert [o.used is not None for o in s.orders] == [True, True, True, False]
    assert "effective order" in s.orders[3].note
    assert s.score == pytest.approx(sacrebleu.sentence_bleu("le chat.", ["le chat noir ."]).score)


def test_nothing_matches_is_zero_and_said():
    s = sentence_steps("a b c", "x y z")
    assert s.bleu == 0.0 and s.no_match
    assert "no n-gram matches at all: BLEU = 0" in "\n".join(s.lines())


def test_bad_corpus_input_is_one_clear_error():
    with pytest.raises(BleuStepsError, match="2 candidates but 1 references"):
        corpus_steps(["a", "b"], ["a"])
    with pytest.raises(BleuStepsError, match="no sentences"):
        corpus_steps([], [])
