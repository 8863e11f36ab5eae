"""One training batch: this process's share of it, and the model's logits on it. How a batch
is divided between the processes of a distributed run: :mod:`explorer.seq2seq.training.distributed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn

from explorer.seq2seq.data.corpus import length_batches
from explorer.seq2seq.decoding.decode import pad_sources
from explorer.seq2seq.models.base import BOS, PAD, Seq2Seq
from explorer.seq2seq.training.distributed import Distributed
from explorer.seq2seq.training.flops import Lengths


def scheduled_logits(
    model: Seq2Seq,
    src: torch.Tensor,
    lengths: torch.Tensor,
    tgt_in: torch.Tensor,
    ratio: float,
    keep: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, T, V) logits, or (N, V) where ``keep`` (B, T) is True, where each step's input is the
    gold token with probability ``ratio`` and otherwise the model's own previous prediction
    (scheduled sampling, Bengio et al. 2015). Teacher forcing alone (``ratio`` 1) takes
    ``model.logits``, which forms no attention weights."""
    if ratio >= 1.0:
        return model.logits(src, lengths, tgt_in, keep)
    memory = model.encode(src, lengths)
    state = model.start(memory)
    y = tgt_in[:, 0]
    out = []
    for t in range(tgt_in.shape[1]):
        step, state = model.step(memory, state, y)
        out.append(step.logits)
        if t + 1 < tgt_in.shape[1]:
            gold = tgt_in[:, t + 1]
            use_gold = torch.rand(gold.shape, device=gold.device) < ratio
            y = torch.where(use_gold | (gold == PAD), gold, step.logits.argmax(-1))
    logits = torch.stack(out, dim=1)
    return logits if keep is None else logits[keep]


class Scheduled(nn.Module):
    """The model under scheduled sampling as one module, so that DistributedDataParallel can wrap
    its forward pass (the RNN families decode step by step when the ratio is below one)."""

    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.model = model

    def forward(
        self,
        src: torch.Tensor,
        lengths: torch.Tensor,
        tgt_in: torch.Tensor,
        ratio: float,
        keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return scheduled_logits(self.model, src, lengths, tgt_in, ratio, keep)


@dataclass
class Batch:
    """This process's share of one batch, padded, and the whole batch's target-token count."""

    src: torch.Tensor  # (B, S)
    src_len: torch.Tensor  # (B,)
    tgt_in: torch.Tensor  # (B, T) starting with BOS
    tgt_out: torch.Tensor  # (B, T) the tokens to predict
    weight: float  # 1, or 0 for a stand-in sentence when this process's share is empty
    tokens: int  # target tokens in the whole batch, all processes' shares together
    lengths: Lengths  # this process's share's sentence lengths, for its model FLOPs


def make_batch(
    idx: list[int],
    src_ids: list[list[int]],
    tgt_ids: list[list[int]],
    dist: Distributed,
    device: torch.device,
) -> Batch:
    """This process's share of the batch of sentences ``idx``. A process whose share is empty
    (a batch smaller than the number of processes) gets a stand-in sentence of weight 0, so
    that it still takes part in summing the gradients."""
    share = dist.shard(idx)
    weight = 1.0 if share else 0.0
    share = share or idx[:1]
    src, src_len = pad_sources([src_ids[i] for i in share], device)
    tgt, _ = pad_sources([[BOS] + tgt_ids[i] for i in share], device)
    tokens = max(1, sum(len(tgt_ids[i]) for i in idx))
    lengths = Lengths.of([(len(src_ids[i]), len(tgt_ids[i])) for i in share])
    return Batch(src, src_len, tgt[:, :-1], tgt[:, 1:], weight, tokens, lengths)


def share_of_loss(summed: torch.Tensor, batch: Batch, world_size: int) -> torch.Tensor:
    """The loss this process differentiates: its share's summed token losses, scaled so that the
    average of the ``world_size`` processes' gradients (what DistributedDataParallel computes) is
    the gradient of the whole batch's mean loss per target token."""
    return summed * (batch.weight * world_size / batch.tokens)


def _lengths(src_ids: list[list[int]], tgt_ids: list[list[int]]) -> list[int]:
    return [max(len(s), len(t)) for s, t in zip(src_ids, tgt_ids)]


def _length_batches(options, lengths: list[int], epoch: int) -> list[list[int]]:
    return length_batches(
        lengths,
        batch_size=options.batch_size,
        batch_tokens=options.batch_tokens,
        shuffle=True,
        seed=options.seed * 1000 + epoch,
    )


@lru_cache(maxsize=4)
def _token_batches_per_epoch(options_key: tuple, lengths: tuple[int, ...]) -> int:
    batch_size, batch_tokens, seed = options_key
    return len(
        length_batches(list(lengths), batch_size=batch_size, batch_tokens=batch_tokens, seed=seed)
    )


def batches_per_epoch(options, src_ids: list[list[int]], tgt_ids: list[list[int]]) -> int:
    """Optimiser steps in one epoch: the sentences over ``batch_size``, or with
    ``batch_tokens`` the number of batches the first epoch is cut into (every epoch is given
    that many, see :func:`epoch_batches`)."""
    if options.batch_tokens is None:
        return max(1, -(-len(src_ids) // options.batch_size))
    key = (options.batch_size, options.batch_tokens, options.seed * 1000)
    return max(1, _token_batches_per_epoch(key, tuple(_lengths(src_ids, tgt_ids))))


def epoch_batches(
    options, src_ids: list[list[int]], tgt_ids: list[list[int]], epoch: int
) -> list[list[int]]:
    """Epoch ``epoch``'s batches of sentence indices, grouped by length (shuffled, seeded by the
    epoch): at most ``batch_size`` sentences each and, with ``batch_tokens``, at most that many
    padded tokens. Token batches are cut anew each epoch and their number varies by a few; each
    epoch gets exactly :func:`batches_per_epoch` of them (the surplus left out, a shortfall made
    up from the epoch's first batches), so a step number always names the same batch and a run
    resumes where it stopped."""
    batches = _length_batches(options, _lengths(src_ids, tgt_ids), epoch)
    if options.batch_tokens is None:
        return batches
    n = batches_per_epoch(options, src_ids, tgt_ids)
    return (batches * (n // len(batches) + 1))[:n]
