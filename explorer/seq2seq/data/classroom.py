"""The built-in English→French classroom corpus, with gold word alignments.

``generate`` samples random parse trees of the classroom grammar (``classroom_grammar``) and
realises each into both languages, so every pair comes with its alignment: pairs of (English word
index, French word index) over whitespace-split words, 0-based, written in Pharaoh style
("0-0 1-2 2-1"). ``translate`` parses an English sentence of the grammar and realises its French,
so the corpus and the lecture examples agree by construction. ``toy_pairs`` makes the copy and
reversal tasks.
"""

from __future__ import annotations

import functools
import random
import threading
from pathlib import Path

from explorer.seq2seq.data import classroom_cache
from explorer.seq2seq.data.classroom_grammar import (
    ANIMATE,
    NP,
    PP,
    RESOURCES,
    Agr,
    Alignment,
    ClassroomError,
    Clause,
    Coord,
    Grammar,
    Greeting,
    Pron,
    Sentence,
    There,
    Weather,
    _finish,
    _Realiser,
    _valid,
    load_grammar,
    normalize,
    participle,
    realise,
)
from explorer.seq2seq.data.classroom_parse import parse, translate

__all__ = [
    "DEFAULT_SIZE", "DEFAULT_TOY_SIZE", "EXAMPLES", "RESOURCES", "Alignment", "ClassroomError",
    "Pair", "Sentence", "generate", "load_grammar", "normalize", "parse", "participle", "realise",
    "toy_pairs", "translate", "write_corpus",
]  # fmt: skip

DEFAULT_SIZE = 30000
DEFAULT_TOY_SIZE = 10000

EXAMPLES: list[tuple[str, str]] = [
    ("the black cat sat on the mat", "le chat noir s'est assis sur le tapis"),
    ("the cat sat on the mat", "le chat s'est assis sur le tapis"),
    ("the black cat sat", "le chat noir s'est assis"),
    ("the cat sleeps", "le chat dort"),
    ("i saw the red house", "j'ai vu la maison rouge"),
    ("i love you", "je t'aime"),
    ("the black cat that i saw yesterday sat", "le chat noir que j'ai vu hier s'est assis"),
    ("there is a cat at the station", "il y a un chat à la gare"),
    ("it's raining cats and dogs", "il pleut des cordes"),
    ("hello world", "bonjour le monde"),
]

Pair = tuple[str, str]


# ----------------------------------------------------------------------------- sampling


class _Sampler:
    """Random parse trees; ``bucket`` (0..3) picks the probabilities for a length range.

    Every draw is ``random() < p`` for a choice or ``seq[int(random() * len(seq))]`` for a pick,
    written out in the hot methods (np, clause) rather than called, which halves their cost."""

    def __init__(self, g: Grammar, rng: random.Random, bucket: int):
        self.g, self.random = g, rng.random
        self.p = {k: v[bucket] for k, v in g.rules["choices"].items() if not k.startswith("_")}
        self.kinds = sorted({n["kind"] for n in g.nouns.values()})
        self.kind = {n: e["kind"] for n, e in g.nouns.items()}
        self.nouns: dict[tuple, list[str]] = {}
        self.adjs = {
            (pos, kind): [
                a["en"] for a in g.adjs.values() if a["position"] == pos and kind in a["nouns"]
            ]
            for pos in ("before", "after")
            for kind in self.kinds
        }
        self.dets = {
            pl: [d for d in g.dets if g.number(d) in ("any", "pl" if pl else "sg")] for pl in (0, 1)
        }
        self.verbs = list(g.verbs.values())
        self.verbs_for = {
            k: [v for v in self.verbs if k in v.get("objects", ())] for k in self.kinds
        }
        self.preps = {m: [p for p in g.preps.values() if m or not p.get("motion")] for m in (0, 1)}
        self.times = {
            past: [
                t for t, e in g.time.items() if e["tense"] in ("any", "past" if past else "present")
            ]
            for past in (0, 1)
        }
        self.freq, self.manner, self.conjs = list(g.freq), list(g.manner), list(g.conjs)
        self.subj_prons, self.obj_prons = list(g.subj_prons), list(g.obj_prons)
        self.subj_agr = {w: g.pron_agr(e) for w, e in g.subj_prons.items()}
        self.weather, self.greetings = list(g.weather), list(g.greetings)
        self.addressees, self.possessives = list(g.addressees), ["my", "our", "your"]

    def chance(self, key: str) -> bool:
        return self.random() < self.p[key]

    def pick(self, seq):
        return seq[int(self.random() * len(seq))]

    def noun_list(self, kinds) -> list[str]:
        key = tuple(kinds)
        if key not in self.nouns:
            self.nouns[key] = [n for n, kind in self.kind.items() if kind in key]
        return self.nouns[key]

    def np(self, kinds, rel_ok: bool) -> NP:
        rnd, p = self.random, self.p
        nouns = self.noun_list(kinds)
        noun = nouns[int(rnd() * len(nouns))]
        kind = self.kind[noun]
        if rnd() < p["number_determiner"]:
            numbers = self.g.numbers
            det = numbers[int(rnd() * len(numbers))]
            plural = det != numbers[0]
        else:
            plural = rnd() < p["plural"]
            dets = self.dets[plural]
            det = dets[int(rnd() * len(dets))]
        pres, posts = self.adjs["before", kind], self.adjs["after", kind]
        pre = pres[int(rnd() * len(pres))] if pres and rnd() < p["adjective_before"] else None
        post = posts[int(rnd() * len(posts))] if posts and rnd() < p["adjective_after"] else None
        np = NP(det, noun, plural, pre, post)
        if rel_ok and rnd() < p["relative_clause"]:
            gap = "subj" if rnd() < 0.5 else "obj"
            np.rel = self.clause(gap, self.g.np_agr(np), kind, rel_ok=False)
        return np

    def subject(self, rel_ok: bool, copula: bool):
        g = self.g
        if self.chance("pronoun_subject"):
            word = self.pick(self.subj_prons)
            return Pron(word), self.subj_agr[word], "person"
        kinds = self.kinds if copula else ANIMATE
        if self.chance("coordinated_subject"):
            left, right = self.np(kinds, False), self.np(kinds, False)
            la, ra = g.np_agr(left), g.np_agr(right)
            gender = "f" if la.gender == ra.gender == "f" else "m"
            kind = self.kind[left.noun] if copula else "animal"
            return Coord(left, right), Agr(gender, True, 5), kind
        np = self.np(kinds, rel_ok)
        return np, g.np_agr(np), self.kind[np.noun]

    def clause(self, gap=None, gap_agr=None, gap_kind=None, rel_ok=True) -> Clause:
        rnd, p = self.random, self.p
        copula = gap != "obj" and rnd() < p["copula"]
        if gap == "subj":
            subj, agr, kind = None, gap_agr, gap_kind
            copula = copula or kind not in ANIMATE
        else:
            subj, agr, kind = self.subject(rel_ok, copula)
        past, neg = rnd() < p["past"], rnd() < p["negation"]
        freq = None
        if not neg and rnd() < p["frequency_adverb"]:
            freq = self.freq[int(rnd() * len(self.freq))]
        time = self.time(past)
        if copula:
            pred = self.pick(self.adjs["after", kind] or self.adjs["before", kind])
            return Clause(subj, "be", past, neg, freq, pred=pred, time=time)
        v = self.pick(self.verbs_for[gap_kind] if gap == "obj" else self.verbs)
        obj = None
        if gap != "obj" and self.pick(v["frames"]) == "tr":
            obj = self.object(subj, v, rel_ok)
        manner = None
        if rnd() < p["manner_adverb"]:
            manner = self.manner[int(rnd() * len(self.manner))]
        pps = self.pps(v.get("motion", False))
        return Clause(subj, v["en"][0], past, neg, freq, obj, gap == "obj", None, manner, pps, time)

    def time(self, past: bool) -> str | None:
        if self.random() < self.p["time_adverb"]:
            return self.pick(self.times[past])
        return None

    def pps(self, motion: bool) -> tuple[PP, ...]:
        rnd, p = self.random, self.p
        pps: list[PP] = []
        preps = self.preps[motion]
        while len(pps) < 2 and rnd() < (
            p["second_prepositional_phrase"] if pps else p["prepositional_phrase"]
        ):
            prep = preps[int(rnd() * len(preps))]
            pps.append(PP(prep["en"], self.np(prep["objects"], False)))
        return tuple(pps)

    def unit(self) -> Clause | There | Weather:
        """A clause, an existential (there is …) or a weather clause (it is raining …)."""
        if self.chance("existential"):
            past = self.chance("past")
            return There(self.np(self.kinds, True), past, self.pps(False), self.time(past))
        if self.chance("weather"):
            verb = self.pick(self.weather)
            past = self.chance("past")
            contracted = not past and self.chance("contracted")
            idiom = "idiom" in self.g.weather[verb] and self.chance("weather_idiom")
            return Weather(verb, past, contracted, idiom, self.time(past))
        return self.clause()

    def greeting(self) -> Greeting:
        """hello, and maybe whom to: an addressee of the lexicon or my/our/your + a noun."""
        word = self.pick(self.greetings)
        if not self.chance("addressee"):
            return Greeting(word)
        if self.random() < 0.5:
            return Greeting(word, self.pick(self.addressees))
        det = self.pick(self.possessives)
        return Greeting(word, NP(det, self.pick(self.noun_list(ANIMATE)), self.chance("plural")))

    def object(self, subj, v: dict, rel_ok: bool) -> NP | Pron:
        if self.chance("pronoun_object"):
            pron = Pron(self.pick(self.obj_prons))
            if _valid(Clause(subj, v["en"][0], obj=pron), self.g):
                return pron
        return self.np(v["objects"], rel_ok)

    def sentence(self, lo: int, hi: int) -> tuple[list[str], list[str], Alignment]:
        """Clauses joined by conjunctions until the English has lo..hi words; a clause that
        overshoots is dropped and drawn again, each clause is realised once."""
        real, toks, n_clauses, misses = _Realiser(self.g), [], 0, 0
        if self.chance("greeting"):  # a sentence of its own
            toks = real.greeting(self.greeting())
            if lo <= len(real.en) <= hi:
                return _finish(real, toks)
            real, toks = _Realiser(self.g), []
        while len(real.en) < lo:
            mark = len(real.en)
            piece = []
            if n_clauses:
                conj = self.pick(self.conjs)
                piece = real.phrase(conj, self.g.conjs[conj]["fr"])
            piece += real.unit(self.unit())
            if len(real.en) > hi:
                del real.en[mark:]
                misses += 1
                if misses % 20 == 0:  # start afresh rather than look for a rare short clause
                    real, toks, n_clauses = _Realiser(self.g), [], 0
                continue
            toks += piece
            n_clauses += 1
        return _finish(real, toks)


def generate(size: int = DEFAULT_SIZE, seed: int = 0) -> tuple[list[Pair], list[Alignment]]:
    """``size`` distinct (English, French) pairs and their gold alignments, deterministic for a
    seed. Source lengths are spread over the buckets in grammar.json (2-10, 11-20, 21-30,
    31-40 words by default, in equal shares). The last few corpora are kept, so asking again
    for the same ``size`` and ``seed`` (training, then evaluation) costs only fresh lists."""
    if size < 1:
        raise ClassroomError(f"size must be positive, not {size}")
    with _GENERATING:  # a second thread asking for the same corpus waits for the first's
        pairs, alignments = _generate(size, seed)
    return list(pairs), [list(a) for a in alignments]


_GENERATING = threading.Lock()


@functools.lru_cache(maxsize=4)
def _generate(
    size: int, seed: int
) -> tuple[tuple[Pair, ...], tuple[tuple[tuple[int, int], ...], ...]]:
    """The corpus for ``generate`` as immutable tuples, so the cached copy cannot be changed;
    read from the disk cache (``classroom_cache``) when it was generated before."""
    kept = classroom_cache.read(size, seed, _SOURCES)
    if kept is not None:
        return kept
    g = load_grammar()
    rng = random.Random(seed)
    lengths = g.rules["lengths"]
    buckets, weights = lengths["buckets"], lengths["weights"]
    samplers = [_Sampler(g, rng, b) for b in range(len(buckets))]
    pairs: list[Pair] = []
    alignments: list[tuple[tuple[int, int], ...]] = []
    seen: set[str] = set()
    attempts = 0
    while len(pairs) < size:
        attempts += 1
        if attempts > 20 * size + 1000:
            raise ClassroomError(f"the grammar cannot produce {size} distinct pairs")
        b = rng.choices(range(len(buckets)), weights)[0]
        en, fr, alignment = samplers[b].sentence(*buckets[b])
        src = " ".join(en)
        if src not in seen:
            seen.add(src)
            pairs.append((src, " ".join(fr)))
            alignments.append(tuple(alignment))
    corpus = tuple(pairs), tuple(alignments)
    classroom_cache.write(size, seed, *corpus, _SOURCES)
    return corpus


# What the generator's output depends on: the cache's fingerprint reads these.
_SOURCES = [
    RESOURCES / "lexicon.json",
    RESOURCES / "grammar.json",
    Path(__file__),
    Path(__file__).with_name("classroom_grammar.py"),
]


# ----------------------------------------------------------------------------- toy tasks


def toy_pairs(
    task: str,
    size: int = DEFAULT_TOY_SIZE,
    seed: int = 0,
    vocab: str | list[str] = "abcdefghijklmnopqrst",
    min_len: int = 3,
    max_len: int = 20,
) -> tuple[list[Pair], list[Alignment]]:
    """Symbol sequences and their copy or reversal, with the alignment that maps each output
    symbol to the input symbol it repeats."""
    if task not in ("reverse", "copy"):
        raise ClassroomError(f"unknown toy task {task!r}; expected 'reverse' or 'copy'")
    if not 1 <= min_len <= max_len:
        raise ClassroomError(f"need 1 <= min_len <= max_len, got {min_len} and {max_len}")
    symbols = list(vocab)
    rng = random.Random(seed)
    pairs, alignments = [], []
    for _ in range(size):
        src = [rng.choice(symbols) for _ in range(rng.randint(min_len, max_len))]
        n = len(src)
        if task == "copy":
            tgt, alignment = src, [(i, i) for i in range(n)]
        else:
            tgt, alignment = src[::-1], [(n - 1 - j, j) for j in range(n)]
            alignment.sort()
        pairs.append((" ".join(src), " ".join(tgt)))
        alignments.append(alignment)
    return pairs, alignments


def write_corpus(out_dir: str | Path, size: int = DEFAULT_SIZE, seed: int = 0) -> tuple[Path, Path]:
    """Write ``classroom.tsv`` (English<TAB>French) and ``classroom.align`` (one Pharaoh line
    per pair) into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pairs, alignments = generate(size, seed)
    tsv, align = out / "classroom.tsv", out / "classroom.align"
    tsv.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    lines = (" ".join(f"{i}-{j}" for i, j in a) + "\n" for a in alignments)
    align.write_text("".join(lines), encoding="utf-8")
    return tsv, align
