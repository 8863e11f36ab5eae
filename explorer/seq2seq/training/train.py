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
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from explorer.seq2seq.decoding.decode import pad_sources as pad_batch
from explorer.seq2seq.models.base import BOS, PAD, Seq2Seq
from explorer.seq2seq.models.families import RNN_ARCHS, build_model, config_to_dict, make_config
from explorer.seq2seq.training.options import (
    Probe,
    Progress,
    TrainingError,
    TrainOptions,
    describe_device,
    learning_rate,
    load_splits,
    mean_entropy,
    pick_device,
    teacher_forcing_ratio,
    usable_threads,
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
    "mean_entropy",
    "pad_batch",
    "pick_device",
    "scheduled_logits",
    "teacher_forcing_ratio",
]

PROBES = {
    "classroom": (
        "the black cat that i saw yesterday sat",
        "le chat noir que j'ai vu hier s'est assis",
    ),
    "reverse": ("a b c d e f g", "g f e d c b a"),
    "copy": ("a b c d e f g", "a b c d e f g"),
}


def scheduled_logits(
    model: Seq2Seq, src: torch.Tensor, lengths: torch.Tensor, tgt_in: torch.Tensor, ratio: float
) -> torch.Tensor:
    """(B, T, V) logits where each step's input is the gold token with probability ``ratio`` and
    otherwise the model's own previous prediction (scheduled sampling, Bengio et al. 2015)."""
    if ratio >= 1.0:
        return model(src, lengths, tgt_in).logits
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
    return torch.stack(out, dim=1)


class _StopRequested(Exception):
    """Raised inside a batch when a stop was asked for; the batch is dropped."""


class Trainer:
    """Trains one model; :meth:`run` is the generator of :class:`Progress` events."""

    def __init__(
        self, options: TrainOptions, *, resume: str | Path | None = None, command: str = ""
    ):
        self.options = options
        self.command = command  # the command line that started the run, for the model card
        self._stop = False
        self._resume_path = Path(resume) if resume else None
        self.model: Seq2Seq | None = None
        self.tokenizer = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.history: list[dict[str, Any]] = []
        self.probes: list[Probe] = []
        self.step = 0
        self.corpus_description: dict[str, Any] = {}
        self.device = torch.device("cpu")
        self.last_good: dict[str, torch.Tensor] | None = None
        self._carried: tuple | None = None  # (model, tokenizer, optimizer state) to continue

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
        nxt = Trainer(options, command=self.command)
        state = self.optimizer.state_dict() if self.optimizer is not None else None
        nxt._carried = (self.model, self.tokenizer, state)
        nxt.history, nxt.probes = list(self.history), list(self.probes)
        nxt.step, nxt.last_good = self.step, self.last_good
        return nxt

    def snapshot(self) -> Seq2Seq:
        """A copy of the current model on the CPU, in eval mode, safe to decode with."""
        if self.model is None:
            raise TrainingError("no model yet: the run has not started")
        m = copy.deepcopy(self.model).to("cpu").float()
        return m.eval()

    # -- setup --------------------------------------------------------------------------------
    def _prepare(self) -> None:
        from explorer.seq2seq.data.tokenizer import train_tokenizer

        o = self.options
        random.seed(o.seed)
        np.random.seed(o.seed)
        torch.manual_seed(o.seed)
        if o.threads:
            torch.set_num_threads(usable_threads(o.threads))
        self.device = pick_device(o.device)
        corpus, (train, valid, _test) = load_splits(o)
        if not train.pairs:
            raise TrainingError(f"corpus {o.corpus!r} has no training pairs after filtering")
        self.corpus_description = dict(corpus.description)
        self.corpus_description.update(
            {
                "train": len(train.pairs),
                "valid": len(valid.pairs),
                "test": len(_test.pairs),
                "max_words": o.max_words,
                "split_seed": o.seed,
            }
        )
        if self._resume_path is not None:
            from explorer.seq2seq.checkpoint import load_checkpoint

            ck = load_checkpoint(self._resume_path, device=str(self.device))
            self.model, self.tokenizer = ck.model, ck.tokenizer
            self.history = list(ck.history)
            self.step = int((ck.train_state or {}).get("step", 0))
            optimizer_state = ck.optimizer_state
        elif self._carried is not None:
            model, self.tokenizer, optimizer_state = self._carried
            self.model = model.to(self.device)
            self._carried = None
        else:
            self.tokenizer = train_tokenizer(
                [s for s, _ in train.pairs],
                [t for _, t in train.pairs],
                vocab_size=o.vocab_size,
                model_type=o.spm_type,
                joint=o.joint_vocab,
                seed=o.seed,
            )
            config = make_config(
                o.arch,
                src_vocab=self.tokenizer.src_vocab_size,
                tgt_vocab=self.tokenizer.tgt_vocab_size,
                **o.model,
            )
            self.model = build_model(config).to(self.device)
            optimizer_state = None
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=o.lr, betas=(0.9, 0.98))
        if optimizer_state is not None:
            self.optimizer.load_state_dict(optimizer_state)
        tok = self.tokenizer
        self.train_src = [tok.encode_src(s) for s, _ in train.pairs]
        self.train_tgt = [tok.encode_tgt(t) for _, t in train.pairs]
        self.valid_pairs = valid.pairs
        self.valid_src = [tok.encode_src(s) for s, _ in valid.pairs]
        self.valid_tgt = [tok.encode_tgt(t) for _, t in valid.pairs]
        name = o.corpus if o.corpus in PROBES else None
        self.probe_pair = (
            PROBES[name] if name else (valid.pairs[0] if valid.pairs else train.pairs[0])
        )

    def _total_steps(self) -> int:
        o = self.options
        if o.epochs is not None:
            per_epoch = math.ceil(len(self.train_src) / o.batch_size)
            return max(1, int(round(o.epochs * per_epoch)))
        return max(1, int(o.steps or 1))

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        from explorer.seq2seq.data.corpus import length_batches

        lengths = [max(len(s), len(t)) for s, t in zip(self.train_src, self.train_tgt)]
        return length_batches(
            lengths,
            batch_size=self.options.batch_size,
            shuffle=True,
            seed=self.options.seed * 1000 + epoch,
        )

    # -- the loop -----------------------------------------------------------------------------
    def run(self) -> Iterator[Progress]:
        """The run's events. torch's CPU thread count (``options.threads``) holds for the run
        only: the process's own is put back when it ends."""
        threads = torch.get_num_threads()
        try:
            yield from self._run()
        finally:
            torch.set_num_threads(threads)

    def _run(self) -> Iterator[Progress]:
        o = self.options
        self._prepare()
        model, opt, device = self.model, self.optimizer, self.device
        assert model is not None and opt is not None
        total = self._total_steps()
        use_amp = o.amp and device.type == "cuda"
        amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
        loss_fn = nn.CrossEntropyLoss(ignore_index=PAD, label_smoothing=o.label_smoothing)
        per_epoch = max(1, math.ceil(len(self.train_src) / o.batch_size))
        t0 = time.perf_counter()
        start_step = self.step
        window_tokens, window_t0 = 0, time.perf_counter()
        tps = None
        yield Progress(
            "start", self.step, total, message=f"training {o.arch} on {describe_device(device)}"
        )
        if self.step == 0:
            yield self._evaluate(total, t0)
        while self.step < total:
            epoch, offset = divmod(self.step, per_epoch)
            batches = self._epoch_batches(epoch)
            for idx in batches[offset:]:
                if self._stop:
                    yield from self._finish(total, t0, stopped=True)
                    return
                if self.step >= total:
                    break
                if o.max_minutes and time.perf_counter() - t0 >= 60 * o.max_minutes:
                    total = self.step  # the time budget ends the run here, as if planned
                    break
                model.train()
                lr = learning_rate(o, self.step)
                for g in opt.param_groups:
                    g["lr"] = lr
                src, src_len = pad_batch([self.train_src[i] for i in idx], device)
                tgt, _ = pad_batch([[BOS] + self.train_tgt[i] for i in idx], device)
                tgt_in, tgt_out = tgt[:, :-1], tgt[:, 1:]
                ratio = teacher_forcing_ratio(o, self.step, total) if o.arch in RNN_ARCHS else 1.0
                phase, oom = "forward", False  # phase: where an out-of-memory error struck
                try:
                    with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                        logits = scheduled_logits(model, src, src_len, tgt_in, ratio)
                        loss = loss_fn(
                            logits.reshape(-1, logits.shape[-1]).float(), tgt_out.reshape(-1)
                        )
                    if not torch.isfinite(loss):
                        yield from self._diverged(total, t0, float(loss.detach()))
                        return
                    if self._stop:  # a stop asked for during the forward pass drops the batch
                        raise _StopRequested
                    opt.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.unscale_(opt)
                    grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), o.clip))
                    if not math.isfinite(grad_norm) and not scaler.is_enabled():
                        yield from self._diverged(total, t0, grad_norm, what="gradient norm")
                        return
                    if self._stop:  # ... and so does one asked for during the backward pass
                        raise _StopRequested
                    phase = "optimizer"  # from here on the weights may change
                    scaler.step(opt)
                    scaler.update()
                except torch.OutOfMemoryError:  # the traceback (and its tensors) ends here
                    oom = True
                except _StopRequested:
                    # The weights are those of the last completed step: nothing was applied.
                    opt.zero_grad(set_to_none=True)
                    logits = loss = None
                    yield from self._finish(total, t0, stopped=True)
                    return
                if oom:
                    logits = loss = None
                    yield self._out_of_memory(total, t0, restore=phase == "optimizer")
                    return
                self.step += 1
                ntok = int((tgt_out != PAD).sum())
                window_tokens += ntok
                now = time.perf_counter()
                if now - window_t0 >= 1.0:
                    tps = window_tokens / (now - window_t0)
                    window_tokens, window_t0 = 0, now
                elapsed = now - t0
                done = self.step - start_step
                eta = elapsed / done * (total - self.step) if done else None
                lv = float(loss.detach())
                yield Progress(
                    "step",
                    self.step,
                    total,
                    epoch=self.step / per_epoch,
                    loss=lv,
                    perplexity=math.exp(min(lv, 50.0)),
                    lr=lr,
                    grad_norm=grad_norm,
                    tokens_per_second=tps,
                    teacher_forcing=ratio,
                    elapsed=elapsed,
                    eta=eta,
                )
                self.history.append(
                    {
                        "step": self.step,
                        "loss": lv,
                        "lr": lr,
                        "grad_norm": grad_norm,
                        "tokens_per_second": tps,
                        "teacher_forcing": ratio,
                    }
                )
                if self.step % 50 == 0:
                    self.last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}
                if o.eval_every and self.step % o.eval_every == 0 and self.step < total:
                    ev = self._evaluate(total, t0)
                    yield ev
                    yield from self._diagnose(ev, total)
                if o.out and o.checkpoint_every and self.step % o.checkpoint_every == 0:
                    saved = self._save(total, t0, final=False)
                    yield saved
                    if saved.kind == "failed":
                        return
        yield from self._finish(total, t0, stopped=False)

    # -- evaluation, diagnostics, saving ------------------------------------------------------
    @torch.no_grad()
    def _evaluate(self, total: int, t0: float) -> Progress:
        from explorer.seq2seq.decoding.decode import greedy_batch, teacher_forced
        from explorer.seq2seq.metrics import corpus_bleu

        model, tok, o = self.model, self.tokenizer, self.options
        model.eval()
        loss_fn = nn.CrossEntropyLoss(ignore_index=PAD, reduction="sum")
        tot, ntok = 0.0, 0
        for i in range(0, len(self.valid_src), 128):
            src, src_len = pad_batch(self.valid_src[i : i + 128], self.device)
            tgt, _ = pad_batch([[BOS] + t for t in self.valid_tgt[i : i + 128]], self.device)
            logits = model(src, src_len, tgt[:, :-1]).logits
            tot += float(
                loss_fn(logits.reshape(-1, logits.shape[-1]).float(), tgt[:, 1:].reshape(-1))
            )
            ntok += int((tgt[:, 1:] != PAD).sum())
        val_loss = tot / max(1, ntok)
        pairs = self.valid_pairs[: o.bleu_sentences]
        bleu = None
        if pairs:
            hyps = greedy_batch(model, tok, [s for s, _ in pairs])
            bleu = corpus_bleu([tok.decode_tgt(h) for h in hyps], [t for _, t in pairs])
        src, ref = self.probe_pair
        tf = teacher_forced(model, tok, src, ref)
        attn = tf.attention_matrix()
        out = tok.decode_tgt(greedy_batch(model, tok, [src])[0])
        probe = Probe(
            self.step,
            list(tf.src_pieces),
            tf.pieces,
            attn,
            mean_entropy(attn) if attn is not None else None,
            out,
        )
        self.probes.append(probe)
        rec = {
            "step": self.step,
            "val_loss": val_loss,
            "val_bleu": bleu,
            "attention_entropy": probe.entropy,
            "probe_output": out,
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
            probe=probe,
            elapsed=time.perf_counter() - t0,
        )

    def _diagnose(self, ev: Progress, total: int) -> Iterator[Progress]:
        probe = ev.probe
        if probe is None:
            return
        if probe.attention is not None and self.step >= 0.3 * total and probe.entropy is not None:
            uniform = math.log(max(2, probe.attention.shape[1]))
            if probe.entropy > 0.9 * uniform:
                yield Progress(
                    "diagnostic",
                    self.step,
                    total,
                    message=(
                        "Attention is still close to uniform after the early phase: "
                        "check the score function (and that the encoder states reach it)."
                    ),
                )
        words = probe.output.split()
        if len(words) >= 4 and any(
            words[i] == words[i + 1] == words[i + 2] for i in range(len(words) - 2)
        ):
            yield Progress(
                "diagnostic",
                self.step,
                total,
                message=(
                    f"The probe translation repeats a token ({probe.output!r}): mode collapse. "
                    "Keep teacher forcing higher for longer, or add dropout (0.3)."
                ),
            )

    def _diverged(
        self, total: int, t0: float, value: float, what: str = "loss"
    ) -> Iterator[Progress]:
        if self.last_good is not None:
            self.model.load_state_dict(self.last_good)
        msg = (
            f"The {what} became {value} at step {self.step + 1}: training stopped and the last "
            f"good weights are kept. Lower the learning rate (now {self.options.lr:g}) and resume."
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
            "val_bleu": evals[-1]["val_bleu"] if evals else None,
            "command": self.command,
            "options": self.options.to_dict(),
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
                "options": self.options.to_dict(),
                "config": config_to_dict(self.model.config),
            },
            optimizer=self.optimizer if self.options.optimizer_state else None,
        )

    def _finish(self, total: int, t0: float, *, stopped: bool) -> Iterator[Progress]:
        if not stopped and (not self.history or "val_bleu" not in self.history[-1]):
            yield self._evaluate(total, t0)
        if self.options.out:
            saved = self._save(total, t0, final=True)
            yield saved
            if saved.kind == "failed":
                return
        kind = "stopped" if stopped else "done"
        yield Progress(
            kind,
            self.step,
            total,
            elapsed=time.perf_counter() - t0,
            message=f"{kind} at step {self.step} of {total}",
        )
