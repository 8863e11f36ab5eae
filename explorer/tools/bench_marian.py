"""``bench --only marian``: a random Marian model of opus-mt-en-fr's shape, opened through our
loader, against Hugging Face's ``generate()`` on the same weights, side by side.

Needs ``transformers`` (the reference implementation; a test dependency, never imported by the
application itself). The folder is built in a temporary directory and removed afterwards.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

import torch

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
    rows = []
    with torch.inference_mode():
        trace_s = timed(lambda: greedy(m.model, m.tokenizer, src, max_len=new), repeat)
        steps = len(greedy(m.model, m.tokenizer, src, max_len=new).steps)
        rows.append(["Step-through trace (greedy, every step's record)", steps, trace_s])
        hf_greedy = timed(lambda: hf.generate(hf_src, num_beams=1, max_new_tokens=new), repeat)
        rows.append(["`generate()` greedy", steps, hf_greedy])
        tree = timed(
            lambda: beam_search(m.model, m.tokenizer, src, beam=5, max_len=new, with_greedy=False),
            repeat,
        )
        rows.append(["beam 5, full tree", new, tree])
        bare = timed(
            lambda: beam_search(
                m.model, m.tokenizer, src, beam=5, max_len=new, with_greedy=False, record_tree=False
            ),
            repeat,
        )
        rows.append(["beam 5, no tree", new, bare])
        hf_beam = timed(lambda: hf.generate(hf_src, num_beams=5, max_new_tokens=new), repeat)
        rows.append(["`generate()` beam 5", new, hf_beam])
    return {
        "rows": rows,
        "load_s": load_s,
        "parameters": m.model.num_parameters,
        "tree_vs_generate": tree / hf_beam,
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
        "the time of Hugging Face's `generate()` with the same beam, on the same weights.",
        "",
        _table(["what", "target tokens", "seconds"], r["rows"]),
        "",
    ]
