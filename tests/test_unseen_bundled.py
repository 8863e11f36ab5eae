"""The bundled classroom models' recorded training words (equal to a regeneration of their
training split), and the lecture decks' sentences: inside every model's world, and translated
as the grammar translates them by the attention models."""

import json
import struct
from pathlib import Path

import pytest

from explorer.seq2seq.checkpoint import load_checkpoint, read_card
from explorer.seq2seq.data import words
from explorer.seq2seq.data.classroom import ClassroomError, translate
from explorer.seq2seq.data.inputs import prepare_source
from explorer.seq2seq.decoding.decode import greedy
from explorer.tools.record_words import add_words, regenerated_words

MODELS = Path(__file__).resolve().parents[1] / "models"
LECTURE = Path(__file__).with_name("data") / "lecture_sentences.txt"

NAMES = ("bahdanau", "luong", "none", "transformer")
DESCRIPTION = {
    "name": "classroom",
    "generator": "explorer.seq2seq.data.classroom",
    "seed": 0,
    "src_lang": "en",
    "tgt_lang": "fr",
    "pairs": 30000,
    "skipped": 0,
    "train": 27523,
    "valid": 893,
    "test": 1584,
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


@pytest.mark.parametrize("name", NAMES)
def test_bundled_words_match_a_regeneration_of_the_training_split(name, regenerated):
    header, _ = _split(MODELS / f"classroom-{name}.safetensors")
    corpus = json.loads(header["__metadata__"]["corpus"])
    assert corpus.pop(words.FIELD) == regenerated
    assert corpus == DESCRIPTION


def test_the_regenerated_word_list_is_the_classroom_vocabulary(regenerated):
    listed = regenerated.split()
    assert len(listed) == 295 and listed[:4] == ["a", "always", "am", "an"]
    assert {"cat", "black", "sat", "mat", "love", "you", "red", "house"} <= set(listed)
    # the lecture decks' own examples
    assert {"there", "at", "station", "hello", "world", "it's", "raining"} <= set(listed)
    assert not {"airport", "pizza", "like"} & set(listed)


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
    with pytest.raises(Exception, match="27523 train pairs but the checkpoint records 5"):
        add_words(copy)


def test_bahdanau_marks_an_airport_and_pizza():
    ck = load_checkpoint(MODELS / "classroom-bahdanau.safetensors")
    airport = prepare_source(ck.tokenizer, "There is a cat at the airport", corpus=ck.corpus)
    assert (airport.unseen, airport.unknown) == (("airport",), ())
    assert airport.outside == "never seen in training: airport"
    # only the pieces of "airport" are marked
    marks = words.token_marks(ck.tokenizer, airport)
    pieces = ck.tokenizer.src_pieces(airport.ids)
    assert [(p, m) for p, m in zip(pieces, marks, strict=True) if m] == [
        (p, "unseen") for p in AIRPORT_PIECES
    ]
    assert "".join(AIRPORT_PIECES) == "airport"
    pizza = prepare_source(ck.tokenizer, "I like pizza", corpus=ck.corpus)
    # "like" is spelt from known pieces; the "zz" of pizza is not in the source vocabulary
    assert (pizza.unseen, pizza.unknown) == (("like", "pizza"), ("pizza",))
    assert ck.tokenizer.src_pieces(pizza.ids) == PIZZA_PIECES
    assert words.token_marks(ck.tokenizer, pizza) == tuple(
        "" if p in ("i", "</s>") and k in (0, len(PIZZA_PIECES) - 1) else "unk" if p == "<unk>"
        else "unseen" for k, p in enumerate(PIZZA_PIECES)
    )  # fmt: skip


AIRPORT_PIECES = ["a", "ir", "p", "or", "t"]
PIZZA_PIECES = ["i", "l", "i", "ke", "pi", "<unk>", "a", "</s>"]


def lecture_sentences() -> list[str]:
    lines = LECTURE.read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[0] for line in lines if line and not line.startswith("#")]


# The decks also show bad English on purpose: a word-for-word gloss, an old system's output and
# a BLEU candidate. They lie outside the grammar, but none of their words lies outside the models'
# world.
NOT_ENGLISH = {"There is one cat in station", "In the station is one cat", "The cat sits on mat"}


def test_the_grammar_makes_every_lecture_sentence_but_the_decks_bad_english():
    for sentence in lecture_sentences():
        if sentence in NOT_ENGLISH:
            with pytest.raises(ClassroomError, match="not a sentence of the classroom grammar"):
                translate(sentence)
        else:
            assert translate(sentence)[0]
    assert translate("There is a cat at the station")[0] == "il y a un chat à la gare"
    assert translate("It's raining cats and dogs")[0] == "il pleut des cordes"
    assert translate("Hello world")[0] == "bonjour le monde"


@pytest.mark.parametrize("name", NAMES)
def test_every_word_of_the_lecture_sentences_is_inside_the_bundled_models(name):
    ck = load_checkpoint(MODELS / f"classroom-{name}.safetensors")
    outside = {}
    for sentence in lecture_sentences():
        source = prepare_source(ck.tokenizer, sentence, corpus=ck.corpus)
        if source.unseen or source.unknown:
            outside[sentence] = (source.unseen, source.unknown)
    assert outside == {}


@pytest.mark.parametrize("name", ["bahdanau", "luong", "transformer"])
def test_the_attention_models_translate_every_lecture_sentence(name):
    ck = load_checkpoint(MODELS / f"classroom-{name}.safetensors")
    wrong = []
    for sentence in lecture_sentences():
        if sentence in NOT_ENGLISH:
            continue
        source = prepare_source(ck.tokenizer, sentence, corpus=ck.corpus)
        out = ck.tokenizer.decode_tgt(greedy(ck.model, ck.tokenizer, source).tokens)
        if out != translate(sentence)[0]:
            wrong.append((sentence, out))
    assert wrong == []
