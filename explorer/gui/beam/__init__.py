"""Beam vs greedy: the whole beam-search tree, its readouts and the beam-size sweep."""
