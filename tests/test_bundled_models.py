"""The checkpoints in models/ load and translate the lectures' example sentences."""

from pathlib import Path

import pytest

from explorer.seq2seq.checkpoint import load_checkpoint, read_card
from explorer.seq2seq.data.classroom import EXAMPLES, normalize
from explorer.seq2seq.decoding.decode import greedy

MODELS = Path(__file__).resolve().parent.parent / "models"
BUNDLED = {
    "classroom-none": "none",
    "classroom-bahdanau": "bahdanau",
    "classroom-luong": "luong-general",
    "classroom-transformer": "transformer",
}
# The lectures' short sentences; the attention models must translate every one exactly.
SHORT = [(s, t) for s, t in EXAMPLES if len(s.split()) <= 10]


def path_of(name: str) -> Path:
    return MODELS / f"{name}.safetensors"


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_checkpoint_is_present_small_and_described(name):
    path = path_of(name)
    hint = f"train it with `attention-explorer train --preset {name} --out {path}`"
    assert path.is_file(), f"{path} is missing: {hint}"
    assert path.stat().st_size <= 10 * 2**20
    meta = read_card(path)
    assert meta["config"]["arch"] == BUNDLED[name]
    assert meta["corpus"]["name"] == "classroom"
    assert meta["card"].get("command"), "the card records the command that made the model"


@pytest.mark.parametrize("name", ["classroom-bahdanau", "classroom-luong", "classroom-transformer"])
def test_attention_models_translate_the_lecture_examples(name):
    ck = load_checkpoint(path_of(name))
    wrong = []
    for src, ref in SHORT:
        out = ck.tokenizer.decode_tgt(greedy(ck.model, ck.tokenizer, normalize(src)).tokens)
        if out != ref:
            wrong.append((src, out, ref))
    assert not wrong, wrong


def test_the_model_without_attention_translates_the_shortest_examples():
    ck = load_checkpoint(path_of("classroom-none"))
    src, ref = "the cat sleeps", "le chat dort"
    assert (src, ref) in EXAMPLES
    out = ck.tokenizer.decode_tgt(greedy(ck.model, ck.tokenizer, src).tokens)
    assert out == ref


def test_loading_and_translating_never_imports_the_compiler():
    """Loading a checkpoint builds the model on the meta device first (sizes checked before any
    allocation). torch's meta kernels for random fills, arange and exp import torch._dynamo on first
    use, seconds at launch; the loader and the decoders must stay clear of them."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from explorer.seq2seq.checkpoint import load_checkpoint\n"
        "from explorer.seq2seq.decoding.decode import greedy\n"
        f"for p in sorted(__import__('pathlib').Path({str(MODELS)!r}).glob('*.safetensors')):\n"
        "    c = load_checkpoint(p)\n"
        "    greedy(c.model, c.tokenizer, 'the cat sleeps')\n"
        "print(sorted(m for m in sys.modules if m.startswith('torch._dynamo')))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]"
