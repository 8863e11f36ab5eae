"""Cyclic garbage is collected on the window's thread, never on a worker's."""

import gc
import threading
import weakref

import pytest

pytest.importorskip("pytestqt")

from explorer.gui.collector import collect_cycles, collect_on_main_thread  # noqa: E402
from explorer.gui.runner import Runner  # noqa: E402


class Node:
    def __init__(self):
        self.other = self  # a cycle: only the cycle collector frees it


def test_the_automatic_collector_is_off_once_a_runner_exists(qapp):
    Runner()
    assert not gc.isenabled()
    assert collect_on_main_thread()  # again: nothing changes, still on


def test_a_cycle_is_freed_by_the_timer_on_the_main_thread(qapp, qtbot):
    Runner()
    freed_on = []

    class Tracked(Node):
        def __del__(self):
            freed_on.append(threading.current_thread() is threading.main_thread())

    node = Tracked()
    ref = weakref.ref(node)
    del node
    # allocations on a worker thread fill generation 0 but no longer collect there
    worker = threading.Thread(target=lambda: [Node() for _ in range(5 * gc.get_threshold()[0])])
    worker.start()
    worker.join()
    assert ref() is not None  # not collected on the worker
    qtbot.waitUntil(lambda: ref() is None, timeout=5000)
    assert freed_on == [True]


def test_one_check_collects_only_the_generations_over_their_thresholds():
    enabled = gc.isenabled()
    gc.disable()
    try:
        gc.collect()
        assert collect_cycles((10**9, 10, 10)) == 0  # generation 0 under its threshold: nothing
        Node()
        assert collect_cycles((0, 10**9, 10**9)) >= 1  # over it: the cycle is found
    finally:
        if enabled:
            gc.enable()
