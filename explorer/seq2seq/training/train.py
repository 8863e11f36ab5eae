"""The training loop, written as a generator of progress events.

    trainer = Trainer(TrainOptions(corpus="classroom", arch="bahdanau", steps=3000))
    for event in trainer.run():
        print(event.kind, event.step, event.loss)

The generator yields after every batch, so a caller (the GUI's worker thread, the command line's
progress bar) can pause it, or stop it with :meth:`Trainer.request_stop`, between batches. The model
being trained belongs to the trainer; :meth:`Trainer.snapshot` hands out a copy for decoding.
"""

from __future__ import annotations

import copy
import errno
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from explorer.seq2seq.data.words import words_record
from explorer.seq2seq.decoding.decode import pad_sources as pad_batch
from explorer.seq2seq.heap import reuse_freed_memory
from explorer.seq2seq.models.base import PAD, Seq2Seq
from explorer.seq2seq.models.families import RNN_ARCHS, build_model, config_to_dict, make_config
from explorer.seq2seq.training.averaging import WeightAverage, use_average
from explorer.seq2seq.training.batch import (
    Batch,
    Scheduled,
    batches_per_epoch,
    epoch_batches,
    make_batch,
    scheduled_logits,
    share_of_loss,
)
from explorer.seq2seq.training.clock import Clock, EtaEstimator
from explorer.seq2seq.training.distributed import Distributed, PeerLost
from explorer.seq2seq.training.flops import peak_flops, step_flops
from explorer.seq2seq.training.options import (
    Probe,
    Progress,
    TrainingError,
    TrainOptions,
    clip_norm,
    describe_device,
    describe_precision,
    describe_run,
    fused_adam,
    learning_rate,
    load_splits,
    mixed_precision,
    pick_device,
    seed_everything,
    teacher_forcing_ratio,
    usable_threads,
)
from explorer.seq2seq.training.validation import (
    diagnoses,
    probe,
    probe_pair,
    validation_bleu,
    validation_loss,
)

__all__ = [
    "Probe",
    "Progress",
    "Trainer",
    "TrainingError",
    "TrainOptions",
    "describe_device",
    "learning_rate",
    "load_splits",
    "pad_batch",
    "pick_device",
    "scheduled_logits",
    "teacher_forcing_ratio",
]

# what the history keeps of each step's event
_STEP_RECORD = ("step", "loss", "lr", "grad_norm", "tokens_per_second", "teacher_forcing")


class _StopRequested(Exception):
    """Raised inside a batch when a stop was asked for; the batch is dropped."""


class Trainer:
    """Trains one model; :meth:`run` is the generator of :class:`Progress` events. With
    ``distributed`` (one of several torchrun processes) each process trains on its share of every
    batch; rank 0 alone evaluates and writes the checkpoint while the others wait for it."""

    def __init__(
        self,
        options: TrainOptions,
        *,
        resume: str | Path | None = None,
        command: str = "",
        distributed: Distributed | None = None,
    ):
        self.options = options
        self.command = command  # the command line that started the run, for the model card
        self.dist = distributed or Distributed()
        self._stop = False
        self._resume_path = Path(resume) if resume else None
        self.model: Seq2Seq | None = None
        self.tokenizer = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.history: list[dict[str, Any]] = []
        self.probes: list[Probe] = []
        self.step = 0
        self.train_src: list[list[int]] = []
        self.corpus_description: dict[str, Any] = {}
        self.device = torch.device("cpu")
        self.last_good: dict[str, torch.Tensor] | None = None
        self.good_step = 0  # the step of last_good's weights
        self._carried: tuple | None = None  # (model, tokenizer, optimizer state) to continue
        self._evaluated_at: int | None = None  # the step of the latest evaluation
        self._owns_group = False  # this trainer started the process group, and ends it
        self.eta = EtaEstimator()  # the time left, from step and evaluation durations
        self.average = WeightAverage(options.average_last)  # the last evaluations' weights

    # -- control ------------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask the run to stop after the current batch (checked between batches)."""
        self._stop = True

    def continue_with(self, **changes: Any) -> Trainer:
        """A new trainer that carries on from this one's weights, optimizer state, history and
        step with some options changed (after running out of memory: a smaller ``batch_size``, or
        ``device="cpu"``). This trainer must not be run again afterwards: they share the model."""
        if self.model is None:
            raise TrainingError("nothing to continue: the run has not started")
        options = TrainOptions.from_dict({**self.options.to_dict(), **changes})
        nxt = Trainer(options, command=self.command, distributed=self.dist)
        state = self.optimizer.state_dict() if self.optimizer is not None else None
        nxt._carried = (self.model, self.tokenizer, state)
        nxt.history, nxt.probes = list(self.history), list(self.probes)
        nxt.step, nxt.last_good, nxt.good_step = self.step, self.last_good, self.good_step
        nxt.average = self.average
        return nxt

    def snapshot(self) -> Seq2Seq:
        """A copy of the current model on the CPU, in eval mode, safe to decode with."""
        if self.model is None:
            raise TrainingError("no model yet: the run has not started")
        return copy.deepcopy(self.model).to("cpu").float().eval()

    def save_after_interrupt(self) -> Iterator[Progress]:
        """After an interrupt outside :meth:`run` (Ctrl-C): rank 0 saves the model as it stands,
        without waiting for other processes, which may be gone."""
        if self.options.out and self.model is not None and self.dist.is_main:
            yield self._save(self._total_steps(), time.perf_counter(), final=True)

    # -- setup --------------------------------------------------------------------------------
    def _prepare(self) -> None:
        o = self.options
        seed_everything(o.seed)
        self.device = self.dist.device(o.device)
        threads = o.threads or self.dist.default_threads()
        if threads:
            torch.set_num_threads(usable_threads(threads))
        self._owns_group = self.dist.start(self.device)
        train, valid = self._load_splits()
        optimizer_state = self._build(train)
        self.optimizer = fused_adam(self.model.parameters(), o.lr, optimizer_state)
        self._encode(train, valid)
        if self.history and "val_bleu" in self.history[-1]:
            self._evaluated_at = self.step
        self._engine = self.dist.wrap(Scheduled(self.model), self.device)
        self._loss_fn = nn.CrossEntropyLoss(
            ignore_index=PAD, label_smoothing=o.label_smoothing, reduction="sum"
        )
        self._amp_dtype = mixed_precision(o, self.device)  # None: float32 throughout
        self._precision = describe_precision(self._amp_dtype, self.device)  # for start and card
        self._scaler = torch.amp.GradScaler("cuda", enabled=self._amp_dtype == torch.float16)

    def _load_splits(self):
        o = self.options
        corpus, (train, valid, test) = load_splits(o)
        if not train.pairs:
            raise TrainingError(f"corpus {o.corpus!r} has no training pairs after filtering")
        self.corpus_description = {
            **corpus.description,
            "train": len(train.pairs),
            "valid": len(valid.pairs),
            "test": len(test.pairs),
            "max_words": o.max_words,
            "split_seed": o.seed,
            **words_record(train.pairs, corpus.description),  # the words a source may use
        }
        return train, valid

    def _build(self, train) -> dict[str, Any] | None:
        """The model and tokenizer: from the checkpoint resumed, carried over, or new. Returns
        the optimizer state to continue from, if any."""
        o = self.options
        if self._resume_path is not None:
            from explorer.seq2seq.checkpoint import load_checkpoint

            ck = load_checkpoint(self._resume_path, device=str(self.device))
            self.model, self.tokenizer = ck.model, ck.tokenizer
            self.history = list(ck.history)
            self.step = int((ck.train_state or {}).get("step", 0))
            return ck.optimizer_state
        if self._carried is not None:
            model, self.tokenizer, optimizer_state = self._carried
            self.model = model.to(self.device)
            self._carried = None
            return optimizer_state
        self.tokenizer = self._new_tokenizer(train)
        config = make_config(
            o.arch,
            src_vocab=self.tokenizer.src_vocab_size,
            tgt_vocab=self.tokenizer.tgt_vocab_size,
            **o.model,
        )
        self.model = build_model(config).to(self.device)
        return None

    def _new_tokenizer(self, train):
        """Rank 0 trains the tokenizer; the other processes receive its sentencepiece models."""
        from explorer.seq2seq.data.tokenizer import Tokenizer, train_tokenizer

        o = self.options
        tok = None
        if self.dist.is_main:
            tok = train_tokenizer(
                [s for s, _ in train.pairs],
                [t for _, t in train.pairs],
                vocab_size=o.vocab_size,
                model_type=o.spm_type,
                joint=o.joint_vocab,
                seed=o.seed,
            )
        if not self.dist.active:
            return tok
        models = tok.to_bytes() if tok is not None else (None, None)
        src, tgt = (self.dist.broadcast_bytes(m, self.device) for m in models)
        return tok if tok is not None else Tokenizer.from_bytes(src, tgt)

    def _encode(self, train, valid) -> None:
        tok = self.tokenizer
        self.train_src = [tok.encode_src(s) for s, _ in train.pairs]
        self.train_tgt = [tok.encode_tgt(t) for _, t in train.pairs]
        self.valid_pairs = valid.pairs
        self.valid_src = [tok.encode_src(s) for s, _ in valid.pairs]
        self.valid_tgt = [tok.encode_tgt(t) for _, t in valid.pairs]
        self.probe_pair = probe_pair(self.options.corpus, valid.pairs, train.pairs)

    def _total_steps(self) -> int:
        o = self.options
        if o.epochs is not None:
            return max(1, int(round(o.epochs * self._per_epoch())))
        return max(1, int(o.steps or 1))

    def _per_epoch(self) -> int:
        return batches_per_epoch(self.options, self.train_src, self.train_tgt)

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        return epoch_batches(self.options, self.train_src, self.train_tgt, epoch)

    # -- the loop -----------------------------------------------------------------------------
    def run(self) -> Iterator[Progress]:
        """The run's events. torch's CPU thread count (``options.threads``) holds for the run
        only: the process's own is put back when it ends. In a distributed run, losing contact
        with the other processes ends the run with a "failed" event."""
        threads = torch.get_num_threads()
        try:
            with reuse_freed_memory():  # a step's large tensors reuse the last step's pages
                yield from self._run()
        except (PeerLost, torch.distributed.DistError) as e:
            lost = e if isinstance(e, PeerLost) else self.dist.lost(e)
            yield Progress("failed", self.step, self._total_steps(), message=str(lost))
        finally:
            torch.set_num_threads(threads)
            if self._owns_group:
                self.dist.close()
                self._owns_group = False

    def _run(self) -> Iterator[Progress]:
        self._prepare()
        o = self.options
        peak = peak_flops(self.device, self._amp_dtype)
        clock = Clock(self._total_steps(), self._per_epoch(), peak)
        where = describe_run(self.device, self._precision, self.dist.world_size, peak)
        yield Progress("start", self.step, clock.total, message=f"training {o.arch} on {where}")
        if self.step == 0:
            yield from self._evaluations(clock.total, clock.t0, diagnose=False)
        while self.step < clock.total:
            epoch, offset = divmod(self.step, clock.per_epoch)
            for idx in self._epoch_batches(epoch)[offset:]:
                halt = self._halt(clock)
                if halt == "stop":
                    yield from self._finish(clock.total, clock.t0, stopped=True)
                    return
                if halt:  # the planned steps are done, or the time budget is spent
                    break
                if not (yield from self._train_step(idx, clock)):
                    return  # the step ended the run: stopped, diverged, out of memory
                if not (yield from self._after_step(clock)):
                    return
        yield from self._finish(clock.total, clock.t0, stopped=False)

    def _halt(self, clock: Clock) -> str | None:
        """Why the run goes no further before the next batch: ``stop`` (asked for), ``done``,
        ``budget`` (the time budget, by rank 0's clock), or None. Every process agrees."""
        minutes = self.options.max_minutes
        over = bool(minutes) and time.perf_counter() - clock.t0 >= 60 * minutes
        stop, over = self.dist.total(self._stop, over and self.dist.is_main, device=self.device)
        if stop:
            return "stop"
        if self.step >= clock.total:
            return "done"
        if over:
            clock.total = self.step  # the time budget ends the run here, as if planned
            return "budget"
        return None

    def _train_step(self, idx: list[int], clock: Clock) -> Iterator[Progress]:
        """One optimiser step on batch ``idx``; returns False when it ended the run."""
        o, opt, scaler = self.options, self.optimizer, self._scaler
        began = time.perf_counter()  # a step's duration: this batch alone, no evaluation, no pause
        self._engine.train()
        lr = learning_rate(o, self.step)
        for g in opt.param_groups:
            g["lr"] = lr
        batch = make_batch(idx, self.train_src, self.train_tgt, self.dist, self.device)
        ratio = teacher_forcing_ratio(o, self.step, clock.total) if o.arch in RNN_ARCHS else 1.0
        phase, oom = "forward", False  # phase: where an out-of-memory error struck
        try:
            loss, lv = self._forward(batch, ratio)
            if not math.isfinite(lv):
                yield from self._diverged(clock.total, clock.t0, lv)
                return False
            if self.dist.any(self._stop, self.device):  # a stop asked for during the forward
                raise _StopRequested  # pass drops the batch
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip_norm(o)))
            if not math.isfinite(grad_norm) and not scaler.is_enabled():
                yield from self._diverged(clock.total, clock.t0, grad_norm, what="gradient norm")
                return False
            if self.dist.any(self._stop, self.device):  # ... and so does one asked for during
                raise _StopRequested  # the backward pass
            phase = "optimizer"  # from here on the weights may change
            scaler.step(opt)
            scaler.update()
        except torch.OutOfMemoryError:  # the traceback (and its tensors) ends here
            oom = True
        except _StopRequested:
            # The weights are those of the last completed step: nothing was applied.
            opt.zero_grad(set_to_none=True)
            loss = None
            yield from self._finish(clock.total, clock.t0, stopped=True)
            return False
        if oom:
            loss = None
            yield self._out_of_memory(clock.total, clock.t0, restore=phase == "optimizer")
            return False
        self.step += 1
        took = time.perf_counter() - began
        self.eta.step_took(took)
        ev = self._step_event(
            clock, batch, took, loss=lv, lr=lr, grad_norm=grad_norm, teacher_forcing=ratio
        )
        yield ev
        self.history.append({k: getattr(ev, k) for k in _STEP_RECORD})
        return True

    def _forward(self, batch: Batch, ratio: float) -> tuple[torch.Tensor, float]:
        """The loss to differentiate (this process's token losses, scaled so that averaging the
        processes' gradients gives the whole batch's mean), and the whole batch's mean loss."""
        amp = self._amp_dtype is not None
        with torch.autocast(self.device.type, dtype=self._amp_dtype, enabled=amp):
            keep = batch.tgt_out != PAD  # the output layer skips the padding
            logits = self._engine(batch.src, batch.src_len, batch.tgt_in, ratio, keep)  # (N, V)
            summed = self._loss_fn(logits.float(), batch.tgt_out[keep])
        (whole,) = self.dist.total(float(summed.detach()) * batch.weight, device=self.device)
        return share_of_loss(summed, batch, self.dist.world_size), whole / batch.tokens

    def _step_event(self, clock: Clock, batch: Batch, took: float, **values: Any) -> Progress:
        now = clock.count(batch.tokens, took, step_flops(self.model, batch.lengths))
        elapsed = now - clock.t0
        lv = values["loss"]
        return Progress(
            "step",
            self.step,
            clock.total,
            epoch=self.step / clock.per_epoch,
            perplexity=math.exp(min(lv, 50.0)),
            tokens_per_second=clock.tokens_per_second,
            flops_per_second=clock.flops_per_second,
            mfu=clock.mfu,
            elapsed=elapsed,
            eta=self.eta.remaining(self.step, clock.total, self.options.eval_every),
            **values,
        )

    def _after_step(self, clock: Clock) -> Iterator[Progress]:
        """Keep good weights, evaluate and save when due; returns False when the run ends."""
        o = self.options
        if self.step % 50 == 0 or self.last_good is None:
            self.last_good = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.good_step = self.step
        if o.eval_every and self.step % o.eval_every == 0 and self.step < clock.total:
            yield from self._evaluations(clock.total, clock.t0, diagnose=True)
        if o.out and o.checkpoint_every and self.step % o.checkpoint_every == 0:
            return (yield from self._checkpoint(clock.total, clock.t0, final=False))
        return True

    def _evaluations(self, total: int, t0: float, *, diagnose: bool) -> Iterator[Progress]:
        """Rank 0 evaluates (and diagnoses) while the other processes wait."""
        if self.dist.is_main:
            n = min(len(self.valid_pairs), self.options.bleu_sentences)
            yield Progress(
                "evaluating",
                self.step,
                total,
                elapsed=time.perf_counter() - t0,
                message=f"evaluating: validation loss, BLEU of {n} sentences, the probe…",
            )
            began = time.perf_counter()
            ev = self._evaluate(total, t0)
            self.average.add(self.step, self.model)
            self.eta.eval_took(time.perf_counter() - began)
            yield ev
            if diagnose:
                yield from self._diagnose(ev, total)
        self._evaluated_at = self.step
        self.dist.total(0.0, device=self.device)  # the others wait here

    # -- evaluation, diagnostics, saving ------------------------------------------------------
    def _evaluate(self, total: int, t0: float) -> Progress:
        model, o = self.model, self.options
        model.eval()
        val_loss = validation_loss(model, self.valid_src, self.valid_tgt, self.device)
        bleu = validation_bleu(model, self.tokenizer, self.valid_pairs[: o.bleu_sentences])
        p = probe(model, self.tokenizer, self.probe_pair, self.step)
        self.probes.append(p)
        rec = {
            "step": self.step,
            "val_loss": val_loss,
            "val_bleu": bleu,
            "attention_entropy": p.entropy,
            "probe_output": p.output,
            "elapsed": time.perf_counter() - t0,  # seconds since this run (or resume) started
        }
        self.history.append(rec)
        return Progress(
            "eval",
            self.step,
            total,
            val_loss=val_loss,
            val_bleu=bleu,
            perplexity=math.exp(min(val_loss, 50.0)),
            probe=p,
            elapsed=time.perf_counter() - t0,
        )

    def _diagnose(self, ev: Progress, total: int) -> Iterator[Progress]:
        for message in diagnoses(ev.probe, total) if ev.probe is not None else ():
            yield Progress("diagnostic", self.step, total, message=message)

    def _diverged(
        self, total: int, t0: float, value: float, what: str = "loss"
    ) -> Iterator[Progress]:
        at = self.step + 1
        if self.last_good is not None:  # the run goes back to the step of the kept weights
            self.model.load_state_dict(self.last_good)
            self.step = self.good_step
            self.history = [h for h in self.history if h["step"] <= self.step]
        msg = (
            f"The {what} became {value} at step {at}: training stopped and the weights of step "
            f"{self.step} are kept. Lower the learning rate (now {self.options.lr:g}) and resume."
        )
        yield Progress("failed", self.step, total, message=msg, elapsed=time.perf_counter() - t0)

    def _out_of_memory(self, total: int, t0: float, *, restore: bool) -> Progress:
        """Free what the failed batch held, keep the weights (the last good ones when the
        optimizer was interrupted mid-update) and suggest a smaller batch or the CPU."""
        self.optimizer.zero_grad(set_to_none=True)
        if restore and self.last_good is not None:
            self.model.load_state_dict(self.last_good)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        size = self.options.batch_size
        where = "GPU memory" if self.device.type != "cpu" else "memory"
        options = []
        if size > 1:
            options.append(("Smaller batch", {"batch_size": size // 2}, f"batch size {size // 2}"))
        if self.device.type != "cpu":
            options.append(("Use CPU", {"device": "cpu"}, "on the CPU"))
        advice = ", or ".join(text for *_, text in options) or "a smaller model"
        msg = (
            f"out of {where} at batch size {size}: continue with {advice} "
            f"(the weights of step {self.step} are kept)"
        )
        return Progress(
            "failed", self.step, total, message=msg, elapsed=time.perf_counter() - t0,
            suggestions=[{"label": label, "options": o} for label, o, _ in options],
        )  # fmt: skip

    def card(self, elapsed: float) -> dict[str, Any]:
        evals = [h for h in self.history if "val_bleu" in h]
        return {
            "arch": self.options.arch,
            "parameters": self.model.num_parameters if self.model else 0,
            "steps": self.step,
            "train_seconds": round(elapsed, 1),
            "device": describe_device(self.device),
            "precision": self._precision,
            "world_size": self.dist.world_size,  # processes that trained it (torchrun)
            "val_bleu": evals[-1]["val_bleu"] if evals else None,
            "command": self.command,
            "options": self.options.to_dict(),
            **self.average.card(),  # an averaged model: its own validation BLEU
        }

    def _save(self, total: int, t0: float, *, final: bool) -> Progress:
        path = Path(self.options.out)
        try:
            self._write_checkpoint(path, t0)
        except OSError as e:
            reason = e.strerror or str(e)
            if e.errno == errno.ENOSPC:
                reason = "the disk is full"
            msg = (
                f"could not write {path}: {reason}. Training stopped at step {self.step}; the "
                "model is kept, save it somewhere else (any earlier checkpoint there is unchanged)."
            )
            return Progress(
                "failed", self.step, total, path=str(path), message=msg,
                elapsed=time.perf_counter() - t0,
            )  # fmt: skip
        return Progress(
            "checkpoint",
            self.step,
            total,
            path=str(path),
            message=f"saved {path}" + ("" if final else " (periodic)"),
            elapsed=time.perf_counter() - t0,
        )

    def _write_checkpoint(self, path: Path, t0: float) -> None:
        from explorer.seq2seq.checkpoint import save_checkpoint

        save_checkpoint(
            path,
            self.model,
            self.tokenizer,
            history=self.history,
            corpus=self.corpus_description,
            card=self.card(time.perf_counter() - t0),
            train_state={
                "step": self.step,
                "world_size": self.dist.world_size,
                "options": self.options.to_dict(),
                "config": config_to_dict(self.model.config),
            },
            optimizer=self.optimizer if self.options.optimizer_state else None,
        )

    def _checkpoint(self, total: int, t0: float, *, final: bool) -> Iterator[Progress]:
        """Rank 0 writes the checkpoint while the others wait; returns False if it failed."""
        saved = self._save(total, t0, final=final) if self.dist.is_main else None
        failed = self.dist.any(saved is not None and saved.kind == "failed", self.device)
        if saved is not None:
            yield saved
        elif failed:
            msg = (
                "rank 0 could not write the checkpoint (its message says why); "
                f"rank {self.dist.rank} stops too"
            )
            yield Progress(
                "failed", self.step, total, message=msg, elapsed=time.perf_counter() - t0
            )
        return not failed

    def _finish(self, total: int, t0: float, *, stopped: bool) -> Iterator[Progress]:
        if not stopped and self._evaluated_at != self.step:
            yield from self._evaluations(total, t0, diagnose=False)
        if not stopped and self.dist.is_main:  # average_last: the kept weights' mean
            yield from use_average(self, total, t0)
        if self.options.out and not (yield from self._checkpoint(total, t0, final=True)):
            return
        kind = "stopped" if stopped else "done"
        yield Progress(
            kind,
            self.step,
            total,
            elapsed=time.perf_counter() - t0,
            message=f"{kind} at step {self.step} of {total}",
        )
