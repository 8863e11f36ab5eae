import gzip
from pathlib import Path

import pytest

from explorer.seq2seq.data.corpus import (
    Corpus,
    CorpusError,
    dedupe,
    filter_length,
    length_batches,
    load_corpus,
    parse_pharaoh,
    split,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MULTI30K = SHARED / "data" / "multi30k"


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# ----------------------------------------------------------------------------- reading


def test_tsv_reads_pairs_and_ignores_extra_columns(tmp_path):
    f = write(tmp_path / "c.tsv", b"the cat\tle chat\textra\n\nthe dog\tle chien\n")
    corpus = load_corpus(str(f))
    assert corpus.pairs == [("the cat", "le chat"), ("the dog", "le chien")]
    assert corpus.alignments is None
    assert corpus.name == "c.tsv"
    assert corpus.description["pairs"] == 2
    assert corpus.description["files"] == [str(f)]


def test_tsv_bad_column_count_names_file_and_line(tmp_path):
    f = write(tmp_path / "bad.tsv", b"a\tb\nc\td\nno tab here\ne\tf\n")
    with pytest.raises(CorpusError) as e:
        load_corpus(str(f))
    assert str(e.value) == (f"{f}:3: expected 2 tab-separated columns (source, target), found 1")


def test_tsv_invalid_utf8_names_file_and_line(tmp_path):
    f = write(tmp_path / "bad.tsv", b"a\tb\nca\xfft\tchat\n")
    with pytest.raises(CorpusError) as e:
        load_corpus(str(f))
    assert str(e.value) == f"{f}:2: invalid UTF-8 (byte 0xff at column 3)"


def test_skip_collects_line_problems(tmp_path):
    f = write(tmp_path / "bad.tsv", b"a\tb\nca\xfft\tchat\nno tab\nc\td\n")
    corpus = load_corpus(str(f), errors="skip")
    assert corpus.pairs == [("a", "b"), ("c", "d")]
    assert [line for line, _ in corpus.skipped] == [2, 3]
    assert "invalid UTF-8" in corpus.skipped[0][1]
    assert "found 1" in corpus.skipped[1][1]
    assert corpus.description["skipped"] == 2


def test_errors_option_is_checked(tmp_path):
    f = write(tmp_path / "c.tsv", b"a\tb\n")
    with pytest.raises(ValueError, match="errors must be"):
        load_corpus(str(f), errors="ignore")


def test_bom_and_crlf(tmp_path):
    f = write(tmp_path / "c.tsv", "\ufeffthe cat\tle chat\r\nthe dog\tle chien\r\n".encode())
    assert load_corpus(str(f)).pairs == [("the cat", "le chat"), ("the dog", "le chien")]


def test_gzipped_tsv_detected_by_magic_bytes(tmp_path):
    data = gzip.compress(b"a cat\tun chat\nthe bird\tl'oiseau\n")
    f = write(tmp_path / "corpus.txt", data)  # no .gz extension
    assert load_corpus(str(f)).pairs == [("a cat", "un chat"), ("the bird", "l'oiseau")]


def test_two_files_mismatched_counts(tmp_path):
    s = write(tmp_path / "x.en", b"a\nb\nc\n")
    t = write(tmp_path / "x.fr", b"a\nb\n")
    with pytest.raises(CorpusError) as e:
        load_corpus(f"{s},{t}")
    assert str(e.value) == f"{s}, {t}: line counts differ (3 vs 2)"


def test_two_files_skip_blank_side_and_prefix_with_gz(tmp_path):
    write(tmp_path / "train.en", b"one\n\nthree\nfour\n")
    write(tmp_path / "train.fr.gz", gzip.compress(b"un\ndeux\n\nquatre\n"))
    corpus = load_corpus(str(tmp_path / "train"), src_lang="en", tgt_lang="fr")
    assert corpus.pairs == [("one", "un"), ("four", "quatre")]
    assert corpus.description["src_lang"] == "en"
    assert corpus.description["files"][1].endswith("train.fr.gz")
    same = load_corpus(f"{tmp_path / 'train.en'},{tmp_path / 'train.fr.gz'}")
    assert same.pairs == corpus.pairs


def test_two_files_invalid_utf8_line(tmp_path):
    s = write(tmp_path / "x.en", b"a\nb\n")
    t = write(tmp_path / "x.fr", b"a\n\xc3(\n")
    with pytest.raises(CorpusError, match=rf"^{t}:2: invalid UTF-8"):
        load_corpus(f"{s},{t}")


def test_structural_problems_always_raise(tmp_path):
    empty = write(tmp_path / "empty.tsv", b"\n\n")
    with pytest.raises(CorpusError, match=rf"^{empty}: empty file$"):
        load_corpus(str(empty), errors="skip")
    binary = write(tmp_path / "model.bin", b"\x00\x01\x02\tabc\n")
    with pytest.raises(CorpusError, match="not a text file"):
        load_corpus(str(binary), errors="skip")
    broken = write(tmp_path / "broken.gz", b"\x1f\x8b\x08garbage")
    with pytest.raises(CorpusError, match="broken gzip"):
        load_corpus(str(broken))
    allbad = write(tmp_path / "allbad.tsv", b"x\ny\n")
    with pytest.raises(CorpusError, match="no sentence pairs"):
        load_corpus(str(allbad), errors="skip")
    with pytest.raises(CorpusError, match="no such file"):
        load_corpus(str(tmp_path / "missing.tsv"))
    with pytest.raises(CorpusError, match=r"missing\.de: no such file"):
        load_corpus(str(tmp_path / "missing"), src_lang="de", tgt_lang="en")


def test_sidecar_alignments(tmp_path):
    f = write(tmp_path / "c.tsv", b"the black cat\tle chat noir\n\nthe cat\tle chat\n")
    write(tmp_path / "c.tsv.align", b"0-0 1-2 2-1\n\n0-0 1-1\n")
    corpus = load_corpus(str(f))
    assert corpus.alignments == [[(0, 0), (1, 2), (2, 1)], [(0, 0), (1, 1)]]
    write(tmp_path / "c.tsv.align", b"0-0 1-2 2-1\n\n0-0 1-5\n")
    with pytest.raises(CorpusError, match=r"c\.tsv\.align:3: link 1-5 outside"):
        load_corpus(str(f))
    write(tmp_path / "c.tsv.align", b"0-0 1:2\n\n0-0\n")
    with pytest.raises(CorpusError, match=r"c\.tsv\.align:1: bad alignment link '1:2'"):
        load_corpus(str(f))


def test_parse_pharaoh():
    assert parse_pharaoh("0-0 1-2  2-1\n") == [(0, 0), (1, 2), (2, 1)]
    assert parse_pharaoh("") == []


def test_size_keeps_leading_pairs(tmp_path):
    f = write(tmp_path / "c.tsv", b"a\tb\nc\td\ne\tf\n")
    assert load_corpus(str(f), size=2).pairs == [("a", "b"), ("c", "d")]


@pytest.mark.skipif(not MULTI30K.is_dir(), reason=f"{MULTI30K} is absent")
def test_multi30k_prefix():
    corpus = load_corpus(str(MULTI30K / "train"), src_lang="de", tgt_lang="en")
    assert len(corpus) == 29000
    assert corpus.description["src_lang"] == "de"
    assert corpus.description["files"][0].endswith("train.de.gz")
    src, tgt = corpus.pairs[0]
    assert src and tgt and "\t" not in src


# ----------------------------------------------------------------------------- built-in corpora


def test_builtin_corpora():
    classroom = load_corpus("classroom", size=200, seed=3)
    assert len(classroom) == 200 and len(classroom.alignments) == 200
    assert classroom.description["src_lang"] == "en"
    assert classroom.description["tgt_lang"] == "fr"
    reverse = load_corpus("reverse", size=50)
    src, tgt = reverse.pairs[0]
    assert tgt.split() == src.split()[::-1]


# ----------------------------------------------------------------------------- filters and splits


def test_filter_length_and_dedupe_keep_alignments_in_step():
    corpus = Corpus(
        pairs=[("a b", "x y"), ("a", "x"), ("a b", "x y"), ("a b c d", "w x y z")],
        alignments=[[(0, 0)], [(0, 0)], [(1, 1)], [(3, 3)]],
        name="t",
    )
    short = filter_length(corpus, min_len=2, max_len=3)
    assert short.pairs == [("a b", "x y"), ("a b", "x y")]
    assert short.alignments == [[(0, 0)], [(1, 1)]]
    unique = dedupe(corpus)
    assert unique.pairs == [("a b", "x y"), ("a", "x"), ("a b c d", "w x y z")]
    assert unique.alignments == [[(0, 0)], [(0, 0)], [(3, 3)]]
    assert dedupe([("a", "b"), ("a", "b")]) == [("a", "b")]
    assert filter_length([("a", "b c")], max_len=1) == []


def _numbered(n: int) -> Corpus:
    return Corpus(pairs=[(f"sentence {i}", f"phrase {i}") for i in range(n)], name="num")


def test_split_is_deterministic_and_partitions():
    corpus = _numbered(2000)
    train, valid, test = split(corpus, valid=0.1, test=0.1, seed=0)
    again = split(corpus, valid=0.1, test=0.1, seed=0)
    assert [p.pairs for p in again] == [train.pairs, valid.pairs, test.pairs]
    assert len(train) + len(valid) + len(test) == 2000
    assert set(train.pairs) | set(valid.pairs) | set(test.pairs) == set(corpus.pairs)
    assert 120 < len(test) < 280 and 120 < len(valid) < 280
    other = split(corpus, valid=0.1, test=0.1, seed=1)
    assert other[2].pairs != test.pairs
    assert test.name == "num:test" and test.description["split"] == "test"


def test_split_is_stable_when_corpus_grows():
    small = split(_numbered(500), valid=0.1, test=0.1, seed=7)
    large = split(_numbered(3000), valid=0.1, test=0.1, seed=7)
    for part_small, part_large in zip(small, large, strict=True):
        assert set(part_small.pairs) <= set(part_large.pairs)
    assert not set(small[2].pairs) & set(large[0].pairs)


def test_classroom_test_set_never_leaks_into_training():
    small = split(load_corpus("classroom", size=2000, seed=0), seed=0)
    large = split(load_corpus("classroom", size=6000, seed=0), seed=0)
    test_sources = {s for s, _ in small[2].pairs}
    assert test_sources
    assert not test_sources & {s for s, _ in large[0].pairs}


# ----------------------------------------------------------------------------- batches


def test_length_batches_cover_every_index_once_with_bounded_padding():
    lengths = [(i * 7919) % 37 + 1 for i in range(1000)]
    batches = length_batches(lengths, batch_tokens=200, seed=0)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))
    for b in batches:
        assert len(b) * max(lengths[i] for i in b) <= 200
    assert batches == length_batches(lengths, batch_tokens=200, seed=0)
    assert batches != length_batches(lengths, batch_tokens=200, seed=1)


def test_length_batches_by_size_and_unshuffled():
    lengths = [5, 1, 3, 2, 4]
    assert length_batches(lengths, batch_size=2, shuffle=False) == [[1, 3], [2, 4], [0]]
    batches = length_batches(list(range(1, 101)), batch_size=8, batch_tokens=300, seed=2)
    assert sorted(i for b in batches for i in b) == list(range(100))
    assert all(len(b) <= 8 for b in batches)


def test_length_batches_oversized_item_gets_own_batch():
    assert length_batches([50, 2, 2], batch_tokens=10, shuffle=False) == [[1, 2], [0]]
    with pytest.raises(ValueError, match="batch_tokens, batch_size"):
        length_batches([1, 2])
