"""The command line against a stranger's files, one class of attack at a time (issue 15).

Each class's files come from explorer.tools.hostile; the cases run in a child process whose
address space is capped at 4 GiB (explorer.tools.reliability.MEMORY_CAP_BYTES), so a bomb that got
through would fail its case, not the machine, and a child that hangs is stopped after
CASE_SECONDS. Every case must end as it should: refused with one ``error:`` line naming the file,
or accepted with its output checked; nothing outside its --out may change.
"""

import pytest

from explorer.tools.hostile import CLASSES, Case
from explorer.tools.reliability import judge, run_hostile


@pytest.mark.parametrize("cls", CLASSES)
def test_every_hostile_file_is_refused_cleanly_or_handled(cls):
    row = run_hostile((cls,))[cls]
    assert row["failures"] == []
    assert row["tried"] == row["refused"] + row["accepted"] > 0
    for outcome in ("crashes", "hangs", "memory", "unclear", "touched", "wrong"):
        assert row[outcome] == 0, outcome


REFUSED = Case("x", "refused", ["info", "f"], "refused", names="f.safetensors")


def result(status=2, stderr="error: f.safetensors: bad\n", stdout="", touched=()):
    return {"name": "x", "status": status, "stderr": stderr, "stdout": stdout,
            "touched": list(touched)}  # fmt: skip


@pytest.mark.parametrize(
    ("res", "outcome"),
    [
        (result(), "refused"),
        (result(stderr="error: f.safetensors: x\nerror: looks fine\n"), "unclear"),
        (result(stderr="error: something else\n"), "unclear"),
        (result(stderr="Traceback (most recent call last):\nerror: f.safetensors\n"), "unclear"),
        (result(touched=["victim.txt"]), "touched"),
        (result(status="crash"), "crashes"),
        (result(status=-11), "crashes"),
        (result(status="hang"), "hangs"),
        (result(status="memory"), "memory"),
        (result(status=0), "wrong"),
    ],
)
def test_the_judge_counts_what_went_wrong(res, outcome):
    assert judge(REFUSED, res) == outcome


def test_accepted_output_is_checked():
    case = Case("x", "json", ["translate"], "accepted", check="json")
    assert judge(case, result(status=0, stdout='[{"score": 1.5}]')) == "accepted"
    assert judge(case, result(status=0, stdout='[{"score": NaN}]')) == "wrong"
