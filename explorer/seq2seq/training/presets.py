"""Named training recipes. ``attention-explorer train --preset NAME`` reproduces a bundled model.

Each preset is a dict of :class:`explorer.seq2seq.training.train.TrainOptions` fields.
``DEFAULT_PRESET`` maps an architecture to the small recipe used when only ``--arch`` is given.
"""

from __future__ import annotations

_RNN = {
    "emb_dim": 128,
    "hidden_dim": 256,
    "layers": 1,
    "cell": "gru",
    "bidirectional": True,
    "dropout": 0.1,
}
_CLASSROOM = {
    "corpus": "classroom",
    "corpus_size": 30000,
    "vocab_size": 1000,
    "batch_size": 64,
    "eval_every": 250,
    "seed": 0,
}

# The bundled checkpoints are final models, not runs to resume: they skip the optimizer state,
# which would triple the file (models/ keeps each under 10 MB).
_BUNDLED = {"optimizer_state": False}


def _rnn(arch: str, steps: int, decay_every: int) -> dict:
    return {
        **_CLASSROOM,
        **_BUNDLED,
        "arch": arch,
        "model": dict(_RNN),
        "steps": steps,
        "lr": 3e-3,
        "schedule": "step",
        "decay_every": decay_every,
    }


PRESETS: dict[str, dict] = {
    "classroom-none": _rnn("none", steps=1200, decay_every=400),
    "classroom-bahdanau": _rnn("bahdanau", steps=1500, decay_every=500),
    "classroom-luong": _rnn("luong-general", steps=1300, decay_every=450),
    "classroom-luong-dot": _rnn("luong-dot", steps=1500, decay_every=500),
    "classroom-transformer": {
        **_CLASSROOM,
        **_BUNDLED,
        "arch": "transformer",
        "steps": 2000,
        "lr": 2e-3,
        "schedule": "noam",
        "warmup": 300,
        "label_smoothing": 0.1,
        "model": {
            "d_model": 128,
            "heads": 4,
            "enc_layers": 3,
            "dec_layers": 3,
            "d_ff": 512,
            "dropout": 0.1,
        },
    },
    "tiny": {
        "corpus": "reverse",
        "corpus_size": 2000,
        "arch": "bahdanau",
        "vocab_size": 40,
        "model": {"emb_dim": 16, "hidden_dim": 32},
        "steps": 100,
        "eval_every": 50,
        "valid_fraction": 0.05,
        "test_fraction": 0.05,
        "batch_size": 32,
        "bleu_sentences": 50,
    },
}

DEFAULT_PRESET = {
    "none": "classroom-none",
    "bahdanau": "classroom-bahdanau",
    "luong-general": "classroom-luong",
    "luong-dot": "classroom-luong-dot",
    "transformer": "classroom-transformer",
}
