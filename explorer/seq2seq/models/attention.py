"""Attention score functions, each returning ``(context, weights, scores)`` explicitly.

Notation follows the lectures: query s (the decoder state), keys and values h_i (encoder states),

    e_i = score(s, h_i)          α_i = exp(e_i) / Σ_j exp(e_j)          c = Σ_i α_i h_i

- ``dot``      (Luong):    e_i = s · h_i
- ``general``  (Luong):    e_i = s · (W h_i)
- ``additive`` (Bahdanau): e_i = v · tanh(W_s s + W_h h_i)
- ``scaled dot-product`` (Transformer): e_i = q · k_i / sqrt(d_k)

Nothing is stored on the module: attention weights are returned, so beam search can reorder
hypotheses freely. Keys that do not depend on the query are projected once per sentence
(``project_keys``) and reused at every decoder step.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def masked_softmax(
    scores: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax over the last dimension; masked positions get score -inf and weight 0.

    Returns ``(weights, masked_scores)``. ``mask`` is True at positions that may be attended and
    broadcasts against ``scores``.
    """
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1), scores


class ScoreFunction(nn.Module):
    """Base of the RNN attention modules: ``forward(query, keys, projected, mask)``."""

    name = ""

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """(B, S, D_k) → whatever ``score`` needs from the keys alone; computed once per source."""
        return keys

    def score(self, query: torch.Tensor, projected: torch.Tensor) -> torch.Tensor:
        """(B, D_q), projected keys → (B, S) raw scores e_i."""
        raise NotImplementedError

    def forward(
        self,
        query: torch.Tensor,  # (B, D_q)
        keys: torch.Tensor,  # (B, S, D_k), also the values
        projected: torch.Tensor,  # project_keys(keys)
        mask: torch.Tensor | None,  # (B, S) True at real positions
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        e = self.score(query, projected)  # (B, S)
        alpha, e = masked_softmax(e, mask)  # (B, S)
        context = torch.bmm(alpha.unsqueeze(1), keys).squeeze(1)  # (B, D_k)
        return context, alpha, e


class DotScore(ScoreFunction):
    """Luong dot: e_i = s · h_i. Needs D_q == D_k."""

    name = "dot"

    def __init__(self, query_dim: int, key_dim: int):
        super().__init__()
        if query_dim != key_dim:
            raise ValueError(
                f"dot attention needs equal query and key sizes, got {query_dim} and {key_dim}"
            )

    def score(self, query: torch.Tensor, projected: torch.Tensor) -> torch.Tensor:
        return torch.bmm(projected, query.unsqueeze(2)).squeeze(2)


class GeneralScore(ScoreFunction):
    """Luong general: e_i = s · (W h_i), with W of shape (D_q, D_k)."""

    name = "general"

    def __init__(self, query_dim: int, key_dim: int):
        super().__init__()
        self.W = nn.Linear(key_dim, query_dim, bias=False)

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        return self.W(keys)  # (B, S, D_q)

    def score(self, query: torch.Tensor, projected: torch.Tensor) -> torch.Tensor:
        return torch.bmm(projected, query.unsqueeze(2)).squeeze(2)


class AdditiveScore(ScoreFunction):
    """Bahdanau additive: e_i = v · tanh(W_s s + W_h h_i)."""

    name = "additive"

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int | None = None):
        super().__init__()
        attn_dim = attn_dim or query_dim
        self.W_s = nn.Linear(query_dim, attn_dim, bias=False)
        self.W_h = nn.Linear(key_dim, attn_dim, bias=True)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        return self.W_h(keys)  # (B, S, A)

    def score(self, query: torch.Tensor, projected: torch.Tensor) -> torch.Tensor:
        return self.v(torch.tanh(projected + self.W_s(query).unsqueeze(1))).squeeze(2)


SCORE_FUNCTIONS: dict[str, type[ScoreFunction]] = {
    "dot": DotScore,
    "general": GeneralScore,
    "additive": AdditiveScore,
}


HALF = (torch.bfloat16, torch.float16)  # the 16-bit types of mixed precision


def scaled_dot_product(
    q: torch.Tensor,  # (B, H, T_q, d_k)
    k: torch.Tensor,  # (B, H, T_k, d_k)
    v: torch.Tensor,  # (B, H, T_k, d_v)
    mask: torch.Tensor | None,  # broadcastable to (B, H, T_q, T_k), True where allowed
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """softmax(Q Kᵀ / sqrt(d_k)) V. Returns (output (B,H,T_q,d_v), weights, scores). In 16-bit
    types (mixed-precision training) the softmax, weights and scores are float32."""
    e = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    alpha, e = masked_softmax(e.float() if e.dtype in HALF else e, mask)
    return torch.matmul(alpha.to(v.dtype), v), alpha, e


def fused_scaled_dot_product(
    q: torch.Tensor,  # (B, H, T_q, d_k)
    k: torch.Tensor,  # (B, H, T_k, d_k)
    v: torch.Tensor,  # (B, H, T_k, d_v)
    mask: torch.Tensor | None,  # broadcastable to (B, H, T_q, T_k), True where allowed
) -> torch.Tensor:
    """The output of :func:`scaled_dot_product` alone, from torch's fused
    ``scaled_dot_product_attention``: the weights are never formed, which saves their memory and
    time when only the output is needed (a training step's loss). No dropout on the weights, as
    in :func:`scaled_dot_product`.

    On a CPU in bfloat16 (mixed-precision training) the products run in bfloat16 and the
    softmax in float32 instead: there torch's fused kernel is four times slower in bfloat16 than
    in float32 at a classroom Transformer's sizes (64 × 4 heads × 14 × 64, forward and backward:
    22 ms against 5 ms on one core), these explicit products about as fast as float32's kernel."""
    if q.device.type == "cpu" and q.dtype in HALF:
        return scaled_dot_product(q, k, v, mask)[0]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
