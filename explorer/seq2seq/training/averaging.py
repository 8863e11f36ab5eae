"""Checkpoint averaging: the final model is the mean of the weights at the last N evaluations.

The weights a run passes through near its end scatter around a minimum; their mean usually lies
closer to it than any one of them, and translates better (Vaswani et al. 2017 average the last
5 or 20 checkpoints; fairseq's ``average_checkpoints.py``, Marian's exponential smoothing and
JoeyNMT's ``average`` script do the same). The trainer keeps a float32 copy on the CPU of the
weights at each evaluation after the first step (``average_last`` of them, the oldest dropped),
and when the run completes it loads their mean, evaluates it and saves it as the model.

A run resumed from a checkpoint starts keeping copies afresh: they live in memory only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from explorer.seq2seq.training.options import Progress
from explorer.seq2seq.training.validation import validation_bleu, validation_loss

if TYPE_CHECKING:  # the trainer imports this module
    from explorer.seq2seq.training.train import Trainer


@dataclass
class WeightAverage:
    """The weights at the last ``keep`` evaluations (0: none are kept) and, once averaged, what
    the mean scored."""

    keep: int
    snapshots: deque = field(default_factory=deque)  # (step, {name: float32 CPU tensor})
    record: dict[str, Any] | None = None  # the averaged model's card entry

    def add(self, step: int, model: torch.nn.Module) -> None:
        """Keep a copy of ``model``'s weights at ``step`` (the oldest goes beyond ``keep``);
        not those of step 0, which nothing trained."""
        if self.keep <= 0 or step == 0 or (self.snapshots and self.snapshots[-1][0] == step):
            return
        weights = {
            name: t.detach().to("cpu", torch.float32, copy=True)
            for name, t in model.state_dict().items()
        }
        self.snapshots.append((step, weights))
        while len(self.snapshots) > self.keep:
            self.snapshots.popleft()

    @property
    def steps(self) -> list[int]:
        return [step for step, _ in self.snapshots]

    def mean(self) -> dict[str, torch.Tensor]:
        """The element-wise mean of the kept weights (float32, on the CPU)."""
        if not self.snapshots:
            raise ValueError("no weights kept to average")
        kept = [weights for _, weights in self.snapshots]
        return {name: torch.stack([w[name] for w in kept]).mean(dim=0) for name in kept[0]}

    def card(self) -> dict[str, Any]:
        """What the model card records: the averaged model's entry and validation BLEU; nothing
        when the model was not averaged."""
        if self.record is None:
            return {}
        return {"averaged": self.record, "val_bleu": self.record["val_bleu"]}


def use_average(trainer: Trainer, total: int, t0: float) -> Iterator[Progress]:
    """Load the mean of the kept weights into ``trainer.model`` and evaluate it (rank 0, after
    the final evaluation). Nothing happens with fewer than two copies kept: one is the model
    as it stands."""
    import time

    average = trainer.average
    if len(average.snapshots) < 2:
        return
    last = next((h for h in reversed(trainer.history) if "val_loss" in h), {})
    model = trainer.model
    model.load_state_dict(average.mean())
    model.eval()
    loss = validation_loss(model, trainer.valid_src, trainer.valid_tgt, trainer.device)
    pairs = trainer.valid_pairs[: trainer.options.bleu_sentences]
    bleu = validation_bleu(model, trainer.tokenizer, pairs)
    average.record = {"steps": average.steps, "val_loss": loss, "val_bleu": bleu}
    shown = "n/a" if bleu is None else f"{bleu:.1f}"
    was = last.get("val_bleu")
    before = "" if was is None else f" (the last weights alone: {last['val_loss']:.3f}, {was:.1f})"
    steps = ", ".join(map(str, average.steps))
    yield Progress(
        "diagnostic",
        trainer.step,
        total,
        val_loss=loss,
        val_bleu=bleu,
        elapsed=time.perf_counter() - t0,
        message=f"the model is the mean of the weights at steps {steps}: "
        f"val loss {loss:.3f}, val BLEU {shown}{before}",
    )
