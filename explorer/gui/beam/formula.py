"""The score beam search ranks hypotheses by, written out with numbers.

No Qt here. The numbers come from :class:`explorer.seq2seq.decoding.beam.Scorer`, the one
definition of the scoring the search itself uses; this module only writes each term out, so the
readout can be checked against ``BeamNode.normalized_score``:

    S       = Σ_t log p(y_t | y_<t, x)                      (end-of-sentence included)
    none:   s = S
    avg:    lp = L^α                         s = S / lp
    gnmt:   lp = ((5 + L) / 6)^α             s = S / lp      (Wu et al. 2016, Section 7)
    cp      = Σ_i log min(Σ_j α_ij, 1)       s = S / lp + β·cp   when β > 0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from explorer.seq2seq.decoding.beam import Scorer


class FormulaError(ValueError):
    """Unknown length penalty name, or a coverage penalty asked for without attention."""


@dataclass(frozen=True)
class ScoreBreakdown:
    S: float  # sum of token log-probabilities
    L: int  # number of target tokens (end-of-sentence included)
    lp: float  # length penalty divisor (1 for none)
    cp: float  # the coverage term β·cp added to S / lp (0 when β = 0)
    score: float  # S / lp + β·cp, as Scorer computes it
    text: str  # the formula with its numbers, one line per term


def _num(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}".replace("-", "−")


def scorer_of(penalty: str, alpha: float, beta: float) -> Scorer:
    try:
        return Scorer(penalty, float(alpha), float(beta))
    except ValueError as e:
        raise FormulaError(f"beam score formula: {e}") from None


def score_breakdown(
    token_logprobs: np.ndarray,
    penalty: str = "none",
    alpha: float = 0.0,
    beta: float = 0.0,
    attention: np.ndarray | None = None,
) -> ScoreBreakdown:
    """A hypothesis's normalised score from its token log-probabilities (and (T, S) attention)."""
    scorer = scorer_of(penalty, alpha, beta)
    logp = np.asarray(token_logprobs, dtype=np.float64)
    S, L = float(logp.sum()), int(logp.shape[0])
    lp = float(scorer.lp(L))
    coverage = None
    if scorer.beta:
        if attention is None:
            raise FormulaError("coverage penalty β > 0 needs the hypothesis's attention matrix")
        coverage = np.asarray(attention, dtype=np.float64).sum(axis=0)  # (S,) Σ_j α_ij
    score = scorer(S, L, coverage)
    lines = [f"s = {scorer.formula}", f"S = Σ log p = {_num(S)}  (L = |Y| = {L} tokens)"]
    if penalty == "none":
        lines.append(f"no length normalisation: S/lp = S = {_num(S)}")
    elif penalty == "avg":
        lines.append(f"lp = L^α = {L}^{alpha:g} = {_num(lp)};  S/lp = {_num(S / lp)}")
    else:
        lines.append(
            f"lp = ((5+L)/6)^α = ((5+{L})/6)^{alpha:g} = {_num(lp)};  S/lp = {_num(S / lp)}"
        )
    cp = 0.0
    if coverage is not None:
        raw = scorer.cp(coverage)
        cp = scorer.beta * raw
        lines.append(
            f"cp = Σᵢ log min(Σⱼ αᵢⱼ, 1) = {_num(raw)};  β·cp = {beta:g}·{_num(raw)} = {_num(cp)};"
            f"  S/lp + β·cp = {_num(score)}"
        )
    return ScoreBreakdown(S=S, L=L, lp=lp, cp=cp, score=score, text="\n".join(lines))


def settings_of(tree_settings: dict) -> tuple[str, float, float]:
    """(penalty, α, β) from a BeamTree's settings dict."""
    penalty = str(tree_settings.get("length_penalty", "none") or "none")
    alpha, beta = float(tree_settings.get("alpha", 0.0)), float(tree_settings.get("beta", 0.0))
    try:
        scorer_of(penalty, alpha, beta)
    except FormulaError as e:
        raise FormulaError(f"BeamTree.settings: {e}") from None
    return penalty, alpha, beta


def agrees(recomputed: float, stored: float, tol: float = 1e-4) -> bool:
    return math.isclose(recomputed, stored, rel_tol=tol, abs_tol=tol)
