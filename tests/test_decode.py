"""Greedy decoding, sampling, forced prefixes and teacher forcing, on toy models and on tiny
untrained models of every real family."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from toymodels import (
    B_,
    REAL_ARCHS,
    WIDE_TOK,
    A,
    C,
    ToyConfig,
    ToyMarkov,
    ToyTokenizer,
    tiny_real_model,
)

from explorer.seq2seq.decoding.decode import (
    DecodeError,
    greedy,
    greedy_batch,
    sample,
    teacher_forced,
    top_k_filter,
    top_p_filter,
)
from explorer.seq2seq.models.base import EOS

TOK = ToyTokenizer()
SENTENCES = ["x y", "z x y z", "y", "x x z y", "z z"]


@pytest.fixture(scope="module")
def toy():
    return ToyMarkov(ToyConfig(seed=1))


def test_greedy_takes_the_argmax_and_records_every_step(toy):
    tr = greedy(toy, TOK, "z x y", max_len=9)
    S = len(TOK.encode_src("z x y"))
    assert tr.method == "greedy" and tr.arch == "toy"
    assert tr.src_tokens == tuple(TOK.encode_src("z x y")) and tr.src_pieces == (
        "z",
        "x",
        "y",
        "</s>",
    )
    assert tr.encoder_states.shape == (S, 4)
    assert tr.finished or len(tr) == 9
    for t, st in enumerate(tr.steps):
        assert st.position == t
        assert st.token == int(np.argmax(st.logprobs))
        assert st.piece == TOK.tgt_piece(st.token)
        assert st.logprobs.dtype == np.float32 and st.logprobs.shape == (TOK.tgt_vocab_size,)
        assert np.exp(st.logprobs).sum() == pytest.approx(1.0, abs=1e-5)
        assert st.cross_attention.shape == st.scores.shape == (1, 2, S)
        np.testing.assert_allclose(st.cross_attention.sum(-1), 1.0, atol=1e-6)
        assert st.hidden.shape == st.context.shape == (1, 4)


def test_greedy_stops_at_max_len_and_default_limit(toy):
    tr = greedy(toy, TOK, "x y", max_len=1)
    assert len(tr) == 1
    full = greedy(toy, TOK, "x y")
    assert full.finished or len(full) == 2 * 3 + 10
    with pytest.raises(DecodeError, match="max_len"):
        greedy(toy, TOK, "x y", max_len=0)


def test_pre_encoded_source_gives_the_same_trace(toy):
    a = greedy(toy, TOK, "x z y", max_len=8)
    b = greedy(toy, TOK, TOK.encode_src("x z y"), max_len=8)
    assert a.tokens == b.tokens and b.source == "x z y </s>"
    np.testing.assert_array_equal(a.token_logprobs, b.token_logprobs)
    with pytest.raises(DecodeError, match="empty"):
        greedy(toy, TOK, [])


def test_greedy_batch_equals_greedy(toy):
    many = SENTENCES * 3
    for batch_size in (1, 2, 64):
        got = greedy_batch(toy, TOK, many, batch_size=batch_size, max_len=9)
        assert got == [greedy(toy, TOK, s, max_len=9).tokens for s in many]
    got = greedy_batch(toy, TOK, SENTENCES)  # default limits differ per sentence
    assert got == [greedy(toy, TOK, s).tokens for s in SENTENCES]


def test_forced_prefix_then_greedy(toy):
    free = greedy(toy, TOK, "x y", max_len=8)
    tr = greedy(toy, TOK, "x y", max_len=8, prefix=[C, C, A])
    assert tr.tokens[:3] == [C, C, A]
    assert tr.method == "forced" and tr.extras == {"forced_steps": 3, "then": "greedy"}
    for st in tr.steps[3:]:
        assert st.token == int(np.argmax(st.logprobs))
    same = greedy(toy, TOK, "x y", max_len=8, prefix=free.tokens[:2])
    assert same.tokens == free.tokens
    np.testing.assert_allclose(same.token_logprobs, free.token_logprobs, atol=1e-7)
    assert greedy(toy, TOK, "x y", prefix="c c a").tokens[:3] == [C, C, A]
    with pytest.raises(DecodeError, match="'q' is not in the target vocabulary"):
        greedy(toy, TOK, "x y", prefix="c q")
    with pytest.raises(DecodeError, match="outside the target vocabulary"):
        greedy(toy, TOK, "x y", prefix=[99])


def test_teacher_forced_matches_step_by_step(toy):
    ref = [B_, A, C, C]
    tf = teacher_forced(toy, TOK, "x z", "b a c c")
    assert tf.method == "teacher-forced" and tf.tokens == ref + [EOS]
    forced = greedy(toy, TOK, "x z", prefix=ref + [EOS])
    assert forced.tokens == ref + [EOS]
    np.testing.assert_allclose(tf.token_logprobs, forced.token_logprobs, atol=1e-6)
    np.testing.assert_allclose(tf.attention_matrix(), forced.attention_matrix(), atol=1e-6)
    np.testing.assert_allclose(tf.hidden_matrix(), forced.hidden_matrix(), atol=1e-6)
    g = greedy(toy, TOK, "x z", max_len=20)
    if g.finished:
        tg = teacher_forced(toy, TOK, "x z", g.tokens[:-1])
        np.testing.assert_allclose(tg.token_logprobs, g.token_logprobs, atol=1e-6)


# ------------------------------------------------------------------------------------ sampling


def test_top_k_filter_known_numbers():
    z = torch.tensor([1.0, 3.0, 2.0, 0.5])
    assert torch.isinf(top_k_filter(z, 2)).tolist() == [True, False, False, True]
    assert torch.equal(top_k_filter(z, 0), z)
    assert torch.isinf(top_k_filter(z, 1)).tolist() == [True, False, True, True]


@pytest.mark.parametrize(
    "p,kept",
    [
        (0.3, [0]),  # the top token alone has 0.5 ≥ 0.3
        (0.5, [0]),  # exactly 0.5: the smallest set with mass ≥ p is still one token
        (0.75, [0, 1]),  # 0.5 + 0.3 = 0.8 ≥ 0.75
        (0.85, [0, 1, 2]),  # 0.95
        (0.99, [0, 1, 2, 3]),
    ],
)
def test_top_p_keeps_the_smallest_set_with_mass_p(p, kept):
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    perm = torch.tensor([2, 0, 3, 1])  # shuffled, so the filter must sort
    z = torch.log(probs[:, perm])
    out = top_p_filter(z, p)
    kept_ids = sorted(int(perm[i]) for i in torch.nonzero(torch.isfinite(out[0])).flatten())
    assert kept_ids == kept


def test_top_k_one_and_low_temperature_equal_greedy(toy):
    for src in SENTENCES:
        g = greedy(toy, TOK, src, max_len=8).tokens
        for seed in range(3):
            assert sample(toy, TOK, src, top_k=1, seed=seed, max_len=8).tokens == g
            assert sample(toy, TOK, src, temperature=1e-3, seed=seed, max_len=8).tokens == g


def test_sampling_is_reproducible_and_varies_with_seed(toy):
    a = sample(toy, TOK, "x y z", seed=7, max_len=8)
    b = sample(toy, TOK, "x y z", seed=7, max_len=8)
    assert a.tokens == b.tokens and a.method == "sample" and a.extras["seed"] == 7
    outputs = {tuple(sample(toy, TOK, "x y z", seed=s, max_len=8).tokens) for s in range(20)}
    assert len(outputs) > 3


def test_sampled_first_tokens_follow_the_filtered_distribution(toy):
    n = 600
    tr = sample(toy, TOK, "y", max_len=1, temperature=2.0)
    p = np.exp(tr.steps[0].logprobs.astype(np.float64))  # the tempered distribution
    model_p = np.exp(greedy(toy, TOK, "y", max_len=1).steps[0].logprobs.astype(np.float64))
    assert p == pytest.approx(model_p**0.5 / (model_p**0.5).sum(), abs=1e-5)
    top2 = np.argsort(-p)[:2]
    counts = np.zeros_like(p)
    for seed in range(n):
        counts[sample(toy, TOK, "y", max_len=1, temperature=2.0, top_k=2, seed=seed).tokens[0]] += 1
    expected = np.zeros_like(p)
    expected[top2] = p[top2] / p[top2].sum()
    assert counts.sum() == counts[top2].sum() == n  # nothing outside the top 2 is drawn
    sd = math.sqrt(0.25 / n)
    np.testing.assert_allclose(counts / n, expected, atol=4 * sd)


def test_sampling_arguments_are_checked(toy):
    with pytest.raises(DecodeError, match="temperature"):
        sample(toy, TOK, "x", temperature=0.0)
    with pytest.raises(DecodeError, match="top_p"):
        sample(toy, TOK, "x", top_p=0.0)
    with pytest.raises(DecodeError, match="top_k"):
        sample(toy, TOK, "x", top_k=-1)


# ------------------------------------------------------------------- the real model families

REAL_SENTENCES = ["p q r", "s t u v w p", "q", "w w v u"]


@pytest.fixture(scope="module", params=REAL_ARCHS + ["lstm"])
def real(request):
    arch, cell = (request.param, "gru") if request.param != "lstm" else ("bahdanau", "lstm")
    return tiny_real_model(arch, cell)


def test_real_greedy_records_and_restores_training_mode(real):
    real.train()
    tr = greedy(real, WIDE_TOK, "p q r", max_len=6)
    assert real.training  # decoding ran in eval mode and put the flag back
    S = 4
    assert tr.encoder_states.shape[0] == S and len(tr.src_pieces) == S
    for t, st in enumerate(tr.steps):
        assert st.token == int(np.argmax(st.logprobs))
        if real.arch == "none":
            assert st.cross_attention is None and st.scores is None
        else:
            assert st.cross_attention.shape[-1] == S
            np.testing.assert_allclose(st.cross_attention.sum(-1), 1.0, atol=1e-5)
        if real.arch == "transformer":
            assert st.self_attention.shape == (2, 2, t + 1)
    if real.arch == "transformer":
        assert tr.encoder_self_attention.shape == (2, 2, S, S)


def test_real_recorded_queries_reproduce_the_scores(real):
    """Each step records the query its attention scored: worked out by hand with the keys (and
    the model's score weights), it gives the model's own scores and weights, in greedy,
    teacher-forced and beam traces, for every head of every layer."""
    from explorer.seq2seq.decoding.arithmetic import FAMILY_OF_ARCH, from_step
    from explorer.seq2seq.decoding.beam import beam_search

    g = greedy(real, WIDE_TOK, "s t u v", max_len=6)
    tf = teacher_forced(real, WIDE_TOK, "s t u", [4, 9, 6])
    tree = beam_search(real, WIDE_TOK, ["s t u v"], beam=3, max_len=6, record_tree=True)[0].tree
    weights = real.score_weights()
    for tr in (g, tf, tree.trace(tree.chosen.id)):
        for t, st in enumerate(tr.steps):
            if real.arch == "none":
                assert st.query is None and from_step(tr, t, weights=weights) is None
                continue
            L, H, _ = st.scores.shape
            for layer in range(L):
                for head in range(H):
                    w = from_step(tr, t, layer, head, weights)
                    assert w.family == FAMILY_OF_ARCH[real.arch]
                    assert w.score_error < 1e-4, (tr.method, t, layer, head)
                    np.testing.assert_allclose(w.alpha, st.cross_attention[layer, head], atol=1e-5)
                    if real.arch != "transformer":  # c_t = Σ α_i h_i, as the model has it
                        assert w.context_error < 1e-4
    if real.arch == "transformer":  # k_i and v_i of every layer and head, per source position
        S = len(g.src_pieces)
        assert g.cross_keys.shape == g.cross_values.shape == (2, 2, S, real.config.d_k)


def test_real_greedy_batch_equals_greedy(real):
    got = greedy_batch(real, WIDE_TOK, REAL_SENTENCES, batch_size=3, max_len=10)
    assert got == [greedy(real, WIDE_TOK, s, max_len=10).tokens for s in REAL_SENTENCES]


def test_real_teacher_forced_matches_step_by_step(real):
    ref = [4, 9, 6, 13, 5]
    tf = teacher_forced(real, WIDE_TOK, "s t u", ref)
    forced = greedy(real, WIDE_TOK, "s t u", prefix=ref + [EOS])
    assert tf.tokens == forced.tokens == ref + [EOS]
    np.testing.assert_allclose(tf.token_logprobs, forced.token_logprobs, atol=1e-5)
    np.testing.assert_allclose(tf.hidden_matrix(), forced.hidden_matrix(), atol=1e-5)
    if real.arch != "none":
        np.testing.assert_allclose(tf.attention_matrix(), forced.attention_matrix(), atol=1e-5)


def test_real_sampling_with_top_k_one_is_greedy(real):
    g = greedy(real, WIDE_TOK, "q r s", max_len=8)
    assert sample(real, WIDE_TOK, "q r s", top_k=1, seed=3, max_len=8).tokens == g.tokens


def test_real_tokenizer_text_prefix_and_reference():
    from explorer.seq2seq.data.tokenizer import train_tokenizer
    from explorer.seq2seq.decoding.beam import beam_search
    from explorer.seq2seq.models.families import build_model

    en = ["the cat sleeps", "the dog eats", "a cat eats the bread", "the bird sings"]
    fr = ["le chat dort", "le chien mange", "un chat mange le pain", "l oiseau chante"]
    tok = train_tokenizer(en, fr, vocab_size=40)
    torch.manual_seed(0)
    model = build_model(
        {"arch": "transformer", "src_vocab": tok.src_vocab_size, "tgt_vocab": tok.tgt_vocab_size,
         "d_model": 16, "heads": 2, "enc_layers": 1, "dec_layers": 1, "d_ff": 32}
    )  # fmt: skip
    want = tok.encode_tgt("le chat")[:-1]
    tr = greedy(model, tok, "the cat sleeps", prefix="le chat", max_len=8)
    assert tr.tokens[: len(want)] == want and tr.pieces[0] == "le"
    tf = teacher_forced(model, tok, "the cat sleeps", "le chat dort")
    assert tf.tokens == tok.encode_tgt("le chat dort")
    assert teacher_forced(model, tok, "the cat sleeps", tf.tokens).tokens == tf.tokens
    (r,) = beam_search(model, tok, ["the cat sleeps"], beam=3, max_len=8, prefix="le chat")
    assert r.best.tokens[: len(want)] == tuple(want)
    assert r.best.text == tok.decode_tgt(list(r.best.tokens))
