"""Worked attention arithmetic: the lectures' three stages with the numbers written out.

    ① score:        e_i = score(s, h_i)
    ② normalise:    α_i = exp(e_i) / Σ_j exp(e_j)
    ③ weighted sum: c = Σ_i α_i h_i

(Numbered ①②③, not "step", which names a decoding step: "Step 3: writing noir".)

Each function returns a :class:`WorkedAttention`: the scores with every product's terms, the
exponentials, their sum, the weights and the context, plus :meth:`WorkedAttention.lines` for
display. ``from_record`` does the same from the numbers a model recorded (a ``DecodeStep``'s
scores and the trace's encoder states) when the score's internals were not recorded.
:func:`bottleneck` is the lectures' count for a model without attention. Numpy only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np

FAMILIES = ("dot", "general", "additive", "scaled-dot")


class ArithmeticInputError(ValueError):
    """A vector or matrix given to the worked arithmetic has the wrong shape or is not numbers."""


@dataclass(frozen=True)
class WorkedAttention:
    """One attention computation, every intermediate number kept."""

    family: str  # dot | general | additive | scaled-dot | recorded
    query: np.ndarray | None  # (D_q,) s, or None when the query was not recorded
    keys: np.ndarray | None  # (S, D_v) the values summed in step 3 (h_i, or a head's v_i)
    projected: np.ndarray | None  # (S, D_q) W h_i (general) or tanh(W_s s + W_h h_i) (additive)
    terms: np.ndarray | None  # (S, D) the products summed into each score e_i
    scale: float  # e_i = (Σ terms) / scale; sqrt(d_k) for scaled dot-product, else 1
    scores: np.ndarray  # (S,) e_i
    shift: float  # subtracted from every e_i before exp (0 unless the scores are large)
    exps: np.ndarray  # (S,) exp(e_i - shift)
    total: float  # Σ_j exp(e_j - shift)
    alpha: np.ndarray  # (S,) softmax weights
    context: np.ndarray | None  # (D_k,) Σ_i α_i h_i, None when keys are unknown
    recorded_context: np.ndarray | None = None  # the model's own c, to compare with
    recorded_scores: np.ndarray | None = None  # the model's own e_i, when these were recomputed
    keys_scored: np.ndarray | None = None  # (S, D_q) k_i, when they are not the values

    @property
    def score_error(self) -> float | None:
        """max |e_i worked out here − e_i the model recorded| over the finite scores."""
        if self.recorded_scores is None or self.recorded_scores.shape != self.scores.shape:
            return None
        ok = np.isfinite(self.recorded_scores)
        if not ok.any():
            return None
        return float(np.max(np.abs(self.scores[ok] - self.recorded_scores[ok])))

    @property
    def context_error(self) -> float | None:
        """max |Σ α_i h_i − recorded c|, or None when there is nothing to compare."""
        if self.context is None or self.recorded_context is None:
            return None
        if self.context.shape != self.recorded_context.shape:
            return None
        return float(np.max(np.abs(self.context - self.recorded_context)))

    @property
    def best(self) -> int:
        return int(np.argmax(self.alpha))

    def lines(
        self, focus: int | None = None, labels: list[str] | None = None, digits: int = 3
    ) -> list[str]:
        """Text lines of the three steps; ``focus``: the source position written out in full."""
        S = self.scores.shape[0]
        focus = self.best if focus is None else int(focus)
        names = (
            labels if labels is not None and len(labels) == S else [str(i + 1) for i in range(S)]
        )
        fmt = _Numbers(digits)
        out = self._score_lines(focus, names, fmt) + self._softmax_lines(focus, fmt)
        return out + self._sum_lines(fmt)

    def _score_lines(self, focus: int, names: list[str], fmt: _Numbers) -> list[str]:
        f, vec = fmt.f, fmt.vec
        q_name, k_name = ("q", "k") if self.family == "scaled-dot" else ("s", "h")
        out = [f"① score ({self.family}):"]
        if self.query is not None:
            out.append(f"  {q_name} = {vec(self.query)}   ({self.query.shape[0]} numbers)")
        keys = self.keys if self.keys_scored is None else self.keys_scored
        if keys is not None:
            out.append(f"  {k_name}_{focus + 1} ({names[focus]}) = {vec(keys[focus])}")
        out.append(f"  {SCORE_FORMULAS[self.family]}")
        for i in range(self.scores.shape[0]):
            mark = "▶" if i == focus else " "
            line = f" {mark}e_{i + 1} ({names[i]}) = "
            if self.terms is not None and i == focus:
                t = self.terms[i]
                parts = " + ".join(f(x) for x in t[:4]) + (" + …" if t.shape[0] > 4 else "")
                line += f"{parts}"
                if self.scale != 1.0:
                    line += f"  ÷ {f(self.scale)}"
                line += " = "
            out.append(line + f(float(self.scores[i])))
        err = self.score_error
        if err is not None:
            verdict = (
                "as the model computed them" if err < 1e-3 else "NOT as the model computed them"
            )
            out.append(f"  {verdict} (max difference {err:.1e})")
        return out

    def _softmax_lines(self, focus: int, fmt: _Numbers) -> list[str]:
        f = fmt.f
        shift = f" − {f(self.shift)}" if self.shift else ""
        out = [f"② softmax: α_i = exp(e_i{shift}) / Σ_j exp(e_j{shift})"]
        out.append(
            "  exp: " + ", ".join(f(float(x)) for x in self.exps) + f"   Σ = {f(self.total)}"
        )
        for i in range(self.scores.shape[0]):
            mark = "▶" if i == focus else " "
            out.append(
                f" {mark}α_{i + 1} = {f(float(self.exps[i]))} / {f(self.total)}"
                f" = {f(float(self.alpha[i]))}"
            )
        return out

    def _sum_lines(self, fmt: _Numbers) -> list[str]:
        f, qk = fmt.f, self.family == "scaled-dot"
        v_name, S = ("v" if qk else "h"), self.scores.shape[0]
        if self.context is None:
            return ["③ weighted sum: the values were not recorded for this family"]
        out = [f"③ weighted sum: c = Σ_i α_i {v_name}_i"]
        top = np.argsort(-self.alpha, kind="stable")[: min(3, S)]
        parts = " + ".join(f"{f(float(self.alpha[i]))}·{v_name}_{i + 1}" for i in top)
        more = " + …" if S > len(top) else ""
        out.append(f"  c = {parts}{more}")
        out.append(f"    = {fmt.vec(self.context)}   ({self.context.shape[0]} numbers)")
        if qk:
            out.append("  (this head's share; W^O joins the heads into the layer's c_t)")
        err = self.context_error
        if err is not None:
            verdict = "matches" if err < 1e-4 else "differs from"
            out.append(f"  {verdict} the model's recorded c_t (max difference {err:.1e})")
        return out


SCORE_FORMULAS = {
    "dot": "e_i = s · h_i",
    "general": "e_i = s · (W h_i)",
    "additive": "e_i = v · tanh(W_s s + W_h h_i)",
    "scaled-dot": "e_i = q · k_i / √d_k",
    "recorded": "e_i as the model computed it",
}


@dataclass(frozen=True)
class _Numbers:
    """How the worked arithmetic writes numbers: fixed digits, a real minus sign, −∞."""

    digits: int

    def f(self, x: float) -> str:
        return "−∞" if x == -math.inf else f"{x:.{self.digits}f}".replace("-", "−")

    def vec(self, v: np.ndarray, n: int = 6) -> str:
        shown = ", ".join(self.f(x) for x in v[:n])
        return f"[{shown}{', …' if v.shape[0] > n else ''}]"


def _vector(x, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or a.shape[0] == 0:
        raise ArithmeticInputError(f"{what}: expected a vector of numbers, got shape {a.shape}")
    return a


def _matrix(x, what: str, cols: int | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0:
        raise ArithmeticInputError(
            f"{what}: expected a matrix (rows of numbers), got shape {a.shape}"
        )
    if cols is not None and a.shape[1] != cols:
        raise ArithmeticInputError(f"{what}: rows must have {cols} numbers, got {a.shape[1]}")
    return a


def softmax_parts(e: np.ndarray) -> tuple[float, np.ndarray, float, np.ndarray]:
    """(shift, exp(e - shift), Σ, α). The shift is 0 unless exp would overflow or vanish."""
    e = np.asarray(e, dtype=np.float64)
    finite = e[np.isfinite(e)]
    if finite.size == 0:
        raise ArithmeticInputError("scores: no finite score to normalise")
    m = float(finite.max())
    shift = m if abs(m) > 30.0 else 0.0
    exps = np.exp(e - shift)
    total = float(exps.sum())
    return shift, exps, total, exps / total


def _worked(family, query, keys, projected, terms, scale, scores, recorded_context=None):
    shift, exps, total, alpha = softmax_parts(scores)
    context = None if keys is None else alpha @ keys  # (D_k,)
    return WorkedAttention(
        family=family,
        query=query,
        keys=keys,
        projected=projected,
        terms=terms,
        scale=scale,
        scores=np.asarray(scores, dtype=np.float64),
        shift=shift,
        exps=exps,
        total=total,
        alpha=alpha,
        context=context,
        recorded_context=recorded_context,
    )


def dot_attention(s, h) -> WorkedAttention:
    """Luong dot: e_i = s · h_i. ``s`` (D,), ``h`` (S, D)."""
    s = _vector(s, "s")
    h = _matrix(h, "h", s.shape[0])
    terms = h * s  # (S, D)
    return _worked("dot", s, h, None, terms, 1.0, terms.sum(axis=1))


def general_attention(s, h, W) -> WorkedAttention:
    """Luong general: e_i = s · (W h_i). ``s`` (D_q,), ``h`` (S, D_k), ``W`` (D_q, D_k)."""
    s = _vector(s, "s")
    h = _matrix(h, "h")
    W = _matrix(W, "W", h.shape[1])
    if W.shape[0] != s.shape[0]:
        raise ArithmeticInputError(f"W: needs {s.shape[0]} rows (the size of s), got {W.shape[0]}")
    Wh = h @ W.T  # (S, D_q)
    terms = Wh * s
    return _worked("general", s, h, Wh, terms, 1.0, terms.sum(axis=1))


def additive_attention(s, h, W_s, W_h, v, b=None) -> WorkedAttention:
    """Bahdanau: e_i = v · tanh(W_s s + W_h h_i + b). W_s (A, D_q), W_h (A, D_k), v (A,)."""
    s = _vector(s, "s")
    h = _matrix(h, "h")
    W_s = _matrix(W_s, "W_s", s.shape[0])
    W_h = _matrix(W_h, "W_h", h.shape[1])
    v = _vector(v, "v")
    A = v.shape[0]
    if W_s.shape[0] != A or W_h.shape[0] != A:
        raise ArithmeticInputError(
            f"W_s and W_h: need {A} rows (the size of v), got {W_s.shape[0]} and {W_h.shape[0]}"
        )
    bias = np.zeros(A) if b is None else _vector(b, "b")
    if bias.shape[0] != A:
        raise ArithmeticInputError(f"b: needs {A} numbers (the size of v), got {bias.shape[0]}")
    u = np.tanh(h @ W_h.T + bias + W_s @ s)  # (S, A)
    terms = u * v
    return _worked("additive", s, h, u, terms, 1.0, terms.sum(axis=1))


def scaled_dot_attention(q, k, values=None) -> WorkedAttention:
    """Transformer: e_i = q · k_i / √d_k; the weighted sum runs over ``values`` (default k)."""
    q = _vector(q, "q")
    k = _matrix(k, "k", q.shape[0])
    scale = math.sqrt(q.shape[0])
    terms = k * q
    worked = _worked("scaled-dot", q, k, None, terms, scale, terms.sum(axis=1) / scale)
    if values is None:
        return worked
    values = _matrix(values, "values")
    if values.shape[0] != k.shape[0]:
        raise ArithmeticInputError(f"values: need {k.shape[0]} rows, got {values.shape[0]}")
    with_values = _worked("scaled-dot", q, values, None, terms, scale, worked.scores)
    return replace(with_values, keys_scored=k)


def attention(family: str, s, h, **weights) -> WorkedAttention:
    """By family name: ``dot``, ``general`` (W), ``additive`` (W_s, W_h, v), ``scaled-dot``."""
    if family == "dot":
        return dot_attention(s, h)
    if family == "general":
        return general_attention(s, h, weights["W"])
    if family == "additive":
        return additive_attention(s, h, weights["W_s"], weights["W_h"], weights["v"])
    if family == "scaled-dot":
        return scaled_dot_attention(s, h)
    raise ArithmeticInputError(f"family: unknown {family!r}; expected one of {', '.join(FAMILIES)}")


def from_record(
    scores, keys=None, recorded_context=None, query=None, family: str = "recorded"
) -> WorkedAttention:
    """Softmax and weighted sum from recorded scores e_i (S,) and encoder states h_i (S, D).

    When ``family`` is ``dot`` and the query is given, the scores are recomputed from s and h_i
    (so the products can be shown) and must agree with the recorded ones.
    """
    e = _vector(scores, "scores")
    h = None if keys is None else _matrix(keys, "encoder states")
    if h is not None and h.shape[0] != e.shape[0]:
        raise ArithmeticInputError(
            f"encoder states: need one row per score ({e.shape[0]}), got {h.shape[0]}"
        )
    rc = None if recorded_context is None else _vector(recorded_context, "recorded context")
    terms, s = None, None
    if family == "dot" and query is not None and h is not None:
        s = _vector(query, "query")
        if s.shape[0] == h.shape[1]:
            terms = h * s
            recomputed = terms.sum(axis=1)
            ok = np.isfinite(e)
            if not np.allclose(recomputed[ok], e[ok], atol=1e-3, rtol=1e-3):
                terms, s, family = None, None, "recorded"
        else:
            s, family = None, "recorded"
    elif family != "dot":
        family = "recorded" if family not in FAMILIES else family
    return _worked(family, s, h, None, terms, 1.0, e, rc)


FAMILY_OF_ARCH = {
    "luong-dot": "dot",
    "luong-general": "general",
    "bahdanau": "additive",
    "transformer": "scaled-dot",
}


def from_step(trace, t: int, layer: int = -1, head: int | None = None, weights=None):
    """The worked arithmetic of step ``t`` of a Trace (None for a model without attention).

    With the query the step recorded, the score function is worked out in full: Luong dot from
    s_t and h_i; Luong general and Bahdanau also need the model's score weights
    (``Seq2Seq.score_weights()``); the Transformer's head ``head`` of layer ``layer`` from its q,
    k_i and v_i (``head`` None: the first head). Each such result carries the recorded scores, so
    ``lines`` says whether it reproduces the model's own. Otherwise (an older trace, weights not
    given) the arithmetic starts from the recorded scores.
    """
    if not trace.has_attention:
        return None
    step = trace.steps[t]
    family = FAMILY_OF_ARCH.get(trace.arch, "recorded")
    h = 0 if head is None else int(head)
    recorded = np.asarray(step.scores[layer, h], dtype=np.float64)
    q = None if step.query is None else step.query[layer, h]
    weights = weights or {}
    states = trace.encoder_states  # (S, D_enc) keys and values of the RNN families
    context = None if family == "scaled-dot" else step.context[-1]
    worked = None
    try:
        if q is not None and family == "scaled-dot" and trace.cross_keys is not None:
            values = None if trace.cross_values is None else trace.cross_values[layer, h]
            worked = scaled_dot_attention(q, trace.cross_keys[layer, h], values)
        elif q is not None and family == "dot":
            worked = dot_attention(q, states)
        elif q is not None and family == "general" and "W" in weights:
            worked = general_attention(q, states, weights["W"])
        elif q is not None and family == "additive" and {"W_s", "W_h", "v"} <= weights.keys():
            worked = additive_attention(
                q, states, weights["W_s"], weights["W_h"], weights["v"], weights.get("b")
            )
    except ArithmeticInputError:
        worked = None  # a record that does not fit the weights: from the scores, below
    if worked is not None:
        return replace(worked, recorded_scores=recorded, recorded_context=context)
    keys = None if family == "scaled-dot" else states
    return from_record(recorded, keys, context, family=family)


@dataclass(frozen=True)
class Bottleneck:
    """The lectures' count: n source tokens × d_embed numbers squeezed into d_hidden."""

    n: int
    d_embed: int
    d_hidden: int

    @property
    def input_numbers(self) -> int:
        return self.n * self.d_embed

    @property
    def ratio(self) -> float:
        return self.input_numbers / self.d_hidden

    def lines(self) -> list[str]:
        return [
            f"Input = n × d_embed = {self.n} × {self.d_embed} = {self.input_numbers} numbers",
            f"Context = d_hidden = {self.d_hidden} numbers",
            f"Ratio = {self.input_numbers} / {self.d_hidden} = {self.ratio:.2f} : 1",
        ]


def bottleneck(n: int, d_embed: int, d_hidden: int) -> Bottleneck:
    for name, x in (("n", n), ("d_embed", d_embed), ("d_hidden", d_hidden)):
        if int(x) != x or x <= 0:
            raise ArithmeticInputError(f"{name}: expected a positive whole number, got {x!r}")
    return Bottleneck(int(n), int(d_embed), int(d_hidden))


_NUMBER = re.compile(r"[-+−]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def parse_vector(text: str, what: str) -> np.ndarray:
    """'0.7, 0.8' or '[0.7 0.8]' → array; a clear error naming ``what`` otherwise."""
    cleaned = text.strip().strip("[]()").replace("−", "-")
    items = [p for p in re.split(r"[,\s]+", cleaned) if p]
    if not items:
        raise ArithmeticInputError(f"{what}: empty; type numbers separated by commas")
    for p in items:
        if not _NUMBER.fullmatch(p):
            raise ArithmeticInputError(f"{what}: {p!r} is not a number")
    return np.array([float(p) for p in items])


def parse_matrix(text: str, what: str) -> np.ndarray:
    """Rows separated by ';' or new lines: '0.1, 0.2; 0.8, 0.9' → (2, 2) array."""
    rows = [r for r in re.split(r"[;\n]+", text) if r.strip()]
    if not rows:
        raise ArithmeticInputError(f"{what}: empty; type rows separated by ';'")
    parsed = [parse_vector(r, f"{what} row {i + 1}") for i, r in enumerate(rows)]
    widths = {p.shape[0] for p in parsed}
    if len(widths) != 1:
        raise ArithmeticInputError(f"{what}: rows have different lengths {sorted(widths)}")
    return np.stack(parsed)
