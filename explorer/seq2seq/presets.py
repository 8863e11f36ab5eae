"""Named training recipes. ``attention-explorer train --preset NAME`` reproduces a bundled model.

Each preset is a dict of :class:`explorer.seq2seq.train.TrainOptions` fields. ``DEFAULT_PRESET``
maps an architecture to the small recipe used when only ``--arch`` is given.
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

PRESETS: dict[str, dict] = {
    "classroom-none": {
        **_CLASSROOM,
        "arch": "none",
        "model": dict(_RNN),
        "steps": 3000,
        "lr": 3e-3,
        "schedule": "step",
        "decay_every": 1000,
    },
    "classroom-bahdanau": {
        **_CLASSROOM,
        "arch": "bahdanau",
        "model": dict(_RNN),
        "steps": 3000,
        "lr": 3e-3,
        "schedule": "step",
        "decay_every": 1000,
    },
    "classroom-luong": {
        **_CLASSROOM,
        "arch": "luong-general",
        "model": dict(_RNN),
        "steps": 3000,
        "lr": 3e-3,
        "schedule": "step",
        "decay_every": 1000,
    },
    "classroom-luong-dot": {
        **_CLASSROOM,
        "arch": "luong-dot",
        "model": dict(_RNN),
        "steps": 3000,
        "lr": 3e-3,
        "schedule": "step",
        "decay_every": 1000,
    },
    "classroom-transformer": {
        **_CLASSROOM,
        "arch": "transformer",
        "steps": 3000,
        "lr": 1e-3,
        "schedule": "noam",
        "warmup": 400,
        "label_smoothing": 0.1,
        "model": {
            "d_model": 256,
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
