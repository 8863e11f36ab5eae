"""Beam search and exact search against known answers on toy models (tests/toymodels.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from oracles import beam_search_reference
from toymodels import (
    B_,
    PARTING_DEFAULT,
    PARTING_TABLE,
    REAL_ARCHS,
    WIDE_TOK,
    A,
    C,
    PrefixTable,
    ToyConfig,
    ToyMarkov,
    ToyTokenizer,
    enumerate_outputs,
    normalized,
    tiny_real_model,
)

from explorer.seq2seq.decoding.beam import Scorer, beam_search
from explorer.seq2seq.decoding.decode import DecodeError, greedy
from explorer.seq2seq.decoding.search import (
    SearchLimitError,
    empty_translation_score,
    exact_search,
    search_error,
)
from explorer.seq2seq.decoding.trace import Fate
from explorer.seq2seq.models.base import EOS

TOK = ToyTokenizer()
SENTENCES = ["x y", "z x y z", "y", "x x z y"]
# (seed, source) where the penalties crown different winners under brute force (see the test)
PENALTY_CASES = [(3, "y"), (2, "z x y")]
SETTINGS = [("none", 0.0, 0.0), ("avg", 1.0, 0.0), ("gnmt", 1.0, 0.0), ("gnmt", 0.6, 0.4)]


@pytest.fixture(scope="module")
def toy():
    return ToyMarkov(ToyConfig(seed=1))


def parting():
    return PrefixTable(PARTING_TABLE, PARTING_DEFAULT)


# ------------------------------------------------------------------------- beam 1 and greedy


@pytest.mark.parametrize("stop", ["bound", "exhausted"])
def test_beam_one_equals_greedy(toy, stop):
    for seed in range(3):
        model = ToyMarkov(ToyConfig(seed=seed))
        for src in SENTENCES:
            g = greedy(model, TOK, src, max_len=8)
            (r,) = beam_search(model, TOK, src, beam=1, max_len=8, stop=stop)
            assert list(r.best.tokens) == g.tokens
            assert r.best.score == pytest.approx(g.score, abs=1e-9)
            np.testing.assert_allclose(r.best.token_logprobs, g.token_logprobs, atol=1e-9)
            np.testing.assert_allclose(r.best.attention, g.attention_matrix(), atol=1e-6)
            assert r.divergence is None


# ------------------------------------------------------------------ exhaustive known answers


@pytest.mark.parametrize("seed,src", PENALTY_CASES)
def test_wide_beam_and_exact_search_equal_brute_force(seed, src):
    model = ToyMarkov(ToyConfig(seed=seed))
    T = 5
    outputs = enumerate_outputs(model, TOK.encode_src(src), T)
    assert len(outputs) == 3**5 + sum(3**i for i in range(5))  # every output, none lost
    winners = set()
    for penalty, alpha, beta in SETTINGS:
        ranked = sorted(
            outputs, key=lambda o: -normalized(o.logprobs, o.attention, penalty, alpha, beta)
        )
        winners.add(ranked[0].tokens)
        # 4 candidates × 81 live hypotheses at the last step: a beam of 324 never prunes
        (r,) = beam_search(
            model, TOK, src, beam=324, nbest=3, max_len=T,
            length_penalty=penalty, alpha=alpha, beta=beta, with_greedy=False, record_tree=False,
        )  # fmt: skip
        assert [h.tokens for h in r.nbest] == [o.tokens for o in ranked[:3]]
        for h, o in zip(r.nbest, ranked[:3], strict=True):
            assert h.score == pytest.approx(o.logprobs.sum(), abs=1e-6)
            expected = normalized(o.logprobs, o.attention, penalty, alpha, beta)
            assert h.normalized_score == pytest.approx(expected, abs=1e-6)
        ex = exact_search(
            model, TOK, src, max_len=T, length_penalty=penalty, alpha=alpha, beta=beta, nbest=3
        )
        assert [h.tokens for h in ex.nbest] == [o.tokens for o in ranked[:3]]
        assert ex.normalized_score == pytest.approx(r.best.normalized_score, abs=1e-6)
        assert not search_error(r, ex)
    assert len(winners) >= 2  # the penalties really change the answer on these cases


def test_exact_search_expands_fewer_prefixes_than_enumeration():
    model = ToyMarkov(ToyConfig(seed=2))
    ex = exact_search(model, TOK, "z x y", max_len=5)
    assert ex.best.tokens == (EOS,)  # the empty translation is this model's MAP
    assert ex.best.score == pytest.approx(ex.empty_score)
    assert ex.expansions < sum(3**i for i in range(5))


def test_parting_example_greedy_beam_and_exact():
    model = parting()
    (r,) = beam_search(model, TOK, "x", beam=2, nbest=2)
    assert r.greedy.tokens == [C, A, EOS]
    assert r.best.tokens == (C, B_, EOS)
    assert r.best.score == pytest.approx(math.log(0.9 * 0.4 * 0.9))
    assert r.divergence == 1 and r.tree.divergence == 1
    ex = exact_search(model, TOK, "x", max_len=6)
    assert ex.best.tokens == ex.tokens == (C, B_, EOS) and ex.text == "c b"
    assert ex.empty_score == pytest.approx(math.log(0.02))
    assert empty_translation_score(model, TOK, "x") == pytest.approx(math.log(0.02))
    (narrow,) = beam_search(model, TOK, "x", beam=1)
    assert narrow.best.tokens == (C, A, EOS)
    assert search_error(narrow, ex) and not search_error(r, ex)


def test_exact_search_refuses_beyond_its_limit(toy):
    with pytest.raises(SearchLimitError, match="expansions"):
        exact_search(toy, TOK, "x y", max_len=12, length_penalty="avg", alpha=1.0, max_expansions=5)


def test_search_error_needs_the_same_formula(toy):
    (r,) = beam_search(toy, TOK, "x y", beam=2, max_len=5, length_penalty="avg", alpha=1.0)
    ex = exact_search(toy, TOK, "x y", max_len=5)
    with pytest.raises(DecodeError, match="same length_penalty"):
        search_error(r, ex)


# ------------------------------------------------------------------------ scores and stopping


@pytest.mark.parametrize("penalty,alpha,beta", SETTINGS)
def test_scores_recompute_from_stored_logprobs(toy, penalty, alpha, beta):
    results = beam_search(
        toy, TOK, SENTENCES, beam=4, nbest=3, max_len=7,
        length_penalty=penalty, alpha=alpha, beta=beta,
    )  # fmt: skip
    for r in results:
        formula = Scorer(penalty, alpha, beta).formula
        for h in r.nbest:
            assert h.formula == formula
            assert h.score == pytest.approx(h.token_logprobs.sum(), abs=1e-9)
            assert h.normalized_score == pytest.approx(
                normalized(h.token_logprobs, h.attention, penalty, alpha, beta), abs=1e-6
            )
        scores = [h.normalized_score for h in r.nbest]
        assert scores == sorted(scores, reverse=True)
        nodes = r.tree.nodes
        best_live = {}
        for n in nodes[1:]:
            parent = nodes[n.parent]
            assert n.score == pytest.approx(parent.score + n.logprob, abs=1e-9)
            assert n.logprob == pytest.approx(float(n.record.logprobs[n.token]), abs=1e-9)
            tr = r.tree.trace(n.id)
            assert n.normalized_score == pytest.approx(
                normalized(tr.token_logprobs, tr.attention_matrix(), penalty, alpha, beta), abs=1e-6
            )
            if n.fate is Fate.KEPT:
                best_live[n.step] = max(best_live.get(n.step, -np.inf), n.score)
        steps = sorted(best_live)
        assert all(best_live[a] >= best_live[b] for a, b in zip(steps, steps[1:], strict=False))


def test_formula_names():
    assert Scorer().formula == "S"
    assert Scorer("avg", 0.6).formula == "S/|Y|^0.6"
    assert Scorer("gnmt", 0.6, 0.2).formula == "S/((5+|Y|)/6)^0.6 + 0.2·cp"
    assert Scorer("gnmt", 0.6)(-3.0, 5, None) == pytest.approx(-3.0 / (10 / 6) ** 0.6)
    cov = np.array([0.5, 1.7, 0.0])  # log 0.5 + log 1 + log 1e-6 (clamped)
    assert Scorer("none", 0, 0.2).cp(cov) == pytest.approx(math.log(0.5) + math.log(1e-6))


@pytest.mark.parametrize("penalty,alpha,beta", SETTINGS)
def test_bound_stop_returns_what_exhaustive_search_returns(toy, penalty, alpha, beta):
    kw = dict(beam=3, nbest=2, max_len=8, length_penalty=penalty, alpha=alpha, beta=beta)
    bound = beam_search(toy, TOK, SENTENCES, stop="bound", **kw)
    full = beam_search(toy, TOK, SENTENCES, stop="exhausted", **kw)
    for a, b in zip(bound, full, strict=True):
        assert [h.tokens for h in a.nbest] == [h.tokens for h in b.nbest]
        assert b.stop_reason in ("exhausted", "max-length")
        assert len(a.tree) <= len(b.tree)
    if penalty == "none":
        assert any(r.stop_reason == "bound" for r in bound)
        assert all(r.tree.settings["bound"] == "S_live" for r in bound)
    else:
        assert "admissible" in bound[0].tree.settings["bound"]


def test_batch_equals_alone(toy):
    kw = dict(beam=3, nbest=3, max_len=7, length_penalty="gnmt", alpha=0.6, beta=0.2)
    batch = beam_search(toy, TOK, SENTENCES, **kw)
    for src, rb in zip(SENTENCES, batch, strict=True):
        (ra,) = beam_search(toy, TOK, src, **kw)
        assert [h.tokens for h in ra.nbest] == [h.tokens for h in rb.nbest]
        for ha, hb in zip(ra.nbest, rb.nbest, strict=True):
            assert ha.normalized_score == pytest.approx(hb.normalized_score, abs=1e-5)
            assert (
                ha.attention.shape
                == hb.attention.shape
                == (len(ha.tokens), len(ra.tree.src_tokens))
            )
        assert len(ra.tree) == len(rb.tree)


@pytest.mark.parametrize(
    "kw",
    [
        dict(beam=3, nbest=2),
        dict(beam=5, nbest=3, length_penalty="avg", alpha=1.0, stop="exhausted"),
        dict(beam=4, length_penalty="gnmt", alpha=0.6, beta=0.3, min_len=2),
        dict(beam=2, prefix=[B_, A]),
    ],
)
def test_batched_equals_reference(toy, kw):
    batched = beam_search(toy, TOK, SENTENCES, max_len=8, **kw)
    reference = beam_search_reference(toy, TOK, SENTENCES, max_len=8, **kw)
    for a, b in zip(batched, reference, strict=True):
        assert [h.tokens for h in a.nbest] == [h.tokens for h in b.nbest]
        assert a.stop_reason == b.stop_reason
        for ha, hb in zip(a.nbest, b.nbest, strict=True):
            assert ha.normalized_score == pytest.approx(hb.normalized_score, abs=1e-6)


# ---------------------------------------------------------------------------------- the tree


def _expected_candidates(tree, k):
    """Per step, how many candidates the search should have recorded, recomputed from the
    parents' own records: top 2k over parents × V, plus each parent's best when it has none."""
    expected = {}
    parents_at = {}
    for n in tree.nodes[1:]:
        parents_at.setdefault(n.step, set()).add(n.parent)
    for step, parents in parents_at.items():
        scored = []
        for p in parents:
            rec = next(c.record for c in tree.children(p))
            for lp in rec.logprobs:
                if np.isfinite(lp):
                    scored.append((tree.nodes[p].score + lp, p))
        scored.sort(reverse=True)
        top = scored[: 2 * k]
        expected[step] = len(top) + len(parents - {p for _, p in top})
    return expected


def test_tree_records_every_candidate_and_consistent_fates(toy):
    k = 3
    for r in beam_search(toy, TOK, SENTENCES, beam=k, nbest=2, max_len=7):
        tree = r.tree
        counts = {}
        for n in tree.nodes[1:]:
            counts[n.step] = counts.get(n.step, 0) + 1
        assert counts == _expected_candidates(tree, k)
        assert len(tree) == 1 + sum(counts.values())
        root = tree.root
        assert (root.id, root.parent, root.step) == (0, -1, -1)
        fates = tree.fates()
        assert fates["chosen"] == 1
        assert tree.chosen.fate is Fate.CHOSEN and tree.finished[0] == tree.chosen.id
        for n in tree.nodes[1:]:
            kids = tree.children(n.id)
            if n.fate is Fate.KEPT:
                assert kids and n.token != EOS
                assert len({id(c.record) for c in kids}) == 1  # siblings share one record
            else:
                assert not kids
            if n.fate in (Fate.FINISHED, Fate.CHOSEN):
                assert n.token == EOS or n.step == tree.settings["max_len"] - 1
                assert n.rank < k
        per_step_kept = {}
        for n in tree.nodes[1:]:
            if n.fate is Fate.KEPT:
                per_step_kept[n.step] = per_step_kept.get(n.step, 0) + 1
        assert max(per_step_kept.values()) <= k
        trace = tree.trace(tree.chosen.id)
        assert trace.tokens == list(r.best.tokens)
        np.testing.assert_allclose(trace.token_logprobs, r.best.token_logprobs, atol=1e-12)
        np.testing.assert_allclose(trace.attention_matrix(), r.best.attention, atol=1e-6)
        assert r.divergence == (None if r.greedy.tokens == list(r.best.tokens) else r.divergence)


def test_first_step_expands_one_hypothesis_and_prefix_is_forced(toy):
    (r,) = beam_search(toy, TOK, "x y", beam=4, max_len=6)
    assert {n.parent for n in r.tree.nodes if n.step == 0} == {0}
    (p,) = beam_search(toy, TOK, "x y", beam=4, max_len=6, prefix="b a")
    assert p.best.tokens[:2] == (B_, A)
    assert [n.token for n in p.tree.nodes if n.step in (0, 1)] == [B_, A]
    assert p.greedy.tokens[:2] == [B_, A]


def test_min_len_forbids_early_end(toy):
    for r in beam_search(toy, TOK, SENTENCES, beam=3, nbest=3, max_len=8, min_len=3):
        for h in r.nbest:
            assert EOS not in h.tokens[:3]


def test_bad_arguments_are_named(toy):
    with pytest.raises(DecodeError, match="beam must be a positive integer"):
        beam_search(toy, TOK, "x", beam=0)
    with pytest.raises(DecodeError, match="nbest"):
        beam_search(toy, TOK, "x", beam=2, nbest=3)
    with pytest.raises(DecodeError, match="length_penalty"):
        beam_search(toy, TOK, "x", length_penalty="wu")
    with pytest.raises(DecodeError, match="beta must be >= 0"):
        beam_search(toy, TOK, "x", beta=-0.1)
    with pytest.raises(DecodeError, match="stop"):
        beam_search(toy, TOK, "x", stop="early")
    with pytest.raises(DecodeError, match="sentences"):
        beam_search(toy, TOK, [])
    with pytest.raises(DecodeError, match="prefix"):
        beam_search(toy, TOK, "x", prefix="a q")
    with pytest.raises(DecodeError, match="probability 0"):
        beam_search(toy, TOK, "x", prefix=[1])  # UNK is banned by the toy model


# ------------------------------------------------------------------- the real model families

REAL_SENTENCES = ["p q r", "s t u v w p", "q", "w w v u"]


@pytest.fixture(scope="module", params=REAL_ARCHS + ["lstm"])
def real(request):
    arch, cell = (request.param, "gru") if request.param != "lstm" else ("bahdanau", "lstm")
    return tiny_real_model(arch, cell)


def test_real_beam_one_equals_greedy(real):
    for src in REAL_SENTENCES:
        g = greedy(real, WIDE_TOK, src, max_len=10)
        (r,) = beam_search(real, WIDE_TOK, src, beam=1, max_len=10)
        assert list(r.best.tokens) == g.tokens
        assert r.best.score == pytest.approx(g.score, abs=1e-5)
        assert r.divergence is None


def test_real_batch_equals_alone_and_reference(real):
    beta = 0.0 if real.arch == "none" else 0.2
    kw = dict(beam=4, nbest=2, max_len=9, length_penalty="gnmt", alpha=0.6, beta=beta)
    batch = beam_search(real, WIDE_TOK, REAL_SENTENCES, **kw)
    reference = beam_search_reference(real, WIDE_TOK, REAL_SENTENCES, **kw)
    for src, rb, rr in zip(REAL_SENTENCES, batch, reference, strict=True):
        (ra,) = beam_search(real, WIDE_TOK, src, **kw)
        for other in (ra, rr):
            assert [h.tokens for h in other.nbest] == [h.tokens for h in rb.nbest]
            for ho, hb in zip(other.nbest, rb.nbest, strict=True):
                assert ho.normalized_score == pytest.approx(hb.normalized_score, abs=1e-5)
        assert len(ra.tree) == len(rb.tree)
        best = rb.best
        trace = rb.tree.trace(rb.tree.chosen.id)
        np.testing.assert_allclose(trace.token_logprobs, best.token_logprobs, atol=1e-12)
        expected = normalized(best.token_logprobs, best.attention, "gnmt", 0.6, beta)
        assert best.normalized_score == pytest.approx(expected, abs=1e-6)


def test_real_coverage_penalty_needs_attention(real):
    if real.arch != "none":
        (r,) = beam_search(real, WIDE_TOK, "p q", beam=2, max_len=5, beta=0.2)
        assert r.best.attention.shape == (len(r.best.tokens), 3)
        return
    with pytest.raises(DecodeError, match="needs a model with attention"):
        beam_search(real, WIDE_TOK, "p q", beam=2, max_len=5, beta=0.2)
