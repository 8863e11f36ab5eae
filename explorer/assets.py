"""Where the bundled checkpoints (``models/``) and the classroom lexicon and grammar
(``resources/``) are, for an installed copy and for a checkout alike.

The repository keeps both folders at its top level. The wheel carries them inside the package as
``explorer/_models`` and ``explorer/_resources`` (``setup.py`` maps the folders), found here with
``importlib.resources``. Where the package has no such folders (an editable install, or a checkout
on ``PYTHONPATH``), the checkout the package was imported from holds them. Nothing else in the
project works out where the repository is.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

# The bundled checkpoints by name, the one the window opens first at the head.
BUNDLED = (
    "classroom-bahdanau",
    "classroom-none",
    "classroom-luong",
    "classroom-transformer",
    "multi30k-de-en-transformer",
)
CHECKPOINT_SUFFIX = ".safetensors"


class CheckoutRequired(OSError):
    """A command that writes into the repository (its BENCHMARKS.md, models/README.md, docs/) was
    run from an installed copy; printed as one line."""


def _package() -> Path:
    package = files("explorer")
    if not isinstance(package, Path):  # e.g. imported from a zip archive
        raise OSError(f"attention-explorer must be installed unpacked (it was found in {package})")
    return package


def checkout() -> Path | None:
    """The repository this copy of ``explorer`` was imported from, or None for an installed copy
    (a wheel's files in site-packages have no pyproject.toml beside them)."""
    root = _package().parent
    if (root / "pyproject.toml").is_file() and (root / "models").is_dir():
        return root
    return None


def require_checkout(command: str, writes: str) -> Path:
    """The repository's root, for a command that writes ``writes`` into it; outside a checkout
    a one-line error that says so."""
    root = checkout()
    if root is None:
        raise CheckoutRequired(
            f"attention-explorer {command} writes {writes} of a checkout of the repository, and "
            f"this copy is installed in {_package()}: run it from a git clone (pip install -e .)"
        )
    return root


def _folder(name: str) -> Path:
    """The top-level folder ``name`` of the repository: inside the installed package, else in
    the checkout. A missing folder (a broken install) is returned as the installed path, so
    whoever reads from it names the file that is missing."""
    installed = _package() / f"_{name}"
    if installed.is_dir():
        return installed
    root = checkout()
    return root / name if root is not None else installed


def models_dir() -> Path:
    """The folder of the bundled checkpoints and their cards."""
    return _folder("models")


def resources_dir() -> Path:
    """The folder of the application's resources (``classroom/`` holds the lexicon and grammar)."""
    return _folder("resources")


def bundled_paths(folder: Path | None = None) -> list[Path]:
    """The bundled checkpoints that exist (in ``folder``, by default the bundled models' folder),
    the default first."""
    folder = models_dir() if folder is None else Path(folder)
    paths = (folder / f"{name}{CHECKPOINT_SUFFIX}" for name in BUNDLED)
    return [p for p in paths if p.is_file()]


def model_examples(checkpoint: Path | None) -> list[tuple[str, str]]:
    """Example sentences and their translations for a bundled checkpoint, from
    ``resources/examples/NAME.tsv`` (source TAB translation per line); [] for any other file and
    for a bundled model without examples (the classroom models share the lectures' examples)."""
    if checkpoint is None or Path(checkpoint).parent.resolve() != models_dir().resolve():
        return []
    path = resources_dir() / "examples" / f"{Path(checkpoint).stem}.tsv"
    if not path.is_file():
        return []
    pairs = (line.split("\t", 1) for line in path.read_text(encoding="utf-8").splitlines())
    return [(p[0].strip(), p[1].strip()) for p in pairs if len(p) == 2 and p[0].strip()]


def checkpoint_path(spec: str | Path) -> Path:
    """A checkpoint named on the command line: a file, or the name of a bundled model
    (``classroom-bahdanau``). A file of that name wins; anything else is returned as a path, so
    that reading it reports the missing file."""
    path = Path(spec)
    if not path.exists() and str(spec) in BUNDLED:
        return models_dir() / f"{spec}{CHECKPOINT_SUFFIX}"
    return path


def shipped_lessons() -> list[str]:
    """The names of the lessons shipped with the application (``lecture``, …)."""
    folder = resources_dir() / "lessons"
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def lesson_path(spec: str | Path) -> Path:
    """A lesson named on the command line: a file, or the name of a shipped lesson
    (``lecture``). A file of that name wins; anything else is returned as a path (reading it
    says it is missing)."""
    path = Path(spec)
    if not path.exists() and str(spec) in shipped_lessons():
        return resources_dir() / "lessons" / f"{spec}.json"
    return path
