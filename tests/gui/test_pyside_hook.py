"""PySide6's per-import check answers as before, without inspect or linecache."""

from __future__ import annotations

import linecache
import sys
import types

import PySide6.QtCore  # noqa: F401  (loads shibokensupport.feature)

from explorer.gui.pyside_hook import MARK, quicken_feature_scan


def _module(tmp_path, name: str, text: str) -> types.ModuleType:
    path = tmp_path / f"{name}.py"
    path.write_text(text, encoding="utf-8")
    module = types.ModuleType(name)
    module.__file__ = str(path)
    return module


def test_the_check_reads_the_file_and_gives_pysides_answer(tmp_path):
    quicken_feature_scan()
    feature = sys.modules["shibokensupport.feature"]
    check = feature._mod_uses_pyside
    assert getattr(check, MARK)
    uses = _module(tmp_path, "uses_qt", "# é\nfrom PySide6 import QtCore\n")
    plain = _module(tmp_path, "plain", "import math\nx = 'PySide2'\n")
    assert check(uses) is True
    assert check(plain) is False
    assert str(tmp_path / "uses_qt.py") not in linecache.cache
    assert check(sys) is False  # built in: no file, PySide's own answer
    (tmp_path / "plain.py").unlink()
    assert check(plain) is False  # the file is gone: PySide's own check says so too


def test_a_module_imported_after_pyside_is_registered_and_not_cached(tmp_path, monkeypatch):
    quicken_feature_scan()
    feature = sys.modules["shibokensupport.feature"]
    (tmp_path / "explorer_hook_probe.py").write_text("from PySide6 import QtCore\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import explorer_hook_probe  # noqa: F401

    assert feature.pyside_feature_dict["explorer_hook_probe"] == 0  # uses PySide: switchable
    assert str(tmp_path / "explorer_hook_probe.py") not in linecache.cache


def test_installing_twice_keeps_one_wrapper():
    quicken_feature_scan()
    feature = sys.modules["shibokensupport.feature"]
    first = feature._mod_uses_pyside
    assert quicken_feature_scan() is False
    assert feature._mod_uses_pyside is first


def test_the_theme_notifier_belongs_to_the_applications_thread(qapp, monkeypatch):
    """Asked for first on a worker (importing the plot modules), it still lives on the
    application's thread: a QObject of a thread that ends cannot deliver its signals."""
    import threading

    from explorer.gui.widgets import theme

    monkeypatch.setattr(theme, "_signals", None)
    made = []
    t = threading.Thread(target=lambda: made.append(theme.signals()))
    t.start()
    t.join()
    assert made[0].thread() is qapp.thread()
