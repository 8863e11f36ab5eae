"""The classroom corpus kept on disk: read back exactly, regenerated when damaged or stale."""

from __future__ import annotations

import logging
import os

import pytest

from explorer.seq2seq.data import classroom, classroom_cache


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(classroom_cache.CACHE_ENV, str(folder))
    classroom._generate.cache_clear()
    yield folder
    classroom._generate.cache_clear()


def _no_generator(monkeypatch):
    def refuse(*_a, **_k):
        raise AssertionError("the corpus was generated, not read")

    monkeypatch.setattr(classroom, "_Sampler", refuse)


def test_a_kept_corpus_reads_back_exactly(cache, monkeypatch):
    fresh = classroom.generate(400, seed=3)
    files = list(cache.glob("classroom-400-3-*.npz"))
    assert len(files) == 1
    classroom._generate.cache_clear()
    _no_generator(monkeypatch)
    assert classroom.generate(400, seed=3) == fresh
    # what the corpus module serves: the same pairs and gold alignments
    from explorer.seq2seq.data.corpus import load_corpus

    c = load_corpus("classroom", size=400, seed=3)
    assert c.pairs[:5] == fresh[0][:5] and c.alignments[:5] == fresh[1][:5]


def test_another_size_or_seed_is_another_corpus(cache):
    a = classroom.generate(300, seed=1)
    b = classroom.generate(300, seed=2)
    c = classroom.generate(301, seed=1)
    assert a != b and len(c[0]) == 301
    assert len(list(cache.glob("classroom-*.npz"))) == 3


def test_a_damaged_file_is_generated_anew_and_replaced(cache, monkeypatch, caplog):
    fresh = classroom.generate(300, seed=5)
    (path,) = cache.glob("classroom-300-5-*.npz")
    path.write_bytes(path.read_bytes()[:1000])  # cut short
    classroom._generate.cache_clear()
    with caplog.at_level(logging.WARNING, logger=classroom_cache.__name__):
        assert classroom.generate(300, seed=5) == fresh
    assert str(path) in caplog.text and "generating it anew" in caplog.text
    classroom._generate.cache_clear()
    _no_generator(monkeypatch)
    assert classroom.generate(300, seed=5) == fresh  # the replacement reads


def test_a_changed_grammar_or_generator_never_reads_an_old_corpus(tmp_path, cache):
    grammar = tmp_path / "grammar.json"
    grammar.write_text('{"a": 1}')
    before = classroom_cache.path_for(300, 0, [grammar])
    grammar.write_text('{"a": 2}')
    assert classroom_cache.path_for(300, 0, [grammar]) != before
    assert classroom_cache.path_for(300, 0, [grammar]).parent == cache


def test_caching_off_large_corpora_and_a_read_only_folder(cache, monkeypatch, caplog):
    monkeypatch.setenv(classroom_cache.CACHE_ENV, "off")
    classroom.generate(200, seed=9)
    assert not cache.exists()
    monkeypatch.setenv(classroom_cache.CACHE_ENV, str(cache))
    monkeypatch.setattr(classroom_cache, "MAX_PAIRS", 100)
    classroom.generate(201, seed=9)
    assert not cache.exists()  # more pairs than are kept
    monkeypatch.setattr(classroom_cache, "MAX_PAIRS", 200_000)
    blocker = cache.parent / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(classroom_cache.CACHE_ENV, str(blocker / "cache"))  # cannot be made
    with caplog.at_level(logging.WARNING, logger=classroom_cache.__name__):
        pairs, _ = classroom.generate(202, seed=9)
    assert len(pairs) == 202 and "cannot keep the classroom corpus" in caplog.text


def test_only_the_corpora_used_last_are_kept(cache, monkeypatch):
    monkeypatch.setattr(classroom_cache, "KEEP", 2)
    for i, size in enumerate((100, 110, 120)):
        classroom.generate(size, seed=0)
        for p in cache.glob(f"classroom-{size}-*.npz"):
            os.utime(p, (1000 + i, 1000 + i))  # distinct ages on any file system
    names = sorted(p.name.split("-")[1] for p in cache.glob("classroom-*.npz"))
    assert names == ["110", "120"]
