"""The command line. With no subcommand it starts the GUI; the headless subcommands never import Qt,
so they run on a GPU server where Qt cannot load."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from explorer.assets import BUNDLED, checkpoint_path, models_dir, require_checkout
from explorer.cli_common import (
    CliError,
    escaped,
    finite_json,
    printable,
    read_sentences,
    stored_corpus,
    stored_options,
)
from explorer.cli_figure import add_parser as _figure_parser
from explorer.cli_figure import cmd_figure  # noqa: F401  (subcommands are dispatched by name)
from explorer.cli_train import cmd_train  # noqa: F401

CHECKPOINT_HELP = f"a checkpoint file, or a bundled model by name ({', '.join(BUNDLED)})"

if TYPE_CHECKING:
    from explorer.seq2seq.checkpoint import Checkpoint
    from explorer.seq2seq.data.inputs import PreparedSource
    from explorer.seq2seq.data.tokenizer import TokenizerLike
    from explorer.seq2seq.decoding.trace import Trace


def _add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model size (defaults come from the preset)")
    g.add_argument("--emb-dim", type=int, help="RNN: embedding size")
    g.add_argument("--hidden-dim", type=int, help="RNN: hidden state size")
    g.add_argument("--layers", type=int, help="RNN: stacked layers")
    g.add_argument("--cell", choices=["gru", "lstm"], help="RNN: cell type")
    g.add_argument(
        "--bidirectional",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="RNN: bidirectional encoder",
    )
    g.add_argument(
        "--tie-embeddings",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="share the decoder's embedding and output matrices",
    )
    g.add_argument("--dropout", type=float)
    g.add_argument("--d-model", type=int, help="Transformer: model width")
    g.add_argument("--heads", type=int, help="Transformer: attention heads")
    g.add_argument("--enc-layers", type=int, help="Transformer: encoder layers")
    g.add_argument("--dec-layers", type=int, help="Transformer: decoder layers")
    g.add_argument("--d-ff", type=int, help="Transformer: feed-forward width")
    g.add_argument("--positions", choices=["sinusoidal", "learned"])
    g.add_argument("--norm", choices=["pre", "post"], help="Transformer: pre-LN or post-LN")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="attention-explorer",
        description="Train, inspect and teach sequence-to-sequence models with attention. "
        "With no subcommand, opens the desktop application.",
    )
    from explorer import __version__

    ap.add_argument("--version", action="version", version=f"attention-explorer {__version__}")
    sub = ap.add_subparsers(dest="command")
    for add in (_train_parser, _translate_parser, _evaluate_parser, _other_parsers):
        add(sub)
    _figure_parser(sub, CHECKPOINT_HELP)
    return ap


def _train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model and save it as a checkpoint")
    p.add_argument(
        "--corpus",
        help="classroom | reverse | copy | FILE.tsv | SRC,TGT | PREFIX "
        "(with --src-lang/--tgt-lang: PREFIX.LANG[.gz])",
    )
    p.add_argument("--src-lang")
    p.add_argument("--tgt-lang")
    p.add_argument("--corpus-size", type=int, help="generated corpora: pairs to generate")
    p.add_argument(
        "--arch", choices=["none", "bahdanau", "luong-dot", "luong-general", "transformer"]
    )
    p.add_argument("--preset", help="a named recipe (see --list-presets)")
    p.add_argument("--list-presets", action="store_true")
    p.add_argument("--steps", type=int)
    p.add_argument("--epochs", type=float)
    p.add_argument(
        "--minutes",
        type=float,
        dest="max_minutes",
        help="a time budget: stop at the first batch past it (and save)",
    )
    _add_model_options(p)
    _add_training_options(p)
    p.add_argument("--resume", metavar="FILE", help="continue a stopped run from its checkpoint")
    p.add_argument("--out", metavar="FILE", help="checkpoint to write")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_training_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--vocab-size", type=int)
    g.add_argument("--spm-type", choices=["bpe", "unigram"])
    g.add_argument("--joint-vocab", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--batch-size", type=int, help="sentences in a batch, at most")
    g.add_argument("--batch-tokens", type=int, help="padded tokens in a batch, at most")
    g.add_argument("--lr", type=float, help="Adam's learning rate: above 0, at most 1")
    g.add_argument("--schedule", choices=["constant", "step", "noam"])
    g.add_argument("--warmup", type=int)
    g.add_argument("--clip", type=float, help="largest gradient norm (0: no clipping)")
    g.add_argument("--label-smoothing", type=float)
    g.add_argument("--teacher-forcing", choices=["constant", "linear", "step"])
    g.add_argument("--tf-ratio", type=float)
    g.add_argument("--eval-every", type=int)
    g.add_argument("--checkpoint-every", type=int)
    g.add_argument(
        "--average-last",
        type=int,
        metavar="N",
        help="save the mean of the last N evaluations' weights",
    )
    g.add_argument("--seed", type=int)
    g.add_argument("--threads", type=int)
    g.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps")
    g.add_argument(
        "--amp", action=argparse.BooleanOptionalAction, default=None, help="mixed precision on CUDA"
    )
    g.add_argument(
        "--cpu-amp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bfloat16 mixed precision on the CPU (fast with AVX-512 BF16 or AMX)",
    )


def _translate_parser(sub) -> None:
    p = sub.add_parser("translate", help="translate sentences with a checkpoint")
    p.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    p.add_argument("sentences", nargs="*", help="sentences (read from standard input if none)")
    p.add_argument("--beam", type=int, default=1)
    p.add_argument("--nbest", type=int, default=1)
    p.add_argument("--length-penalty", choices=["none", "avg", "gnmt"], default="none")
    p.add_argument("--alpha", type=float, default=0.0)
    p.add_argument("--beta", type=float, default=0.0, help="GNMT coverage penalty weight")
    p.add_argument("--max-len", type=int)
    p.add_argument("--temperature", type=float, help="sample instead of searching")
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--prefix", help="force the translation to start with this text")
    p.add_argument(
        "--edit-attention",
        action="append",
        metavar="STEP=SRC_INDEX[@LAYER[:HEAD]]",
        help="at target step STEP attend only to source piece SRC_INDEX, then decode greedily on "
        "(0-based; repeatable). Transformer: every layer and head, or @LAYER (all its heads), "
        "or @LAYER:HEAD",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--tree", metavar="FILE.json", help="write the whole beam-search tree")


def _evaluate_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="BLEU, chrF, BLEU by length and alignment error rate")
    p.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    p.add_argument(
        "--corpus", help="classroom (the run's test split) or a corpus spec as for train"
    )
    p.add_argument("--src-lang")
    p.add_argument("--tgt-lang")
    p.add_argument(
        "--split",
        choices=["test", "valid", "all"],
        default=None,
        help="for the corpus the model was trained on: which split (default test)",
    )
    p.add_argument("--beam", type=int, default=1)
    p.add_argument("--limit", type=int, help="evaluate the first N pairs only")
    p.add_argument("--by-length", action="store_true", help="print the BLEU by length table")
    p.add_argument("--json", action="store_true")


def _other_parsers(sub) -> None:
    p = sub.add_parser("info", help="print a checkpoint's model card")
    p.add_argument("file", help=CHECKPOINT_HELP)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("export", help="write a checkpoint's model alone, for sharing or bundling")
    p.add_argument("file", help=CHECKPOINT_HELP)
    p.add_argument("--out", required=True, help="the checkpoint file to write")
    p.add_argument("--half", action="store_true", help="store the weights in 16 bits (float16)")

    p = sub.add_parser("corpus", help="write a built-in corpus to files")
    p.add_argument("name", choices=["classroom", "reverse", "copy"])
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--size", type=int, default=30000)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("report", help="evaluate the bundled models and write models/README.md")
    p.add_argument("--models", default=None, help="folder of the bundled checkpoints")
    p.add_argument("--out", default=None, help="the page to write (default models/README.md)")
    p.add_argument("--limit", type=int, help="evaluate the first N test pairs only")

    p = sub.add_parser("bench", help="run the benchmarks and write BENCHMARKS.md")
    p.add_argument("--quick", action="store_true", help="a reduced run that takes under a minute")
    p.add_argument("--out", help="the page to write (default: the checkout's BENCHMARKS.md)")
    p.add_argument("--only", help="comma-separated benchmark names")


def run(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        from explorer.gui.app import main as gui_main

        return gui_main(argv)
    args = _parser().parse_args(argv)
    if args.command is None:
        from explorer.gui.app import main as gui_main

        return gui_main([])
    args.argv = list(argv)
    handler = globals()[f"cmd_{args.command}"]
    try:
        return handler(args) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (CliError, ValueError, OSError) as e:
        print(f"error: {printable(e)}", file=sys.stderr)
        return 2


# -- translate --------------------------------------------------------------------------------
def _sources(ck: Checkpoint, sentences: list[str]) -> list[PreparedSource]:
    """Each sentence through the one input policy; a cut one, and words outside the model's
    world, are noted on standard error."""
    from explorer.seq2seq.data.inputs import prepare_source, source_limit

    limit, out = source_limit(ck.model), []
    for n, text in enumerate(sentences, 1):
        source = prepare_source(ck.tokenizer, text, limit, corpus=ck.corpus)
        where = f"sentence {n}: " if len(sentences) > 1 else ""
        for notice in (source.notice, source.outside):
            if notice:
                print(f"notice: {where}{notice}", file=sys.stderr)
        out.append(source)
    return out


def _hyp_json(h) -> dict[str, Any]:
    return {
        "text": h.text,
        "pieces": list(h.pieces),
        "token_logprobs": [float(x) for x in h.token_logprobs],
        "score": float(h.score),
        "normalized_score": float(h.normalized_score),
        "formula": h.formula,
    }


def _trace_json(tr: Trace, tokenizer: TokenizerLike) -> dict[str, Any]:
    lp = tr.token_logprobs
    return {
        "text": tokenizer.decode_tgt(tr.tokens),
        "pieces": tr.pieces,
        "token_logprobs": [float(x) for x in lp],
        "score": float(lp.sum()),
        "normalized_score": float(lp.sum()),
        "formula": "S",
    }


def _sampled(args: argparse.Namespace, ck: Checkpoint, sources, prefix) -> list[dict[str, Any]]:
    from explorer.seq2seq.decoding.decode import sample

    results = []
    for i, src in enumerate(sources):
        tr = sample(
            ck.model,
            ck.tokenizer,
            src,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            seed=args.seed + i,
            max_len=args.max_len,
            prefix=prefix,
        )
        results.append(
            {
                "source": src.text,
                "nbest": [_trace_json(tr, ck.tokenizer)],
                "greedy": None,
                "attention": _matrix(tr.attention_matrix()),
            }
        )
    return results


def _searched(args: argparse.Namespace, ck: Checkpoint, sources, prefix) -> list[dict[str, Any]]:
    from explorer.seq2seq.decoding.beam import beam_search

    out = beam_search(
        ck.model,
        ck.tokenizer,
        sources,
        beam=args.beam,
        nbest=args.nbest,
        length_penalty=args.length_penalty,
        alpha=args.alpha,
        beta=args.beta,
        max_len=args.max_len,
        prefix=prefix,
        record_tree=bool(args.tree),
    )
    if args.tree:
        trees = [r.tree.to_dict() for r in out]
        Path(args.tree).write_text(json.dumps(trees[0] if len(trees) == 1 else trees))
    return [
        {
            "source": src.text,
            "nbest": [_hyp_json(h) for h in r.nbest],
            "greedy": _trace_json(r.greedy, ck.tokenizer) if r.greedy is not None else None,
            "attention": _matrix(r.nbest[0].attention),
            "stop_reason": r.stop_reason,
        }
        for src, r in zip(sources, out, strict=True)
    ]


def _edited(args: argparse.Namespace, ck: Checkpoint, sources, prefix) -> list[dict[str, Any]]:
    """Greedy decodes with edited attention, each beside the unedited one."""
    from explorer.seq2seq.decoding.decode import greedy
    from explorer.seq2seq.decoding.edit import edited_greedy, parse_edit
    from explorer.seq2seq.decoding.tokendiff import differing

    if args.beam != 1 or args.temperature is not None:
        raise CliError(
            "--edit-attention decodes greedily: it takes neither --beam nor --temperature"
        )
    edits = [parse_edit(spec) for spec in args.edit_attention]
    results = []
    for n, src in enumerate(sources, 1):
        where = f"sentence {n}: " if len(sources) > 1 else ""
        original = greedy(ck.model, ck.tokenizer, src, max_len=args.max_len, prefix=prefix)
        try:
            tr = edited_greedy(
                ck.model, ck.tokenizer, src, edits, max_len=args.max_len, prefix=prefix
            )
        except ValueError as e:
            raise CliError(f"{where}{e}") from e
        marks = differing([original.pieces, tr.pieces])[1]
        results.append(
            {
                "source": src.text,
                "source_pieces": list(tr.src_pieces),
                "nbest": [_trace_json(tr, ck.tokenizer)],
                "greedy": _trace_json(original, ck.tokenizer),
                "edited_steps": tr.extras["edited_steps"],
                "edits": tr.extras["edits"],
                "differs_at": [t for t, m in enumerate(marks) if m],
                "attention": _matrix(tr.attention_matrix()),
            }
        )
    return results


def cmd_translate(args: argparse.Namespace) -> int:
    from explorer.seq2seq.checkpoint import load_checkpoint
    from explorer.seq2seq.data.inputs import corpus_text

    ck = load_checkpoint(checkpoint_path(args.checkpoint))
    sentences = args.sentences or read_sentences(sys.stdin.buffer)
    if not sentences:
        raise CliError("no sentence given (pass sentences as arguments or on standard input)")
    sources = _sources(ck, sentences)
    prefix = corpus_text(args.prefix, ck.corpus) if args.prefix else None
    run = _sampled if args.temperature is not None else _searched
    if args.edit_attention:
        run = _edited
    results = run(args, ck, sources, prefix)
    for r, src in zip(results, sources, strict=True):
        r["never_seen"] = None if src.unseen is None else list(src.unseen)  # None: not recorded
        r["became_unk"] = list(src.unknown)
    if args.json:
        print(finite_json(results))
        return 0
    for r in results:
        for h in r["nbest"]:
            # the pieces come from the file's tokenizer: control characters are printed escaped
            text = printable(h["text"], limit=len(h["text"]))
            print(text if len(r["nbest"]) == 1 else f"{h['normalized_score']:.3f}\t{text}")
    return 0


def _matrix(a) -> list | None:
    return None if a is None else [[round(float(x), 6) for x in row] for row in a]


# -- evaluate ---------------------------------------------------------------------------------
def cmd_evaluate(args: argparse.Namespace) -> int:
    from explorer.seq2seq.checkpoint import load_checkpoint
    from explorer.seq2seq.data.corpus import load_corpus
    from explorer.seq2seq.evaluate import evaluate_pairs
    from explorer.seq2seq.training.train import load_splits

    ck = load_checkpoint(checkpoint_path(args.checkpoint))
    stored = (ck.train_state or {}).get("options")
    o = stored_options(args.checkpoint, stored) if stored else None
    trained_on = o.corpus if o else None
    if args.corpus is None and trained_on is None:
        raise CliError("--corpus is required: the checkpoint does not say what it was trained on")
    spec = stored_corpus(args.checkpoint, trained_on, args.corpus)
    if o and spec == trained_on and args.split != "all":
        _, (train, valid, test) = load_splits(o)
        part = valid if args.split == "valid" else test
        label = f"{spec} ({args.split or 'test'} split)"
    else:
        part = load_corpus(spec, src_lang=args.src_lang, tgt_lang=args.tgt_lang)
        label = spec
    pairs, aligns = part.pairs, part.alignments
    if args.limit:
        pairs, aligns = pairs[: args.limit], (aligns[: args.limit] if aligns else None)
    res = evaluate_pairs(ck.model, ck.tokenizer, pairs, aligns, beam=args.beam)
    res.pop("hypotheses")
    res["corpus"] = label
    res["checkpoint"] = str(args.checkpoint)
    if args.json:
        print(finite_json(res))
        return 0
    print(f"{label}: {res['sentences']} sentences")
    print(f"BLEU {res['bleu']:.2f}   chrF {res['chrf']:.2f}")
    if "aer" in res:
        print(
            f"alignment error rate {res['aer']:.3f}   attention entropy "
            f"{res['attention_entropy']:.3f} nats"
        )
    if args.by_length:
        print("BLEU by source length:")
        for b in res["by_length"]:
            lo, hi = b["range"]
            bleu = "-" if b["bleu"] is None else f"{b['bleu']:.2f}"
            print(f"  {lo:>3}-{hi:<3} words  {b['count']:>5} sentences  BLEU {bleu}")
    return 0


# -- info -------------------------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    from explorer.seq2seq.checkpoint import read_card

    meta = read_card(checkpoint_path(args.file))
    if args.json:
        print(finite_json(meta))
        return 0
    corpus = meta.get("corpus")
    if isinstance(corpus, dict) and isinstance(corpus.get("words"), str):  # counted before the
        meta["corpus"] = {**corpus, "words": len(corpus["words"].split())}  # escaping cuts it
    print(format_card(escaped(meta)))  # names and text from the file, escaped
    return 0


# -- export -----------------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    """The model, tokenizer and records of a checkpoint without its optimizer state (a finished
    model: a third of the file), with ``--half`` in 16 bits (a sixth). The card says so."""
    from explorer.seq2seq.checkpoint import load_checkpoint, save_checkpoint

    source, out = checkpoint_path(args.file), Path(args.out)
    if out.exists() and out.resolve() == source.resolve():
        raise CliError(f"--out {out} is the checkpoint being exported: name another file")
    ck = load_checkpoint(source)
    weights = "float16" if args.half else "float32"
    card = {**ck.card, "weights": weights, "exported_from": source.name}
    save_checkpoint(
        out, ck.model, ck.tokenizer, history=ck.history, corpus=ck.corpus, card=card,
        train_state=ck.train_state, half=args.half,
    )  # fmt: skip
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MB, weights in {weights})")
    return 0


def format_card(meta: dict[str, Any]) -> str:
    config = meta.get("config", {})
    card = meta.get("card", {}) or {}
    corpus = meta.get("corpus", {}) or {}
    lines = [f"architecture   {config.get('arch', '?')}"]
    sizes = ", ".join(f"{k}={v}" for k, v in config.items() if k not in ("arch",))
    lines.append(f"config         {sizes}")
    if meta.get("num_parameters") is not None:
        lines.append(f"parameters     {int(meta['num_parameters']):,}")
    if corpus:
        shown = {
            k: len(v.split()) if k == "words" and isinstance(v, str) else v
            for k, v in corpus.items()
        }
        lines.append("corpus         " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    for key in (
        "steps",
        "train_seconds",
        "device",
        "precision",
        "world_size",
        "val_bleu",
        "test_bleu",
        "test_chrf",
        "aer",
        "command",
        "weights",
        "exported_from",
    ):
        value = card.get(key)
        if value is not None:
            lines.append(f"{key:<14} {round(value, 2) if isinstance(value, float) else value}")
    averaged = card.get("averaged")  # checkpoint averaging: the steps whose weights were averaged
    if isinstance(averaged, dict) and isinstance(averaged.get("steps"), list):
        steps = ", ".join(str(s) for s in averaged["steps"][:50] if isinstance(s, int))
        lines.append(f"averaged       the weights at steps {steps}")
    history = meta.get("history") or []
    evals = [h for h in history if "val_bleu" in h]
    if evals:
        lines.append(
            "training       "
            + "  ".join(
                f"{h['step']}:{h['val_bleu']:.1f}" for h in evals if h["val_bleu"] is not None
            )
        )
    return "\n".join(lines)


# -- corpus -----------------------------------------------------------------------------------
def cmd_corpus(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.name == "classroom":
        from explorer.seq2seq.data.classroom import write_corpus

        paths = write_corpus(out, size=args.size, seed=args.seed)
    else:
        from explorer.seq2seq.data.classroom import toy_pairs

        pairs = toy_pairs(args.name, size=args.size, seed=args.seed)
        path = out / f"{args.name}.tsv"
        path.write_text("".join(f"{p[0]}\t{p[1]}\n" for p in pairs), encoding="utf-8")
        paths = [path]
    for p in paths if isinstance(paths, (list, tuple)) else [paths]:
        print(p)
    return 0


# -- report ---------------------------------------------------------------------------------
def cmd_report(args: argparse.Namespace) -> int:
    from explorer.tools.report import run_report

    models = Path(args.models) if args.models else models_dir()
    out = Path(args.out) if args.out else models / "README.md"
    return run_report(models_dir=models, out=out, limit=args.limit)


# -- bench ------------------------------------------------------------------------------------
def cmd_bench(args: argparse.Namespace) -> int:
    from explorer.tools.bench import run_benchmarks

    out = args.out or require_checkout("bench", "BENCHMARKS.md") / "BENCHMARKS.md"
    return run_benchmarks(
        quick=args.quick, out=str(out), only=args.only.split(",") if args.only else None
    )
