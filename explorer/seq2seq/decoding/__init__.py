"""Decoding: greedy, sampling and forced decodes as traces; beam search that records its tree;
exact search; the worked arithmetic of a step's scores; the tree's layout."""
