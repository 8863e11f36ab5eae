"""What the panels share: the theme, pyqtgraph set-up, figure export and the example picker."""
