import subprocess
import sys


def test_seq2seq_imports_no_qt():
    code = (
        "import sys, pkgutil, importlib, explorer.seq2seq as p\n"
        "names = [m.name for m in pkgutil.walk_packages(p.__path__, 'explorer.seq2seq.')]\n"
        "assert 'explorer.seq2seq.models.attention' in names, names\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('PySide6', 'pyqtgraph', 'superqt', 'qtpy', 'PyQt5', 'PyQt6')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
