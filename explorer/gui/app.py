"""Start the GUI: ``attention-explorer`` / ``python -m explorer``.

``--screenshot FILE --panel train|step|beam`` renders the window offscreen to a PNG and exits, once
the bundled (or ``--checkpoint``) model is loaded and the panel has drawn. For the documentation's
training pictures, ``--train-steps N`` (with ``--preset NAME``) trains first and grabs the panel
paused at the evaluation of step N (``--train-steps 0``: before training starts; ``-N``: after
the run, stopped at the evaluation of step N). ``--lesson FILE`` opens a lesson (``--scene N``
starts at scene N; with ``--screenshot``, the picture is taken once that scene is shown).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

LOAD_TIMEOUT_S = 120


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="attention-explorer", description="Attention Explorer GUI")
    p.add_argument("--screenshot", metavar="FILE", help="render the window to a PNG and exit")
    p.add_argument("--panel", choices=["train", "step", "beam"], default=None)
    p.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="open this checkpoint, a file or a bundled model's name (and make it current)",
    )
    p.add_argument("--sentence", metavar="TEXT", help="the sentence the panels show")
    p.add_argument("--projector", action="store_true", help="large fonts for a classroom screen")
    p.add_argument(
        "--step",
        type=int,
        default=0,
        help="screenshot of the Step-through panel at this step (1 = first; "
        "default: the last, with the whole alignment drawn)",
    )
    p.add_argument(
        "--theme", choices=["light", "dark"], help="the colour theme (default: as last chosen)"
    )
    p.add_argument("--preset", help="with --panel train: the training preset the form starts from")
    p.add_argument(
        "--train-steps",
        type=int,
        default=None,
        metavar="N",
        help="with --screenshot --panel train: train the preset, grab the panel paused at the "
        "evaluation of step N (0: before training, -N: stopped there)",
    )
    p.add_argument(
        "--lesson",
        metavar="FILE",
        help="open this lesson file, or a shipped lesson by name: lecture (Page Down: next scene)",
    )
    p.add_argument(
        "--scene", type=int, default=1, metavar="N", help="with --lesson: start at scene N"
    )
    p.add_argument(
        "--size",
        default="1400x900",
        help="screenshot size, WIDTHxHEIGHT (fonts sized for that screen)",
    )
    p.add_argument("--quit-when-ready", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def wait_until(app, done, timeout_s: float) -> bool:
    """Run the event loop until ``done()`` or the timeout; True when done."""
    t_end = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > t_end:
            return False
        app.processEvents()
        time.sleep(0.01)
    return True


def settle(app, settle_s: float = 0.4) -> None:
    """Let workers finish and the panels draw what they produced."""
    from PySide6.QtCore import QThreadPool

    pool = QThreadPool.globalInstance()
    wait_until(app, lambda: pool.activeThreadCount() == 0, LOAD_TIMEOUT_S)
    wait_until(app, lambda: False, settle_s)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from explorer.gui.train.jobs import FirstLoad, bundled_paths

    paths = bundled_paths()
    first_load = FirstLoad(paths[0] if paths else None)  # reads while Qt starts
    if args.screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from explorer.gui.pyside_hook import quicken_feature_scan

    quicken_feature_scan()  # torch is being imported beside us: every module passes PySide's check
    app = QApplication.instance() or QApplication(["attention-explorer"])
    app.setApplicationName("Attention Explorer")
    app.setOrganizationName("attention-explorer")
    from explorer.gui.window import MainWindow

    settings = None
    if args.screenshot:
        # A screenshot must not depend on (or change) the user's preferences.
        import tempfile

        tmp = tempfile.mkdtemp(prefix="explorer-settings-")
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, projector=args.projector or None, theme_name=args.theme,
                        error_dialogs=not args.screenshot, first_load=first_load)  # fmt: skip
    if args.checkpoint:
        from explorer.assets import checkpoint_path

        window.open_checkpoint(checkpoint_path(args.checkpoint), make_current=True)
    if args.panel:
        window.set_panel(args.panel)
    if args.lesson:
        window.lesson.open(args.lesson, start=max(0, args.scene - 1))
    if not args.screenshot:
        window.show()
        if args.sentence:
            _set_sentence(window, args.sentence)
        if args.quit_when_ready:
            from explorer.gui.ready_probe import ReadyProbe

            probe = ReadyProbe(app, window)  # noqa: F841  (kept alive by this frame)
        return app.exec()
    return _screenshot(app, window, args)


def _set_sentence(window, text: str) -> None:
    for panel in window.panels.values():
        if hasattr(panel, "set_sentence"):
            panel.set_sentence(text)


def _decoded(state) -> bool:
    """The session's trace is the current model's decode of the current sentence."""
    trace = state.trace
    return trace is not None and (trace.origin.model, trace.origin.text) == state.expected()


def _screenshot(app, window, args) -> int:
    w, h = (int(x) for x in args.size.lower().split("x"))
    window.set_screen((w, h))  # fonts sized for, and the window filling, a screen of that size
    window.show()
    if not wait_until(app, lambda: not window.loading, LOAD_TIMEOUT_S):
        print("error: timed out waiting for the model to load", file=sys.stderr)
        return 1
    settle(app)
    if args.checkpoint and window.last_error:
        print(f"error: {window.last_error}", file=sys.stderr)
        return 1
    if args.sentence:
        _set_sentence(window, args.sentence)
    player = window.lesson.player
    if args.lesson:  # the scene as the lesson sets it: no other step is chosen
        shown = lambda: (player.lesson and player.ready) or window.last_error  # noqa: E731
        wait_until(app, shown, LOAD_TIMEOUT_S)
        settle(app)
        if window.last_error:
            print(f"error: {window.last_error}", file=sys.stderr)
            return 1
    step_panel = window.panels.get("step") if not args.lesson else None
    if step_panel is not None and window.state.sentence:  # the decode of this model and sentence
        wait_until(app, lambda: _decoded(window.state), LOAD_TIMEOUT_S)
        settle(app)
    if step_panel is not None and getattr(step_panel, "trace", None) is not None:
        n = len(step_panel.trace)
        step_panel.set_step(min(args.step, n) - 1 if args.step > 0 else n - 1)
    if args.train_steps is not None:
        status = _train_for_screenshot(app, window, args)
        if status:
            return status
        wait_until(app, lambda: False, 0.5)
    else:
        settle(app)
    out = Path(args.screenshot)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(out), "PNG"):
        print(f"error: could not write {out}", file=sys.stderr)
        return 1
    print(out)
    window.close()
    return 0


def _train_for_screenshot(app, window, args) -> int:
    panel = window.set_panel("train")
    if args.preset:
        i = panel.form.preset.findData(args.preset)
        if i < 0:
            print(f"error: unknown preset {args.preset!r}", file=sys.stderr)
            return 2
        panel.form.preset.setCurrentIndex(i)
        from explorer.seq2seq.training.presets import PRESETS

        preset = PRESETS[args.preset]
        panel.corpus.set_spec(preset["corpus"])
        if preset.get("corpus_size"):
            panel.corpus.size.setValue(preset["corpus_size"])
    settle(app)
    if args.train_steps == 0:
        return 0
    panel.start()
    target = abs(args.train_steps)

    def reached() -> bool:
        if not panel.running:
            return True
        return any(p.step >= target for p in panel.replay.probes)

    wait_until(app, reached, 3600)
    if panel.running and args.train_steps > 0:  # during training: paused at the probe
        panel.worker.pause()
        wait_until(app, lambda: panel.paused, 60)
        panel.redraw()
    elif panel.running:  # after training: stopped there, the trained model kept
        panel.stop()
        wait_until(app, lambda: not panel.running, 600)
        settle(app)
    return 0
