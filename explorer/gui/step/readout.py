"""What the step-through views write, worked out without a window: the top-k bars at a display
scale, the token-level difference between a forced decode and the original, each family's score
formula, and the marks on source words outside the model's world."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

LOG_FLOOR = -20.0  # nats: the left end of the log-probability scale (p ≈ 2·10⁻⁹)


def at_temperature(logprobs: np.ndarray, temperature: float) -> np.ndarray:
    """log p^(1/T) / Σ p^(1/T): the distribution a display temperature T shows (T = 1: as is)."""
    if not temperature > 0:
        raise ValueError(f"display temperature must be above 0, got {temperature}")
    z = np.asarray(logprobs, dtype=np.float64) / temperature
    finite = z[np.isfinite(z)]
    top = finite.max() if finite.size else 0.0
    return z - (top + np.log(np.exp(z - top).sum()))


@dataclass(frozen=True)
class TopKDisplay:
    """The bars of a top-k view: where each starts, how long it is, its number and the axis."""

    start: tuple[float, ...]
    length: tuple[float, ...]
    numbers: tuple[str, ...]  # "0.93" or "−0.07", written beside the piece
    x_range: tuple[float, float]
    title: str


def topk_display(
    logprobs: np.ndarray, ids: Sequence[int], temperature: float = 1.0, log_scale: bool = False
) -> TopKDisplay:
    """The candidates ``ids`` of one step as bars: p, or log p from :data:`LOG_FLOOR` up to it,
    of the distribution at display temperature ``temperature`` (the decode's own is unchanged)."""
    shown = at_temperature(logprobs, temperature)[list(ids)]
    at = "" if temperature == 1.0 else f" at display T = {temperature:g}"
    if log_scale:
        lp = np.maximum(shown, LOG_FLOOR)
        numbers = tuple(f"{x:.2f}".replace("-", "−") for x in shown)
        return TopKDisplay(
            (LOG_FLOOR,) * len(ids),
            tuple(float(x - LOG_FLOOR) for x in lp),
            numbers,
            (LOG_FLOOR, 0.0),
            f"Next token log p(y_t){at}",
        )
    p = np.exp(shown)
    return TopKDisplay(
        (0.0,) * len(ids),
        tuple(float(x) for x in p),
        tuple(f"{x:.2f}" for x in p),
        (0.0, 1.0),
        f"Next token p(y_t){at}",
    )


# The current step's piece: dark text on its light background in either theme.
CURRENT = "<span style='background:#f6c0c0; color:#1c1c1c'><b>{}</b></span>"
DIFFERS = "<u style='color:#d02020'>{}</u>"  # a piece the other decode does not have there


def words_html(
    parts: Sequence[tuple[str, str]], current: int | None, differs: Sequence[bool] = ()
) -> str:
    """A decode's text: ``parts`` (the space before it, the escaped piece) per token, the
    ``current`` token highlighted, tokens flagged in ``differs`` (``differing``) marked."""
    return "".join(
        space
        + (
            CURRENT if i == current else DIFFERS if i < len(differs) and differs[i] else "{}"
        ).format(text)
        for i, (space, text) in enumerate(parts)
    )


# Which decoder state each family scores the encoder states with.
SCORES_WITH = {
    "bahdanau": (
        "s_{t−1}",
        "e_ti = v · tanh(W_s s_{t−1} + W_h h_i): the state before this step's RNN update",
    ),
    "luong-dot": ("s_t", "e_ti = s_t · h_i: the state this step's RNN update just computed"),
    "luong-general": (
        "s_t",
        "e_ti = s_t · (W h_i): the state this step's RNN update just computed",
    ),
    "transformer": ("q_t", "e_ti = q_t · k_i / √d: q_t = W^Q x_t, k_i = W^K h_i"),
}


def score_formula(arch: str) -> str:
    """The score e_ti of ``arch``'s attention, saying which decoder state it uses."""
    known = SCORES_WITH.get(arch)
    return known[1] if known else "e_ti = score(s, h_i) as this model computes it"


def where(arch: str, layer: int, layers: int, head: int | None, heads: int) -> str:
    """Which layer and head a Transformer view shows ("" for an RNN with one of each)."""
    if arch != "transformer":
        return ""
    which = "mean of heads" if head is None else f"head {head + 1}"
    return f"layer {layer % layers + 1}, {which}"


def head_average_lines(alpha: np.ndarray, labels: Sequence[str], digits: int = 3) -> list[str]:
    """The weights the bars show for the average over heads, worked out from each head's own:
    ``alpha`` (H, S), one softmax per head; α_i = (1/H) Σ_h α_hi."""
    alpha = np.asarray(alpha, dtype=np.float64)
    H = alpha.shape[0]

    def row(a: np.ndarray) -> str:
        return "  ".join(f"{x:.{digits}f}" for x in a)

    out = [f"The bars show the average of {H} heads: α_i = (1/{H}) Σ_h α_hi"]
    out.append("  " + "  ".join(f"{str(p)[:6]:>{digits + 2}}" for p in labels))
    out += [f"  {row(alpha[h])}   head {h + 1}" for h in range(H)]
    out.append(f"  {row(alpha.mean(axis=0))}   average (as the bars)")
    return out


UNSEEN_MARK, UNK_MARK = "*", "?"
MARK_NOTE = {"unseen": f"{UNSEEN_MARK} never seen in training", "unk": f"{UNK_MARK} became <unk>"}


def source_marks(entry: Any, trace: Any) -> tuple[str, ...] | None:
    """One mark per source token of ``trace`` ("unseen", "unk" or ""), from ``entry``'s input
    policy; None when its tokenizer cannot say which word a piece is of, or when the sentence
    reads to other ids than the trace's (a trace decoded from given ids)."""
    from explorer.seq2seq.data.words import token_marks

    tok = getattr(entry, "tokenizer", None)
    if trace is None or not hasattr(tok, "word_index") or not trace.source:
        return None
    source = entry.encode(trace.source)
    if tuple(source.ids) != tuple(trace.src_tokens):
        return None
    return token_marks(tok, source)


def marked(pieces: Sequence[str], marks: Sequence[str] | None) -> list[str]:
    """Pieces with their mark appended: "station*" never seen, "pizza?" became <unk>."""
    if marks is None or len(marks) != len(pieces):
        return list(pieces)
    sign = {"unseen": UNSEEN_MARK, "unk": UNK_MARK}
    return [p + sign.get(m, "") for p, m in zip(pieces, marks)]


def marks_note(marks: Sequence[str] | None) -> str:
    """ "(* never seen in training, ? became <unk>)" for the marks present, or ""."""
    present = [MARK_NOTE[m] for m in ("unseen", "unk") if marks and m in marks]
    return f"({', '.join(present)})" if present else ""
