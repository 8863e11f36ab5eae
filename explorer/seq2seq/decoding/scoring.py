"""How beam and exact search rank finished hypotheses, and the hypothesis record they return.

Notation (decoding.md §1): S(y) = Σ_t log p(y_t | y_<t, x) is the cumulative log-probability, |Y|
the number of emitted tokens (end-of-sentence included), α_ij the attention of target step j on
source word i (last layer, mean over heads). Finished hypotheses are ranked by

- ``none``: S
- ``avg``:  S / |Y|^a
- ``gnmt``: S / ((5 + |Y|) / 6)^a                                   (Wu et al. 2016, §7)

plus, when β ≠ 0, the GNMT coverage penalty β · cp with cp = Σ_i log min(max(Σ_j α_ij, ε), 1),
ε = 1e-6 (the clamp keeps an unattended word from giving -inf).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from explorer.seq2seq.decoding.decode import DecodeError
from explorer.seq2seq.models.base import EOS

if TYPE_CHECKING:
    from explorer.seq2seq.data.tokenizer import TokenizerLike

PENALTIES = ("none", "avg", "gnmt")
COVERAGE_EPS = 1e-6


@dataclass(frozen=True)
class Scorer:
    """The score finished hypotheses are ranked by: S / lp(|Y|) + β · cp."""

    length_penalty: str = "none"
    alpha: float = 0.0
    beta: float = 0.0

    def __post_init__(self) -> None:
        if self.length_penalty not in PENALTIES:
            raise DecodeError(
                f"length_penalty must be one of {', '.join(PENALTIES)}; got {self.length_penalty!r}"
            )
        if not self.beta >= 0:  # the stopping bounds rely on β·cp ≤ 0
            raise DecodeError(f"beta must be >= 0, got {self.beta!r}")

    def lp(self, length: int | np.ndarray) -> float | np.ndarray:
        """The length divisor lp(|Y|)."""
        L = np.asarray(length, dtype=np.float64)
        if self.length_penalty == "avg":
            return L**self.alpha
        if self.length_penalty == "gnmt":
            return ((5.0 + L) / 6.0) ** self.alpha
        return np.ones_like(L)

    def cp(self, coverage: np.ndarray | None) -> float:
        """Σ_i log min(max(coverage_i, ε), 1) over the real source words."""
        if coverage is None:
            return 0.0
        return float(np.log(np.clip(coverage, COVERAGE_EPS, 1.0)).sum())

    def __call__(self, S: float, length: int, coverage: np.ndarray | None) -> float:
        score = S / float(self.lp(length)) if self.length_penalty != "none" else S
        return score + self.beta * self.cp(coverage) if self.beta else score

    @property
    def formula(self) -> str:
        a = f"{self.alpha:g}"
        base = {"none": "S", "avg": f"S/|Y|^{a}", "gnmt": f"S/((5+|Y|)/6)^{a}"}
        text = base[self.length_penalty]
        return text + f" + {self.beta:g}·cp" if self.beta else text

    def bound(self, S_live: float, min_length: int, max_length: int) -> float:
        """The best score any completion of a live hypothesis with score S_live can reach."""
        if self.length_penalty == "none" or S_live == float("-inf"):
            return S_live
        lengths = np.arange(min_length, max(min_length, max_length) + 1)
        return float(np.max(S_live / self.lp(lengths)))  # cp ≤ 0, so 0 bounds it


@dataclass(frozen=True, eq=False)
class Hypothesis:
    tokens: tuple[int, ...]  # emitted tokens, end-of-sentence included when emitted
    pieces: tuple[str, ...]
    text: str
    token_logprobs: np.ndarray  # (T,) one per emitted token
    score: float  # S: their sum
    normalized_score: float  # what the search ranked finished hypotheses by
    formula: str
    attention: np.ndarray | None  # (T, S) last layer, mean over heads

    @property
    def finished(self) -> bool:
        return bool(self.tokens) and self.tokens[-1] == EOS


def make_hypothesis(
    tokenizer: TokenizerLike,
    tokens: Sequence[int],
    logprobs: Sequence[float],
    attention: np.ndarray | None,
    scorer: Scorer,
) -> Hypothesis:
    lps = np.asarray(logprobs, dtype=np.float64)
    S = float(lps.sum())
    coverage = None if attention is None or not scorer.beta else attention.sum(axis=0)
    return Hypothesis(
        tokens=tuple(int(t) for t in tokens),
        pieces=tuple(tokenizer.tgt_pieces(list(tokens))),
        text=tokenizer.decode_tgt(list(tokens)),
        token_logprobs=lps,
        score=S,
        normalized_score=scorer(S, len(lps), coverage),
        formula=scorer.formula,
        attention=attention,
    )
