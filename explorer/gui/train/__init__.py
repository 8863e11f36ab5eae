"""Train & Load: training options, the corpus preview, live curves, evaluation and loading."""
