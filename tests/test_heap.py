"""The C heap while training: large tensors reuse freed pages instead of fresh mappings, and
glibc's defaults come back when the run ends (``explorer.seq2seq.heap``)."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from explorer.seq2seq import heap
from explorer.seq2seq.heap import reuse_freed_memory
from explorer.seq2seq.training.train import Trainer, TrainOptions

BIG = 10_000_000  # float32 elements: 40 MB, over glibc's largest mmap threshold (32 MiB)
PAGES = BIG * 4 // resource.getpagesize()


def rss() -> int:
    """This process's resident bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


pytestmark = pytest.mark.skipif(heap._libc() is None, reason="needs glibc's malloc")


def allocate_and_free() -> int:
    """A 40 MB tensor written and freed; how much the resident size grew meanwhile."""
    before = rss()
    a = torch.ones(BIG)
    grew = rss() - before
    del a
    return grew


def warm_up() -> None:
    """The heap grows until a freed block fits the next (torch aligns its blocks, so a freed one
    can fall short of the next request by its alignment until neighbours merge)."""
    for _ in range(6):
        allocate_and_free()


def in_a_fresh_process(scenario) -> None:
    """Run ``scenario``, a function of this module, in a new Python process and fail with its
    error. Resident size measures the whole process: in the test run's own, what earlier tests
    left behind (threads that trim the heap as they end, freed blocks already handed back) moves
    it, and the same heap can serve one 40 MB block from pages it gave away."""
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        f"import test_heap; test_heap.{scenario.__name__}()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]


def inside_freed_blocks_stay_and_are_reused_and_leaving_returns_them():
    with reuse_freed_memory() as active:
        assert active
        warm_up()
        kept = rss()
        assert allocate_and_free() < BIG * 4 // 10  # the same pages again, not new ones
        assert rss() - kept > -BIG * 4 // 10  # freed, still resident for the next step
    assert kept - rss() > BIG * 4 * 0.7  # once left, the free pages go back to the system


def test_inside_freed_blocks_stay_and_are_reused_and_leaving_returns_them():
    in_a_fresh_process(inside_freed_blocks_stay_and_are_reused_and_leaving_returns_them)


def nested_uses_keep_the_setting_until_the_outermost_leaves():
    with reuse_freed_memory():
        with reuse_freed_memory():
            warm_up()
        kept = rss()
        assert allocate_and_free() < BIG * 4 // 10
        assert heap._holders == 1
    assert kept - rss() > BIG * 4 * 0.7
    assert heap._holders == 0


def test_nested_uses_keep_the_setting_until_the_outermost_leaves():
    in_a_fresh_process(nested_uses_keep_the_setting_until_the_outermost_leaves)


def test_a_training_run_holds_the_setting_while_it_runs(tmp_path):
    o = TrainOptions.from_preset(
        "tiny", steps=6, eval_every=0, threads=1, out=str(tmp_path / "m.safetensors")
    )
    holders = [heap._holders for e in Trainer(o).run() if e.kind == "step"]
    assert holders == [1] * 6
    assert heap._holders == 0


def an_error_inside_still_gives_the_defaults_back():
    with pytest.raises(RuntimeError, match="boom"):
        with reuse_freed_memory():
            warm_up()
            kept = rss()
            raise RuntimeError("boom")
    assert kept - rss() > BIG * 4 * 0.7
    assert heap._holders == 0


def test_an_error_inside_still_gives_the_defaults_back():
    in_a_fresh_process(an_error_inside_still_gives_the_defaults_back)


def test_a_failing_scenario_fails_the_test():
    with pytest.raises(AssertionError, match="no reuse here"):
        in_a_fresh_process(a_failing_scenario)


def a_failing_scenario():
    raise AssertionError("no reuse here")
