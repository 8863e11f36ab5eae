"""Real models for the GUI tests: a tiny Bahdanau trained for a few seconds on classroom pairs, and
an untrained tiny Transformer and RNN without attention on the same tokenizer (fixed seeds)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

CLASSROOM = {"name": "classroom"}
CORPUS_PAIRS = 2000
MAX_WORDS = 8  # short sentences keep the training loop at a few seconds
TRAIN_STEPS = 150


@dataclass
class TinyModels:
    bahdanau: object  # explorer.gui.state.LoadedModel
    transformer: object
    none: object
    pairs: list  # the (normalised) classroom pairs the Bahdanau trained on


def _train(model, tok, pairs, steps: int, seed: int) -> None:
    import torch
    from torch import nn

    from explorer.seq2seq.models.base import BOS, PAD
    from explorer.seq2seq.training.train import pad_batch

    g = torch.Generator().manual_seed(seed)
    src_ids = [tok.encode_src(s) for s, _ in pairs]
    tgt_ids = [[BOS] + tok.encode_tgt(t) for _, t in pairs]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss(ignore_index=PAD)
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(pairs), (24,), generator=g).tolist()
        src, src_len = pad_batch([src_ids[i] for i in idx], torch.device("cpu"))
        tgt, _ = pad_batch([tgt_ids[i] for i in idx], torch.device("cpu"))
        logits = model(src, src_len, tgt[:, :-1]).logits  # (B, T, V)
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    model.eval()


@pytest.fixture(scope="session")
def tiny_models() -> TinyModels:
    import torch

    from explorer.gui.state import LoadedModel
    from explorer.seq2seq.data.corpus import load_corpus
    from explorer.seq2seq.data.tokenizer import train_tokenizer
    from explorer.seq2seq.models.families import build_model, config_to_dict, make_config

    torch.manual_seed(0)
    corpus = load_corpus("classroom", size=CORPUS_PAIRS, seed=0).pairs
    pairs = [(s, t) for s, t in corpus if len(s.split()) <= MAX_WORDS]
    tok = train_tokenizer([s for s, _ in pairs], [t for _, t in pairs], vocab_size=400, seed=0)
    sizes = {"src_vocab": tok.src_vocab_size, "tgt_vocab": tok.tgt_vocab_size}
    configs = {
        "bahdanau": make_config("bahdanau", emb_dim=32, hidden_dim=64, dropout=0.0, **sizes),
        "transformer": make_config(
            "transformer", d_model=32, heads=2, enc_layers=2, dec_layers=2, d_ff=64, **sizes
        ),
        "none": make_config("none", emb_dim=32, hidden_dim=64, dropout=0.0, **sizes),
    }
    entries = {}
    for seed, (arch, config) in enumerate(configs.items()):
        torch.manual_seed(seed)
        model = build_model(config).eval()
        if arch == "bahdanau":
            _train(model, tok, pairs, TRAIN_STEPS, seed)
        entries[arch] = LoadedModel(
            name=f"tiny {arch}",
            model=model,
            tokenizer=tok,
            config=config_to_dict(config),
            corpus=dict(CLASSROOM),
        )
    return TinyModels(pairs=list(pairs), **entries)
