"""Parsing the classroom grammar: an English sentence back to its parse tree, and its French.

``parse`` runs a backtracking recursive descent over the grammar (``classroom_grammar``) and keeps
the first tree whose English realisation gives back the sentence's words; ``translate`` realises
that tree's French with the gold alignment.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from explorer.seq2seq.data.classroom_grammar import (
    NP,
    PP,
    Agr,
    ClassroomError,
    Clause,
    Coord,
    Greeting,
    Pron,
    Sentence,
    There,
    Weather,
    _valid,
    load_grammar,
    normalize,
    realise,
)

if TYPE_CHECKING:  # annotations only
    from explorer.seq2seq.data.classroom_grammar import Alignment, Grammar, Unit

# ----------------------------------------------------------------------------- parsing


class _Parser:
    """Backtracking recursive descent over the grammar; yields (tree, next position)."""

    def __init__(self, g: Grammar, words: list[str]):
        self.g, self.t = g, ["a" if w == "an" else w for w in words]

    def at(self, i: int) -> str | None:
        return self.t[i] if i < len(self.t) else None

    def multi(self, i: int, phrases) -> Iterator[tuple[str, int]]:
        for p in phrases:
            n = len(p.split())
            if " ".join(self.t[i : i + n]) == p:
                yield p, i + n

    def sentences(self) -> Iterator[Sentence]:
        def more(clauses, conjs, i):
            if i == len(self.t):
                yield Sentence(tuple(clauses), tuple(conjs))
            elif self.at(i) in self.g.conjs:
                for c, j in self.clause(i + 1):
                    yield from more([*clauses, c], [*conjs, self.t[i]], j)

        for c, j in self.greeting(0):
            if j == len(self.t):
                yield Sentence((c,))
        for c, j in self.clause(0):
            yield from more([c], [], j)

    def greeting(self, i: int) -> Iterator[tuple[Greeting, int]]:
        for word, j in self.multi(i, self.g.greetings):
            yield Greeting(word), j
            for to, k in self.multi(j, self.g.addressees):
                yield Greeting(word, to), k
            for np, k in self.np(j, rel_ok=False):
                yield Greeting(word, np), k

    def there(self, i: int, rel_ok: bool) -> Iterator[tuple[There, int]]:
        g, be = self.g, self.g.rules["be_en"]
        if self.at(i) != g.rules["existential"]["en"]:
            return
        for np, j in self.np(i + 2, rel_ok):
            for past in (False, True):
                if self.at(i + 1) == be["past" if past else "present"][g.np_agr(np).person]:
                    for pps, k in self.pps(j, False, 2):
                        yield There(np, past, pps), k
                        yield from ((There(np, past, pps, t), m) for t, m in self.multi(k, g.time))

    def weather(self, i: int) -> Iterator[tuple[Weather, int]]:
        g, it, be = self.g, self.g.rules["impersonal"], self.g.rules["be_en"]
        if self.at(i) == it["contracted"]:
            forms = [(False, True, i + 1)]
        elif self.at(i) == it["en"]:
            forms = [
                (past, False, i + 2)
                for past in (False, True)
                if self.at(i + 1) == be["past" if past else "present"][2]
            ]
        else:
            return
        for past, contracted, j in forms:
            entry = g.weather.get(self.at(j))
            if entry is None:
                continue
            ends = [(False, j + 1)]
            if "idiom" in entry:
                ends += [(True, k) for _, k in self.multi(j + 1, [entry["idiom"]["en"]])]
            for idiom, k in ends:
                c = Weather(entry["en"], past, contracted, idiom)
                yield c, k
                yield from ((replace(c, time=t), m) for t, m in self.multi(k, g.time))

    def np(self, i: int, rel_ok: bool) -> Iterator[tuple[NP, int]]:
        g, det = self.g, self.at(i)
        if det not in g.dets and det not in g.numbers:
            return
        j = i + 1
        pre = post = None
        if self.at(j) in g.adjs and g.adjs[self.at(j)]["position"] == "before":
            pre, j = self.at(j), j + 1
        if self.at(j) in g.adjs and g.adjs[self.at(j)]["position"] == "after":
            post, j = self.at(j), j + 1
        if self.at(j) not in g.noun_forms:
            return
        noun, plural = g.noun_forms[self.t[j]]
        if g.number(det) != "any" and (g.number(det) == "pl") != plural:
            return
        np = NP(det, noun, plural, pre, post)
        if rel_ok and self.at(j + 1) == g.rules["relative"]["en"]:
            agr = g.np_agr(np)
            for c, k in self.clause(j + 2, "subj", agr, rel_ok=False):
                yield replace(np, rel=c), k
            for c, k in self.clause(j + 2, "obj", agr, rel_ok=False):
                yield replace(np, rel=c), k
        yield np, j + 1

    def subjects(self, i: int, rel_ok: bool):
        g, w = self.g, self.at(i)
        if w in g.subj_prons:
            yield Pron(w), g.pron_agr(g.subj_prons[w]), i + 1
        for left, j in self.np(i, rel_ok=False):
            if self.at(j) == g.rules["coordination"]["en"]:
                for right, k in self.np(j + 1, rel_ok=False):
                    yield Coord(left, right), Agr("m", True, 5), k
        for np, j in self.np(i, rel_ok):
            yield np, g.np_agr(np), j

    def clause(self, i, gap=None, gap_agr=None, rel_ok=True) -> Iterator[tuple[Unit, int]]:
        if gap is None:
            yield from self.there(i, rel_ok)
            yield from self.weather(i)
        subjects = [(None, gap_agr, i)] if gap == "subj" else self.subjects(i, rel_ok)
        for subj, agr, j in subjects:
            for head, k in self.verb_group(subj, agr, j):
                yield from self.complements(head, k, gap, rel_ok)

    def verb_group(self, subj, agr: Agr, i: int) -> Iterator[tuple[Clause, int]]:
        g, r, w = self.g, self.g.rules, self.at(i)
        for past, tense in ((False, "present"), (True, "past")):
            if w == r["be_en"][tense][agr.person]:
                j, neg, freq = i + 1, False, None
                if self.at(j) == "not":
                    j, neg = j + 1, True
                elif self.at(j) in g.freq:
                    j, freq = j + 1, self.at(j)
                if self.at(j) in g.adjs:
                    yield Clause(subj, "be", past, neg, freq, pred=self.at(j)), j + 1
            if w == r["do_en"][tense][agr.person] and self.at(i + 1) == "not":
                for verb, k in g.verb_forms.get(self.at(i + 2), []):
                    if k == 0:
                        yield Clause(subj, verb, past, neg=True), i + 3
        freq = w if w in g.freq else None
        j = i + 1 if freq else i
        for verb, k in g.verb_forms.get(self.at(j), []):
            if k == 2 or k == (1 if agr.person == 2 else 0):
                yield Clause(subj, verb, k == 2, freq=freq), j + 1

    def complements(self, c: Clause, i: int, gap, rel_ok) -> Iterator[tuple[Clause, int]]:
        g = self.g
        frames = ["intr"] if c.verb == "be" else g.verbs[c.verb]["frames"]
        if gap == "obj":
            if "tr" in frames:
                yield from self.tail(replace(c, obj_gap=True), i)
            return
        if "tr" in frames:
            if self.at(i) in g.obj_prons:
                with_obj = replace(c, obj=Pron(self.t[i]))
                if _valid(with_obj, g):
                    yield from self.tail(with_obj, i + 1)
            for np, j in self.np(i, rel_ok):
                yield from self.tail(replace(c, obj=np), j)
        if "intr" in frames:
            yield from self.tail(c, i)

    def tail(self, c: Clause, i: int) -> Iterator[tuple[Clause, int]]:
        g = self.g
        manner = self.at(i) if self.at(i) in g.manner and c.verb != "be" else None
        if manner:
            i += 1
        motion = c.verb != "be" and g.verbs[c.verb].get("motion", False)
        for pps, j in self.pps(i, motion, 2):
            yield from (
                (replace(c, manner=manner, pps=pps, time=t), k) for t, k in self.multi(j, g.time)
            )
            yield replace(c, manner=manner, pps=pps), j

    def pps(self, i: int, motion: bool, most: int) -> Iterator[tuple[tuple[PP, ...], int]]:
        if most:
            for prep, j in self.multi(i, self.g.preps):
                if self.g.preps[prep].get("motion") and not motion:
                    continue
                for np, k in self.np(j, rel_ok=False):
                    for rest, m in self.pps(k, motion, most - 1):
                        yield (PP(prep, np), *rest), m
        yield (), i


def parse(english: str | list[str]) -> Sentence:
    """The parse tree of an English sentence of the classroom grammar."""
    g = load_grammar()
    words = normalize(english).split() if isinstance(english, str) else list(english)
    unknown = [(k, w) for k, w in enumerate(words) if w not in g.vocabulary]
    if unknown:
        k, w = unknown[0]
        raise ClassroomError(f"unknown word {w!r} (word {k + 1}); the classroom has no such word")
    for tree in _Parser(g, words).sentences():
        if realise(tree, g)[0] == words:
            return tree
    raise ClassroomError(f"{' '.join(words)!r} is not a sentence of the classroom grammar")


def translate(english: str | list[str]) -> tuple[str, Alignment]:
    """(French, gold alignment) for an English sentence of the classroom grammar."""
    _, fr, alignment = realise(parse(english))
    return " ".join(fr), alignment
