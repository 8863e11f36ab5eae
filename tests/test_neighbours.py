"""Nearest training-set neighbours: a corpus sentence finds itself at distance 0, the index is
capped at its sample size and reproducible for a seed, and the lookups' edge cases."""

from __future__ import annotations

import random

import numpy as np
import pytest
from toymodels import REAL_ARCHS, WIDE_TOK, tiny_real_model

from explorer.seq2seq.decoding.decode import teacher_forced
from explorer.seq2seq.neighbours import (
    KINDS,
    METRICS,
    NeighboursError,
    make_index,
    nearest,
    project,
    query_state,
    training_pairs,
)


def toy_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """n distinct pairs of WIDE_TOK sentences (2 to 7 symbols each side)."""
    rng = random.Random(seed)
    src, tgt = "pqrstuvw", "abcdefghij"
    pairs: dict[str, str] = {}
    while len(pairs) < n:
        s = " ".join(rng.choice(src) for _ in range(rng.randint(2, 7)))
        pairs[s] = " ".join(rng.choice(tgt) for _ in range(rng.randint(2, 7)))
    return list(pairs.items())


PAIRS = toy_pairs(60)


@pytest.mark.parametrize("arch", ["bahdanau", "none", "transformer"])
def test_a_corpus_sentence_is_its_own_nearest_neighbour(arch):
    model = tiny_real_model(arch)
    index = make_index(model, WIDE_TOK, PAIRS, cap=10_000, batch_size=16)
    assert len(index.sentences) == len(PAIRS)  # all of it: under the cap
    for pair_id in (0, 17, 42):
        src, tgt = PAIRS[pair_id]
        trace = teacher_forced(model, WIDE_TOK, src, tgt)  # decoded alone, not in a batch
        sid = next(i for i, s in enumerate(index.sentences) if s.source[:-1] == tuple(src.split()))
        for kind in KINDS:
            for metric in METRICS:
                position = 2 if kind != "encoder" else 1
                query = query_state(trace, kind, step=position, source_index=position)
                best = nearest(index, kind, query, k=3, metric=metric)[0]
                if kind == "context" and arch == "none":  # one context for every step
                    assert best.distance == pytest.approx(0.0, abs=1e-5)
                    assert best.sentence == sid
                    continue
                assert (best.sentence, best.position) == (sid, position), (kind, metric)
                assert best.distance == pytest.approx(0.0, abs=1e-5)
                assert best.side == ("source" if kind == "encoder" else "target")
                written = best.pieces if kind != "encoder" else best.other
                assert written[:-1] == tuple(tgt.split())  # the sentence, </s> last


def test_neighbours_are_sorted_and_distances_are_the_metrics():
    model = tiny_real_model("bahdanau")
    index = make_index(model, WIDE_TOK, PAIRS, cap=10_000)
    trace = teacher_forced(model, WIDE_TOK, *PAIRS[3])
    q = query_state(trace, "decoder", 1).astype(np.float64)
    table = index.tables["decoder"]
    for metric in METRICS:
        found = nearest(index, "decoder", q, k=8, metric=metric)
        d = [n.distance for n in found]
        assert d == sorted(d)
        v = table.vectors[found[-1].row].astype(np.float64)
        if metric == "euclidean":
            assert d[-1] == pytest.approx(np.linalg.norm(v - q), rel=1e-9)
        else:
            cos = v @ q / (np.linalg.norm(v) * np.linalg.norm(q))
            assert d[-1] == pytest.approx(1 - cos, rel=1e-9, abs=1e-12)
        everything = nearest(index, "decoder", q, k=len(table), metric=metric)
        assert [n.row for n in everything[:8]] == [n.row for n in found]  # k changes nothing


def test_the_index_is_capped_at_its_sample_size():
    model = tiny_real_model("luong-dot")
    pairs = toy_pairs(300, seed=1)
    index = make_index(model, WIDE_TOK, pairs, cap=250, batch_size=32)
    assert {k: index.size(k) for k in KINDS} == dict.fromkeys(KINDS, 250)
    assert len(index.sentences) < len(pairs)
    for kind in KINDS:  # every row points into its sentence
        t = index.tables[kind]
        for sid, pos in zip(t.sentence, t.position, strict=True):
            s = index.sentences[sid]
            assert 0 <= pos < len(s.source if kind == "encoder" else s.target)


def test_the_sample_is_reproducible_with_a_seed():
    model = tiny_real_model("bahdanau")
    pairs = toy_pairs(300, seed=2)
    a = make_index(model, WIDE_TOK, pairs, cap=200, seed=7)
    b = make_index(model, WIDE_TOK, pairs, cap=200, seed=7, batch_size=5)
    c = make_index(model, WIDE_TOK, pairs, cap=200, seed=8)
    assert a.sentences == b.sentences
    for kind in KINDS:
        np.testing.assert_allclose(a.tables[kind].vectors, b.tables[kind].vectors, atol=1e-5)
        np.testing.assert_array_equal(a.tables[kind].sentence, b.tables[kind].sentence)
    assert a.sentences != c.sentences


def test_lookups_refuse_bad_questions_in_one_line():
    model = tiny_real_model("bahdanau")
    index = make_index(model, WIDE_TOK, PAIRS[:5], cap=100)
    n = index.size("encoder")
    d = index.tables["encoder"].vectors.shape[1]
    assert len(nearest(index, "encoder", np.ones(d), k=n + 10)) == n
    with pytest.raises(NeighboursError, match="the index holds"):
        nearest(index, "encoder", np.ones(d + 1))
    with pytest.raises(NeighboursError, match="unknown kind"):
        nearest(index, "attention", np.ones(d))
    with pytest.raises(NeighboursError, match="unknown distance"):
        nearest(index, "encoder", np.ones(d), metric="manhattan")
    with pytest.raises(NeighboursError, match="sample size"):
        make_index(model, WIDE_TOK, PAIRS, cap=0)
    with pytest.raises(NeighboursError, match="no training pairs"):
        make_index(model, WIDE_TOK, [], cap=10)


def test_the_projection_places_the_query_among_its_neighbours():
    model = tiny_real_model("bahdanau")
    index = make_index(model, WIDE_TOK, PAIRS, cap=10_000)
    v = index.tables["decoder"].vectors[5]
    found = nearest(index, "decoder", v, k=6)
    p = project(index, "decoder", v, found)
    assert p.points.shape == (6, 2)
    np.testing.assert_allclose(p.query, p.points[0], atol=1e-4)  # on its own state
    np.testing.assert_allclose(p.points.mean(axis=0), 0.0, atol=1e-6)  # centred on them


def test_training_pairs_regenerate_a_built_in_corpus_and_never_read_a_file(tmp_path):
    from explorer.seq2seq.training.options import TrainOptions, load_splits

    options = TrainOptions(corpus="classroom", corpus_size=300).to_dict()
    pairs = training_pairs(options, {"name": "classroom"})
    _, (train, _, _) = load_splits(TrainOptions.from_dict(options))
    assert pairs == list(train.pairs) and len(pairs) > 200
    secret = tmp_path / "corpus.tsv"
    secret.write_text("a b\tc d\n")
    with pytest.raises(NeighboursError, match="corpus file|a file"):
        training_pairs({**options, "corpus": str(secret)}, {"name": "corpus.tsv"})
    with pytest.raises(NeighboursError, match="does not record"):
        training_pairs(None)
    with pytest.raises(NeighboursError, match="stored training options"):
        training_pairs({"corpus": "classroom", "lr": "fast"})


def test_every_real_family_indexes():
    for arch in REAL_ARCHS:
        index = make_index(tiny_real_model(arch), WIDE_TOK, PAIRS[:8], cap=1000)
        assert all(index.size(k) > 0 for k in KINDS), arch
