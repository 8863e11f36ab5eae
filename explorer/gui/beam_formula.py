"""The score beam search ranks finished hypotheses by, recomputed and written out with numbers.

No Qt here: the readout is a pure function of the stored per-token log-probabilities (and, for the
coverage penalty, the attention matrix), so it can be checked against ``BeamNode.normalized_score``.

    S       = Σ_t log p(y_t | y_<t, x)                      (end-of-sentence included)
    none:   s = S
    avg:    lp = L^α                         s = S / lp
    gnmt:   lp = ((5 + L) / 6)^α             s = S / lp      (Wu et al. 2016, Section 7)
    cp      = β Σ_i log min(Σ_j α_ij, 1)     added when β > 0 (column sums of the attention)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PENALTIES = ("none", "avg", "gnmt")


class FormulaError(ValueError):
    """Unknown length penalty name, or a coverage penalty asked for without attention."""


@dataclass(frozen=True)
class ScoreBreakdown:
    S: float  # sum of token log-probabilities
    L: int  # number of target tokens (end-of-sentence included)
    lp: float  # length penalty divisor (1 for none)
    cp: float  # coverage penalty (0 when β = 0)
    score: float  # S / lp + cp
    text: str  # the formula with its numbers, one line per term


def _num(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}".replace("-", "−")


def length_penalty(L: int, penalty: str, alpha: float) -> float:
    if penalty == "none":
        return 1.0
    if penalty == "avg":
        return float(L) ** alpha
    if penalty == "gnmt":
        return ((5.0 + L) / 6.0) ** alpha
    raise FormulaError(f"length penalty {penalty!r}: expected one of {', '.join(PENALTIES)}")


def coverage_penalty(attention: np.ndarray, beta: float) -> float:
    """β Σ_i log min(Σ_j α_ij, 1) over source positions i; attention is (T, S)."""
    coverage = np.minimum(np.asarray(attention, dtype=np.float64).sum(axis=0), 1.0)  # (S,)
    return float(beta * np.log(np.maximum(coverage, 1e-12)).sum())


def score_breakdown(
    token_logprobs: np.ndarray,
    penalty: str = "none",
    alpha: float = 0.0,
    beta: float = 0.0,
    attention: np.ndarray | None = None,
) -> ScoreBreakdown:
    """Recompute a hypothesis's normalised score from its token log-probabilities."""
    logp = np.asarray(token_logprobs, dtype=np.float64)
    S = float(logp.sum())
    L = int(logp.shape[0])
    lp = length_penalty(L, penalty, alpha)
    lines = [f"S = Σ log p = {_num(S)}  (L = {L} tokens)"]
    if penalty == "none":
        lines.append(f"no length normalisation: S/lp = S = {_num(S)}")
    elif penalty == "avg":
        lines.append(f"lp = L^α = {L}^{alpha:g} = {_num(lp)};  S/lp = {_num(S / lp)}")
    else:
        lines.append(
            f"lp = ((5+L)/6)^α = ((5+{L})/6)^{alpha:g} = {_num(lp)};  S/lp = {_num(S / lp)}"
        )
    cp = 0.0
    if beta != 0.0:
        if attention is None:
            raise FormulaError("coverage penalty β > 0 needs the hypothesis's attention matrix")
        cp = coverage_penalty(attention, beta)
        lines.append(
            f"cp = β Σᵢ log min(Σⱼ αᵢⱼ, 1) = {beta:g}·{_num(cp / beta)} = {_num(cp)};  "
            f"S/lp + cp = {_num(S / lp + cp)}"
        )
    return ScoreBreakdown(S=S, L=L, lp=lp, cp=cp, score=S / lp + cp, text="\n".join(lines))


def settings_of(tree_settings: dict) -> tuple[str, float, float]:
    """(penalty, α, β) from a BeamTree's settings dict."""
    penalty = str(tree_settings.get("length_penalty", "none") or "none")
    if penalty not in PENALTIES:
        raise FormulaError(
            f"BeamTree.settings['length_penalty'] = {penalty!r}: expected one of "
            f"{', '.join(PENALTIES)}"
        )
    return penalty, float(tree_settings.get("alpha", 0.0)), float(tree_settings.get("beta", 0.0))


def agrees(recomputed: float, stored: float, tol: float = 1e-4) -> bool:
    return math.isclose(recomputed, stored, rel_tol=tol, abs_tol=tol)
