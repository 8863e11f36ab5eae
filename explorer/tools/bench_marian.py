"""``bench --only marian``: a random Marian model of opus-mt-en-fr's shape, opened through our
loader, against Hugging Face's ``generate()`` on the same weights, side by side.

Needs ``transformers`` (the reference implementation; a test dependency, never imported by the
application itself). The folder is built in a temporary directory and removed afterwards.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from explorer.seq2seq.models import transformer

# opus-mt-en-fr's config.json: 6+6 layers, d 512, 8 heads, d_ff 2048, 59,514 shared pieces
OPUS_MT_EN_FR = dict(
    vocab_size=59514,
    d_model=512,
    encoder_layers=6,
    decoder_layers=6,
    encoder_attention_heads=8,
    decoder_attention_heads=8,
    encoder_ffn_dim=2048,
    decoder_ffn_dim=2048,
    max_position_embeddings=512,
    activation_function="swish",
    scale_embedding=True,
    pad_token_id=59513,
    decoder_start_token_id=59513,
    eos_token_id=0,
    forced_eos_token_id=0,
)
SOURCE_TOKENS = 30
_BIG_OUTPUT = transformer.BIG_OUTPUT  # restored after the "as before" row
SENTENCES = ["the cat sleeps on the mat", "a dog runs in the park", "hello world", "i love you"]


def _write_folder(folder: Path) -> None:
    """A random opus-mt-en-fr-shaped MarianMTModel saved as the hub's folders are."""
    import sentencepiece as spm
    from transformers import MarianConfig, MarianMTModel

    writer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(SENTENCES * 5),
        model_writer=writer,
        vocab_size=40,
        hard_vocab_limit=False,
        minloglevel=2,
        num_threads=1,
    )
    for name in ("source.spm", "target.spm"):
        (folder / name).write_bytes(writer.getvalue())
    V = OPUS_MT_EN_FR["vocab_size"]
    sp = spm.SentencePieceProcessor(model_proto=writer.getvalue())
    pieces = [sp.id_to_piece(i) for i in range(3, sp.get_piece_size())]  # after <unk> <s> </s>
    pieces += [f"\u2581w{i}" for i in range(V - 3 - len(pieces))]
    vocab = {"</s>": 0, "<unk>": 1, **{p: i + 2 for i, p in enumerate(pieces)}, "<pad>": V - 1}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    torch.manual_seed(0)
    model = MarianMTModel(MarianConfig(**OPUS_MT_EN_FR)).eval()
    model.generation_config.bad_words_ids = [[V - 1]]
    model.save_pretrained(folder)


def open_random(folder: Path) -> Any:
    """A random opus-mt-en-fr-shaped model written to ``folder`` and opened through our loader
    (a ``MarianModel``); needs ``transformers``."""
    from explorer.seq2seq.models.marian import load_marian

    try:
        import transformers  # noqa: F401
    except ImportError:
        raise RuntimeError("needs transformers, the reference: pip install transformers") from None
    _write_folder(folder)
    return load_marian(folder)


def source_ids(m: Any) -> list[int]:
    """A fixed random source of SOURCE_TOKENS ids, end of sentence included."""
    g = torch.Generator().manual_seed(1)
    src = torch.randint(4, len(m.src_vocab.pieces), (SOURCE_TOKENS - 1,), generator=g).tolist()
    return src + [3]


def _linear_output(before: bool) -> None:
    """Decoding steps' output product by ``F.linear`` as before (True), or as ``project`` now
    chooses (False): ``few_rows_logits`` for a matrix this size."""
    transformer.BIG_OUTPUT = 2**62 if before else _BIG_OUTPUT


def _alternating(cases: list[tuple], repeat: int) -> list[list]:
    """Each case (name, tokens, fn, setup) run once per round, the cases in turn; per case the
    best wall time and the best CPU time of this process (what an idle core would take)."""
    wall = [float("inf")] * len(cases)
    cpu = [float("inf")] * len(cases)
    for _ in range(repeat):
        for i, (_, _, fn, setup) in enumerate(cases):
            setup()
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[i] = min(wall[i], time.perf_counter() - w0)
            cpu[i] = min(cpu[i], time.process_time() - c0)
    return [[c[0], c[1], w, p] for c, w, p in zip(cases, wall, cpu, strict=True)]


def bench_marian(quick: bool) -> dict[str, Any]:
    from explorer.seq2seq.decoding.beam import beam_search
    from explorer.seq2seq.decoding.decode import greedy
    from explorer.seq2seq.models.marian import load_marian
    from explorer.tools.bench import timed

    repeat = 1 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        m = open_random(folder)
        from transformers import MarianMTModel

        hf = MarianMTModel.from_pretrained(folder).eval()
        load_s = timed(lambda: load_marian(folder))
    src = source_ids(m)
    hf_src = torch.from_numpy(m.src_vocab.marian_ids[src])[None]  # (1, S)
    new = 30
    M, tok = m.model, m.tokenizer
    now, before = (lambda: _linear_output(False)), (lambda: _linear_output(True))
    with torch.inference_mode():
        steps = len(greedy(M, tok, src, max_len=new).steps)
        cases = [
            ("Step-through trace (greedy, every step's record)", steps,
             lambda: greedy(M, tok, src, max_len=new), now),
            ("the same, output product by `F.linear` (as before)", steps,
             lambda: greedy(M, tok, src, max_len=new), before),
            ("`generate()` greedy", steps,
             lambda: hf.generate(hf_src, num_beams=1, max_new_tokens=new), now),
            ("beam 5, full tree", new,
             lambda: beam_search(M, tok, src, beam=5, max_len=new, with_greedy=False), now),
            ("beam 5, no tree", new,
             lambda: beam_search(M, tok, src, beam=5, max_len=new, with_greedy=False,
                                 record_tree=False), now),
            ("`generate()` beam 5", new,
             lambda: hf.generate(hf_src, num_beams=5, max_new_tokens=new), now),
        ]  # fmt: skip
        rows = _alternating(cases, repeat)
    _linear_output(False)
    return {
        "rows": rows,
        "load_s": load_s,
        "parameters": M.num_parameters,
        "tree_vs_generate": rows[3][2] / rows[5][2],
        "tree_vs_generate_cpu": rows[3][3] / rows[5][3],
        "threads": torch.get_num_threads(),
    }


def render_marian(r: dict[str, Any]) -> list[str]:
    from explorer.tools.bench import _table

    return [
        f"### Marian at real size (CPU, random opus-mt-en-fr shape: 6+6 layers, d 512, 8 heads, "
        f"59,514 pieces, {r['parameters']:,} parameters; torch threads {r['threads']})",
        "",
        f"A {SOURCE_TOKENS}-token source; 30 target steps (the random model never ends a "
        "sentence). Best of the repeats. Opening the folder through our loader: "
        f"{r['load_s']:.2f} s. Beam 5 with the full tree takes {r['tree_vs_generate']:.2f}× "
        f"the time ({r['tree_vs_generate_cpu']:.2f}× the CPU time) of Hugging Face's "
        "`generate()` with the same beam, on the same weights. The cases run in turn, each "
        "once per round; CPU time is this process's, what an idle core would take.",
        "",
        _table(["what", "target tokens", "seconds", "CPU seconds"], r["rows"]),
        "",
    ]
