"""No code under explorer/ can unpickle or evaluate text: checked on every file's syntax tree."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "explorer"
PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve"}
PICKLE_CALLS = {"load", "loads", "Unpickler"}


def _dotted(node: ast.AST) -> str:
    """'torch.load' for torch.load, 'np.load' for np.load, 'eval' for eval, '' otherwise."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""  # a method of a computed value
    return ""


def _keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def violations(source: str, filename: str = "<string>") -> list[str]:
    """Every unpickling, eval or exec in ``source``, as 'file:line: what'."""
    tree = ast.parse(source, filename)
    aliases: dict[str, str] = {}  # local name -> module.name it was imported as
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in PICKLE_MODULES:
            bad = [a.name for a in node.names if a.name in PICKLE_CALLS]
            if bad:
                found.append(f"{filename}:{node.lineno}: imports {node.module}.{bad[0]}")
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in {"cPickle", "dill", "cloudpickle", "shelve"}:
                    found.append(f"{filename}:{node.lineno}: imports {a.name}")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        head, _, rest = name.partition(".")
        full = f"{aliases.get(head, head)}.{rest}" if rest else aliases.get(head, head)
        module, _, attr = full.rpartition(".")
        where = f"{filename}:{node.lineno}"
        if full in {"eval", "exec", "builtins.eval", "builtins.exec"}:
            found.append(f"{where}: calls {full}")
        elif module.split(".")[0] in PICKLE_MODULES and attr in PICKLE_CALLS:
            found.append(f"{where}: calls {full}")
        elif full == "torch.load" and not _is_true(_keyword(node, "weights_only")):
            found.append(f"{where}: calls torch.load without weights_only=True")
        elif module in {"numpy", "np"} and attr in {"load", "loadtxt"}:
            if _is_true(_keyword(node, "allow_pickle")):
                found.append(f"{where}: calls {full} with allow_pickle=True")
        elif full == "pandas.read_pickle":
            found.append(f"{where}: calls {full}")
    return found


def test_no_file_under_explorer_unpickles_or_evaluates():
    files = sorted(ROOT.rglob("*.py"))
    assert len(files) > 10  # the scan really looks at the package
    problems = [p for f in files for p in violations(f.read_text(encoding="utf-8"), str(f))]
    assert problems == []


@pytest.mark.parametrize(
    "source",
    [
        "import pickle\npickle.load(f)",
        "import pickle as pk\npk.loads(b)",
        "from pickle import loads\nloads(b)",
        "from pickle import load as L\nL(f)",
        "import _pickle\n_pickle.Unpickler(f).load()",
        "import torch\ntorch.load(p)",
        "import torch\ntorch.load(p, weights_only=False)",
        "import torch as T\nT.load(p, map_location='cpu')",
        "from torch import load\nload(p)",
        "import numpy as np\nnp.load(p, allow_pickle=True)",
        "eval('1 + 1')",
        "exec(code)",
        "import builtins\nbuiltins.eval(s)",
        "import cPickle",
    ],
)
def test_the_scanner_finds_each_kind(source):
    assert len(violations(source)) >= 1, source


@pytest.mark.parametrize(
    "source",
    [
        "import torch\ntorch.load(p, weights_only=True)",
        "import numpy as np\nnp.load(p)",
        "import numpy as np\nnp.load(p, allow_pickle=False)",
        "from safetensors.torch import load_file\nload_file(p)",
        "model.eval()",
        "build_model(cfg).eval()",
        "import json\njson.loads(s)",
        "text = 'pickle.load(f)'",
    ],
)
def test_the_scanner_allows_safe_code(source):
    assert violations(source) == []
