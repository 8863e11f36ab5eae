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

# Multi30k de→en (29,000 pairs; 2% of them held out for validation, test2016 being the test set):
# name the corpus with --corpus PATH/multi30k/train (train.de[.gz], train.en[.gz]). One joint BPE
# vocabulary, length-bucketed batches of at most 2,048 padded tokens, label smoothing, the mean of
# the last five evaluations' weights as the model, and an hour of wall time, evaluations included
# (on a 2-core CPU the hour ends well before the 20,000 steps, about 90 epochs). threads 0:
# torch's own default, a thread per physical core (in a torchrun run, the cores shared between
# the processes).
_MULTI30K = {
    "corpus": "multi30k/train",
    "src_lang": "de",
    "tgt_lang": "en",
    "max_words": 80,
    "valid_fraction": 0.02,
    "test_fraction": 0.0,
    "vocab_size": 8000,
    "joint_vocab": True,
    "batch_size": 512,
    "batch_tokens": 2048,
    "label_smoothing": 0.1,
    "steps": 20000,
    "max_minutes": 60,
    "eval_every": 250,
    "bleu_sentences": 200,
    "average_last": 5,
    "threads": 0,
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
    "multi30k-de-en-transformer": {
        **_MULTI30K,
        "arch": "transformer",
        "lr": 2e-3,  # the noam schedule's peak, reached after the warm-up
        "schedule": "noam",
        "warmup": 500,
        "model": {
            "d_model": 256,
            "heads": 4,
            "enc_layers": 3,
            "dec_layers": 3,
            "d_ff": 1024,
            "dropout": 0.1,
            "norm": "pre",
            "tie_embeddings": True,
        },
    },
    # The base Transformer's sizes (Vaswani et al.: d 512, 8 heads, 6+6 layers, d_ff 2048) for
    # one GPU in bfloat16 autocast (--amp, on by default): batches of 16,384 padded tokens, to
    # keep the GPU's matrix units busy, and three minutes of wall time. On a CPU it runs, slowly.
    "multi30k-de-en-transformer-base": {
        **_MULTI30K,
        "arch": "transformer",
        "batch_size": 4096,  # the tokens bind first (about 14 pieces a sentence)
        "batch_tokens": 16384,
        "lr": 1e-3,
        "schedule": "noam",
        "warmup": 400,
        "max_minutes": 3,
        "eval_every": 100,
        "model": {
            "d_model": 512,
            "heads": 8,
            "enc_layers": 6,
            "dec_layers": 6,
            "d_ff": 2048,
            "dropout": 0.1,
            "norm": "pre",
            "tie_embeddings": True,
        },
    },
    "multi30k-de-en-bahdanau": {
        **_MULTI30K,
        "arch": "bahdanau",
        "lr": 2e-3,
        "schedule": "step",
        "decay_every": 1500,
        "decay_factor": 0.5,
        # untied: tied, the output starts from the N(0, 1) embeddings and its logits are far too
        # large (31 steps on 2,000 pairs, one thread: validation loss 18.5 at step 0 and 6.79 at
        # step 31 tied, 9.01 and 4.94 untied)
        "model": {**_RNN, "emb_dim": 256, "dropout": 0.3},
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
