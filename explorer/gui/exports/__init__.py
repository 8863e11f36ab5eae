"""Each view's export: the data it shows, and the hook that gives it a right-click menu."""
