import json
import math
import os
import pathlib
import pickle
import struct
from dataclasses import dataclass

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from explorer.seq2seq import checkpoint as ckpt_module
from explorer.seq2seq.checkpoint import (
    FORMAT,
    CheckpointError,
    load_checkpoint,
    read_card,
    save_checkpoint,
)
from explorer.seq2seq.data.tokenizer import train_tokenizer
from explorer.seq2seq.models import families
from explorer.seq2seq.models.base import BOS, ForwardOutput, Seq2Seq

EN = ["the cat sleeps", "the dog eats", "a cat eats", "a dog sleeps"] * 3
FR = ["le chat dort", "le chien mange", "un chat mange", "un chien dort"] * 3


@dataclass
class TinyConfig:
    arch: str = "tiny"
    src_vocab: int = 40
    tgt_vocab: int = 40
    d_model: int = 8


class TinySeq2Seq(Seq2Seq):
    """A test-only family: bag-of-source-embeddings plus a GRU decoder, output tied to the
    target embedding (so the checkpoint must store a shared tensor once)."""

    arch = "tiny"

    def __init__(self, config: TinyConfig):
        super().__init__()
        self.config = config
        self.src_embed = nn.Embedding(config.src_vocab, config.d_model)
        self.tgt_embed = nn.Embedding(config.tgt_vocab, config.d_model)
        self.rnn = nn.GRU(config.d_model, config.d_model, batch_first=True)
        self.out = nn.Linear(config.d_model, config.tgt_vocab, bias=False)
        self.out.weight = self.tgt_embed.weight  # tied
        self.register_buffer("scale", torch.tensor(0.5))

    def forward(self, src, src_lengths, tgt_in):
        h0 = self.src_embed(src).mean(dim=1)  # (B, D)
        y, _ = self.rnn(self.tgt_embed(tgt_in), h0.unsqueeze(0))  # (B, T, D)
        logits = self.out(y * self.scale * 2)  # (B, T, V)
        hidden = y.unsqueeze(2)  # (B, T, 1, D)
        return ForwardOutput(logits, None, None, hidden, hidden)


def build(config):
    if config.get("arch") == "tiny":
        fields = dict(config)
        fields.pop("arch")
        return TinySeq2Seq(TinyConfig(**fields))
    return families.build_model(config)


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(EN, FR, vocab_size=40)


def make_model(tokenizer):
    return TinySeq2Seq(
        TinyConfig(src_vocab=tokenizer.src_vocab_size, tgt_vocab=tokenizer.tgt_vocab_size)
    )


def batch(tokenizer):
    src = torch.tensor([tokenizer.encode_src(s)[:3] for s in EN[:4]])
    tgt = torch.tensor([[BOS] + tokenizer.encode_tgt(s)[:3] for s in FR[:4]])
    return src, torch.full((4,), 3), tgt[:, :-1], tgt[:, 1:]


def train_steps(model, optimizer, data, n):
    src, lengths, tgt_in, tgt_out = data
    for _ in range(n):
        optimizer.zero_grad()
        logits = model(src, lengths, tgt_in).logits
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), tgt_out.flatten())
        loss.backward()
        optimizer.step()


@pytest.fixture
def saved(tmp_path, tokenizer):
    model = make_model(tokenizer)
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, model, tokenizer, history=[{"step": 1, "loss": 2.5}])
    return path, model


def rewrite(path, *, tensors=None, metadata=None, drop=(), add=None):
    """Re-save a checkpoint with some tensors or metadata changed (safetensors, no pickle)."""
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    data = load_file(str(path))
    for name in drop:
        data.pop(name)
    data.update(tensors or {})
    data.update(add or {})
    meta.update(metadata or {})
    meta = {k: v for k, v in meta.items() if v is not None}
    save_file(data, str(path), metadata=meta)


# round trip ---------------------------------------------------------------------------------


def test_round_trip_gives_same_outputs_and_records(tmp_path, tokenizer):
    model = make_model(tokenizer)
    data = batch(tokenizer)
    history = [{"step": 10, "loss": 3.0, "val_loss": float("nan")}, {"step": 20, "loss": 2.0}]
    card = {"bleu": 12.5, "device": "cpu", "command": "explorer train --arch tiny"}
    corpus = {"name": "classroom", "pairs": 12, "src_lang": "en", "tgt_lang": "fr"}
    train_state = {"step": 20, "epoch": 2, "options": {"lr": 0.01}, "scheduler": {"last": 3}}
    path = save_checkpoint(
        tmp_path / "m.safetensors",
        model,
        tokenizer,
        history=history,
        card=card,
        corpus=corpus,
        train_state=train_state,
    )
    loaded = load_checkpoint(path, build=build)
    assert isinstance(loaded.model, TinySeq2Seq) and not loaded.model.training
    assert loaded.model.out.weight is loaded.model.tgt_embed.weight  # still tied
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(*data[:3]).logits, loaded.model(*data[:3]).logits)
    assert loaded.config == {
        "arch": "tiny",
        "src_vocab": tokenizer.src_vocab_size,
        "tgt_vocab": tokenizer.tgt_vocab_size,
        "d_model": 8,
    }
    assert loaded.history[1] == history[1] and math.isnan(loaded.history[0]["val_loss"])
    assert (loaded.card, loaded.corpus, loaded.train_state) == (card, corpus, train_state)
    assert loaded.optimizer_state is None
    assert loaded.path == path
    assert loaded.tokenizer.to_bytes() == tokenizer.to_bytes()
    assert loaded.tokenizer.encode_tgt("le chat mange") == tokenizer.encode_tgt("le chat mange")


def test_tied_weights_are_stored_once(saved):
    path, model = saved
    with safe_open(str(path), framework="pt") as f:
        names = set(f.keys())
        aliases = json.loads(f.metadata()["aliases"])
    assert ("model.out.weight" in names) != ("model.tgt_embed.weight" in names)
    assert set(aliases) | {n[6:] for n in names if n.startswith("model.")} == set(
        model.state_dict()
    )
    assert {"spm.src", "spm.tgt"} <= names


def test_optimizer_state_resumes_exactly(tmp_path, tokenizer):
    data = batch(tokenizer)
    model = make_model(tokenizer)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    train_steps(model, optimizer, data, 3)
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model, tokenizer, optimizer=optimizer, train_state={"step": 3})

    train_steps(model, optimizer, data, 1)  # the run that never stopped

    loaded = load_checkpoint(path, build=build)
    resumed = loaded.model.train()
    fresh = torch.optim.Adam(resumed.parameters(), lr=0.5)  # lr comes back from param_groups
    fresh.load_state_dict(loaded.optimizer_state)
    assert fresh.param_groups[0]["lr"] == 0.01
    train_steps(resumed, fresh, data, 1)
    for (name, a), b in zip(model.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_read_card_reads_metadata_only(saved):
    path, model = saved
    card = read_card(path)
    assert card["config"]["arch"] == "tiny"
    assert card["history"] == [{"step": 1, "loss": 2.5}]
    assert card["num_parameters"] == model.num_parameters
    assert card["has_optimizer_state"] is False
    # no build function is needed: an architecture this program does not know still reads
    rewrite(path, metadata={"config": json.dumps({"arch": "martian", "d": 1})})
    assert read_card(path)["config"] == {"arch": "martian", "d": 1}


# atomic write -------------------------------------------------------------------------------


def test_failed_write_leaves_old_file_intact(saved, tokenizer, monkeypatch):
    path, old_model = saved
    before = path.read_bytes()
    real_fdopen = os.fdopen
    written = []

    class HalfWrite:
        """A file that writes half of what it is given, then fails like a full disk."""

        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, chunk):
            half = bytes(chunk)[: len(chunk) // 2]
            self.f.write(half)
            self.f.flush()
            written.append(len(half))
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt_module.os, "fdopen", lambda fd, mode: HalfWrite(real_fdopen(fd, mode)))
    new_model = make_model(tokenizer)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, new_model, tokenizer, history=[{"step": 99}])
    assert written and written[0] > 0  # the temporary file really was partly written
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.safetensors"]
    assert load_checkpoint(path, build=build).history == [{"step": 1, "loss": 2.5}]


def test_save_replaces_an_existing_file(saved, tokenizer):
    path, _ = saved
    save_checkpoint(path, make_model(tokenizer), tokenizer, history=[{"step": 2}])
    assert load_checkpoint(path, build=build).history == [{"step": 2}]
    assert [p.name for p in path.parent.iterdir()] == ["model.safetensors"]


# errors -------------------------------------------------------------------------------------


def expect_error(path, message):
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path, build=build)
    text = str(info.value)
    assert "\n" not in text
    assert str(path) in text
    return text


def test_missing_file(tmp_path):
    expect_error(tmp_path / "nope.safetensors", "no such file")


def test_random_bytes(tmp_path):
    path = tmp_path / "random.safetensors"
    path.write_bytes(bytes(range(256)) * 4)
    expect_error(path, "not a checkpoint")


def test_png(tmp_path):
    path = tmp_path / "picture.safetensors"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    expect_error(path, "not a checkpoint: this is a PNG image")


class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.target),)


def test_pickle_is_refused_and_never_executed(tmp_path):
    target = tmp_path / "pwned"
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(_Payload(target)))
    assert b"touch" in path.read_bytes()
    expect_error(path, "this is a pickle file; it is never unpickled")
    with pytest.raises(CheckpointError):
        read_card(path)
    assert not target.exists()


def test_torch_save_file_is_refused(tmp_path, tokenizer):
    path = tmp_path / "torch.safetensors"
    torch.save(make_model(tokenizer).state_dict(), path)
    expect_error(path, "zip archive")


def test_truncated_data(saved):
    path, _ = saved
    data = path.read_bytes()
    path.write_bytes(data[:-100])
    expect_error(path, r"truncated \(tensor data needs")


def test_truncated_header(saved):
    path, _ = saved
    path.write_bytes(path.read_bytes()[:60])
    expect_error(path, r"truncated \(header declares")


def test_header_too_large_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", 200 * 1024 * 1024) + b'{"a":')
    expect_error(path, r"header too large \(209715200 bytes declared")


def test_plain_safetensors_file_has_unknown_format(tmp_path):
    path = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    expect_error(path, "unknown format None")


def test_unknown_format(saved):
    path, _ = saved
    rewrite(path, metadata={"format": "someone-else"})
    expect_error(path, "unknown format 'someone-else'")


def test_unknown_format_version(saved):
    path, _ = saved
    rewrite(path, metadata={"format_version": "2"})
    expect_error(path, "unsupported format_version '2'")


def test_missing_metadata_field(saved):
    path, _ = saved
    rewrite(path, metadata={"history": None})
    expect_error(path, "missing metadata field 'history'")


def test_non_json_metadata_field(saved):
    path, _ = saved
    rewrite(path, metadata={"card": "{not json"})
    expect_error(path, "metadata field 'card' is not JSON")
    rewrite(path, metadata={"card": "[1, 2]"})
    expect_error(path, "metadata field 'card' is a list, expected a dict")


def test_unknown_architecture(saved):
    path, _ = saved
    rewrite(path, metadata={"config": json.dumps({"arch": "martian"})})
    expect_error(path, "cannot build the model: unknown architecture 'martian'")


def test_missing_weight(saved):
    path, _ = saved
    rewrite(path, drop=["model.rnn.weight_hh_l0"])
    expect_error(path, r"weight\(s\) missing: rnn.weight_hh_l0")


def test_unexpected_weight(saved):
    path, _ = saved
    rewrite(path, add={"model.extra.bias": torch.zeros(3)})
    expect_error(path, r"unexpected weight\(s\): extra.bias")


def test_shape_disagrees_with_config(saved, tokenizer):
    path, _ = saved
    config = {"arch": "tiny", "src_vocab": tokenizer.src_vocab_size, "tgt_vocab": 42, "d_model": 16}
    rewrite(path, metadata={"config": json.dumps(config)})
    expect_error(path, r"weight src_embed.weight has shape \(\d+, 8\) but the config gives")


@pytest.mark.parametrize("value,word", [(float("nan"), "NaN"), (float("inf"), "infinite")])
def test_non_finite_weights(saved, value, word):
    path, model = saved
    w = model.rnn.weight_ih_l0.detach().clone()
    w[0, 0] = value
    rewrite(path, tensors={"model.rnn.weight_ih_l0": w})
    expect_error(path, f"weight rnn.weight_ih_l0 contains {word} values")


def test_corrupt_sentencepiece_model(saved):
    path, _ = saved
    rewrite(path, tensors={"spm.tgt": torch.tensor(list(b"\xff\x00garbage"), dtype=torch.uint8)})
    expect_error(path, "corrupt target sentencepiece model")


def test_missing_sentencepiece_model(saved):
    path, _ = saved
    rewrite(path, drop=["spm.src"])
    expect_error(path, "tensor 'spm.src' \\(sentencepiece model\\) is missing")


def test_format_marker_is_written(saved):
    path, _ = saved
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == FORMAT and meta["format_version"] == "1"
    for field in ("config", "history", "corpus", "card", "train_state"):
        json.loads(meta[field])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_saved_file_loads_on_cpu_and_on_cuda(tmp_path, tokenizer):
    model = make_model(tokenizer).cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    train_steps(model, optimizer, tuple(t.cuda() for t in batch(tokenizer)), 2)
    path = save_checkpoint(tmp_path / "gpu.safetensors", model, tokenizer, optimizer=optimizer)
    on_cpu = load_checkpoint(path, build=build)
    assert on_cpu.model.device.type == "cpu"
    for (name, a), b in zip(
        model.state_dict().items(), on_cpu.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a.cpu(), b), name
    on_gpu = load_checkpoint(path, device="cuda", build=build)
    assert on_gpu.model.device.type == "cuda"
    fresh = torch.optim.Adam(on_gpu.model.parameters())
    fresh.load_state_dict(on_gpu.optimizer_state)
