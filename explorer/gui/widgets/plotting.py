"""pyqtgraph for the panels' plots, configured for the current theme.

Plot modules import ``pg`` from here, so pyqtgraph is loaded with the first plot the window builds
rather than with the window: its import is a third of a second that the first frame does without.
"""

from __future__ import annotations

from PySide6 import QtWidgets  # noqa: F401  (the binding pyqtgraph must use is loaded first)

# isort: split
import pyqtgraph as pg

from explorer.gui.widgets import theme

theme.configure_pyqtgraph(pg)

__all__ = ["pg"]
