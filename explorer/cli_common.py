"""Pieces shared by the command line's modules."""

from __future__ import annotations


class CliError(Exception):
    """A problem with the command line's input; printed as one line, exit status 2."""


MODEL_FIELDS = {
    "rnn": (
        "emb_dim",
        "hidden_dim",
        "layers",
        "cell",
        "bidirectional",
        "tie_embeddings",
        "dropout",
    ),
    "transformer": (
        "d_model",
        "heads",
        "enc_layers",
        "dec_layers",
        "d_ff",
        "positions",
        "norm",
        "tie_embeddings",
        "dropout",
    ),
}
