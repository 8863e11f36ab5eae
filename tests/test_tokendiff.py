"""Token-level differences of decodes: known alignments."""

from __future__ import annotations

from explorer.seq2seq.decoding.tokendiff import DiffOp, diff_ops, differing, first_difference

A = "le chat noir s ' est assis".split()
B = "le chat chat s ' est assis".split()
C = "le chat noir est assis".split()


def test_two_outputs_mark_only_the_replaced_token():
    assert differing([A, B]) == [
        [False, False, True, False, False, False, False],
        [False, False, True, False, False, False, False],
    ]
    assert first_difference(A, B) == 2


def test_an_insertion_does_not_shift_every_later_mark():
    left, right = differing([C, A])
    assert left == [False] * 5
    assert right == [False, False, False, True, True, False, False]  # "s '" only in A
    assert diff_ops(C, A) == [
        DiffOp("equal", 0, 3, 0, 3),
        DiffOp("insert", 3, 3, 3, 5),
        DiffOp("equal", 3, 5, 5, 7),
    ]


def test_three_outputs_mark_what_not_all_share():
    a, b, c = differing([A, B, C])
    assert a == [False, False, True, True, True, False, False]
    assert b == [False, False, True, True, True, False, False]
    assert c == [False, False, True, False, False]


def test_identical_or_single_outputs_have_no_marks():
    assert differing([A, list(A)]) == [[False] * 7, [False] * 7]
    assert differing([A]) == [[False] * 7]
    assert first_difference(A, list(A)) is None
    assert first_difference(A, A[:3]) == 3
    assert differing([[], A]) == [[], [True] * 7]
