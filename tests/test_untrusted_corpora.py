"""Corpora from anywhere: each file is accepted (with skipped lines counted, under errors="skip")
or refused with one CorpusError line naming the file (and the line, for a problem in one line).

The fixed files in tests/data/bad_corpora are written by tests/data/make_bad_files.py.
"""

import gzip
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer.seq2seq.data.corpus import CorpusError, load_corpus

BAD = Path(__file__).parent / "data" / "bad_corpora"
PAIRS = [
    ("the cat sleeps", "le chat dort"),
    ("the dog eats", "le chien mange"),
    ("a cat eats", "un chat mange"),
    ("a dog sleeps", "un chien dort"),
]


def refusal(spec: str, errors: str) -> str:
    with pytest.raises(CorpusError) as info:
        load_corpus(spec, errors=errors)
    text = str(info.value)
    assert "\n" not in text and "\r" not in text
    return text


@pytest.mark.parametrize("errors", ["raise", "skip"])
@pytest.mark.parametrize("name", ["bom.tsv", "crlf.tsv", "empty_lines.tsv"])
def test_clean_variants_are_read_exactly(name, errors):
    corpus = load_corpus(str(BAD / name), errors=errors)
    assert corpus.pairs == PAIRS and corpus.skipped == []


def test_extra_columns_are_ignored_and_tab_only_lines_are_blank():
    corpus = load_corpus(str(BAD / "extra_tabs.tsv"), errors="raise")
    assert corpus.pairs == PAIRS + [("one", "two")]


@pytest.mark.parametrize(
    "name,line,problem",
    [
        ("latin1_line.tsv", 2, r"invalid UTF-8 \(byte 0xe9 at column 4\)"),
        ("latin1_in_gzip.tsv.gz", 5, r"invalid UTF-8 \(byte 0xef at column 3\)"),
        ("no_tab.tsv", 5, r"expected 2 tab-separated columns"),
    ],
)
def test_one_bad_line_is_refused_with_its_line_or_skipped_and_counted(name, line, problem):
    path = str(BAD / name)
    assert re.fullmatch(f"{re.escape(path)}:{line}: {problem}.*", refusal(path, "raise"))
    corpus = load_corpus(path, errors="skip")
    assert corpus.pairs == PAIRS
    assert [n for n, _ in corpus.skipped] == [line]
    assert corpus.skipped[0][1].startswith(f"{path}:{line}: ")
    assert corpus.description["skipped"] == 1


@pytest.mark.parametrize("errors", ["raise", "skip"])
@pytest.mark.parametrize(
    "name,problem",
    [
        ("empty.tsv", r"empty file"),
        ("random_bytes.tsv", r"binary data \(NUL bytes\), not a text file"),
        ("nul_bytes.tsv", r"binary data \(NUL bytes\), not a text file"),
        ("truncated.tsv.gz", r"broken gzip data"),
    ],
)
def test_whole_file_problems_are_refused_naming_the_file(name, problem, errors):
    path = str(BAD / name)
    assert re.match(f"{re.escape(path)}: {problem}", refusal(path, errors))


def test_random_text_bytes_refused_at_the_first_line_or_with_no_pairs_left():
    path = str(BAD / "random_bytes_no_nul.tsv")
    assert re.match(f"{re.escape(path)}:1: invalid UTF-8", refusal(path, "raise"))
    assert refusal(path, "skip") == f"{path}: no sentence pairs"


@pytest.mark.parametrize("errors", ["raise", "skip"])
def test_two_files_with_different_line_counts_are_refused(errors):
    en, fr = BAD / "lines_4.en", BAD / "lines_3.fr"
    assert refusal(f"{en},{fr}", errors) == f"{en}, {fr}: line counts differ (4 vs 3)"


def test_two_files_skip_a_bad_line_pair(tmp_path):
    en, fr = tmp_path / "c.en", tmp_path / "c.fr"
    en.write_bytes(b"the cat\nthe \xe9 dog\na cat\n")
    fr.write_bytes(b"le chat\nle chien\nun chat\n")
    assert re.fullmatch(f"{re.escape(str(en))}:2: invalid UTF-8.*", refusal(f"{en},{fr}", "raise"))
    corpus = load_corpus(f"{en},{fr}", errors="skip")
    assert corpus.pairs == [("the cat", "le chat"), ("a cat", "un chat")]
    assert [n for n, _ in corpus.skipped] == [2]


def test_a_one_megabyte_line_is_read_whole(tmp_path):
    path = tmp_path / "long.tsv"
    long = "word " * 200_000 + "end"
    path.write_text(f"{long}\tmot\nshort\tcourt\n", encoding="utf-8")
    corpus = load_corpus(str(path))
    assert corpus.pairs == [(long, "mot"), ("short", "court")]


def test_missing_file_and_gzip_of_nothing(tmp_path):
    assert refusal(str(tmp_path / "nope.tsv"), "raise") == f"{tmp_path / 'nope.tsv'}: no such file"
    path = tmp_path / "nothing.tsv.gz"
    path.write_bytes(gzip.compress(b"", mtime=0))
    assert refusal(str(path), "skip") == f"{path}: empty file"


# fuzzing ------------------------------------------------------------------------------------

PIECES = st.sampled_from(
    [
        "the cat",
        "\t",
        "\t\t",
        " ",
        "",
        "\r",
        "\ufeff",
        "é",
        "\u200f",
        "日本",
        "😀",
        "\x85",
        "\u2028",
    ]
)
LINE = st.one_of(
    st.lists(PIECES, max_size=6).map(lambda parts: "".join(parts).encode("utf-8")),
    st.text(max_size=20).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=20),
    st.text(alphabet="abcé\t ", max_size=12).map(lambda t: t.encode("latin-1")),
)
FUZZ = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def non_blank_lines(data: bytes) -> int:
    """Lines that are not blank after the reader's own line splitting: each must become a pair
    or a skipped entry, never vanish."""
    count = 0
    for i, raw in enumerate(data.splitlines()):  # LF, CRLF and a lone CR end a line
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            count += 1
            continue
        if i == 0:
            text = text.removeprefix("\ufeff")
        count += bool(text.strip())
    return count


@FUZZ
@given(lines=st.lists(LINE, max_size=12), ending=st.sampled_from([b"\n", b"\r\n"]))
def test_line_soup_is_read_or_refused_and_nothing_vanishes(lines, ending, tmp_path):
    path = tmp_path / "soup.tsv"
    data = ending.join(lines)
    path.write_bytes(data)
    for errors in ("raise", "skip"):
        try:
            corpus = load_corpus(str(path), errors=errors)
        except CorpusError as e:
            text = str(e)
            assert "\n" not in text and text.startswith(str(path))
            continue
        assert all(src and tgt and src == src.strip() for src, tgt in corpus.pairs)
        if errors == "raise":
            assert corpus.skipped == []
        if b"\x00" not in data:
            assert len(corpus.pairs) + len(corpus.skipped) == non_blank_lines(data)


@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes_and_random_gzip_never_raise_anything_else(data, tmp_path):
    for name, content in (("r.tsv", data), ("r.tsv.gz", b"\x1f\x8b" + data)):
        path = tmp_path / name
        path.write_bytes(content)
        try:
            load_corpus(str(path), errors="skip")
        except CorpusError as e:
            assert "\n" not in str(e) and str(e).startswith(str(path))


# streamed reading: special files, bombs, caps ------------------------------------------------


def test_cr_only_line_ends_are_line_ends(tmp_path):
    path = tmp_path / "mac.tsv"
    path.write_bytes(b"the cat\tle chat\rthe dog\tle chien\ra cat\tun chat\r")
    assert load_corpus(str(path)).pairs == [
        ("the cat", "le chat"),
        ("the dog", "le chien"),
        ("a cat", "un chat"),
    ]


def test_a_crlf_cut_by_the_read_block_is_one_line_end(tmp_path, monkeypatch):
    import explorer.seq2seq.data.corpus as corpus_module

    monkeypatch.setattr(corpus_module, "_BLOCK_BYTES", 8)  # "the cat\r" | "\nle ..."
    path = tmp_path / "crlf.tsv"
    path.write_bytes(b"the cat\r\nx\ty\r\n")
    pairs, linenos, _ = corpus_module.read_tsv(path, errors="skip")
    assert pairs == [("x", "y")] and linenos == [2]


def test_special_files_are_refused_before_reading(tmp_path):
    import os

    fifo = tmp_path / "pipe.tsv"
    os.mkfifo(fifo)  # no writer: opening it for reading the ordinary way would hang
    assert refusal(str(fifo), "raise") == f"{fifo}: a named pipe (FIFO), not a corpus file"
    assert refusal("/dev/zero", "skip") == "/dev/zero: a character device, not a corpus file"
    assert refusal(str(tmp_path), "raise") == f"{tmp_path}: a directory, not a corpus file"


def test_a_gzip_bomb_is_refused_at_the_decompressed_cap(tmp_path, monkeypatch):
    import explorer.seq2seq.data.corpus as corpus_module

    monkeypatch.setattr(corpus_module, "MAX_CORPUS_BYTES", 1 << 20)
    path = tmp_path / "bomb.tsv.gz"
    path.write_bytes(gzip.compress(b"a\tb\n" * (1 << 20), mtime=0))  # 4 MiB unpacked
    assert refusal(str(path), "skip") == (
        f"{path}: more than 1,048,576 bytes of text once unpacked (the most a corpus may hold)"
    )


def test_an_over_long_line_is_a_problem_of_that_line_and_never_held(tmp_path, monkeypatch):
    import explorer.seq2seq.data.corpus as corpus_module

    monkeypatch.setattr(corpus_module, "MAX_LINE_BYTES", 100)
    monkeypatch.setattr(corpus_module, "_BLOCK_BYTES", 64)
    path = tmp_path / "long.tsv"
    path.write_bytes(b"a\tb\n" + b"x" * 1000 + b"\tlong\nc\td\n" + b"y" * 500)
    corpus = load_corpus(str(path), errors="skip")
    assert corpus.pairs == [("a", "b"), ("c", "d")]
    assert [(n, why.split(": ", 1)[1]) for n, why in corpus.skipped] == [
        (2, "line longer than 100 bytes"),
        (4, "line longer than 100 bytes"),
    ]
    assert refusal(str(path), "raise") == f"{path}:2: line longer than 100 bytes"


def test_pair_count_is_capped_and_a_size_stops_reading_early(tmp_path, monkeypatch):
    import explorer.seq2seq.data.corpus as corpus_module

    monkeypatch.setattr(corpus_module, "MAX_PAIRS", 5)
    path = tmp_path / "many.tsv"
    path.write_bytes(b"a\tb\n" * 6 + b"\xff\n")  # the bad last line is never reached with a size
    assert "more than 5 sentence pairs" in refusal(str(path), "raise")
    assert len(load_corpus(str(path), size=3).pairs) == 3
    with pytest.raises(CorpusError, match="corpus size must be a whole number from 1 to 5"):
        load_corpus("classroom", size=10**9)


@pytest.mark.parametrize("link", ["\u00b2-0", "1-" + "9" * 5000, "0-0x"])
def test_malformed_alignment_links_are_one_line_refusals(tmp_path, link):
    path = tmp_path / "c.tsv"
    path.write_text("the cat\tle chat\n", encoding="utf-8")
    (tmp_path / "c.tsv.align").write_text(f"0-0 {link}\n", encoding="utf-8")
    text = refusal(str(path), "raise")
    assert text.startswith(f"{path}.align:1: bad alignment link ") and len(text) < 300
