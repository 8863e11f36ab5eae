"""The classroom grammar: English parse trees realised into English and French with gold alignments.

A small grammar (lexicon and rules in ``resources/classroom/*.json``) generates English parse
trees; both languages are realised from the same tree, so every pair comes with its alignment:
pairs of (English word index, French word index) over whitespace-split words, 0-based, written
in Pharaoh style ("0-0 1-2 2-1"). ``classroom_parse.translate`` parses an English sentence of the
grammar and realises its French, so the corpus and the lecture examples agree by construction.

What the French side shows: adjectives after the noun (le chat noir) except a few that stay before
(le petit chat); gender and number agreement of determiners, adjectives, verbs and participles;
passé composé (sat → s'est assis, saw → ai vu) and negation (does not sleep → ne dort pas);
object pronouns before the verb (i see it → je le vois, i love you → je t'aime, she saw them →
elle les a vus); elision and contraction (l'oiseau, j'ai, au jardin, près du pont); numbers;
relative clauses (le chat noir que j'ai vu hier s'est assis); there is → il y a (il y a un chat à
la gare); the weather's impersonal "it" and an idiom taken as a whole (it's raining cats and dogs
→ il pleut des cordes); and greetings standing alone (hello world → bonjour le monde).

Fixed choices: "you" is tu/te, "they" is ils, "it" as an object is le; je/tu/nous count as
masculine; a participle with avoir agrees with a direct object placed before it (object pronoun,
or the antecedent of que), one with être agrees with the subject.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from explorer.assets import resources_dir

RESOURCES = resources_dir() / "classroom"

Alignment = list[tuple[int, int]]
ANIMATE = ("animal", "person")


class ClassroomError(ValueError):
    """A sentence outside the classroom grammar, or a bad request for a corpus."""


def normalize(text: str) -> str:
    """Lowercase, drop punctuation (keeping apostrophes and hyphens inside words), one space
    between words: "The black cat sat on the mat." -> "the black cat sat on the mat"."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = re.sub(r"[^\w\s'-]|_", " ", text)
    text = re.sub(r"(?<!\w)['-]+|['-]+(?!\w)", " ", text)
    return " ".join(text.split())


# ----------------------------------------------------------------------------- parse trees


class Agr(NamedTuple):
    """Agreement features: gender 'm'/'f', plural, person 0..5 (je, tu, il, nous, vous, ils)."""

    gender: str
    plural: bool
    person: int

    @property
    def form(self) -> int:  # index into [masc sg, fem sg, masc pl, fem pl]
        return (self.gender == "f") + 2 * self.plural


@dataclass(slots=True)
class NP:
    det: str  # English determiner or number word
    noun: str  # English singular
    plural: bool = False
    pre: str | None = None  # adjective that stays before the French noun
    post: str | None = None  # adjective that moves after it
    rel: Clause | None = None  # relative clause with a subject or object gap


@dataclass(slots=True)
class Pron:
    word: str


@dataclass(slots=True)
class Coord:
    left: NP
    right: NP


@dataclass(slots=True)
class PP:
    prep: str
    np: NP


@dataclass(slots=True)
class Clause:
    subj: NP | Pron | Coord | None  # None: the subject gap of a relative clause
    verb: str  # English base form, or "be" with an adjective ``pred``
    past: bool = False
    neg: bool = False
    freq: str | None = None
    obj: NP | Pron | None = None
    obj_gap: bool = False  # the object gap of a relative clause (que)
    pred: str | None = None
    manner: str | None = None
    pps: tuple[PP, ...] = ()
    time: str | None = None


@dataclass(slots=True)
class There:
    """there is/are NP [PP…] [time] → il y a NP …; there was/were → il y avait."""

    np: NP
    past: bool = False
    pps: tuple[PP, ...] = ()
    time: str | None = None


@dataclass(slots=True)
class Weather:
    """it is/was raining [cats and dogs] [time] → il pleut/pleuvait [des cordes] …; it's = it is."""

    verb: str  # the English -ing form, as in the lexicon's "weather"
    past: bool = False
    contracted: bool = False
    idiom: bool = False
    time: str | None = None


@dataclass(slots=True)
class Greeting:
    """hello [world | everyone | my friend …] → bonjour [le monde | tout le monde | mon ami …]."""

    word: str
    to: NP | str | None = None  # an NP, an addressee of the lexicon, or nobody


Unit = Clause | There | Weather | Greeting


@dataclass(slots=True)
class Sentence:
    clauses: tuple[Unit, ...]  # a Greeting only ever stands alone
    conjs: tuple[str, ...] = field(default=())


# ----------------------------------------------------------------------------- the grammar


class Grammar:
    """Lexicon and rules from the JSON files, indexed for realising, parsing and sampling."""

    def __init__(self, lexicon: dict, rules: dict):
        self.rules = rules
        self.nouns = {n["en"]: n for n in lexicon["nouns"]}
        self.noun_forms = {n["en"]: (n["en"], False) for n in lexicon["nouns"]}
        self.noun_forms |= {n["en_pl"]: (n["en"], True) for n in lexicon["nouns"]}
        self.adjs = {a["en"]: a for a in lexicon["adjectives"]}
        self.verbs = {v["en"][0]: v for v in lexicon["verbs"]}
        self.verb_forms: dict[str, list[tuple[str, int]]] = {}
        for v in lexicon["verbs"]:
            for k, form in enumerate(v["en"]):
                self.verb_forms.setdefault(form, []).append((v["en"][0], k))
        adverbs = lexicon["adverbs"]
        self.freq = {a["en"]: a for a in adverbs["frequency"]}
        self.manner = {a["en"]: a for a in adverbs["manner"]}
        self.time = {a["en"]: a for a in adverbs["time"]}
        self.numbers, self.numbers_fr = lexicon["numbers"], lexicon["numbers_fr"]
        self.weather = {w["en"]: w for w in lexicon["weather"]}
        self.greetings = {w["en"]: w for w in lexicon["greetings"]}
        self.addressees = {w["en"]: w for w in lexicon["addressees"]}
        self.dets = rules["determiners"]
        # tables for realising: agreement of (noun, plural); French determiner forms by English
        # determiner or number ("one" takes the forms of "a", the others are invariable)
        self.agr = {
            (n, pl): Agr(e["gender"], pl, 5 if pl else 2)
            for n, e in self.nouns.items()
            for pl in (False, True)
        }
        self.det_fr = {d: e["fr"] for d, e in self.dets.items()}
        self.det_fr[self.numbers[0]] = self.dets["a"]["fr"]
        self.det_fr |= {n: [fr] * 4 for n, fr in zip(self.numbers[1:], self.numbers_fr[1:])}
        self.adj_fr = {a: e["fr"] for a, e in self.adjs.items()}
        self.phrases: dict[
            tuple[str, str], tuple[list[str], list[tuple[str, tuple[int, ...]]]]
        ] = {}
        self.subj_prons, self.obj_prons = rules["subject_pronouns"], rules["object_pronouns"]
        self.preps = {p["en"]: p for p in rules["prepositions"]}
        self.conjs = {c["en"]: c for c in rules["conjunctions"]}
        self.vowels = set(rules["vowels"])
        self.contracting = {pair.split()[0] for pair in rules["contractions"]}
        self.vocabulary = {
            w
            for phrase in (
                *self.noun_forms, *self.adjs, *self.verb_forms, *self.freq, *self.manner,
                *self.time, *self.numbers, *self.dets, *self.subj_prons, *self.obj_prons,
                *self.preps, *self.conjs, *rules["be_en"]["present"], *rules["be_en"]["past"],
                *rules["do_en"]["present"], *rules["do_en"]["past"], "not", "that", "an",
                *self.greetings, *self.addressees, *self.weather,
                *(w["idiom"]["en"] for w in self.weather.values() if "idiom" in w),
                rules["existential"]["en"], *rules["impersonal"].values(),
            )
            for w in phrase.split()
        }  # fmt: skip

    def number(self, det: str) -> str:
        if det in self.numbers:
            return "sg" if det == self.numbers[0] else "pl"
        return self.dets[det]["number"]

    def np_agr(self, np: NP) -> Agr:
        return self.agr[np.noun, np.plural]

    def pron_agr(self, entry: dict) -> Agr:
        return Agr(entry["gender"], entry["person"] >= 3, entry["person"])


@functools.cache
def load_grammar(directory: str = str(RESOURCES)) -> Grammar:
    d = Path(directory)
    try:
        lexicon = json.loads((d / "lexicon.json").read_text(encoding="utf-8"))
        rules = json.loads((d / "grammar.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ClassroomError(f"{d}: cannot read the classroom lexicon and grammar ({e})") from e
    return Grammar(lexicon, rules)


# ----------------------------------------------------------------------------- realisation

Tok = tuple[str, tuple[int, ...]]  # a French word and the English word indices it aligns to


class _Realiser:
    """Realise a parse tree: English words in order, French words with their alignment."""

    def __init__(self, g: Grammar):
        self.g = g
        self.en: list[str] = []

    def w(self, word: str) -> tuple[int]:
        self.en.append(word)
        return (len(self.en) - 1,)

    def phrase(self, en: str, fr: str, links: list | None = None) -> list[Tok]:
        key = (en, fr)
        if key not in self.g.phrases:
            n = len(en.split())
            if links is None:  # all-to-all
                rel = [(f, tuple(range(n))) for f in fr.split()]
            else:
                rel = [(f, tuple(i for i, j in links if j == k)) for k, f in enumerate(fr.split())]
            self.g.phrases[key] = en.split(), rel
        words, rel = self.g.phrases[key]
        at = len(self.en)
        self.en += words
        return [(f, tuple(at + i for i in idx)) for f, idx in rel]

    def np(self, np: NP) -> tuple[list[Tok], Agr]:
        g, en = self.g, self.en
        agr = g.agr[np.noun, np.plural]
        form = agr.form
        en.append(np.det)
        d = (len(en) - 1,)
        toks = [(g.det_fr[np.det][form], d)]
        if np.pre:
            en.append(np.pre)
            toks.append((g.adj_fr[np.pre][form], (len(en) - 1,)))
            if np.det == "some":
                toks[0] = (g.rules["indefinite_plural_before_adjective"], d)
        if np.post:
            en.append(np.post)
            post = (g.adj_fr[np.post][form], (len(en) - 1,))
        noun = g.nouns[np.noun]
        en.append(noun["en_pl" if np.plural else "en"])
        toks.append((noun["fr_pl" if np.plural else "fr"], (len(en) - 1,)))
        if np.post:
            toks.append(post)
        if np.rel:
            rel = g.rules["relative"]
            that = self.w(rel["en"])
            toks.append((rel["subject" if np.rel.subj is None else "object"], that))
            toks += self.clause(np.rel, gap_agr=agr)
        return toks, agr

    def subject(self, s: NP | Pron | Coord) -> tuple[list[Tok], Agr]:
        if isinstance(s, Pron):
            entry = self.g.subj_prons[s.word]
            return [(entry["fr"], self.w(s.word))], self.g.pron_agr(entry)
        if isinstance(s, Coord):
            left, la = self.np(s.left)
            coord = self.g.rules["coordination"]
            et = [(coord["fr"], self.w(coord["en"]))]
            right, ra = self.np(s.right)
            return left + et + right, Agr("f" if la.gender == ra.gender == "f" else "m", True, 5)
        return self.np(s)

    def clause(self, c: Clause, gap_agr: Agr | None = None) -> list[Tok]:
        g, r = self.g, self.g.rules
        subj, agr = ([], gap_agr) if c.subj is None else self.subject(c.subj)
        tense = "past" if c.past else "present"
        # English verb group: [do not | freq] verb, or be [not | freq]
        do = neg = freq = None
        if c.verb == "be":
            verb = self.w(r["be_en"][tense][agr.person])
            neg = self.w("not") if c.neg else None
            freq = self.w(c.freq) if c.freq else None
            v = {"aux": None}
        else:
            v = g.verbs[c.verb]
            if c.neg:
                do, neg = self.w(r["do_en"][tense][agr.person]), self.w("not")
                verb = self.w(v["en"][0])
            else:
                freq = self.w(c.freq) if c.freq else None
                verb = self.w(v["en"][2 if c.past else 1 if agr.person == 2 else 0])
        obj: list[Tok] = []
        obj_pron: list[Tok] = []
        before_obj = gap_agr if c.obj_gap else None  # a direct object placed before the verb
        if isinstance(c.obj, Pron):
            entry = g.obj_prons[c.obj.word]
            obj_pron = [(entry["fr"], self.w(c.obj.word))]
            before_obj = g.pron_agr(entry)
        elif c.obj is not None:
            obj, _ = self.np(c.obj)
        pred = [(g.adjs[c.pred]["fr"][agr.form], self.w(c.pred))] if c.pred else []
        manner = [(g.manner[c.manner]["fr"], self.w(c.manner))] if c.manner else []
        adjuncts = self.adjuncts(c)
        # French verb group: ne [se] [le] finite pas|jamais|souvent participle
        never = c.freq is not None and g.freq[c.freq].get("negative", False)
        vg: list[Tok] = []
        if c.neg or never:
            vg.append((r["negation"]["fr"][0], neg if c.neg else freq))
        if v.get("reflexive"):
            vg.append((r["reflexive_pronouns"][agr.person], verb))
        vg += obj_pron
        if c.verb == "be":
            vg.append((r["etre_imparfait" if c.past else "etre"][agr.person], verb))
        elif c.past:
            vg.append((r["avoir" if v["aux"] == "avoir" else "etre"][agr.person], do or verb))
        else:
            vg.append((v["fr_present"][agr.person], verb + (do or ())))
        if c.neg:
            vg.append((r["negation"]["fr"][1], neg))
        elif c.freq:
            vg.append((g.freq[c.freq]["fr"], freq))
        if c.past and c.verb != "be":
            vg.append(
                (participle(v["participle"], agr if v["aux"] == "être" else before_obj), verb)
            )
        return subj + vg + obj + pred + manner + adjuncts

    def adjuncts(self, c: Clause | There) -> list[Tok]:
        """The clause's prepositional phrases, then its time phrase."""
        out: list[Tok] = []
        for pp in c.pps:
            out += self.phrase(pp.prep, self.g.preps[pp.prep]["fr"])
            out += self.np(pp.np)[0]
        return out + self.time(c.time)

    def time(self, time: str | None) -> list[Tok]:
        if not time:
            return []
        t = self.g.time[time]
        return self.phrase(time, t["fr"], t.get("links"))

    def there(self, c: There) -> list[Tok]:
        ex = self.g.rules["existential"]
        there = self.w(ex["en"])
        agr = self.g.np_agr(c.np)
        be = self.w(self.g.rules["be_en"]["past" if c.past else "present"][agr.person])
        toks = [(f, there) for f in ex["fr"].split()] + [(ex["verb"][c.past], be)]
        return toks + self.np(c.np)[0] + self.adjuncts(c)

    def weather(self, c: Weather) -> list[Tok]:
        it = self.g.rules["impersonal"]
        if c.contracted:  # it's: one English word for il and the finite verb
            subj = be = self.w(it["contracted"])
        else:
            subj = self.w(it["en"])
            be = self.w(self.g.rules["be_en"]["past" if c.past else "present"][2])
        entry = self.g.weather[c.verb]
        toks = [(it["fr"], subj), (entry["fr"][c.past], tuple(sorted({*be, *self.w(c.verb)})))]
        if c.idiom:
            toks += self.phrase(entry["idiom"]["en"], entry["idiom"]["fr"])
        return toks + self.time(c.time)

    def greeting(self, c: Greeting) -> list[Tok]:
        hello = self.g.greetings[c.word]
        toks = self.phrase(c.word, hello["fr"], hello.get("links"))
        if isinstance(c.to, NP):
            toks += self.np(c.to)[0]
        elif c.to:
            to = self.g.addressees[c.to]
            toks += self.phrase(c.to, to["fr"], to.get("links"))
        return toks

    def unit(self, c: Unit) -> list[Tok]:
        if isinstance(c, There):
            return self.there(c)
        if isinstance(c, Weather):
            return self.weather(c)
        if isinstance(c, Greeting):
            return self.greeting(c)
        return self.clause(c)

    def sentence(self, s: Sentence) -> list[Tok]:
        toks = self.unit(s.clauses[0])
        for conj, c in zip(s.conjs, s.clauses[1:], strict=True):
            toks += self.phrase(conj, self.g.conjs[conj]["fr"])
            toks += self.unit(c)
        return toks


def participle(base: str, agr: Agr | None) -> str:
    """vu -> vu/vue/vus/vues; assis -> assis/assise/assis/assises."""
    if agr is None:
        return base
    fem = "e" if agr.gender == "f" else ""
    plural = "s" if agr.plural and not (base.endswith("s") and not fem) else ""
    return base + fem + plural


def _finish_french(toks: list[Tok], g: Grammar) -> list[Tok]:
    """Contractions (à le → au), elision (je ai → j'ai, merged into one word) and forms before
    a vowel (ce → cet, ma → mon); merged words align to the union of their parts."""
    elision, before_vowel, vowels = g.rules["elision"], g.rules["before_vowel"], g.vowels
    contractions, contracting = g.rules["contractions"], g.contracting
    toks = list(toks)
    n = len(toks)
    out: list[Tok] = []
    k = 0
    while k < n:
        text, src = toks[k]
        nxt = toks[k + 1][0] if k + 1 < n else " "
        if text in contracting:
            pair = f"{text} {nxt}"
            after = toks[k + 2][0] if k + 2 < n else " "
            if pair in contractions and not (nxt in elision and after[0] in vowels):
                out.append((contractions[pair], src + toks[k + 1][1]))
                k += 2
                continue
        if nxt[0] in vowels:
            if text in elision:
                toks[k + 1] = (elision[text] + nxt, src + toks[k + 1][1])
                k += 1
                continue
            text = before_vowel.get(text, text)
        out.append((text, src))
        k += 1
    return out


def _finish(real: _Realiser, toks: list[Tok]) -> tuple[list[str], list[str], Alignment]:
    fr = _finish_french(toks, real.g)
    en = real.en
    for k in range(len(en) - 1):
        if en[k] == "a" and en[k + 1][0] in "aeiou":
            en[k] = "an"
    alignment = sorted({(i, j) for j, (_, src) in enumerate(fr) for i in src})
    return en, [w for w, _ in fr], alignment


def realise(tree: Sentence, g: Grammar | None = None) -> tuple[list[str], list[str], Alignment]:
    """(English words, French words, alignment) for a parse tree."""
    real = _Realiser(g or load_grammar())
    return _finish(real, real.sentence(tree))


def _valid(c: Clause, g: Grammar) -> bool:
    """No reflexive object pronouns: 'i saw me' would need 'je me suis vu'."""
    if isinstance(c.subj, Pron) and isinstance(c.obj, Pron):
        person = g.subj_prons[c.subj.word]["person"]
        return not (person in (0, 1, 3) and person == g.obj_prons[c.obj.word]["person"])
    return True
