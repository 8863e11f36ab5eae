"""Marian (opus-mt) models opened as our own Transformer: faithful to Hugging Face's reference
implementation token for token, with random models built and saved by ``transformers`` here."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from marian_models import EN, FR, build_marian
from transformers import MarianMTModel, MarianTokenizer

from explorer.cli import run
from explorer.seq2seq.checkpoint import CheckpointError, load_checkpoint
from explorer.seq2seq.decoding.beam import beam_search
from explorer.seq2seq.decoding.decode import greedy
from explorer.seq2seq.models.base import BOS, EOS, PAD
from explorer.seq2seq.models.marian import MarianError, is_marian_source, load_marian
from explorer.seq2seq.models.transformer import (
    FEW_ROWS,
    TransformerConfig,
    TransformerSeq2Seq,
    few_rows_logits,
)

MAX_NEW = 12
CONFIGS = {
    # opus-mt's own settings: one shared vocabulary, SiLU, embeddings scaled by sqrt(d)
    "shared": dict(separate=False, seed=1, activation_function="swish", scale_embedding=True),
    # separate source and target vocabularies, GELU, unscaled embeddings, untied output layer,
    # and more decoder than encoder layers
    "separate": dict(
        separate=True,
        seed=2,
        eos_bias=4.0,
        activation_function="gelu",
        scale_embedding=False,
        tie_word_embeddings=False,
        decoder_layers=3,
    ),
}


@pytest.fixture(scope="module", params=list(CONFIGS))
def marian(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"marian-{request.param}")
    build_marian(folder, **CONFIGS[request.param])
    hf = MarianMTModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    separate = CONFIGS[request.param]["separate"]
    hf_tok = MarianTokenizer.from_pretrained(str(folder), separate_vocabs=separate)
    return folder, hf, hf_tok, load_marian(folder)


def _src(hf_tok, sentence: str) -> dict:
    return hf_tok([sentence], return_tensors="pt")


def _generate(hf, hf_tok, sentence: str, **kw):
    return hf.generate(
        **_src(hf_tok, sentence),
        max_new_tokens=MAX_NEW,
        do_sample=False,
        renormalize_logits=True,  # PAD banned and the rest renormalised, as ours
        output_scores=True,
        return_dict_in_generate=True,
        **kw,
    )


def _to_ours(m, marian_ids) -> list[int]:
    return m.tgt_vocab.to_ours(marian_ids)


# ---- tokenizer -------------------------------------------------------------------------------


def test_tokenizer_numbers_pieces_as_marians_tokenizer(marian):
    _, _, hf_tok, m = marian
    for sentence in EN + ["a zebra at the station"]:
        ours = m.tokenizer.encode_src(sentence)
        theirs = hf_tok(sentence)["input_ids"]
        assert [int(m.src_vocab.marian_ids[i]) for i in ours] == theirs
    for sentence in FR:
        ours = m.tokenizer.encode_tgt(sentence)
        theirs = hf_tok(text_target=sentence)["input_ids"]
        assert [int(m.tgt_vocab.marian_ids[i]) for i in ours] == theirs
        assert m.tokenizer.decode_tgt(ours) == hf_tok.decode(theirs, skip_special_tokens=True)
    assert m.tokenizer.tgt_pieces([PAD, BOS, EOS]) == ["<pad>", "<s>", "</s>"]


# ---- one step at a time ----------------------------------------------------------------------


def test_every_step_matches_a_teacher_forced_pass(marian):
    _, hf, hf_tok, m = marian
    pad = hf.config.pad_token_id
    for sentence in EN[:4]:
        trace = greedy(m.model, m.tokenizer, sentence, max_len=MAX_NEW)
        theirs = [int(m.tgt_vocab.marian_ids[s.token]) for s in trace.steps]
        with torch.no_grad():
            out = hf(
                **_src(hf_tok, sentence),
                decoder_input_ids=torch.tensor([[pad] + theirs[:-1]]),
                output_attentions=True,
            )
        logits = out.logits[0].clone()
        logits[:, pad] = float("-inf")  # the pad token is never generated
        ref = F.log_softmax(logits, dim=-1).numpy()  # (T, V_marian)
        cross = torch.stack(out.cross_attentions, dim=1)[0].numpy()  # (L, H, T, S)
        order = m.tgt_vocab.marian_ids
        for t, step in enumerate(trace.steps):
            ours = step.logprobs[np.arange(len(order)) != BOS]  # BOS is our extra row
            expected = ref[t, np.delete(order, BOS)]
            assert np.array_equal(np.isinf(ours), np.isinf(expected))
            finite = np.isfinite(expected)
            np.testing.assert_allclose(ours[finite], expected[finite], atol=1e-5, rtol=0)
            assert step.logprobs[BOS] == -np.inf and step.logprobs[PAD] == -np.inf
            np.testing.assert_allclose(step.cross_attention, cross[:, :, t], atol=1e-5, rtol=0)


def test_greedy_tokens_equal_generate(marian):
    _, hf, hf_tok, m = marian
    lengths = set()
    for sentence in EN:
        ref = _generate(hf, hf_tok, sentence, num_beams=1)
        theirs = ref.sequences[0, 1:].tolist()
        trace = greedy(m.model, m.tokenizer, sentence, max_len=MAX_NEW)
        assert [s.token for s in trace.steps] == _to_ours(m, theirs)
        lengths.add(len(theirs))
    assert len(lengths) > 1  # the models end sentences at several lengths, not only at the limit


@pytest.mark.parametrize("beam", [4, 6])
@pytest.mark.parametrize("lp", [0.0, 0.6, 1.0, 2.0])
def test_beam_nbest_equals_generate(marian, beam, lp):
    """generate(early_stopping="never") stops when no live beam can beat the worst of the beam
    finished ones, as our "bound" stop does; its length penalty S / |Y|^lp, |Y| counting the
    emitted tokens with the end of sentence, is our "avg"."""
    _, hf, hf_tok, m = marian
    pad = hf.config.pad_token_id
    for sentence in EN[:3]:
        ref = _generate(
            hf,
            hf_tok,
            sentence,
            num_beams=beam,
            num_return_sequences=beam,
            length_penalty=lp,
            early_stopping="never",
        )
        (res,) = beam_search(
            m.model,
            m.tokenizer,
            sentence,
            beam=beam,
            nbest=beam,
            max_len=MAX_NEW,
            length_penalty="avg",
            alpha=lp,
            stop="bound",
            with_greedy=False,
        )
        assert len(res.nbest) == beam
        for hyp, seq, score in zip(res.nbest, ref.sequences, ref.sequences_scores):
            theirs = [t for t in seq[1:].tolist() if t != pad]
            assert list(hyp.tokens) == _to_ours(m, theirs)
            assert hyp.normalized_score == pytest.approx(float(score), abs=1e-4)


# ---- where models come from ------------------------------------------------------------------


def test_opens_everywhere_a_checkpoint_opens(marian, capsys):
    folder, _, _, m = marian
    ck = load_checkpoint(folder)
    assert isinstance(ck.model, TransformerSeq2Seq) and ck.model.config.never_pad_bos
    assert ck.config["positions"] == "sinusoidal-halves" and ck.config["norm"] == "post"
    sentence = EN[0]
    expected = m.tokenizer.decode_tgt(
        [s.token for s in greedy(m.model, m.tokenizer, sentence).steps]
    )
    assert run(["translate", "--checkpoint", str(folder), sentence]) == 0
    assert capsys.readouterr().out.strip() == expected.strip()
    assert run(["info", str(folder)]) == 0
    assert "transformer" in capsys.readouterr().out


def test_pytorch_model_bin_is_read_without_unpickling_code(marian, tmp_path):
    folder, hf, _, m = marian
    copy = tmp_path / "bin"
    shutil.copytree(folder, copy)
    (copy / "model.safetensors").unlink()
    state = {k: v.clone() for k, v in hf.state_dict().items()}
    torch.save(state, copy / "pytorch_model.bin")
    m2 = load_marian(copy)
    for name, t in m.model.state_dict().items():
        assert torch.equal(t, m2.model.state_dict()[name]), name

    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"x": Payload()}, copy / "pytorch_model.bin")
    with pytest.raises(MarianError) as e:
        load_marian(copy)
    assert "pytorch_model.bin" in str(e.value) and "\n" not in str(e.value)


def test_a_bin_whose_tensors_share_one_storage_is_refused(marian, tmp_path):
    """One small storage named by every projection would be copied for each name: a bomb."""
    folder, hf, _, _ = marian
    copy = tmp_path / "aliased"
    shutil.copytree(folder, copy)
    (copy / "model.safetensors").unlink()
    state = {k: v.clone() for k, v in hf.state_dict().items()}
    one = next(v for k, v in state.items() if k.endswith("self_attn.q_proj.weight"))
    for k, v in state.items():
        if v.shape == one.shape and k.endswith("proj.weight"):
            state[k] = one  # the same storage under every projection's name
    torch.save(state, copy / "pytorch_model.bin")
    with pytest.raises(MarianError, match="share storage beyond tied embeddings") as e:
        load_marian(copy)
    assert "pytorch_model.bin" in str(e.value) and "\n" not in str(e.value)


def test_special_and_oversized_files_are_refused_without_reading(marian, tmp_path, monkeypatch):
    import os

    from explorer.seq2seq.models import marian as marian_module

    folder = tmp_path / "m"
    shutil.copytree(marian[0], folder)
    (folder / "vocab.json").unlink()
    os.mkfifo(folder / "vocab.json")  # opened for reading, it would wait for a writer for ever
    with pytest.raises(CheckpointError, match=r"vocab.json: is a named pipe \(FIFO\), not a file"):
        load_checkpoint(folder)
    shutil.copy(marian[0] / "vocab.json", tmp_path / "vocab.json")
    (folder / "vocab.json").unlink()
    shutil.copy(tmp_path / "vocab.json", folder / "vocab.json")
    load_checkpoint(folder)
    config = folder / "config.json"
    config.write_text(config.read_text() + " " * 10_000)  # still valid JSON, but too big now
    monkeypatch.setattr(marian_module, "MAX_SMALL_FILE", 5_000)
    with pytest.raises(
        CheckpointError, match=r"config.json: [\d,]+ bytes, more than a model config"
    ):
        load_checkpoint(folder)


def _edit_config(folder, **changes):
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(changes)
    (folder / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize(
    "change, words",
    [
        (dict(model_type="bert"), ["config.json", "not a Marian model"]),
        (dict(d_model="sixteen"), ["config.json", "'d_model'"]),
        (dict(encoder_layers=0), ["config.json", "'encoder_layers'"]),
        (dict(decoder_ffn_dim=48), ["config.json", "'decoder_ffn_dim'"]),
        (dict(activation_function="tanh"), ["config.json", "'activation_function'"]),
        (dict(scale_embedding="yes"), ["config.json", "'scale_embedding'"]),
        (dict(normalize_before=True), ["config.json", "'normalize_before'"]),
        (dict(pad_token_id=10**6), ["config.json", "'pad_token_id'"]),
        (dict(d_model=32), ["has shape", "the config says"]),
        (dict(encoder_layers=3), ["'encoder.layers.2.", "missing"]),
    ],
)
def test_bad_config_fields_get_one_line_messages(marian, tmp_path, change, words):
    folder = tmp_path / "m"
    shutil.copytree(marian[0], folder)
    _edit_config(folder, **change)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(folder)
    message = str(e.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_bad_folders_get_one_line_messages(marian, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(["translate", "--checkpoint", str(empty), "hello"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a Marian model folder" in err and "\n" not in err

    folder = tmp_path / "m"
    shutil.copytree(marian[0], folder)
    vocab = json.loads((folder / "vocab.json").read_text())
    vocab.pop(next(iter(vocab)))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(CheckpointError, match=r"vocab.json: holds \d+ pieces but the config"):
        load_checkpoint(folder)
    (folder / "vocab.json").write_text("[1, 2")
    with pytest.raises(CheckpointError, match="vocab.json: not readable JSON"):
        load_checkpoint(folder)
    shutil.copytree(marian[0], folder, dirs_exist_ok=True)
    (folder / "target.spm").unlink()
    with pytest.raises(CheckpointError, match="target.spm: missing"):
        load_checkpoint(folder)


def test_hub_names(marian, monkeypatch):
    folder = marian[0]
    assert is_marian_source("Helsinki-NLP/opus-mt-en-fr")
    assert not is_marian_source("models/missing.safetensors")
    import huggingface_hub

    asked = []

    def snapshot_download(name, allow_patterns):
        asked.append(name)
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    ck = load_checkpoint("Helsinki-NLP/opus-mt-en-fr")
    assert asked == ["Helsinki-NLP/opus-mt-en-fr"] and ck.card["folder"] == str(folder)

    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # as if not installed
    with pytest.raises(CheckpointError) as e:
        load_checkpoint("Helsinki-NLP/opus-mt-en-fr")
    assert "install huggingface_hub" in str(e.value) and "\n" not in str(e.value)


# ---- the Transformer options themselves ------------------------------------------------------


def test_marian_options_keep_step_equal_to_forward():
    torch.manual_seed(0)
    config = TransformerConfig(
        src_vocab=20,
        tgt_vocab=22,
        d_model=16,
        heads=2,
        enc_layers=2,
        dec_layers=2,
        d_ff=24,
        dropout=0.0,
        positions="sinusoidal-halves",
        norm="post",
        activation="silu",
        scale_embeddings=False,
        output_bias=True,
        never_pad_bos=True,
    )
    model = TransformerSeq2Seq(config).eval()
    src = torch.randint(4, 20, (2, 7))
    lengths = torch.tensor([7, 5])
    tgt = torch.tensor([[BOS, 5, 6, 7, 8], [BOS, 9, 10, 11, 12]])
    with torch.no_grad():
        full = model(src, lengths, tgt)
        memory = model.encode(src, lengths)
        state = model.start(memory)
        for t in range(tgt.shape[1]):
            out, state = model.step(memory, state, tgt[:, t])
            torch.testing.assert_close(out.logits, full.logits[:, t], atol=1e-5, rtol=0)
            torch.testing.assert_close(out.attention, full.attention[:, t], atol=1e-6, rtol=0)
    assert torch.isinf(full.logits[..., [PAD, BOS]]).all()
    assert torch.isfinite(full.logits[..., EOS:]).all()


@pytest.mark.parametrize("rows", [1, 2, 5, FEW_ROWS])
@pytest.mark.parametrize("with_bias", [True, False])
def test_few_rows_logits_equal_linear(rows, with_bias):
    """Decoding steps compute the output product as (W hᵀ)ᵀ, faster on the CPU for a large W:
    the same logits as F.linear to 1e-5, -inf entries of the bias kept."""
    g = torch.Generator().manual_seed(rows)
    W = torch.randn(3001, 64, generator=g) * 0.1
    h = torch.randn(rows, 1, 64, generator=g)
    bias = torch.randn(3001, generator=g).index_fill(0, torch.tensor([0, 2]), float("-inf"))
    bias = bias if with_bias else None
    got, ref = few_rows_logits(h, W, bias), F.linear(h, W, bias)
    assert got.shape == ref.shape == (rows, 1, 3001) and got.is_contiguous()
    assert torch.equal(torch.isinf(got), torch.isinf(ref))
    finite = torch.isfinite(ref)
    torch.testing.assert_close(got[finite], ref[finite], atol=1e-5, rtol=0)


def test_a_decoding_step_takes_the_few_rows_product(monkeypatch):
    """project() takes it without autograd, for at most FEW_ROWS rows and a matrix of at least
    BIG_OUTPUT numbers; training keeps F.linear."""
    import explorer.seq2seq.models.transformer as tr

    config = TransformerConfig(src_vocab=20, tgt_vocab=500, d_model=16, heads=2, enc_layers=1,
                               dec_layers=1, d_ff=24, dropout=0.0, output_bias=True)  # fmt: skip
    model = TransformerSeq2Seq(config).eval()
    calls = []
    monkeypatch.setattr(tr, "few_rows_logits", lambda *a: calls.append(a) or F.linear(*a))
    h = torch.randn(FEW_ROWS, 16)
    with torch.no_grad():
        model.project(h)
        assert calls == []  # 500 × 16: a small matrix keeps F.linear
        monkeypatch.setattr(tr, "BIG_OUTPUT", 500 * 16)
        model.project(h)
        assert len(calls) == 1
        model.project(torch.randn(FEW_ROWS + 1, 16))
        assert len(calls) == 1
    model.project(h)
    assert len(calls) == 1
