"""The Transformer's training step with explicit attention against torch's fused
``scaled_dot_product_attention`` (developer tooling; a few seconds).

    python -m explorer.tools.bench_sdpa --threads 1 --rounds 8

Forward and backward of issue 19's Transformer (d_model 256, 4 heads, 3+3 layers, d_ff 1024,
pre-norm, 8,000 pieces) on one random batch of 64 sentences of 14 tokens: ``forward(...).logits``
(every weight formed, as the app's views need) against ``logits(...)`` (the training path), in
alternating order, the median of each printed with their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from explorer.seq2seq.models.transformer import TransformerConfig, TransformerSeq2Seq

VOCAB, BATCH, LENGTH = 8000, 64, 14


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m explorer.tools.bench_sdpa")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=8, help="timed steps of each path")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(0)
    config = TransformerConfig(src_vocab=VOCAB, tgt_vocab=VOCAB, d_ff=1024, dropout=0.1)
    model = TransformerSeq2Seq(config).train()
    src = torch.randint(4, VOCAB, (BATCH, LENGTH))
    lengths = torch.randint(LENGTH // 2, LENGTH + 1, (BATCH,))
    lengths[0] = LENGTH
    tgt = torch.randint(4, VOCAB, (BATCH, LENGTH))
    paths = {
        "explicit": lambda: model(src, lengths, tgt).logits,
        "fused": lambda: model.logits(src, lengths, tgt),
    }

    def step(name: str) -> float:
        began = time.perf_counter()
        logits = paths[name]()
        torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), tgt.reshape(-1)).backward()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - began

    for name in paths:  # warm-up: allocations, kernel selection
        step(name)
    times: dict[str, list[float]] = {name: [] for name in paths}
    for r in range(max(1, args.rounds)):
        for name in sorted(paths, reverse=bool(r % 2)):
            times[name].append(step(name))
    e, f = (statistics.median(times[n]) for n in ("explicit", "fused"))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), forward+backward of "
        f"{BATCH}x{LENGTH} tokens: explicit {e * 1e3:.1f} ms, fused {f * 1e3:.1f} ms, "
        f"explicit/fused {e / f:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
