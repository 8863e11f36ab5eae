"""The gallery's hands on the app: one real window, switched between screens, modes and tabs."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from explorer.gui.app import LOAD_TIMEOUT_S, settle, wait_until
from explorer.tools.gallery import COMPARE, MODES, SIZES, Shot, settings_file


class Driver:
    """Starts the window with the bundled models, then grabs one shot at a time."""

    def __init__(self) -> None:
        self.app = QApplication.instance() or QApplication(["attention-explorer"])
        self.window = None
        self._group: tuple | None = None  # (size, mode) the window is set for

    def start(self) -> bool:
        """The window, its models loaded and the opening example decoded; False (said on
        stderr) when that does not happen."""
        import sys

        from explorer.gui.window import MainWindow

        settings = QSettings(str(settings_file()), QSettings.Format.IniFormat)
        self.window = w = MainWindow(settings=settings, error_dialogs=False, screen=SIZES[0])
        w.show()
        if not wait_until(self.app, lambda: not w.loading, LOAD_TIMEOUT_S):
            print("gallery: timed out waiting for the bundled models", file=sys.stderr)
            return False
        settle(self.app)
        if w.state.current is None:
            print(f"gallery: no model could be opened ({w.last_error})", file=sys.stderr)
            return False
        return True

    def tabs(self) -> list[str]:
        from explorer.gui.window import PANELS

        return list(PANELS)

    def capture(self, shot: Shot, path: Path) -> str | None:
        """Grab ``shot`` into ``path``; None, or what went wrong."""
        w = self.window
        if self._group != (shot.size, shot.mode):
            dark, projector = MODES[shot.mode]
            w.dark_action.setChecked(dark)
            w.projector_action.setChecked(projector)
            w.set_screen(shot.size)
            self._group = (shot.size, shot.mode)
        panel = w.set_panel("step" if shot.tab == COMPARE else shot.tab)
        compare = getattr(panel, "compare_check", None)
        if compare is not None:
            compare.setChecked(shot.tab == COMPARE)
            if shot.tab == COMPARE:
                self._compare_with_another(panel)
        settle(self.app, 0.8)
        image = w.grab()
        if image.width() > shot.size[0] or image.height() > shot.size[1]:
            return f"the window is {image.width()}×{image.height()}, larger than the screen"
        if not image.save(str(path), "PNG"):
            return f"could not write {path}"
        return None

    def _compare_with_another(self, panel) -> None:
        """The Compare column on a model other than the current one, as a teacher would pick."""
        box = getattr(getattr(panel, "compare", None), "model_box", None)
        current = self.window.state.current
        if box is None or current is None or box.currentText() != current.name:
            return
        others = [i for i in range(box.count()) if box.itemText(i) != current.name]
        if others:
            box.setCurrentIndex(others[0])
            box.activated.emit(others[0])

    def close(self) -> None:
        if self.window is not None:
            self.window.close()
