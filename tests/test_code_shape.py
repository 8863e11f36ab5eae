"""The shape of the product package: small modules, short functions, nothing written twice.

Checked on the source text of ``explorer/`` (ast for functions, normalised lines for repeats), so
it needs no tool beyond Python. A failure lists every offending place."""

from __future__ import annotations

import ast
import hashlib
import io
import re
import sys
import tokenize
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "explorer"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60
MAX_REPEATED_LINES = 10  # a block of more lines than this may not stand in two places

_PUNCTUATION = re.compile(r"^[\s()\[\]{},:;]*$")


def modules(root: Path = PACKAGE) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def long_modules(paths: list[Path], limit: int = MAX_MODULE_LINES) -> list[str]:
    out = []
    for p in paths:
        n = len(p.read_text(encoding="utf-8").splitlines())
        if n > limit:
            out.append(f"{_name(p)}: {n} lines")
    return out


def long_functions(paths: list[Path], limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """Every function or method (nested ones too) whose def-to-last-line span is over limit."""
    out = []
    for p in paths:
        tree = ast.parse(p.read_text(encoding="utf-8"), filename=str(p))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                n = node.end_lineno - first + 1
                if n > limit:
                    out.append(f"{_name(p)}:{node.lineno} {node.name}: {n} lines")
    return out


def _without_comments(text: str) -> list[str]:
    lines = text.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            lines[row - 1] = lines[row - 1][:col]
    return lines


def normalised_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) of the lines that carry code: comments cut, white space folded;
    blank lines, imports and lines of lone brackets and commas left out."""
    out = []
    for number, line in enumerate(_without_comments(text), start=1):
        s = " ".join(line.split())
        if not s or _PUNCTUATION.match(s):
            continue
        if s.startswith(("import ", "from ")) and " import " in f" {s} ":
            continue
        out.append((number, s))
    return out


def repeated_blocks(paths: list[Path], limit: int = MAX_REPEATED_LINES) -> list[str]:
    """Places where the same run of more than ``limit`` normalised lines stands twice (in two
    files, or twice in one file without overlapping)."""
    width = limit + 1
    seen: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for p in paths:
        lines = normalised_lines(p.read_text(encoding="utf-8"))
        for i in range(len(lines) - width + 1):
            window = "\n".join(s for _, s in lines[i : i + width])
            key = hashlib.blake2b(window.encode(), digest_size=16).hexdigest()
            seen[key].append((_name(p), lines[i][0], lines[i + width - 1][0]))
    pairs = set()
    for places in seen.values():
        for a, b in zip(places, places[1:]):
            if a[0] == b[0] and b[1] <= a[2]:
                continue  # the same lines seen again one window on
            pairs.add((a[0], a[1], b[0], b[1]))
    # a longer repeat gives one pair per window; report where each run starts
    starts = sorted(pairs)
    out = []
    for f1, l1, f2, l2 in starts:
        if out and out[-1][0] == f1 and out[-1][2] == f2 and l1 - out[-1][4] <= width:
            out[-1][4] = l1
            continue
        out.append([f1, l1, f2, l2, l1])
    return [f"{f1}:{l1} ~ {f2}:{l2}" for f1, l1, f2, l2, _ in out]


# ------------------------------------------------------------------------------------- the rules


def test_no_module_over_600_lines():
    found = long_modules(modules())
    assert not found, "\n".join(found)


def test_no_function_over_60_lines():
    found = long_functions(modules())
    assert not found, "\n".join(found)


def test_no_block_of_more_than_ten_lines_written_twice():
    found = repeated_blocks(modules())
    assert not found, "\n".join(found)


# --------------------------------------------------------------------------- the checks themselves


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / "explorer" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_checks_find_what_they_look_for(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "explorer")
    body = "".join(f"    x{i} = {i}\n" for i in range(59))
    nested = "def outer():\n    def inner():\n" + "".join(
        f"        y{i} = {i}\n" for i in range(60)
    )
    a = _write(tmp_path, "a.py", f"def fits():\n{body}\n\ndef over():\n{body}    x = 0\n")
    b = _write(tmp_path, "b.py", nested + "    return inner\n")
    assert long_functions([a, b]) == [
        "explorer/a.py:63 over: 61 lines",
        "explorer/b.py:1 outer: 63 lines",
        "explorer/b.py:2 inner: 61 lines",
    ]
    assert long_modules([a, b], limit=100) == ["explorer/a.py: 123 lines"]

    block = "".join(f"total = total + weight[{i}] * value  # step {i}\n" for i in range(11))
    c = _write(tmp_path, "c.py", "import os\n\n" + block + "\n")
    d = _write(tmp_path, "d.py", "x = 1\n" + block.replace("  # step", "   # another") + "y = 2\n")
    e = _write(tmp_path, "e.py", "".join(block.splitlines(keepends=True)[:10]) + "z = 3\n")
    assert repeated_blocks([c, d, e]) == ["explorer/c.py:3 ~ explorer/d.py:2"]
    # ten repeated lines are allowed; a run repeated inside one file is found too
    assert repeated_blocks([c, e]) == []
    f = _write(tmp_path, "f.py", block + "pass\n" + block)
    assert repeated_blocks([f]) == ["explorer/f.py:1 ~ explorer/f.py:13"]
