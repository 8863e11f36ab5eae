"""BLEU written out step by step, from the n-gram counts to the final number.

sacrebleu's BLEU (13a tokenisation, one reference) computed again in the open, so every number on
the way can be shown: the clipped n-gram matches per order, the precisions p_n, how a zero
precision is smoothed, the geometric mean, the brevity penalty and their product. The arithmetic
follows ``sacrebleu.metrics.bleu.BLEU.compute_bleu``; tests check it against sacrebleu's own
``sentence_bleu`` and ``corpus_bleu`` numbers.

Three ways to score are offered, named by ``Recipe``:

- ``SENTENCE``: sacrebleu's ``sentence_bleu`` (4-grams, "exp" smoothing, effective order);
- ``CORPUS``: sacrebleu's ``corpus_bleu`` (4-grams, "exp" smoothing, counts summed over sentences);
- ``DECK``: the lecture slide's arithmetic: 3-grams, a zero precision replaced by 0.01, no
  tokenisation beyond splitting on spaces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sacrebleu.metrics import BLEU
from sacrebleu.metrics.helpers import extract_all_word_ngrams

DECK_FLOOR = 0.01  # what the lecture slide uses in place of a zero precision
# The BSc deck's BLEU slide: (candidate, reference); BP = e^(1 − 6/4) = 0.61
LECTURE_EXAMPLE = ("Le chat sur tapis", "Le chat est sur le tapis")


class BleuStepsError(ValueError):
    """Inputs that cannot be scored (no sentences, mismatched lists)."""


@dataclass(frozen=True)
class Recipe:
    """How BLEU is computed: the highest n-gram order, the smoothing, the effective order."""

    name: str
    max_order: int = 4
    smoothing: str = "exp"  # "exp" (sacrebleu's default), "floor", "none" or "deck"
    effective_order: bool = False
    tokenize: bool = True  # 13a tokenisation (sacrebleu); False: split on white space
    floor: float = 0.1  # for "floor": a zero precision becomes floor / total


SENTENCE = Recipe("sacrebleu sentence_bleu", effective_order=True)
CORPUS = Recipe("sacrebleu corpus_bleu")
DECK = Recipe("lecture slide (3-grams)", max_order=3, smoothing="deck", tokenize=False)


@dataclass(frozen=True)
class OrderStep:
    """One n-gram order: counts, precision, and the value the geometric mean takes from it."""

    n: int
    matches: int  # clipped: an n-gram counts at most as often as it occurs in the reference
    total: int  # n-grams in the candidate
    matched: tuple[str, ...]  # the matched n-grams (sentence level only)
    missed: tuple[str, ...]  # candidate n-grams without a match (sentence level only)
    precision: float  # matches / total (0 when total is 0)
    used: float | None  # what enters the geometric mean; None: this order is not counted
    note: str  # how ``used`` came about when it is not the plain precision


@dataclass(frozen=True)
class BleuSteps:
    """Every step of one BLEU computation; ``bleu`` is 0–1, ``score`` sacrebleu's 0–100."""

    recipe: Recipe
    hyp_tokens: tuple[str, ...]  # empty for a corpus
    ref_tokens: tuple[str, ...]
    sentences: int
    orders: tuple[OrderStep, ...]
    hyp_len: int  # c
    ref_len: int  # r
    bp: float
    geo_mean: float
    bleu: float
    no_match: bool  # no n-gram of any order matched: BLEU is 0 without smoothing

    @property
    def score(self) -> float:
        return 100.0 * self.bleu

    @property
    def counted(self) -> tuple[OrderStep, ...]:
        return tuple(o for o in self.orders if o.used is not None)

    def lines(self) -> list[str]:
        """The computation in words and numbers, one step a line."""
        return explain(self)


def _tokens(text: str, recipe: Recipe) -> list[str]:
    if recipe.tokenize:
        return BLEU().tokenizer(text.rstrip()).split()
    return text.split()


def _counts(hyp: list[str], ref: list[str], order: int):
    """Per order: (matches, total, matched n-grams, missed n-grams) for one sentence pair."""
    h, _ = extract_all_word_ngrams(" ".join(hyp), 1, order)
    r, _ = extract_all_word_ngrams(" ".join(ref), 1, order)
    out = [[0, 0, [], []] for _ in range(order)]
    for gram, count in h.items():
        row = out[len(gram) - 1]
        clipped = min(count, r.get(gram, 0))
        row[0] += clipped
        row[1] += count
        row[2].extend([" ".join(gram)] * clipped)
        row[3].extend([" ".join(gram)] * (count - clipped))
    return out


def _smooth(recipe: Recipe, total: int, zeros: int) -> tuple[float, str]:
    """The value a zero-match order takes (``zeros``: how many zero orders so far, this one
    included), and how it is written."""
    if recipe.smoothing == "exp":
        return 1.0 / (2**zeros * total), f"0 → exp smoothing: 1/(2^{zeros} · {total})"
    if recipe.smoothing == "floor":
        return recipe.floor / total, f"0 → floor smoothing: {recipe.floor:g}/{total}"
    if recipe.smoothing == "deck":
        return DECK_FLOOR, f"0 → replaced by {DECK_FLOOR:g} (as on the slide)"
    return 0.0, "0, not smoothed: BLEU is 0"


def _orders(recipe: Recipe, stats: list[list], sentence: bool) -> tuple[list[OrderStep], int]:
    """The OrderSteps and the number of orders the geometric mean divides by."""
    steps, zeros, counted, stop = [], 0, recipe.max_order, False
    for n, (m, t, matched, missed) in enumerate(stats, start=1):
        used, note = None, ""
        stop = stop or t == 0  # sacrebleu stops at the first order with no n-gram
        if stop:
            note = "no n-grams this long" + (
                ": order not counted (effective order)" if recipe.effective_order else ": p = 0"
            )
            used = None if recipe.effective_order else 0.0
        elif m == 0:
            zeros += 1
            used, note = _smooth(recipe, t, zeros)
        else:
            used = m / t
        if recipe.effective_order and not stop:
            counted = n
        keep = sentence and len(matched) + len(missed) <= 200
        steps.append(
            OrderStep(
                n, m, t, tuple(matched) if keep else (), tuple(missed) if keep else (),
                m / t if t else 0.0, used, note,
            )
        )  # fmt: skip
    return steps, counted


def _geo_mean(used: list[float], k: int) -> float:
    if any(u <= 0 for u in used):
        return 0.0
    return math.exp(sum(math.log(u) for u in used) / k)


def _steps(
    recipe: Recipe, stats: list[list], c: int, r: int, n_sent: int, hyp=(), ref=()
) -> BleuSteps:
    bp = 1.0 if c >= r else (math.exp(1 - r / c) if c > 0 else 0.0)
    orders, k = _orders(recipe, stats, n_sent == 1)
    used = [o.used for o in orders if o.used is not None][:k]
    no_match = not any(o.matches for o in orders)
    geo = 0.0 if no_match or len(used) < k else _geo_mean(used, k)
    return BleuSteps(
        recipe, tuple(hyp), tuple(ref), n_sent, tuple(orders), c, r, bp, geo, bp * geo, no_match
    )


def sentence_steps(hyp: str, ref: str, recipe: Recipe = SENTENCE) -> BleuSteps:
    """BLEU of one candidate against one reference, every step kept."""
    h, r = _tokens(hyp, recipe), _tokens(ref, recipe)
    stats = _counts(h, r, recipe.max_order)
    return _steps(recipe, stats, len(h), len(r), 1, h, r)


def corpus_steps(hyps: Sequence[str], refs: Sequence[str], recipe: Recipe = CORPUS) -> BleuSteps:
    """Corpus BLEU: n-gram counts and lengths summed over the sentences, then one computation."""
    hyps, refs = list(hyps), list(refs)
    if len(hyps) != len(refs):
        raise BleuStepsError(f"{len(hyps)} candidates but {len(refs)} references")
    if not hyps:
        raise BleuStepsError("no sentences to score")
    total = [[0, 0, [], []] for _ in range(recipe.max_order)]
    c = r = 0
    for hyp, ref in zip(hyps, refs, strict=True):
        h, rt = _tokens(hyp, recipe), _tokens(ref, recipe)
        c, r = c + len(h), r + len(rt)
        for acc, row in zip(total, _counts(h, rt, recipe.max_order), strict=True):
            acc[0] += row[0]
            acc[1] += row[1]
    if len(hyps) == 1:
        return sentence_steps(hyps[0], refs[0], recipe)
    return _steps(recipe, total, c, r, len(hyps))


def _num(x: float) -> str:
    return f"{x:.3f}".replace("-", "−")


def _order_lines(o: OrderStep) -> list[str]:
    head = f"p{o.n} = {o.matches}/{o.total}"
    if o.total:
        head += f" = {_num(o.precision)}"
    if o.note:
        used = "" if o.used is None else f" = {_num(o.used)}"
        head += f"   {o.note}{used}"
    lines = [head]
    if o.matched or o.missed:
        lines.append(f"     matched: {', '.join(o.matched) or '—'}")
        if o.missed:
            lines.append(f"     not in the reference: {', '.join(o.missed)}")
    return lines


def explain(s: BleuSteps) -> list[str]:
    """Each step of ``s`` as a line of text, ending with the final number."""
    rc = s.recipe
    lines = [f"{rc.name}: n-grams up to {rc.max_order}"]
    if s.sentences == 1:
        how = "13a tokens" if rc.tokenize else "words"
        lines.append(f"1. candidate ({how}, c = {s.hyp_len}): {' '.join(s.hyp_tokens)}")
        lines.append(f"   reference ({how}, r = {s.ref_len}): {' '.join(s.ref_tokens)}")
    else:
        lines.append(
            f"1. {s.sentences} sentences: c = {s.hyp_len} candidate and r = {s.ref_len} "
            "reference tokens; n-gram counts summed over the sentences"
        )
    lines.append("2. clipped n-gram precisions p_n = matches / candidate n-grams:")
    lines.extend("   " + line for o in s.orders for line in _order_lines(o))
    k = len(s.counted)
    if s.no_match:
        lines.append("3. no n-gram matches at all: BLEU = 0")
    else:
        used = " × ".join(_num(o.used) for o in s.counted)
        lines.append(f"3. geometric mean = ({used})^(1/{k}) = {_num(s.geo_mean)}")
    if s.hyp_len >= s.ref_len:
        lines.append(f"4. brevity penalty BP = 1 (c = {s.hyp_len} ≥ r = {s.ref_len})")
    else:
        lines.append(
            f"4. brevity penalty BP = exp(1 − r/c) = exp(1 − {s.ref_len}/{s.hyp_len}) = "
            f"{_num(s.bp)}"
        )
    lines.append(
        f"5. BLEU = BP × geometric mean = {_num(s.bp)} × {_num(s.geo_mean)} = {s.bleu:.4f}"
        f"  (reported ×100: {s.score:.1f})"
    )
    return lines


def differences(a: BleuSteps, b: BleuSteps) -> list[str]:
    """Where two computations of the same pair part ways, step by step."""
    out = []
    if a.recipe.max_order != b.recipe.max_order:
        out.append(
            f"{a.recipe.name} averages {len(a.counted)} precisions, "
            f"{b.recipe.name} {len(b.counted)}"
        )
    if (a.hyp_len, a.ref_len) != (b.hyp_len, b.ref_len):
        out.append(
            f"tokens: c = {a.hyp_len}, r = {a.ref_len} against c = {b.hyp_len}, r = {b.ref_len}"
        )
    for oa, ob in zip(a.orders, b.orders, strict=False):
        if oa.used != ob.used:
            va = "not counted" if oa.used is None else _num(oa.used)
            vb = "not counted" if ob.used is None else _num(ob.used)
            why = oa.note or ob.note
            out.append(f"p{oa.n}: {va} against {vb}" + (f" ({why})" if why else ""))
    for o in a.orders[len(b.orders) :] if len(a.orders) > len(b.orders) else ():
        used = "not counted" if o.used is None else _num(o.used)
        out.append(f"p{o.n} = {used} only in {a.recipe.name}")
    if abs(a.bp - b.bp) > 1e-12:
        out.append(f"BP: {_num(a.bp)} against {_num(b.bp)}")
    out.append(
        f"geometric mean {_num(a.geo_mean)} against {_num(b.geo_mean)}: "
        f"BLEU {a.bleu:.4f} against {b.bleu:.4f}"
    )
    return out
