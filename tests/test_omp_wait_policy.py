"""The entry point makes OpenMP threads sleep while they wait (``OMP_WAIT_POLICY=PASSIVE``) before
torch is imported: on a shared CPU spinning threads made a real-size decode 20× slower."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = (
    "import sys, explorer.__main__, os; "
    "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
)


def _probe(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    base["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**base, **env}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_entry_point_sets_passive_waiting_before_torch_is_imported():
    assert _probe() == "PASSIVE False"


def test_a_policy_already_in_the_environment_is_kept():
    assert _probe(OMP_WAIT_POLICY="ACTIVE") == "ACTIVE False"
