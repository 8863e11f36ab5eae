import subprocess
import sys


def test_seq2seq_imports_no_qt():
    code = (
        "import sys, explorer.seq2seq, explorer.seq2seq.trace, explorer.seq2seq.base, "
        "explorer.seq2seq.attention\n"
        "import pkgutil, importlib, explorer.seq2seq as p\n"
        "for m in pkgutil.iter_modules(p.__path__):\n"
        "    importlib.import_module('explorer.seq2seq.' + m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('PySide6', 'pyqtgraph', 'superqt', 'qtpy', 'PyQt5', 'PyQt6')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
