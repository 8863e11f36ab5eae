import math

import numpy as np
import pytest

from explorer.seq2seq.decoding.arithmetic import (
    ArithmeticInputError,
    additive_attention,
    bottleneck,
    dot_attention,
    from_record,
    general_attention,
    parse_matrix,
    parse_vector,
    scaled_dot_attention,
)

# The lectures' exercise "Calculate Attention Weights": s_2 against h_1..h_4, dot scores.
S2 = [0.7, 0.8]
H = [[0.1, 0.2], [0.8, 0.9], [0.5, 0.4], [0.3, 0.1]]


def test_lecture_exercise_dot_scores_and_softmax():
    w = dot_attention(S2, H)
    np.testing.assert_allclose(w.scores, [0.23, 1.28, 0.67, 0.29], atol=1e-12)
    exps = [math.exp(x) for x in (0.23, 1.28, 0.67, 0.29)]
    expected = [x / sum(exps) for x in exps]
    np.testing.assert_allclose(w.alpha, expected, rtol=1e-12)
    # The exact softmax (the brief's "≈ 0.165, 0.471, 0.256, 0.109" is not the softmax of e).
    np.testing.assert_allclose(w.alpha, [0.1545, 0.4415, 0.2399, 0.1641], atol=1e-4)
    assert w.best == 1  # α_2, "black", is the highest
    assert w.total == pytest.approx(sum(exps))
    np.testing.assert_allclose(w.terms[1], [0.7 * 0.8, 0.8 * 0.9])
    c = sum(a * np.array(h) for a, h in zip(expected, H))
    np.testing.assert_allclose(w.context, c)


def test_lines_write_out_the_focused_product():
    text = "\n".join(dot_attention(S2, H).lines(labels=["The", "black", "cat", "sat"]))
    assert "e_2 (black) = 0.560 + 0.720 = 1.280" in text
    assert "α_2 = 3.597 / 8.146 = 0.442" in text
    assert "c = 0.442·h_2 + 0.240·h_3 + 0.164·h_4 + …" in text


def test_general_with_identity_equals_dot():
    w = general_attention(S2, H, np.eye(2))
    np.testing.assert_allclose(w.scores, dot_attention(S2, H).scores)
    W = np.array([[2.0, 0.0], [1.0, -1.0]])
    np.testing.assert_allclose(
        general_attention(S2, H, W).scores, [np.dot(S2, W @ np.array(h)) for h in H]
    )


def test_additive_known_answer():
    W_s = np.array([[1.0, 0.0]])
    W_h = np.array([[0.0, 1.0]])
    v = np.array([2.0])
    w = additive_attention(S2, H, W_s, W_h, v)
    np.testing.assert_allclose(w.scores, [2 * math.tanh(0.7 + h[1]) for h in H])


def test_scaled_dot_divides_by_sqrt_dk():
    w = scaled_dot_attention(S2, H)
    np.testing.assert_allclose(w.scores, np.array([0.23, 1.28, 0.67, 0.29]) / math.sqrt(2))
    assert w.scale == pytest.approx(math.sqrt(2))


def test_from_record_checks_the_recorded_context():
    h = np.array(H)
    e = np.array([0.23, 1.28, 0.67, 0.29])
    truth = dot_attention(S2, H)
    w = from_record(e, h, recorded_context=truth.context, query=S2, family="dot")
    assert w.family == "dot" and w.terms is not None
    assert w.context_error < 1e-12
    bad = from_record(e, h, recorded_context=truth.context + 0.1)
    assert bad.context_error == pytest.approx(0.1)
    assert "differs from" in "\n".join(bad.lines())
    # A query that does not reproduce the scores is not shown as if it did.
    assert from_record(e, h, query=[1.0, 1.0], family="dot").family == "recorded"


def test_masked_scores_get_zero_weight():
    w = from_record([1.0, -math.inf, 0.0], np.eye(3))
    assert w.alpha[1] == 0.0
    assert w.alpha.sum() == pytest.approx(1.0)


def test_large_scores_are_shifted_not_overflowed():
    w = from_record([1000.0, 999.0])
    assert w.shift == 1000.0
    np.testing.assert_allclose(w.alpha, [1 / (1 + math.exp(-1)), 1 / (1 + math.exp(1))])


def test_bottleneck_matches_the_lectures_ratios():
    assert bottleneck(5, 100, 256).input_numbers == 500
    assert bottleneck(20, 100, 256).ratio == pytest.approx(2000 / 256)
    assert "= 500 numbers" in bottleneck(5, 100, 256).lines()[0]
    with pytest.raises(ArithmeticInputError, match="d_hidden"):
        bottleneck(5, 100, 0)


def test_parsing_and_shape_errors():
    np.testing.assert_allclose(parse_vector("[0.7, −0.8]", "s"), [0.7, -0.8])
    np.testing.assert_allclose(parse_matrix("0.1,0.2; 0.8 0.9", "h"), [[0.1, 0.2], [0.8, 0.9]])
    with pytest.raises(ArithmeticInputError, match="s: 'x' is not a number"):
        parse_vector("0.1, x", "s")
    with pytest.raises(ArithmeticInputError, match="different lengths"):
        parse_matrix("1,2; 3", "h")
    with pytest.raises(ArithmeticInputError, match="h: rows must have 2 numbers, got 3"):
        dot_attention(S2, [[1, 2, 3]])
