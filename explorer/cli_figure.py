"""``attention-explorer figure``: one view of one decode as a PNG (at twice its size) or an SVG,
and its data as JSON or CSV, for slides, without a screen.

Qt is imported only when the command runs (offscreen when there is no display), so the other
commands and ``--help`` work where Qt cannot load; without Qt this command says so in one line.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from explorer.cli_common import CliError

# as explorer.gui.exports.figure.VIEWS (not imported from there: that module needs Qt)
VIEWS = ("alignment", "attention", "context", "topk", "hidden", "tree", "sweep", "bottleneck",
         "arithmetic")  # fmt: skip
THEMES = ("light", "dark")
FIGURES = (".png", ".svg")
DATA = (".json", ".csv")
MAX_SIDE = 4000  # pixels on screen; the PNG is twice that


def add_parser(sub, checkpoint_help: str) -> None:
    p = sub.add_parser(
        "figure",
        help="save one view of a decode as a PNG or SVG, and its data (no screen needed)",
        description="Decode SENTENCE with the model (greedily) and save one view at one step, "
        "as the right-click menu of the view in the application does.",
    )
    p.add_argument("--checkpoint", required=True, metavar="M", help=checkpoint_help)
    p.add_argument("--sentence", required=True, metavar="S", help="the source sentence")
    p.add_argument(
        "--step",
        type=int,
        metavar="N",
        help="the step to show, 1 = the first target token (default: the last)",
    )
    p.add_argument("--view", required=True, metavar="VIEW", help=" | ".join(VIEWS))
    p.add_argument("--out", required=True, metavar="F.png|F.svg", help="the figure to write")
    p.add_argument("--data", metavar="F.json|F.csv", help="also write what the view shows")
    p.add_argument("--theme", default="light", metavar="|".join(THEMES))
    p.add_argument("--projector", action="store_true", help="the projector mode's large text")
    p.add_argument(
        "--size",
        default="900x560",
        metavar="WxH",
        help="the view's size in pixels (default 900x560; the PNG is twice that)",
    )
    p.add_argument("--beam", type=int, default=5, help="tree: the beam size (default 5)")
    p.add_argument("--pairs", type=int, default=20,
                   help="sweep: classroom test pairs to translate at each beam size")  # fmt: skip


def _writable(path: Path, what: str, suffixes: tuple[str, ...]) -> Path:
    if path.suffix.lower() not in suffixes:
        raise CliError(f"{what} {path}: expected a {' or '.join(suffixes)} file")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise CliError(f"{what} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise CliError(f"{what} {path}: cannot write there")
    return path


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise CliError(f"--size {text}: expected WIDTHxHEIGHT, e.g. 900x560") from None
    if not (100 <= w <= MAX_SIDE and 60 <= h <= MAX_SIDE):
        raise CliError(f"--size {text}: each side from 100 (60 high) to {MAX_SIDE} pixels")
    return w, h


def checked(args: argparse.Namespace) -> tuple[Path, Path | None, tuple[int, int]]:
    """Every argument checked before Qt starts or a model loads: one line on what is wrong."""
    if args.view not in VIEWS:
        raise CliError(f"--view {args.view}: unknown view; expected one of {', '.join(VIEWS)}")
    if args.theme not in THEMES:
        raise CliError(f"--theme {args.theme}: expected one of {', '.join(THEMES)}")
    if not args.sentence.strip():
        raise CliError("--sentence: empty; give the source sentence to decode")
    if args.step is not None and args.step < 1:
        raise CliError(f"--step {args.step}: steps count from 1")
    if not 1 <= args.beam <= 64:
        raise CliError(f"--beam {args.beam}: expected 1 to 64")
    if not 1 <= args.pairs <= 1000:
        raise CliError(f"--pairs {args.pairs}: expected 1 to 1000")
    out = _writable(Path(args.out), "--out", FIGURES)
    data = _writable(Path(args.data), "--data", DATA) if args.data else None
    return out, data, _size(args.size)


def _quiet_size_hints(kind, context, message: str) -> None:
    """Qt's messages on stderr, less the offscreen plugin's size-hint note (noise here)."""
    if "propagateSizeHints" not in message:
        sys.stderr.write(message + "\n")


def _start_qt(theme_name: str, projector: bool):
    """The QApplication, offscreen when no display is there; CliError when Qt cannot load."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        from PySide6.QtWidgets import QApplication
    except ImportError as e:
        raise CliError(f"the figure command needs Qt (PySide6), which did not load: {e}") from None
    from PySide6.QtCore import qInstallMessageHandler

    qInstallMessageHandler(_quiet_size_hints)
    app = QApplication.instance() or QApplication(["attention-explorer"])
    from explorer.gui.widgets import theme

    theme.apply(app, theme_name, projector)
    return app


def cmd_figure(args: argparse.Namespace) -> int:
    from explorer.assets import checkpoint_path
    from explorer.seq2seq.checkpoint import load_checkpoint

    out, data, size = checked(args)
    ck = load_checkpoint(checkpoint_path(args.checkpoint))
    app = _start_qt(args.theme, args.projector)  # noqa: F841  (kept while the figure is drawn)
    from explorer.gui.exports.figure import figure
    from explorer.gui.state import LoadedModel

    entry = LoadedModel.from_checkpoint(ck)
    view = figure(args.view, entry, args.sentence, args.step, size, args.beam, args.pairs)
    for path in (out, data):
        if path is not None:
            view.save(path)
            print(f"wrote {path}", file=sys.stderr)
    return 0
