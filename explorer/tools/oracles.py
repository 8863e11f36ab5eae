"""The reference oracles of a source checkout, for benchmark rows that compare against them.

The oracles (``beam_search_reference``, ``synthetic_beam_tree``) are test code, kept in the
checkout's ``tests/oracles.py`` and not installed with the package. ``bench`` is a developer tool
run from a checkout: ``from explorer.tools.oracles import synthetic_beam_tree`` loads that file.
Where it is absent (an installed wheel) the import raises :class:`NeedsCheckout`, whose message
says so in one line, and the benchmark skips just the rows that need it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from explorer.assets import checkout

NAMES = ("beam_search_reference", "synthetic_beam_tree")


class NeedsCheckout(ImportError):
    """The oracles are not here: the package runs from an installed wheel, not a checkout."""


def oracles_path() -> Path | None:
    """The checkout's ``tests/oracles.py``, or None where there is no checkout."""
    root = checkout()
    return None if root is None else root / "tests" / "oracles.py"


def _load() -> ModuleType:
    oracles = oracles_path()
    if oracles is None or not oracles.is_file():
        raise NeedsCheckout(
            "these benchmark rows need a source checkout (tests/oracles.py not found); skipped"
        )
    name = "explorer_checkout_oracles"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, oracles)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up while being built
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def __getattr__(name: str):
    if name not in NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(_load(), name)
