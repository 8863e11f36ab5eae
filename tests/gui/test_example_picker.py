"""The example picker offers the sentences of the model on show: the bundled German→English
model's own German captions, the lectures' English sentences for every other model."""

from pathlib import Path

from explorer import assets
from explorer.gui.widgets.examples import MODEL_PROMPT, PROMPT, ExamplePicker
from explorer.seq2seq.checkpoint import load_checkpoint
from explorer.seq2seq.data.classroom import EXAMPLES
from explorer.seq2seq.decoding.decode import greedy

MULTI30K = assets.models_dir() / "multi30k-de-en-transformer.safetensors"


def test_the_bundled_german_model_has_examples_of_its_own_world():
    pairs = assets.model_examples(MULTI30K)
    assert len(pairs) >= 8
    assert (
        "Ein schwarzer Hund springt in das Wasser.",
        "A black dog jumps into the water.",
    ) in pairs
    ck = load_checkpoint(MULTI30K)  # the model translates them (these four exactly)
    exact = {s: r for s, r in pairs if r.startswith(("A black", "A boy", "Three", "The woman"))}
    assert len(exact) == 4
    for source, reference in exact.items():
        assert ck.tokenizer.decode_tgt(greedy(ck.model, ck.tokenizer, source).tokens) == reference


def test_only_a_bundled_file_has_examples(tmp_path):
    twin = tmp_path / MULTI30K.name  # a user's file of the same name elsewhere
    twin.write_bytes(b"")
    assert assets.model_examples(twin) == []
    assert assets.model_examples(None) == []
    assert assets.model_examples(assets.models_dir() / "classroom-bahdanau.safetensors") == []


def test_the_picker_follows_the_model(qtbot):
    picker = ExamplePicker()
    qtbot.addWidget(picker)
    assert picker.itemText(0) == PROMPT and picker.pairs == list(EXAMPLES)
    picked = []
    picker.picked.connect(lambda s, r: picked.append((s, r)))
    picker.show_for(MULTI30K)
    assert picker.itemText(0) == MODEL_PROMPT and picker.count() == len(picker.pairs) + 1
    assert picker.pairs == assets.model_examples(MULTI30K)
    picker.pick(0)
    assert picked == [picker.pairs[0]] and picked[0][0].startswith("Ein Hund")
    picker.show_for(Path("elsewhere/mine.safetensors"))
    assert picker.itemText(0) == PROMPT and picker.pairs == list(EXAMPLES)
