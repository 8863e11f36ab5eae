"""Words outside a model's world: recorded by training, listed on the prepared source, printed by
``translate``, refused when a stored list is hostile."""

import json
import struct
from pathlib import Path

import pytest

from explorer.seq2seq.checkpoint import CheckpointError, load_checkpoint, read_card
from explorer.seq2seq.data import words
from explorer.seq2seq.data.inputs import prepare_source
from explorer.seq2seq.training.train import Trainer, TrainOptions

# Eight short pairs: no "z" anywhere, so a word with a "z" has a piece that becomes <unk>.
PAIRS = [
    ("the cat sleeps", "le chat dort"),
    ("the dog sleeps", "le chien dort"),
    ("a cat eats", "un chat mange"),
    ("a dog eats", "un chien mange"),
    ("the cat sees the dog", "le chat voit le chien"),
    ("the dog sees a cat", "le chien voit un chat"),
    ("a cat runs", "un chat court"),
    ("the dog runs", "le chien court"),
]
TRAINED_WORDS = "a cat dog eats runs sees sleeps the"


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("unseen")
    corpus = folder / "pairs.tsv"
    corpus.write_text("".join(f"{s}\t{t}\n" for s, t in PAIRS))
    options = TrainOptions.from_preset(
        "tiny",
        corpus=str(corpus),
        valid_fraction=0.0,
        test_fraction=0.0,
        vocab_size=30,
        steps=3,
        eval_every=0,
        bleu_sentences=0,
        out=str(folder / "tiny.safetensors"),
    )
    for _ in Trainer(options).run():
        pass
    return folder / "tiny.safetensors"


def test_training_records_exactly_the_words_of_its_training_split(tiny_checkpoint):
    ck = load_checkpoint(tiny_checkpoint)
    assert ck.corpus[words.FIELD] == TRAINED_WORDS
    assert read_card(tiny_checkpoint)["corpus"][words.FIELD] == TRAINED_WORDS


def test_a_tiny_model_marks_exactly_the_words_it_never_saw(tiny_checkpoint):
    ck = load_checkpoint(tiny_checkpoint)
    inside = prepare_source(ck.tokenizer, "the cat sees a dog", corpus=ck.corpus)
    assert (inside.unseen, inside.unknown, inside.outside) == ((), (), None)
    # "rat" and "hat" are new ("hat" named once), spelt with letters of the training text
    source = prepare_source(ck.tokenizer, "the rat sees the hat hat", corpus=ck.corpus)
    assert (source.unseen, source.unknown) == (("rat", "hat"), ())
    # a file corpus keeps its case: "The" is not "the", and no capital T was ever seen
    capital = prepare_source(ck.tokenizer, "The cat", corpus=ck.corpus)
    assert (capital.unseen, capital.unknown) == (("The",), ("The",))
    zebra = prepare_source(ck.tokenizer, "the zebra runs", corpus=ck.corpus)
    assert zebra.unseen == ("zebra",)
    assert zebra.unknown == ("zebra",)  # no "z" in training: its piece is <unk>
    assert zebra.outside == "never seen in training: zebra; became <unk>: zebra"
    ids, notice = zebra  # still unpacks as before
    assert notice is None and ids[-1] == zebra.ids[-1]


def test_a_long_notice_names_twelve_words_and_counts_the_rest(tiny_checkpoint):
    ck = load_checkpoint(tiny_checkpoint)
    new = [f"rat{'s' * n}" for n in range(15)]
    source = prepare_source(ck.tokenizer, "the " + " ".join(new), corpus=ck.corpus)
    assert source.unseen == tuple(new)  # the lists themselves are whole
    assert source.outside == "never seen in training: " + ", ".join(new[:12]) + " and 3 more"


def test_a_checkpoint_without_a_word_list_says_unknown_but_still_finds_unk(tiny_checkpoint):
    ck = load_checkpoint(tiny_checkpoint)
    corpus = {k: v for k, v in ck.corpus.items() if k != words.FIELD}
    source = prepare_source(ck.tokenizer, "the zebra runs", corpus=corpus)
    assert source.unseen is None
    assert source.unknown == ("zebra",)
    assert source.outside == "became <unk>: zebra"


def test_punctuation_at_a_words_ends_does_not_make_it_unseen():
    """Real text keeps its punctuation: a word seen before a full stop is seen before a comma
    too, and a lone dash is nobody's unseen word."""
    corpus = {"name": "file", words.FIELD: words.training_words(["Ein Hund liest Magazine."], {})}
    assert corpus[words.FIELD] == "Ein Hund Magazine. liest"
    typed = "Ein Hund, „Magazine“ – liest Zeitungen."
    assert words.unseen_words(typed, corpus) == ("Zeitungen.",)
    assert words.unseen_words("Magazine Hund.", corpus) == ()


def test_word_lists_are_built_with_the_corpus_policy_and_bounded():
    classroom = {"name": "classroom"}
    assert words.training_words(["The cat, the DOG!", "a cat"], classroom) == "a cat dog the"
    assert words.training_words(["The cat, the"], {"name": "file"}) == "The cat, the"
    assert words.training_words([], classroom) == ""
    huge = (f"w{i:07d}" for i in range(words.MAX_WORDS_CHARS // 9 + 1))
    assert words.training_words(huge, classroom) is None
    assert words.words_record([("x", "y")], classroom) == {"words": "x"}


def _with_corpus(source: Path, target: Path, corpus: dict) -> Path:
    """A copy of ``source`` whose metadata ``corpus`` is replaced (weights untouched)."""
    raw = source.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header["__metadata__"]["corpus"] = json.dumps(corpus)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    target.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n :])
    return target


@pytest.mark.parametrize(
    ("listed", "problem"),
    [
        (["a", "cat"], "is a list, expected a string of words"),
        (7, "is a int"),
        ("cat a", "word 2 'a' is out of order after 'cat'"),
        ("a a cat", "word 2 'a' is out of order after 'a'"),
        ("a  cat", "word 2 is '': words are separated by single spaces"),
        ("a\tb cat", "word 1 is 'a\\tb'"),
        ("x" * (words.MAX_WORDS_CHARS + 1), "characters, limit 4,000,000"),
    ],
)
def test_hostile_word_lists_are_refused_in_one_line_naming_the_file(
    tiny_checkpoint, tmp_path, listed, problem
):
    corpus = {**load_checkpoint(tiny_checkpoint).corpus, words.FIELD: listed}
    bad = _with_corpus(tiny_checkpoint, tmp_path / "hostile.safetensors", corpus)
    for read in (load_checkpoint, read_card):
        with pytest.raises(CheckpointError) as e:
            read(bad)
        message = str(e.value)
        assert message.startswith(f"{bad}: corpus word list ") and problem in message
        assert "\n" not in message


def test_translate_prints_the_notice_and_json_carries_both_lists(tiny_checkpoint, capsys):
    from explorer.cli import run as main

    assert main(["translate", "--checkpoint", str(tiny_checkpoint), "the zebra runs"]) == 0
    err = capsys.readouterr().err
    assert err == "notice: never seen in training: zebra; became <unk>: zebra\n"
    args = ["translate", "--checkpoint", str(tiny_checkpoint), "--json", "the zebra runs"]
    assert main([*args, "the rat"]) == 0
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert [(r["never_seen"], r["became_unk"]) for r in results] == [
        (["zebra"], ["zebra"]),
        (["rat"], []),
    ]
    assert captured.err.splitlines() == [
        "notice: sentence 1: never seen in training: zebra; became <unk>: zebra",
        "notice: sentence 2: never seen in training: rat",
    ]


def test_info_counts_the_training_words_instead_of_printing_them(tiny_checkpoint, capsys):
    from explorer.cli import run

    assert run(["info", str(tiny_checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "words=8" in out and TRAINED_WORDS not in out


def test_a_marian_model_has_no_training_words_but_reports_unk(tmp_path):
    pytest.importorskip("transformers")
    from marian_models import build_marian

    build_marian(tmp_path / "marian")
    ck = load_checkpoint(tmp_path / "marian")
    source = prepare_source(ck.tokenizer, "the zebra sleeps", corpus=ck.corpus)
    assert source.unseen is None  # no training corpus: unknown, nothing marked
    assert source.unknown == ("zebra",)  # no "z" in its sentencepiece training text
    assert source.outside == "became <unk>: zebra"
    assert prepare_source(ck.tokenizer, "the cat sleeps", corpus=ck.corpus).outside is None
