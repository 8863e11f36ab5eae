"""The bundled classroom models' recorded training words: added without retraining, equal to a
regeneration of their training split, and what they say about the lecture decks' sentences."""

import hashlib
import json
import struct
from pathlib import Path

import pytest

from explorer.seq2seq.checkpoint import load_checkpoint, read_card
from explorer.seq2seq.data import words
from explorer.seq2seq.data.inputs import prepare_source
from explorer.tools.record_words import add_words, regenerated_words

MODELS = Path(__file__).resolve().parents[1] / "models"
LECTURE = Path(__file__).with_name("data") / "lecture_sentences.txt"

# Taken from the files before their words were added: sha256 of the tensor data after the header,
# and of the header without its corpus entry (metadata and tensor table, keys sorted).
UNCHANGED = {
    "bahdanau": (
        "625c30d02a5c8d1b53e0674af448597914d460c67eadbf60fab54d21a200b1cb",
        "723d9784c09ead57d2b09163f8f7fed8f3c7b4f7ba2b50de5bf406c2ba9dc2b3",
    ),
    "luong": (
        "2e40f8ff02b4a41640162c389ade9ea9e74ecbb4786f0e6644565672eacf0759",
        "08a9915216585dfba6092d39216b364effec9f34c650981ce4f779f793416857",
    ),
    "none": (
        "36ae4f902e6152e2bc18553d8f02b36b410dd90ca959cb0de6e8ce402f88e944",
        "2cc590a9bef1fc9beed1e97c797c80be10d5b60c200860effbbafece0ea8cb02",
    ),
    "transformer": (
        "fdf1f110596b26270cc1392ac7f0d68fd2965691e89166a78ca106490e77bb01",
        "d7d4536cd4bb6c36f33639d1914e3160c0366e508ff7edcd662f303097ce6791",
    ),
}
DESCRIPTION = {
    "name": "classroom",
    "generator": "explorer.seq2seq.classroom",
    "seed": 0,
    "src_lang": "en",
    "tgt_lang": "fr",
    "pairs": 30000,
    "skipped": 0,
    "train": 27652,
    "valid": 893,
    "test": 1455,
    "max_words": 80,
    "split_seed": 0,
}


def _split(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


@pytest.fixture(scope="module")
def regenerated() -> str:
    """The training words of the four models (one corpus description), regenerated."""
    card = read_card(MODELS / "classroom-bahdanau.safetensors")
    return regenerated_words(Path("bahdanau"), DESCRIPTION, card["train_state"])


@pytest.mark.parametrize("name", sorted(UNCHANGED))
def test_bundled_words_match_a_regeneration_and_nothing_else_changed(name, regenerated):
    header, data = _split(MODELS / f"classroom-{name}.safetensors")
    corpus = json.loads(header["__metadata__"].pop("corpus"))
    assert corpus.pop(words.FIELD) == regenerated
    assert corpus == DESCRIPTION
    assert hashlib.sha256(data).hexdigest() == UNCHANGED[name][0]
    rest = json.dumps([header.pop("__metadata__"), header], sort_keys=True).encode()
    assert hashlib.sha256(rest).hexdigest() == UNCHANGED[name][1]


def test_the_regenerated_word_list_is_the_classroom_vocabulary(regenerated):
    listed = regenerated.split()
    assert len(listed) == 282 and listed[:4] == ["a", "always", "am", "an"]
    assert {"cat", "black", "sat", "mat", "love", "you", "red", "house"} <= set(listed)
    # the lecture's own example needs words the grammar does not have
    assert not {"there", "at", "station", "hello", "world"} & set(listed)


def test_add_words_rewrites_a_copy_loadably_and_refuses_a_mismatched_corpus(tmp_path, regenerated):
    copy = tmp_path / "copy.safetensors"
    header, data = _split(MODELS / "classroom-luong.safetensors")
    corpus = json.loads(header["__metadata__"]["corpus"])
    del corpus[words.FIELD]
    header["__metadata__"]["corpus"] = json.dumps(corpus)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    copy.write_bytes(struct.pack("<Q", len(text)) + text + data)
    assert add_words(copy) == regenerated
    assert load_checkpoint(copy).corpus[words.FIELD] == regenerated
    assert _split(copy)[1] == data

    header["__metadata__"]["corpus"] = json.dumps({**corpus, "train": 5})
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    copy.write_bytes(struct.pack("<Q", len(text)) + text + data)
    with pytest.raises(Exception, match="27652 train pairs but the checkpoint records 5"):
        add_words(copy)


def test_bahdanau_marks_the_lecture_example_and_pizza():
    ck = load_checkpoint(MODELS / "classroom-bahdanau.safetensors")
    station = prepare_source(ck.tokenizer, "There is a cat at the station", corpus=ck.corpus)
    assert (station.unseen, station.unknown) == (("there", "at", "station"), ())
    assert station.outside == "never seen in training: there, at, station"
    # per source token, for a view: the(re) is a cat at the st(at)(i)(on) </s>
    assert ck.tokenizer.src_pieces(station.ids)[:2] == ["the", "re"]
    assert words.token_marks(ck.tokenizer, station) == (
        ("unseen", "unseen", "", "", "", "unseen", "") + ("unseen",) * 4 + ("",)
    )
    pizza = prepare_source(ck.tokenizer, "I like pizza", corpus=ck.corpus)
    # "like" is spelt from known pieces; the "zz" of pizza is not in the source vocabulary
    assert (pizza.unseen, pizza.unknown) == (("like", "pizza"), ("pizza",))
    assert ck.tokenizer.src_pieces(pizza.ids) == ["i", "l", "i", "ke", "pi", "<unk>", "a", "</s>"]
    assert words.token_marks(ck.tokenizer, pizza) == (
        ("", "unseen", "unseen", "unseen", "unseen", "unk", "unseen", "")
    )


def lecture_sentences() -> list[str]:
    lines = LECTURE.read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[0] for line in lines if line and not line.startswith("#")]


# What is true today, with the grammar as it stands: the sentence as the models read it, and the
# words outside their world (never seen in training; became <unk>). Growing the grammar to cover
# the decks changes these, and the bundled models need retraining with it.
LECTURE_TODAY = {
    "There is a cat at the station": (("there", "at", "station"), ()),
    "There is one cat in station": (("there", "station"), ()),
    "In the station is one cat": (("station",), ()),
    "I saw the red house": ((), ()),
    "It's raining cats and dogs": (("it's", "raining"), ("it's",)),
    "The cat sat on the mat": ((), ()),
    "The black cat sat": ((), ()),
    "The cat sat": ((), ()),
    "The black cat that I saw yesterday sat": ((), ()),
    "I love you": ((), ()),
    "Hello world": (("hello", "world"), ()),
    "The cat sits on mat": ((), ()),
}


@pytest.mark.parametrize("name", sorted(UNCHANGED))
def test_lecture_sentences_inside_and_outside_the_bundled_models_today(name):
    assert lecture_sentences() == list(LECTURE_TODAY)
    ck = load_checkpoint(MODELS / f"classroom-{name}.safetensors")
    found = {}
    for sentence in lecture_sentences():
        source = prepare_source(ck.tokenizer, sentence, corpus=ck.corpus)
        found[sentence] = (source.unseen, source.unknown)
    assert found == LECTURE_TODAY
