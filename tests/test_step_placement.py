"""Headless logic of the step-through views: label fitting and placement, the top-k display
scale, the token diff of a forced decode, each family's score formula, source-word marks."""

import numpy as np
import pytest

from explorer.gui.step.placement import (
    abbreviate,
    boxes_overlap,
    fit_labels,
    place_labels,
    plan_overlaps,
    row_font_scale,
)
from explorer.gui.step.readout import (
    LOG_FLOOR,
    at_temperature,
    head_average_lines,
    marked,
    marks_note,
    score_formula,
    topk_display,
    where,
    words_html,
)
from explorer.seq2seq.decoding.tokendiff import differing


def px(text: str) -> float:
    """A stand-in font: 7 px a character."""
    return 7.0 * len(text)


SENTENCE = ["the", "black", "cat", "sat", "on", "the", "mat", "yesterday", "</s>"]


def test_labels_stay_whole_when_every_cell_has_room():
    plan = fit_labels(SENTENCE, 80.0, px)
    assert (plan.how, plan.rows, plan.texts) == ("whole", 1, tuple(SENTENCE))


def test_crowded_labels_go_on_two_rows_then_are_abbreviated_then_thinned():
    # 40 px cells: "yesterday" (63 px) beside "mat" (21 px) needs 42 + 6 > 40 on one row
    staggered = fit_labels(SENTENCE, 40.0, px)
    assert (staggered.how, staggered.rows, staggered.texts) == ("staggered", 2, tuple(SENTENCE))
    # Compare's narrow column (18 px a word): two rows give each label 30 px, 4 characters
    short = fit_labels(SENTENCE, 18.0, px)
    assert short.how == "abbreviated" and short.rows == 2
    assert short.texts[:3] == ("the", "bla…", "cat") and short.texts[7] == "yes…"
    # 12 px: no room for three characters and "…"; every k-th word, whole
    thin = fit_labels(SENTENCE, 12.0, px)
    assert thin.how == "thinned" and thin.rows == 1
    kept = [i for i, t in enumerate(thin.texts) if t]
    k = kept[1] - kept[0]
    assert k > 1 and kept == list(range(0, len(SENTENCE), k))
    assert [thin.texts[i] for i in kept] == [SENTENCE[i] for i in kept]
    assert not plan_overlaps(thin, 12.0, px)


@pytest.mark.parametrize("seed", range(30))
def test_no_fitted_labels_overlap(seed):
    rng = np.random.default_rng(seed)
    words = ["".join("abcdefghij"[k] for k in rng.integers(0, 10, rng.integers(1, 14)))]
    words += ["".join("xyz"[k] for k in rng.integers(0, 3, rng.integers(1, 14))) for _ in range(40)]
    words = words[: rng.integers(2, 40)]
    cell = float(rng.uniform(3, 90))
    thick = float(rng.choice([14.0, 200.0]))
    plan = fit_labels(words, cell, px, upright=lambda s: thick, upright_room=rng.uniform(20, 90))
    assert not plan_overlaps(plan, cell, px), (plan, cell)
    assert len(plan.texts) == len(words)


def test_labels_stand_upright_when_a_line_fits_a_cell():
    def ink(s):
        return 14.0

    plan = fit_labels(SENTENCE, 16.0, px, upright=ink)  # 14-px text in 16-px cells
    assert (plan.how, plan.texts) == ("rotated", tuple(SENTENCE))
    assert plan.thickness == (14.0,) * len(SENTENCE)
    assert not plan_overlaps(plan, 16.0, px)
    assert fit_labels(SENTENCE, 13.0, px, upright=ink).how in ("abbreviated", "thinned")
    assert fit_labels(SENTENCE, 40.0, px, upright=ink).how == "staggered"  # flat text first
    # at most 35 px long standing: "yesterday" is cut to "yest…"
    short = fit_labels(SENTENCE, 16.0, px, upright=ink, upright_room=35.0)
    assert short.how == "rotated" and short.texts[7] == "yest…" and short.texts[1] == "black"
    # a room that leaves fewer than three characters: not upright
    assert fit_labels(SENTENCE, 16.0, px, upright=ink, upright_room=20.0).how != "rotated"


def test_abbreviate_keeps_the_longest_start_that_fits():
    assert abbreviate("yesterday", 63, px) == "yesterday"
    assert abbreviate("yesterday", 35, px) == "yest…"  # 5 characters = 35 px
    assert abbreviate("yesterday", 5, px) == ""


def test_vertical_labels_are_thinned_to_rows_of_room():
    plan = fit_labels(["a"] * 30, 6.0, lambda s: 14.0, gap=0, two_rows=False)
    assert plan.how == "thinned"
    kept = [i for i, t in enumerate(plan.texts) if t]
    assert kept == list(range(0, 30, 3))  # 3 rows of 6 px hold a 14-px line


@pytest.mark.parametrize("seed", range(20))
def test_placed_labels_never_overlap_each_other_or_a_point(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    # clustered trajectories: many points almost on top of each other
    points = rng.normal(scale=rng.choice([2.0, 20.0, 200.0]), size=(n, 2)) + 300
    points[: n // 2] = points[0] + rng.normal(scale=0.5, size=(n // 2, 2))
    sizes = np.column_stack([rng.uniform(10, 80, n), np.full(n, 16.0)])
    boxes = place_labels(points, sizes)
    assert not boxes_overlap(boxes)
    np.testing.assert_allclose(boxes[:, 2] - boxes[:, 0], sizes[:, 0])
    np.testing.assert_allclose(boxes[:, 3] - boxes[:, 1], sizes[:, 1])
    for x, y in points:  # no label covers a point
        assert not np.any(
            (boxes[:, 0] < x) & (x < boxes[:, 2]) & (boxes[:, 1] < y) & (y < boxes[:, 3])
        )


def test_a_label_with_room_sits_up_and_right_of_its_point():
    boxes = place_labels(np.array([[100.0, 100.0]]), np.array([[40.0, 10.0]]), pad=4.0)
    np.testing.assert_allclose(boxes[0], [104, 86, 144, 96])


def test_labels_stay_inside_the_plot_when_there_is_room():
    # a point in the top right corner: its label goes down and to the left
    inside = (0.0, 0.0, 200.0, 100.0)
    boxes = place_labels(np.array([[195.0, 3.0]]), np.array([[40.0, 10.0]]), inside=inside)
    np.testing.assert_allclose(boxes[0], [151, 7, 191, 17])
    rng = np.random.default_rng(1)
    points = rng.uniform([0, 0], [200, 100], size=(12, 2))
    boxes = place_labels(points, np.full((12, 2), [30.0, 10.0]), inside=inside)
    assert not boxes_overlap(boxes)
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 200).all() and (boxes[:, 3] <= 100).all()


def test_topk_probabilities_log_scale_and_display_temperature():
    p = np.array([0.999, 0.0009, 0.0001])
    logp = np.log(p)
    plain = topk_display(logp, [0, 1, 2])
    assert plain.numbers == ("1.00", "0.00", "0.00")  # what a sure model looks like
    np.testing.assert_allclose(plain.length, p)
    assert plain.x_range == (0.0, 1.0) and plain.title == "Next token p(y_t)"
    log = topk_display(logp, [0, 1, 2], log_scale=True)
    assert log.numbers == ("−0.00", "−7.01", "−9.21")
    np.testing.assert_allclose(log.start, LOG_FLOOR)
    np.testing.assert_allclose(np.add(log.start, log.length), logp)  # bars end at log p
    assert log.x_range == (LOG_FLOOR, 0.0)
    hot = topk_display(logp, [0, 1, 2], temperature=2.0)
    root = np.sqrt(p) / np.sqrt(p).sum()  # p^(1/2), renormalised
    np.testing.assert_allclose(hot.length, root)
    assert hot.numbers == tuple(f"{x:.2f}" for x in root) == ("0.96", "0.03", "0.01")
    assert hot.title == "Next token p(y_t) at display T = 2"
    # the whole distribution, not only the candidates shown, is renormalised
    np.testing.assert_allclose(np.exp(at_temperature(logp, 3.0)).sum(), 1.0)
    with pytest.raises(ValueError, match="above 0"):
        at_temperature(logp, 0.0)


def test_token_diff_marks_what_a_forced_decode_changed():
    assert tuple(differing([[1, 2, 3, 4], [1, 5, 3, 4]])) == ([False, True, False, False],) * 2
    # a token forced in: the rest realigns, only the new words differ
    assert tuple(differing([[10, 11, 3], [10, 20, 21, 11, 3]])) == (
        [False, False, False],
        [False, True, True, False, False],
    )
    assert tuple(differing([[1, 2], [1, 2]])) == ([False, False], [False, False])
    html = words_html([("", "le"), (" ", "chien"), (" ", "noir")], 0, [False, True, False])
    assert html.count("<u") == 1 and "chien</u>" in html and "<b>le</b>" in html


def test_each_family_says_which_state_it_scores_with():
    assert "s_{t−1}" in score_formula("bahdanau")
    for luong in ("luong-dot", "luong-general"):
        assert "s_t" in score_formula(luong) and "s_{t−1}" not in score_formula(luong)
    assert "q_t · k_i / √d" in score_formula("transformer")
    assert where("transformer", -1, 3, None, 4) == "layer 3, mean of heads"
    assert where("transformer", 0, 3, 1, 4) == "layer 1, head 2"
    assert where("bahdanau", -1, 1, None, 1) == ""


def test_head_average_lines_end_with_the_bars_numbers():
    alpha = np.array([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]])
    lines = head_average_lines(alpha, ["the", "cat", "</s>"])
    assert lines[0] == "The bars show the average of 2 heads: α_i = (1/2) Σ_h α_hi"
    assert lines[-1] == "  0.300  0.175  0.525   average (as the bars)"
    assert lines[2].endswith("head 1") and lines[3].endswith("head 2")


def test_marks_name_unseen_and_unk_pieces():
    marks = ("", "unseen", "unk", "")
    assert marked(["i", "li", "<unk>", "</s>"], marks) == ["i", "li*", "<unk>?", "</s>"]
    assert marked(["a", "b"], None) == ["a", "b"]
    assert marks_note(marks) == "(* never seen in training, ? became <unk>)"
    assert marks_note(("", "unseen")) == "(* never seen in training)"
    assert marks_note(None) == ""


def test_row_labels_shrink_to_their_rows_down_to_a_floor():
    assert row_font_scale(30.0, 20.0) == 1.0  # room enough
    assert row_font_scale(15.0, 20.0) == 0.75  # a 20-px line in 15-px rows
    assert row_font_scale(5.0, 20.0) == 0.6  # too short to read smaller


def test_a_value_axis_takes_the_smallest_nice_step_whose_labels_stand_a_line_apart():
    from explorer.gui.step.ticks import value_step

    assert value_step(0, 1, 400, 16) == 0.1  # 12 intervals fit: 0.1 (10 of them)
    assert value_step(0, 1, 100, 24) == 0.5  # 2 fit (0.2 would need 5)
    assert value_step(-3, 25, 200, 16) == 5.0  # 6 fit: 28 / 5 = 5.6
    assert value_step(0, 1, 30, 24) == 1.0  # not even two: the ends only
    assert value_step(0, 0, 100, 16) == 1.0  # nothing to divide
