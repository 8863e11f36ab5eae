import pytest

from explorer.seq2seq.data.tokenizer import Tokenizer, TokenizerError, train_tokenizer
from explorer.seq2seq.models.base import BOS, EOS, PAD, UNK

EN = [
    "the cat sat on the mat",
    "the dog sleeps on the sofa",
    "a small cat and a big dog",
    "the children read a book",
    "my sister reads the newspaper",
] * 4
FR = [
    "le chat est assis sur le tapis",
    "le chien dort sur le canapé",
    "un petit chat et un grand chien",
    "les enfants lisent un livre",
    "ma sœur lit le journal",
] * 4


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(EN, FR, vocab_size=60, model_type="bpe")


@pytest.mark.parametrize("model_type", ["bpe", "unigram"])
@pytest.mark.parametrize("joint", [False, True])
def test_training_is_deterministic(model_type, joint):
    a = train_tokenizer(EN, FR, vocab_size=50, model_type=model_type, joint=joint)
    b = train_tokenizer(iter(EN), iter(FR), vocab_size=50, model_type=model_type, joint=joint)
    assert a.to_bytes() == b.to_bytes()
    assert a.model_type == model_type
    assert a.joint is joint
    src, tgt = a.to_bytes()
    assert (src == tgt) is joint


def test_joint_model_shares_one_vocabulary():
    t = train_tokenizer(EN, FR, vocab_size=60, joint=True)
    assert t.src_vocab_size == t.tgt_vocab_size
    # a French word encodes the same on either side
    assert t.encode_src("le chien") == t.encode_tgt("le chien")


def test_separate_models_differ(tok):
    src, tgt = tok.to_bytes()
    assert src != tgt
    assert not tok.joint
    assert tok.model_type == "bpe"


def test_tiny_corpus_gets_fewer_pieces_than_asked():
    t = train_tokenizer(["ab ab"], ["cd cd"], vocab_size=1000)
    assert 4 < t.src_vocab_size < 1000
    assert t.decode_src(t.encode_src("ab")) == "ab"


def test_special_ids_are_fixed(tok):
    assert tok.src_pieces([PAD, UNK, BOS, EOS]) == ["<pad>", "<unk>", "<s>", "</s>"]
    assert tok.tgt_pieces([PAD, UNK, BOS, EOS]) == ["<pad>", "<unk>", "<s>", "</s>"]


def test_encode_appends_eos_without_bos(tok):
    src = tok.encode_src("the cat sat on the mat")
    tgt = tok.encode_tgt("le chat est assis sur le tapis")
    for ids in (src, tgt):
        assert ids[-1] == EOS
        assert BOS not in ids and PAD not in ids and UNK not in ids
        assert ids.count(EOS) == 1
    assert tok.encode_tgt("") == [EOS]


def test_decode_round_trip_and_stops_at_eos(tok):
    text = "le chien dort sur le tapis"
    ids = tok.encode_tgt(text)
    assert tok.decode_tgt(ids) == text
    # everything after the first EOS is ignored; PAD and BOS are dropped
    after = tok.encode_tgt("un grand chat")
    assert tok.decode_tgt([BOS] + ids + after + [PAD]) == text
    assert tok.decode_src(tok.encode_src("the dog sleeps")) == "the dog sleeps"


def test_a_lone_word_boundary_piece_stays_visible(tok):
    ids = tok.encode_tgt("les enfants")  # "enfants" starts with a bare "▁" piece
    raw = [tok.raw_piece(i, "tgt") for i in ids]
    assert "\u2581" in raw
    assert tok.tgt_pieces(ids)[raw.index("\u2581")] == "\u2581"


def test_pieces_drop_the_word_boundary_marker(tok):
    ids = tok.encode_tgt("le chat")
    pieces = tok.tgt_pieces(ids)
    assert pieces[-1] == "</s>"
    assert "".join(pieces[:-1]) == "lechat"
    assert all("\u2581" not in p for p in pieces)
    assert tok.tgt_piece(ids[0]) == pieces[0]


def test_unknown_characters_show_as_unk(tok):
    ids = tok.encode_src("the cat 中")
    assert UNK in ids
    assert "<unk>" in tok.src_pieces(ids)
    # the unknown character is still its own word
    assert tok.word_index(ids, "src") == [*tok.word_index(ids[:-1], "src"), -1]
    assert max(tok.word_index(ids, "src")) == 2


def test_word_index_groups_pieces_into_whitespace_words(tok):
    text = "les enfants lisent un journal"
    ids = tok.encode_tgt(text)
    index = tok.word_index(ids, "tgt")
    assert len(index) == len(ids)
    assert index[-1] == -1
    words = index[:-1]
    assert words == sorted(words)
    assert sorted(set(words)) == list(range(len(text.split())))
    # the pieces of each word spell that word
    raw = [tok.raw_piece(i, "tgt") for i in ids]
    for w, word in enumerate(text.split()):
        assert "".join(p for p, i in zip(raw, index, strict=True) if i == w) == "\u2581" + word


def test_word_index_splits_an_unseen_word_into_several_pieces(tok):
    ids = tok.encode_src("the catalogue")
    index = tok.word_index(ids, "src")
    assert len(ids) > 3  # "catalogue" was never seen whole
    assert index[0] == 0 and set(index[1:-1]) == {1} and index[-1] == -1


def test_piece_to_id(tok):
    ids = tok.encode_tgt("chat")
    assert len(ids) == 2  # "▁chat" is one piece
    assert tok.piece_to_id("chat", "tgt") == ids[0]
    assert tok.piece_to_id("\u2581chat", "tgt") == ids[0]
    assert tok.piece_to_id("</s>", "tgt") == EOS
    assert tok.piece_to_id("<unk>", "src") == UNK
    with pytest.raises(TokenizerError, match="no piece 'zzzz' in the tgt vocabulary"):
        tok.piece_to_id("zzzz", "tgt")
    with pytest.raises(TokenizerError, match="side must be"):
        tok.piece_to_id("chat", "french")


def test_from_bytes_round_trip(tok):
    again = Tokenizer.from_bytes(*tok.to_bytes())
    assert again.to_bytes() == tok.to_bytes()
    text = "un petit chien lit le journal"
    assert again.encode_tgt(text) == tok.encode_tgt(text)
    assert again.src_vocab_size == tok.src_vocab_size
    assert again.model_type == tok.model_type and again.joint == tok.joint


def test_corrupt_model_bytes_are_refused(tok):
    src, _ = tok.to_bytes()
    with pytest.raises(TokenizerError, match="corrupt target sentencepiece model"):
        Tokenizer.from_bytes(src, b"\x00\xff not a model")
    with pytest.raises(TokenizerError, match="source sentencepiece model is empty"):
        Tokenizer.from_bytes(b"", src)


def test_out_of_range_ids_are_refused(tok):
    with pytest.raises(TokenizerError, match="token id 100000 is outside the tgt vocabulary"):
        tok.tgt_pieces([100000])
    with pytest.raises(TokenizerError, match="outside the src vocabulary"):
        tok.decode_src([-1])


def test_bad_training_options():
    with pytest.raises(TokenizerError, match="unknown tokenizer model_type 'wordpiece'"):
        train_tokenizer(EN, FR, model_type="wordpiece")
    with pytest.raises(TokenizerError, match="no non-empty sentences"):
        train_tokenizer(EN, ["", "  "])
