import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Generated corpora are kept for the session (and its subprocesses), not in the user's cache.
os.environ.setdefault("ATTENTION_EXPLORER_CACHE", __import__("tempfile").mkdtemp("-corpora"))

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def _seed():
    import torch

    torch.manual_seed(0)
    yield
    import gc

    if not gc.isenabled():  # the window's collector (explorer/gui/collector.py) is on: a test
        gc.collect()  # that never spun the event loop leaves its cycles to this thread too


def pytest_sessionfinish(session, exitstatus):
    """A worker still running when the interpreter shuts down would block for ever on the GIL
    (and so would the run). Let the workers the tests started end; if one is still running after
    two minutes, say so and exit rather than hang."""
    import sys
    import time

    QtCore = sys.modules.get("PySide6.QtCore")
    if QtCore is None or QtCore.QCoreApplication.instance() is None:
        return
    pool = QtCore.QThreadPool.globalInstance()
    deadline = time.monotonic() + 120
    while pool.activeThreadCount() and time.monotonic() < deadline:
        QtCore.QCoreApplication.processEvents()
        time.sleep(0.05)
    if pool.activeThreadCount():
        sys.stderr.write(
            f"\n{pool.activeThreadCount()} worker thread(s) still running two minutes after the "
            "last test: exiting instead of hanging at interpreter shutdown\n"
        )
        sys.stderr.flush()
        os._exit(exitstatus or 3)
