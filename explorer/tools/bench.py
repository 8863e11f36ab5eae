"""``attention-explorer bench``: every benchmark the project tracks, written into BENCHMARKS.md.

Timings are compared as ratios measured side by side in the same run, never asserted in tests.
The generated tables go between two markers in BENCHMARKS.md; the rest of that file (hand-recorded
training runs, the Multi30k table) is left as it is.
"""

from __future__ import annotations

import datetime
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from explorer.assets import models_dir
from explorer.tools.oracles import NeedsCheckout

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
NEEDS_CHECKOUT = "needs a source checkout"
LONG_SENTENCE = (
    "the black cat that i saw yesterday sat on the mat and the little dog that she loves "
    "did not sleep in the red house"
)


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "os": platform.platform(terse=True),
    }


def reset_peak_rss() -> None:
    """Reset the kernel's peak resident-set counter (Linux), so the next peak is this one's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    i = min(len(xs) - 1, max(0, int(round(q / 100 * (len(xs) - 1)))))
    return xs[i]


# -- shared fixtures ----------------------------------------------------------------------------
def classroom_sample(n: int) -> list[tuple[str, str]]:
    from explorer.seq2seq.data.corpus import load_corpus

    return load_corpus("classroom", size=max(n, 200), seed=1).pairs[:n]


def bundled_or_fresh(preset: str, pairs: list[tuple[str, str]]):
    """The bundled checkpoint of ``preset`` if present, else an untrained model of its size."""
    from explorer.seq2seq.checkpoint import load_checkpoint
    from explorer.seq2seq.data.tokenizer import train_tokenizer
    from explorer.seq2seq.models.families import build_model, make_config
    from explorer.seq2seq.training.presets import PRESETS

    path = models_dir() / f"{preset}.safetensors"
    if path.is_file():
        ck = load_checkpoint(path)
        return ck.model, ck.tokenizer, "trained (bundled)"
    p = PRESETS[preset]
    tok = train_tokenizer([s for s, _ in pairs], [t for _, t in pairs], vocab_size=p["vocab_size"])
    cfg = make_config(
        p["arch"], src_vocab=tok.src_vocab_size, tgt_vocab=tok.tgt_vocab_size, **p["model"]
    )
    return build_model(cfg).eval(), tok, "untrained (no bundled checkpoint)"


def timed(fn: Callable[[], Any], repeat: int = 1) -> float:
    """Best wall time of ``repeat`` calls, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


# -- training throughput ------------------------------------------------------------------------
def reference_logits(model, src, lengths, tgt_in):
    """The lectures' training loop: one decoder step per target position, gold inputs."""
    memory = model.encode(src, lengths)
    state = model.start(memory)
    out = []
    for t in range(tgt_in.shape[1]):
        step, state = model.step(memory, state, tgt_in[:, t])
        out.append(step.logits)
    return torch.stack(out, dim=1)


TRAIN_PRESETS = ("classroom-none", "classroom-bahdanau", "classroom-luong", "classroom-transformer")


def _training_row(preset: str, pairs: list[tuple[str, str]], batch_size: int) -> dict[str, Any]:
    from torch import nn

    from explorer.seq2seq.data.tokenizer import train_tokenizer
    from explorer.seq2seq.models.base import BOS, PAD
    from explorer.seq2seq.models.families import build_model, make_config
    from explorer.seq2seq.training.presets import PRESETS
    from explorer.seq2seq.training.train import pad_batch

    p = PRESETS[preset]
    tok = train_tokenizer([s for s, _ in pairs], [t for _, t in pairs], vocab_size=p["vocab_size"])
    torch.manual_seed(0)
    cfg = make_config(
        p["arch"], src_vocab=tok.src_vocab_size, tgt_vocab=tok.tgt_vocab_size, **p["model"]
    )
    model = build_model(cfg).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = nn.CrossEntropyLoss(ignore_index=PAD)
    cpu = torch.device("cpu")
    data = []
    for i in range(0, len(pairs), batch_size):
        b = pairs[i : i + batch_size]
        src, lens = pad_batch([tok.encode_src(s) for s, _ in b], cpu)
        tgt, _ = pad_batch([[BOS] + tok.encode_tgt(t) for _, t in b], cpu)
        data.append((src, lens, tgt[:, :-1], tgt[:, 1:]))
    ntok = sum(int((d[3] != PAD).sum()) for d in data)

    def epoch(logits_of: Callable) -> None:
        for src, lens, tgt_in, tgt_out in data:
            logits = logits_of(src, lens, tgt_in)
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()

    def ours(s, l, t):
        return model(s, l, t).logits

    def reference(s, l, t):
        return reference_logits(model, s, l, t)

    epoch(ours)  # warm-up
    reset_peak_rss()
    base_rss = peak_rss_mb()
    t_ours = timed(lambda: epoch(ours))
    peak = peak_rss_mb() - base_rss
    t_ref = timed(lambda: epoch(reference))
    return {
        "preset": preset,
        "arch": p["arch"],
        "parameters": model.num_parameters,
        "tokens_per_s": ntok / t_ours,
        "reference_tokens_per_s": ntok / t_ref,
        "speedup": t_ref / t_ours,
        "peak_mb": peak,
    }


def stop_latency(trials: int, seed: int = 0, corpus_size: int = 2000) -> list[float]:
    """Seconds from ``request_stop`` (from another thread, at a random moment of a Bahdanau run on
    classroom batches) to the run's ``stopped`` event."""
    import random
    import threading

    from explorer.seq2seq.training.train import Trainer, TrainOptions

    rng = random.Random(seed)
    opts = TrainOptions.from_preset(
        "classroom-bahdanau",
        corpus_size=corpus_size,
        steps=100_000,
        eval_every=0,
        threads=torch.get_num_threads(),
    )
    trainer = Trainer(opts)
    out: list[float] = []
    for _ in range(trials):
        asked: list[float] = []

        def ask(t=trainer, asked=asked) -> None:
            asked.append(time.perf_counter())
            t.request_stop()

        timer = None
        for ev in trainer.run():
            if ev.kind == "step" and timer is None:
                timer = threading.Timer(0.2 + rng.random(), ask)
                timer.start()
            if ev.kind == "stopped":
                out.append(time.perf_counter() - asked[0])
                break
        trainer = trainer.continue_with()
    return out


def bench_training(quick: bool) -> dict[str, Any]:
    batch_size, n_batches = 64, 1 if quick else 10
    pairs = classroom_sample(batch_size * n_batches)
    rows = [_training_row(preset, pairs, batch_size) for preset in TRAIN_PRESETS]
    stops = stop_latency(1 if quick else 8, corpus_size=500 if quick else 2000)
    return {
        "rows": rows,
        "batches": n_batches,
        "batch_size": batch_size,
        "stop_ms": [1000 * x for x in stops],
    }


# -- decoding -----------------------------------------------------------------------------------
def _reference_search() -> Callable | None:
    """The one-hypothesis-at-a-time oracle from the checkout's tests/, or None (said once)."""
    try:
        from explorer.tools.oracles import beam_search_reference
    except NeedsCheckout as e:
        print(f"bench: {e}", file=sys.stderr)
        return None
    return beam_search_reference


def _decoding_row(
    preset: str,
    pairs,
    srcs: list[str],
    ref_srcs: list[str],
    quick: bool,
    reference: Callable | None,
) -> dict:
    from explorer.seq2seq.decoding.beam import beam_search
    from explorer.seq2seq.decoding.decode import greedy_batch

    model, tok, status = bundled_or_fresh(preset, pairs)

    def long_tree():
        return beam_search(model, tok, [LONG_SENTENCE], beam=5, max_len=40, record_tree=True)[0]

    def batched():
        beam_search(model, tok, ref_srcs, beam=8, max_len=40, record_tree=False, with_greedy=False)

    def beam5_all():
        for i in range(0, len(srcs), 64):
            beam_search(
                model,
                tok,
                srcs[i : i + 64],
                beam=5,
                max_len=60,
                record_tree=False,
                with_greedy=False,
            )

    t_tree = timed(long_tree, repeat=1 if quick else 3)
    t_batched = timed(batched)
    t_ref = (
        None
        if reference is None
        else timed(lambda: reference(model, tok, ref_srcs, beam=8, max_len=40))
    )
    t_greedy = timed(lambda: greedy_batch(model, tok, srcs, max_len=60))
    t_beam5 = timed(beam5_all)
    return {
        "preset": preset,
        "status": status,
        "long_tokens": len(tok.encode_src(LONG_SENTENCE)),
        "tree_nodes": len(long_tree().tree),
        "tree_ms": t_tree * 1000,
        "batched_s": t_batched,
        "reference_s": t_ref,
        "speedup": None if t_ref is None else t_ref / t_batched,
        "greedy_sent_per_s": len(srcs) / t_greedy,
        "beam5_sent_per_s": len(srcs) / t_beam5,
    }


def bench_decoding(quick: bool) -> dict[str, Any]:
    n_sent = 30 if quick else 1000
    pairs = classroom_sample(max(n_sent, 60 if quick else 200))
    srcs = [s for s, _ in pairs[:n_sent]]
    ref_srcs = srcs[: 1 if quick else 8]
    reference = _reference_search()
    rows = [
        _decoding_row(preset, pairs, srcs, ref_srcs, quick, reference)
        for preset in ("classroom-bahdanau", "classroom-transformer")
    ]
    return {"rows": rows, "sentences": n_sent, "reference_sentences": len(ref_srcs)}


# -- the GUI, in a subprocess on the offscreen platform ---------------------------------------
def bench_gui(quick: bool) -> dict[str, Any]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    cmd = [sys.executable, "-m", "explorer.tools.bench_gui"] + (["--quick"] if quick else [])
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    if r.returncode != 0:
        raise RuntimeError(f"GUI benchmark failed:\n{r.stderr[-2000:]}")
    import json

    return json.loads(r.stdout.strip().splitlines()[-1])


def bench_reliability(quick: bool) -> dict[str, Any]:
    from explorer.tools.reliability import hostile_section, run_hostile, run_reliability

    counts = run_reliability(report=False, cases=20 if quick else 60)
    rows = [{"category": name, **c} for name, c in counts.items()]
    return {"rows": rows, "notes": hostile_section(run_hostile())}


def bench_marian(quick: bool) -> dict[str, Any]:
    import importlib.util

    if importlib.util.find_spec("transformers") is None:
        note = "the Marian rows need transformers, the reference implementation: skipped"
        print(f"bench: {note}", file=sys.stderr)
        return {"skipped": note}
    from explorer.tools.bench_marian import bench_marian

    return bench_marian(quick)


BENCHMARKS: dict[str, Callable[[bool], dict[str, Any]]] = {
    "training": bench_training,
    "decoding": bench_decoding,
    "gui": bench_gui,
    "reliability": bench_reliability,
    "marian": bench_marian,
}


# -- report -------------------------------------------------------------------------------------
def _table(header: list[str], rows: list[list[Any]]) -> str:
    def fmt(x: Any) -> str:
        if isinstance(x, float):
            return f"{x:,.1f}" if abs(x) >= 10 else f"{x:.2f}"
        if isinstance(x, int):
            return f"{x:,}"
        return str(x)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(x) for x in r) + " |" for r in rows]
    return "\n".join(lines)


def _training_section(r: dict[str, Any]) -> list[str]:
    header = [
        "preset",
        "parameters",
        "target tokens/s",
        "reference tokens/s",
        "speed-up",
        "peak memory (MB)",
    ]
    keys = ("preset", "parameters", "tokens_per_s", "reference_tokens_per_s", "speedup", "peak_mb")
    out = [
        f"### Training throughput (CPU, {r['batches']} batches of {r['batch_size']} "
        "classroom pairs, forward + backward + Adam)",
        "",
        "Reference: the same model trained through the lectures' per-step decoder loop "
        "(`encode`, then one `step` per target position). Peak memory: growth of the "
        "process's peak resident set while training.",
        "",
        _table(header, [[x[k] for k in keys] for x in r["rows"]]),
        "",
    ]
    ms = r.get("stop_ms")
    if ms:
        out += [
            f"Stopping: {len(ms)} stops asked for at random moments of a Bahdanau run on "
            f"classroom batches took {statistics.median(ms):.0f} ms (median) and "
            f"{max(ms):.0f} ms (worst) to end the run (target ≤ 200 ms; a stop drops the batch "
            "in progress after its forward or backward pass).",
            "",
        ]
    return out


def _speedup(x: dict[str, Any]) -> str:
    if x["reference_s"] is None:
        return NEEDS_CHECKOUT
    return f"{x['speedup']:.1f}× ({x['reference_s']:.2f} s / {x['batched_s']:.2f} s)"


def _decoding_section(r: dict[str, Any]) -> list[str]:
    header = [
        "model",
        "beam 5 + full tree, long sentence (ms)",
        "tree nodes",
        "batched vs reference (beam 8)",
        "greedy sentences/s",
        "beam 5 sentences/s",
    ]
    rows = [
        [
            f"{x['preset']} ({x['status']})",
            x["tree_ms"],
            x["tree_nodes"],
            _speedup(x),
            x["greedy_sent_per_s"],
            x["beam5_sent_per_s"],
        ]
        for x in r["rows"]
    ]
    return [
        f"### Decoding (CPU; {r['sentences']} classroom sentences; batched beam against "
        f"the one-hypothesis-at-a-time reference over {r['reference_sentences']} "
        "sentences at beam 8, target ≥ 5×)",
        "",
        _table(header, rows),
        "",
        f"The long sentence has {r['rows'][0]['long_tokens']} source tokens: “{LONG_SENTENCE}”.",
        "",
    ]


def _gui_section(r: dict[str, Any]) -> list[str]:
    rows = [[x["name"], x["value"], x["target"]] for x in r["rows"]]
    return [
        "### The GUI (offscreen Qt, this machine)",
        "",
        _table(["measurement", "value", "target"], rows),
        "",
    ]


def _reliability_section(r: dict[str, Any]) -> list[str]:
    header = ["category", "cases", "refused cleanly", "accepted", "crashes", "data lost"]
    keys = ("category", "tried", "refused", "accepted", "crashes", "lost")
    out = [
        "### Reliability (hostile inputs)",
        "",
        _table(header, [[c[k] for k in keys] for c in r["rows"]]),
        "",
    ]
    return out + ([r["notes"], ""] if r.get("notes") else [])


def _marian_section(r: dict[str, Any]) -> list[str]:
    if "skipped" in r:
        return ["### A Marian model of opus-mt-en-fr's shape", "", r["skipped"] + ".", ""]
    from explorer.tools.bench_marian import render_marian

    return render_marian(r)


SECTIONS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "training": _training_section,
    "decoding": _decoding_section,
    "gui": _gui_section,
    "reliability": _reliability_section,
    "marian": _marian_section,
}


def render(results: dict[str, Any], quick: bool, seconds: float) -> str:
    m = machine()
    out = [
        BEGIN,
        "## Latest `attention-explorer bench" + (" --quick" if quick else "") + "` run",
        "",
        f"Date {datetime.date.today().isoformat()}; {seconds:.0f} s in all. Machine: {m['cpu']}; "
        f"GPU: {m['gpu']}; Python {m['python']}, torch {m['torch']}, {m['os']}.",
        "",
    ]
    for name, section in SECTIONS.items():
        if name in results:
            out += section(results[name])
    for name, err in results.get("errors", {}).items():
        out += [f"### {name}: failed", "", "```", err, "```", ""]
    out.append(END)
    return "\n".join(out)


def _sections(block: str) -> tuple[str, dict[str, str]]:
    """A generated block's preamble and its ``### `` subsections keyed by their first two words."""
    parts = block.split("\n### ")
    keyed = {" ".join(part.split()[:2]): "### " + part for part in parts[1:]}
    return parts[0], keyed


def merge_sections(old_block: str, new_block: str) -> str:
    """``new_block``'s subsections replace those of ``old_block`` with the same heading; the
    others stay (a partial run, ``bench --only``, keeps the tables it did not measure)."""
    inner = lambda b: b.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")  # noqa: E731
    _, old = _sections(inner(old_block))
    preamble, new = _sections(inner(new_block))
    merged = {**old, **new}
    order = list(old) + [k for k in new if k not in old]
    body = "\n".join(merged[k].rstrip("\n") + "\n" for k in order)
    kept = [k for k in old if k not in new]

    def title(key: str) -> str:  # "### Decoding (CPU; ...)" -> "Decoding"
        return merged[key].split("\n", 1)[0].removeprefix("### ").split(" (")[0].strip()

    note = (
        f"Re-run here: {', '.join(map(title, new))}; "
        f"kept from an earlier run: {', '.join(map(title, kept))}.\n\n"
    )
    return BEGIN + "\n" + preamble.rstrip("\n") + "\n\n" + (note if kept else "") + body + END


def write_report(text: str, path: Path, *, partial: bool = False) -> None:
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        body, tail = rest.split(END, 1)
        if partial:
            text = merge_sections(BEGIN + body + END, text)
        new = head + text + tail
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, path)


def run_benchmarks(*, quick: bool, out: str, only: list[str] | None = None) -> int:
    names = only or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ValueError(
            f"unknown benchmark(s) {', '.join(unknown)}; expected {', '.join(BENCHMARKS)}"
        )
    results: dict[str, Any] = {"errors": {}}
    t0 = time.perf_counter()
    for name in names:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        try:
            results[name] = BENCHMARKS[name](quick)
        except Exception as e:  # a failed benchmark is reported in the table, not hidden
            results["errors"][name] = f"{type(e).__name__}: {e}"
            print(f"bench: {name} failed: {e}", file=sys.stderr)
        print(f"bench: {name} took {time.perf_counter() - t:.1f} s", file=sys.stderr)
    text = render(results, quick, time.perf_counter() - t0)
    write_report(text, Path(out), partial=only is not None)
    print(text)
    return 1 if results["errors"] else 0


def summary(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "p95": percentile(xs, 95), "max": max(xs)}
