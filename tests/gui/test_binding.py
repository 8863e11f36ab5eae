"""The Qt binding itself must survive a long classroom session."""

import subprocess
import sys

SCRIPT = """
import sys
from PySide6.QtWidgets import QApplication, QLabel
app = QApplication([])
label = QLabel()
before = sys.getrefcount(None)
for _ in range(20000):
    label.setText("x")
    label.setVisible(False)
print(sys.getrefcount(None) - before)
"""


def test_void_qt_calls_do_not_leak_references_to_none():
    # PySide6 6.12.0 drops a reference to None on every call of a void method; Python 3.11 then
    # aborts with "none_dealloc" after a few thousand calls (a minute of scrubbing in the app).
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env={"QT_QPA_PLATFORM": "offscreen", "PATH": ""},
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-500:]
    assert abs(int(r.stdout.strip())) < 100
