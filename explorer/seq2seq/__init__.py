"""The headless model side: corpora, subwords, model families, decoding, training, checkpoints.

Never imports Qt, so it runs from a script, a notebook or a GPU server.
"""

from explorer.seq2seq.decoding.trace import BeamNode, BeamTree, DecodeStep, Fate, Trace

__all__ = ["BeamNode", "BeamTree", "DecodeStep", "Fate", "Trace"]
