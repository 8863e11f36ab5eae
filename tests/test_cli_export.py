"""``attention-explorer export``: a checkpoint's model alone, optionally in 16 bits."""

import torch

from explorer.cli import run
from explorer.seq2seq.checkpoint import load_checkpoint, read_card
from explorer.seq2seq.training.train import Trainer, TrainOptions


def trained(tmp_path):
    out = tmp_path / "full.safetensors"
    opts = TrainOptions.from_preset("tiny", steps=20, eval_every=0, out=str(out))
    assert list(Trainer(opts).run())[-1].kind == "done"
    return out


def test_export_drops_the_optimizer_state_and_half_stores_16_bits(tmp_path, capsys):
    full = trained(tmp_path)
    assert load_checkpoint(full).optimizer_state is not None
    plain, half = tmp_path / "plain.safetensors", tmp_path / "half.safetensors"
    assert run(["export", str(full), "--out", str(plain)]) == 0
    assert run(["export", str(full), "--out", str(half), "--half"]) == 0
    assert "weights in float16" in capsys.readouterr().out
    original, p32, p16 = (load_checkpoint(p) for p in (full, plain, half))
    assert p32.optimizer_state is None and p16.optimizer_state is None
    assert read_card(plain)["card"]["weights"] == "float32"
    assert read_card(half)["card"]["weights"] == "float16"
    assert read_card(half)["card"]["exported_from"] == "full.safetensors"
    assert half.stat().st_size < plain.stat().st_size < full.stat().st_size
    for (name, w), w32, w16 in zip(
        original.model.state_dict().items(),
        p32.model.state_dict().values(),
        p16.model.state_dict().values(),
    ):
        assert torch.equal(w32, w), name
        if w.is_floating_point():
            assert w16.dtype == torch.float32  # loaded back into the model's float32
            assert torch.equal(w16, w.half().float()), name
    assert p16.history == original.history and p16.corpus == original.corpus


def test_export_refuses_to_overwrite_its_source(tmp_path, capsys):
    full = trained(tmp_path)
    before = full.read_bytes()
    assert run(["export", str(full), "--out", str(full), "--half"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --out") and "is the checkpoint being exported" in err
    assert len(err.splitlines()) == 1 and full.read_bytes() == before
