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
