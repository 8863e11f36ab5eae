"""Work the GUI runs in worker threads: reading corpora, loading, saving and evaluating models.

Plain functions without Qt, so the worker thread never touches a widget.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from explorer.assets import BUNDLED, bundled_paths, models_dir  # noqa: F401  (the window's)

PREVIEW_LIMIT = 200_000  # pairs read for a preview of a generated corpus
MODELS_DIR = models_dir()


class FirstLoad:
    """The launch's first model, read on a plain thread started before Qt is imported: torch's
    import (most of a launch) then runs while Qt starts and the window is built. ``future``
    receives the LoadedModel, or the exception; the window takes it over
    (``MainWindow(first_load=...)``). With ``path`` None the thread only imports torch and the
    decoding stack."""

    def __init__(self, path: Path | None) -> None:
        self.path = None if path is None else Path(path)
        self.future: Future = Future()
        threading.Thread(target=self._run, name="first-load", daemon=True).start()

    def _run(self) -> None:
        try:
            import explorer.seq2seq.checkpoint  # noqa: F401  (torch, and what every panel needs)
            import explorer.seq2seq.decoding.decode  # noqa: F401

            entry = None if self.path is None else load_checkpoint_job(self.path)
        except BaseException as e:  # the window reports it as it reports any failed load
            self.future.set_exception(e)
        else:
            self.future.set_result(entry)


def training_threads() -> int:
    """CPU threads for a run started from the window: torch's count less one, so a core stays
    free for the window's thread and the event loop keeps running while the model trains (a run
    puts torch's count back when it ends)."""
    import torch

    return max(1, torch.get_num_threads() - 1)


def load_corpus_job(spec: str, size: int | None) -> tuple[Any, str]:
    """The corpus and the line of counts its preview shows (counted here, in the worker: a
    30,000-pair corpus is a tenth of a second of Python the window's thread need not spend)."""
    from explorer.seq2seq.data.corpus import load_corpus

    if spec in ("classroom", "reverse", "copy") and size:
        size = min(size, PREVIEW_LIMIT)
    corpus = load_corpus(spec, size=size)
    src_words = sum(len(s.split()) for s, _ in corpus.pairs)
    tgt_words = sum(len(t.split()) for _, t in corpus.pairs)
    text = f"{len(corpus.pairs):,} pairs · {src_words:,} source words · {tgt_words:,} target words"
    if corpus.alignments:
        text += " · gold alignments"
    if corpus.skipped:
        text += f" · {len(corpus.skipped)} lines skipped"
    return corpus, text


def load_checkpoint_job(path: str | Path):
    """A LoadedModel from ``path`` (CheckpointError when the file is not a checkpoint)."""
    from explorer.gui.state import LoadedModel
    from explorer.seq2seq.checkpoint import load_checkpoint

    return LoadedModel.from_checkpoint(load_checkpoint(Path(path), device="cpu"))


def model_card_markdown(card: dict[str, Any], corpus: dict[str, Any], config: dict) -> str:
    """The model card written beside a saved checkpoint."""
    bleu = card.get("val_bleu")
    lines = [
        f"# {card.get('arch', config.get('arch', '?'))} model",
        "",
        f"- architecture: {config.get('arch', card.get('arch', '?'))}",
        f"- parameters: {card.get('parameters', 0):,}",
        "- corpus: " + ", ".join(f"{k}={v}" for k, v in corpus.items()),
        f"- steps: {card.get('steps', '?')}",
        f"- validation BLEU: {'n/a' if bleu is None else f'{bleu:.2f}'}",
        f"- device: {card.get('device', '?')}",
        f"- training time: {card.get('train_seconds', '?')} s",
        "- config: " + ", ".join(f"{k}={v}" for k, v in config.items() if k != "arch"),
    ]
    return "\n".join(lines) + "\n"


def save_trained(trainer, path: str | Path, elapsed: float) -> Path:
    """Save the trainer's current model (a snapshot) and a Markdown model card beside it."""
    from explorer.seq2seq.checkpoint import save_checkpoint
    from explorer.seq2seq.models.families import config_to_dict

    path = Path(path)
    model = trainer.snapshot()
    config = config_to_dict(model.config)
    card = trainer.card(elapsed)
    save_checkpoint(
        path,
        model,
        trainer.tokenizer,
        history=trainer.history,
        corpus=trainer.corpus_description,
        card=card,
        train_state={"step": trainer.step, "options": trainer.options.to_dict(), "config": config},
    )
    path.with_suffix(".md").write_text(
        model_card_markdown(card, trainer.corpus_description, config), "utf-8"
    )
    return path


def evaluate_job(models: list, limit: int | None = None):
    """Generator: ``(name, result of evaluate_pairs)`` for each LoadedModel on the classroom test
    set; results carry ``by_length`` (BLEU per source-length bucket)."""
    from explorer.seq2seq.bleu_steps import corpus_steps
    from explorer.seq2seq.evaluate import classroom_test_pairs, evaluate_pairs

    pairs = classroom_test_pairs(limit)
    for entry in models:
        src = [(entry.prepare(s), t) for s, t in pairs]
        result = evaluate_pairs(entry.model, entry.tokenizer, src)
        # every step of the corpus BLEU, for the Evaluate view's walkthrough
        result["bleu_steps"] = corpus_steps(result.pop("hypotheses"), [t for _, t in pairs])
        yield entry.name, result
