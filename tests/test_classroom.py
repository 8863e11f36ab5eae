import hashlib
from collections import Counter

import pytest

from explorer.seq2seq.data import classroom
from explorer.seq2seq.data.classroom import (
    EXAMPLES,
    ClassroomError,
    generate,
    normalize,
    toy_pairs,
    translate,
    write_corpus,
)
from explorer.seq2seq.data.corpus import load_corpus

# sha256 of classroom.tsv + classroom.align for generate(30000, seed=0): the corpus must not drift
CORPUS_SHA256 = "29a8ee6b6c62020a0f69e8c3d382c01ed2d4475a1e139496e2558fd41733484d"


@pytest.fixture(scope="module")
def corpus():
    return generate(size=30000, seed=0)


def fr(english: str) -> str:
    return translate(english)[0]


# ----------------------------------------------------------------------------- lecture sentences


def test_lecture_examples_are_translated_exactly():
    assert len(EXAMPLES) == 10
    for english, french in EXAMPLES:
        assert fr(english) == french


def test_gold_alignments_by_hand():
    # the black cat sat -> le chat noir s'est assis: adjective moves, sat -> two words
    assert translate("the black cat sat") == (
        "le chat noir s'est assis",
        [(0, 0), (1, 2), (2, 1), (3, 3), (3, 4)],
    )
    # i saw -> j'ai (elision merges je + ai), saw -> ai + vu, red moves after house
    assert translate("i saw the red house") == (
        "j'ai vu la maison rouge",
        [(0, 0), (1, 0), (1, 1), (2, 2), (3, 4), (4, 3)],
    )
    # object pronoun moves before the verb: i love you -> je t'aime
    assert translate("i love you") == ("je t'aime", [(0, 0), (1, 1), (2, 1)])
    # does not sleep -> ne dort pas: not -> ne + pas, does + sleep -> dort
    assert translate("the cat does not sleep") == (
        "le chat ne dort pas",
        [(0, 0), (1, 1), (2, 3), (3, 2), (3, 4), (4, 3)],
    )
    # did not see -> n'a pas vu: did -> a, see -> vu
    assert translate("she did not see the dog") == (
        "elle n'a pas vu le chien",
        [(0, 0), (1, 1), (2, 1), (2, 2), (3, 3), (4, 4), (5, 5)],
    )
    # in front of -> devant (three words to one), to the -> au (contraction)
    assert translate("we ran to the park")[1] == [(0, 0), (1, 1), (1, 2), (2, 3), (3, 3), (4, 4)]
    assert translate("he sat in front of the door") == (
        "il s'est assis devant la porte",
        [(0, 0), (1, 1), (1, 2), (2, 3), (3, 3), (4, 3), (5, 4), (6, 5)],
    )


@pytest.mark.parametrize(
    "english, french",
    [
        # adjectives after the noun, a few before it
        ("the small black cat sleeps", "le petit chat noir dort"),
        ("a big white dog ate", "un grand chien blanc a mangé"),
        # gender and number agreement of determiners, adjectives and verbs
        ("the black mouse sleeps", "la souris noire dort"),
        ("the black mice sleep", "les souris noires dorment"),
        ("some black cats sleep", "des chats noirs dorment"),
        ("some small cats sleep", "de petits chats dorment"),
        ("a white mouse is happy", "une souris blanche est heureuse"),
        ("the cat and the mouse sat", "le chat et la souris se sont assis"),
        ("the girls arrived", "les filles sont arrivées"),
        ("we sleep", "nous dormons"),
        ("they see the bird", "ils voient l'oiseau"),
        # passé composé and negation
        ("the cat sat", "le chat s'est assis"),
        ("i did not sit", "je ne me suis pas assis"),
        ("the dog never sleeps", "le chien ne dort jamais"),
        ("the dog never slept", "le chien n'a jamais dormi"),
        ("the birds are not happy", "les oiseaux ne sont pas heureux"),
        ("the dog often slept", "le chien a souvent dormi"),
        # object pronouns before the verb, participle agreement
        ("i see it", "je le vois"),
        ("she saw them", "elle les a vus"),
        ("i saw her", "je l'ai vue"),
        ("i do not see it", "je ne le vois pas"),
        ("he helps me", "il m'aide"),
        # numbers
        ("three black cats sleep", "trois chats noirs dorment"),
        ("one white mouse sleeps", "une souris blanche dort"),
        ("seventeen dogs ran", "dix-sept chiens ont couru"),
        # relative clauses, with agreement of the participle with que
        ("the dog that sleeps is happy", "le chien qui dort est heureux"),
        ("the house that i saw is red", "la maison que j'ai vue est rouge"),
        ("the apple that he ate fell", "la pomme qu'il a mangée est tombée"),
        # elision, contraction, forms before a vowel, multi-word phrases
        ("this bird sleeps", "cet oiseau dort"),
        ("my friend sleeps near the river", "mon ami dort près de la rivière"),
        ("the cat sat near the trees", "le chat s'est assis près des arbres"),
        ("the cat sat next to the dog", "le chat s'est assis à côté du chien"),
        ("an apple fell", "une pomme est tombée"),
        ("the cat sleeps but the dog plays", "le chat dort mais le chien joue"),
        ("he laughed because it fell", None),
        ("he laughed because she fell", "il a ri parce qu'elle est tombée"),
        ("we played last night", "nous avons joué hier soir"),
        ("the child plays every day", "l'enfant joue tous les jours"),
        # there is / there are, with the number of the noun
        ("There is a cat at the station", "il y a un chat à la gare"),
        ("there are two dogs in the garden", "il y a deux chiens dans le jardin"),
        ("there was a white mouse that i saw", "il y avait une souris blanche que j'ai vue"),
        ("there is two dogs", None),
        # the weather: impersonal "it", it's for it is, the idiom as a whole
        ("It's raining cats and dogs", "il pleut des cordes"),
        ("it is raining today", "il pleut aujourd'hui"),
        ("it was snowing yesterday and the cat slept", "il neigeait hier et le chat a dormi"),
        ("it was snowing cats and dogs", None),
        # greetings stand alone, with an addressee or nobody
        ("Hello world", "bonjour le monde"),
        ("goodbye everyone", "au revoir tout le monde"),
        ("good night my small cats", "bonne nuit mes petits chats"),
        ("hello world and the cat sleeps", None),
    ],
)
def test_phenomena(english, french):
    if french is None:  # "it" is only an object pronoun or the weather's; agreement; no idiom
        with pytest.raises(ClassroomError, match="not a sentence"):
            translate(english)
    else:
        assert fr(english) == french


def test_normalize():
    assert normalize("The black cat sat on the mat.") == "the black cat sat on the mat"
    assert normalize("  I  LOVE you!!  ") == "i love you"
    assert normalize("Le chat s\u2019est assis, aujourd'hui.") == "le chat s'est assis aujourd'hui"
    assert normalize("dix-sept chats - 'oui'") == "dix-sept chats oui"
    assert fr("The black cat sat on the mat.") == "le chat noir s'est assis sur le tapis"


def test_translate_rejects_what_the_grammar_cannot_make():
    with pytest.raises(ClassroomError, match=r"unknown word 'platypus' \(word 2\)"):
        translate("the platypus sleeps")
    with pytest.raises(ClassroomError, match="not a sentence of the classroom grammar"):
        translate("cat the sleeps")
    with pytest.raises(ClassroomError, match="not a sentence"):
        translate("the cat sleep")  # agreement
    with pytest.raises(ClassroomError, match="not a sentence"):
        translate("a apple fell")  # a/an
    with pytest.raises(ClassroomError, match="not a sentence"):
        translate("i saw me")  # would need a reflexive


# ----------------------------------------------------------------------------- the generated corpus


def test_default_corpus_is_unchanged(corpus):
    pairs, alignments = corpus
    digest = hashlib.sha256()
    digest.update("".join(f"{s}\t{t}\n" for s, t in pairs).encode())
    digest.update("".join(" ".join(f"{i}-{j}" for i, j in a) + "\n" for a in alignments).encode())
    assert digest.hexdigest() == CORPUS_SHA256
    assert pairs[1] == ("he fell on her world", "il est tombé sur son monde")


def test_generate_is_cached_and_returns_fresh_lists(corpus):
    pairs, alignments = corpus
    hits = classroom._generate.cache_info().hits
    again_pairs, again_alignments = generate(size=30000, seed=0)
    assert classroom._generate.cache_info().hits == hits + 1
    assert again_pairs == pairs and again_alignments == alignments
    assert again_pairs is not pairs and again_alignments[0] is not alignments[0]
    assert isinstance(again_pairs, list) and isinstance(again_alignments[0], list)
    again_pairs.clear()
    again_alignments[1].append((99, 99))
    third_pairs, third_alignments = generate(size=30000, seed=0)
    assert len(third_pairs) == 30000 and third_alignments[1] == alignments[1]
    assert (99, 99) not in third_alignments[1]
    with pytest.raises(ClassroomError, match="size must be positive, not 0"):
        generate(size=0)


def test_thirty_thousand_distinct_pairs_deterministic(corpus):
    pairs, alignments = corpus
    assert len(pairs) == 30000 == len(alignments)
    assert len({s for s, _ in pairs}) == 30000
    again = generate(size=500, seed=0)
    assert again[0] == pairs[:500] and again[1] == alignments[:500]
    assert generate(size=500, seed=1)[0] != pairs[:500]


def test_lengths_spread_over_four_buckets_and_small_vocabulary(corpus):
    pairs, _ = corpus
    lengths = [len(s.split()) for s, _ in pairs]
    assert min(lengths) >= 2 and max(lengths) <= 40
    buckets = Counter(min(3, (n - 1) // 10) for n in lengths)
    for b in range(4):
        assert 0.2 < buckets[b] / len(pairs) < 0.3, buckets
    english = {w for s, _ in pairs for w in s.split()}
    assert 150 < len(english) < 400
    french = " ".join(t for _, t in pairs)
    assert french == french.lower()
    assert not set(french) & set('.,;:!?"')


def test_alignments_are_in_range_and_cover_every_word(corpus):
    pairs, alignments = corpus
    for (s, t), a in zip(pairs[:3000], alignments[:3000], strict=True):
        n, m = len(s.split()), len(t.split())
        assert all(0 <= i < n and 0 <= j < m for i, j in a)
        assert {j for _, j in a} == set(range(m)), (s, t, a)
        assert {i for i, _ in a} == set(range(n)), (s, t, a)
        assert a == sorted(set(a))


def test_translate_reproduces_generated_pairs(corpus):
    pairs, alignments = corpus
    for (s, t), a in zip(pairs[:400], alignments[:400], strict=True):
        assert translate(s) == (t, a)


def test_corpus_shows_every_phenomenon(corpus):
    pairs, _ = corpus
    french = Counter(w for _, t in pairs for w in t.split())
    english = Counter(w for s, _ in pairs for w in s.split())
    for word in ["noir", "noire", "noirs", "noires", "le", "la", "les", "un", "une", "des"]:
        assert french[word] > 50, word
    for word in ["s'est", "j'ai", "l'oiseau", "t'aime", "au", "du", "qu'il", "dix-sept", "pas"]:
        assert french[word] > 0, word
    for word in ["that", "and", "because", "not", "twenty", "yesterday"]:
        assert english[word] > 100, word
    for phrase in ["le vois", "les a vus", "que j'ai vu", " t'aime", "le chat noir"]:
        assert any(phrase in t for _, t in pairs), phrase
    # the lecture decks' kinds of sentence: there is …, the weather and its idiom, greetings
    for phrase in ["il y a un", "il y avait des", "à la gare", "il pleut des cordes", "neigeait"]:
        assert any(phrase in t for _, t in pairs), phrase
    for start in ["bonjour le monde", "au revoir tout le monde", "bonne nuit mes"]:
        assert any(t.startswith(start) for _, t in pairs), start
    assert english["it's"] > 100 and english["there"] > 1000


# ----------------------------------------------------------------------------- toy tasks and files


def test_toy_pairs():
    pairs, alignments = toy_pairs("reverse", size=100, seed=0)
    assert len(pairs) == 100
    for (s, t), a in zip(pairs, alignments, strict=True):
        src, tgt = s.split(), t.split()
        assert 3 <= len(src) <= 20 and tgt == src[::-1]
        assert set(src) <= set("abcdefghijklmnopqrst")
        assert all(src[i] == tgt[j] for i, j in a) and len(a) == len(src)
    copy, copy_align = toy_pairs("copy", size=5, seed=1, vocab="xy", min_len=2, max_len=2)
    assert all(s == t and len(s.split()) == 2 for s, t in copy)
    assert copy_align[0] == [(0, 0), (1, 1)]
    assert toy_pairs("reverse", 3, seed=4) == toy_pairs("reverse", 3, seed=4)
    assert toy_pairs("reverse", 1, vocab="ab", min_len=3, max_len=3)[1] == [
        [(0, 2), (1, 1), (2, 0)]
    ]
    with pytest.raises(ClassroomError, match="unknown toy task 'sort'"):
        toy_pairs("sort", 5)


def test_write_corpus_round_trips_through_load_corpus(tmp_path):
    tsv, align = write_corpus(tmp_path / "out", size=300, seed=2)
    assert tsv.name == "classroom.tsv" and align.name == "classroom.align"
    pairs, alignments = generate(size=300, seed=2)
    loaded = load_corpus(str(tsv))
    assert loaded.pairs == pairs
    assert loaded.alignments == alignments
    first = align.read_text().splitlines()[0]
    assert first == " ".join(f"{i}-{j}" for i, j in alignments[0])


def test_resources_live_in_the_repository():
    assert (classroom.RESOURCES / "lexicon.json").is_file()
    assert (classroom.RESOURCES / "grammar.json").is_file()


def test_de_before_plural_indefinite_article_drops_des():
    # "near some parks" → "près de parcs": French has no "de des".
    french, alignment = classroom.translate("i see the cat near some parks")
    assert "près de parcs" in french and " de des " not in f" {french} "
    words = french.split()
    de = words.index("de")
    # the merged "de" keeps the links of both "near" (via près de) and "some"
    assert (4, de) in alignment and (5, de) in alignment


def test_threads_asking_for_one_corpus_at_once_generate_it_once(monkeypatch):
    # The Train panel's preview and a training run started meanwhile both ask for the corpus.
    import functools
    import threading
    import time

    calls = []
    real = classroom._generate.__wrapped__

    @functools.lru_cache(maxsize=4)
    def counting(size, seed):
        calls.append((size, seed))
        time.sleep(0.2)  # the others ask while this one works
        return real(size, seed)

    monkeypatch.setattr(classroom, "_generate", counting)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(classroom.generate(300, seed=7)))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [(300, 7)]
    assert len(results) == 3 and results[0] == results[1] == results[2]
