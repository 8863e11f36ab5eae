import itertools
import math

import pytest
import torch

from explorer.seq2seq.models.base import BOS, EOS, PAD, Memory, StepOutput
from explorer.seq2seq.models.families import build_model, config_to_dict, make_config
from explorer.seq2seq.models.transformer import (
    SequenceTooLongError,
    TransformerConfig,
    TransformerConfigError,
    TransformerSeq2Seq,
    sinusoidal_positions,
)

TOL = 1e-5


def small(**overrides) -> TransformerSeq2Seq:
    fields = dict(
        src_vocab=50, tgt_vocab=60, d_model=32, heads=2, enc_layers=2, dec_layers=2, d_ff=64
    )
    fields.update(overrides)
    return TransformerSeq2Seq(TransformerConfig(**fields)).eval()


def padded_batch():
    """Three sentences of lengths 7, 5 and 2, padded with PAD; target prefixes of length 6."""
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor([7, 5, 2])
    src = torch.randint(4, 50, (3, 7), generator=g)
    for b, n in enumerate(lengths.tolist()):
        src[b, n:] = PAD
    tgt_in = torch.randint(4, 60, (3, 6), generator=g)
    tgt_in[:, 0] = BOS
    return src, lengths, tgt_in


def run_steps(model, memory, tokens) -> list[StepOutput]:
    state = model.start(memory)
    outs = []
    for t in range(tokens.shape[1]):
        out, state = model.step(memory, state, tokens[:, t])
        outs.append(out)
    return outs


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


CONFIGS = list(itertools.product(("sinusoidal", "learned"), ("pre", "post"), (True, False)))


@pytest.mark.parametrize("positions,norm,tie", CONFIGS)
@torch.no_grad()
def test_step_outputs_equal_forward(positions, norm, tie):
    model = small(positions=positions, norm=norm, tie_embeddings=tie)
    src, lengths, tgt_in = padded_batch()
    full = model(src, lengths, tgt_in)
    outs = run_steps(model, model.encode(src, lengths), tgt_in)
    T = tgt_in.shape[1]

    logp = torch.stack([o.logits for o in outs], 1).log_softmax(-1)
    assert max_diff(logp, full.logits.log_softmax(-1)) <= TOL
    assert max_diff(torch.stack([o.attention for o in outs], 1), full.attention) <= TOL
    assert max_diff(torch.stack([o.hidden for o in outs], 1), full.hidden) <= TOL
    assert max_diff(torch.stack([o.context for o in outs], 1), full.context) <= TOL
    assert max_diff(torch.stack([o.query for o in outs], 1), full.query) <= TOL
    step_scores = torch.stack([o.scores for o in outs], 1)
    assert torch.equal(torch.isinf(step_scores), torch.isinf(full.scores))
    finite = torch.isfinite(full.scores)
    assert max_diff(step_scores[finite], full.scores[finite]) <= TOL
    for t, o in enumerate(outs):
        assert o.self_attention.shape == (3, 2, 2, t + 1)
        assert max_diff(o.self_attention, full.self_attention[:, t, :, :, : t + 1]) <= TOL
        assert torch.all(full.self_attention[:, t, :, :, t + 1 :] == 0)
    assert full.self_attention.shape == (3, T, 2, 2, T)


@pytest.mark.parametrize("norm", ["pre", "post"])
@torch.no_grad()
def test_cached_decoding_equals_recomputing_each_prefix(norm):
    model = small(norm=norm, positions="learned")
    src, lengths, tgt_in = padded_batch()
    outs = run_steps(model, model.encode(src, lengths), tgt_in)
    for t, o in enumerate(outs):
        prefix = model(src, lengths, tgt_in[:, : t + 1])  # no cache: all t+1 positions again
        assert max_diff(o.logits, prefix.logits[:, t]) <= TOL
        assert max_diff(o.attention, prefix.attention[:, t]) <= TOL
        assert max_diff(o.self_attention, prefix.self_attention[:, t]) <= TOL


@torch.no_grad()
def test_a_future_target_token_does_not_change_earlier_positions():
    model = small()
    src, lengths, tgt_in = padded_batch()
    changed = tgt_in.clone()
    changed[:, 4] = 7
    a, b = model(src, lengths, tgt_in), model(src, lengths, changed)
    assert max_diff(a.logits[:, :4], b.logits[:, :4]) <= TOL
    assert max_diff(a.logits[:, 4:], b.logits[:, 4:]) > 1e-3


@torch.no_grad()
def test_step_output_shapes_and_attention_rows():
    model = small(dec_layers=3, heads=4)
    src, lengths, tgt_in = padded_batch()
    memory = model.encode(src, lengths)
    outs = run_steps(model, memory, tgt_in[:, :3])
    B, S, L, H, D = 3, 7, 3, 4, 32
    for t, o in enumerate(outs):
        assert o.logits.shape == (B, 60)
        assert o.scores.shape == (B, L, H, S)
        assert o.attention.shape == (B, L, H, S)
        assert o.hidden.shape == (B, L, D)
        assert o.context.shape == (B, L, D)
        assert o.self_attention.shape == (B, L, H, t + 1)
        real = memory.mask[:, None, None, :].expand_as(o.attention)  # (B, L, H, S)
        assert torch.allclose(o.attention.sum(-1), torch.ones(B, L, H), atol=TOL)
        assert torch.all(o.attention[~real] == 0)
        assert torch.all(o.attention[real] > 0)
        assert torch.all(o.scores[~real] == float("-inf"))
        assert torch.all(torch.isfinite(o.scores[real]))
        assert torch.allclose(o.self_attention.sum(-1), torch.ones(B, L, H), atol=TOL)
    # the last decoder layer's hidden state is what the output projection reads
    assert max_diff(model.project(outs[-1].hidden[:, -1]), outs[-1].logits) <= TOL


@torch.no_grad()
def test_encoder_memory_fields():
    for norm in ("pre", "post"):
        model = small(norm=norm, enc_layers=3, dec_layers=2)
        src, lengths, _ = padded_batch()
        m = model.encode(src, lengths)
        assert isinstance(m, Memory)
        assert m.states.shape == (3, 7, 32)
        assert m.mask.tolist() == [[True] * 7, [True] * 5 + [False] * 2, [True] * 2 + [False] * 5]
        assert m.self_attention.shape == (3, 3, 2, 7, 7)
        assert m.layers.shape == (3, 3, 7, 32)
        assert m.extra["cross_k"].shape == (3, 2, 2, 7, 16)
        assert m.extra["cross_v"].shape == (3, 2, 2, 7, 16)
        keys = m.mask[:, None, None, None, :].expand_as(m.self_attention)
        assert torch.all(m.self_attention[~keys] == 0)
        assert torch.allclose(m.self_attention.sum(-1), torch.ones(3, 3, 2, 7), atol=TOL)
        top = model.enc_ln_f(m.layers[:, -1])
        assert max_diff(top, m.states) <= TOL
        if norm == "post":
            assert max_diff(m.layers[:, -1], m.states) == 0
        # the cross-attention keys of layer 1 are W^K of that layer applied to the memory
        k = model.decoder[1].cross_attn.W_k(m.states).view(3, 7, 2, 16).transpose(1, 2)
        assert max_diff(m.extra["cross_k"][:, 1], k) <= TOL


@torch.no_grad()
def test_step_never_projects_the_memory_again():
    model = small()
    src, lengths, tgt_in = padded_batch()
    memory = model.encode(src, lengths)
    calls = []
    hooks = [
        layer.cross_attn.W_k.register_forward_hook(lambda *a: calls.append("k"))
        for layer in model.decoder
    ] + [
        layer.cross_attn.W_v.register_forward_hook(lambda *a: calls.append("v"))
        for layer in model.decoder
    ]
    run_steps(model, memory, tgt_in)
    assert calls == []
    model.encode(src, lengths)  # the hooks do fire when the memory is projected
    for h in hooks:
        h.remove()
    assert sorted(calls) == ["k", "k", "v", "v"]


@pytest.mark.parametrize("positions,norm", [("sinusoidal", "pre"), ("learned", "post")])
@torch.no_grad()
def test_sentence_alone_equals_sentence_in_padded_batch(positions, norm):
    model = small(positions=positions, norm=norm)
    src, lengths, tgt_in = padded_batch()
    batch = run_steps(model, model.encode(src, lengths), tgt_in)
    for b in range(3):
        n = lengths[b].item()
        alone = run_steps(
            model, model.encode(src[b : b + 1, :n], lengths[b : b + 1]), tgt_in[b : b + 1]
        )
        for o_batch, o_alone in zip(batch, alone, strict=True):
            assert max_diff(o_batch.logits[b], o_alone.logits[0]) <= TOL
            assert max_diff(o_batch.attention[b, ..., :n], o_alone.attention[0]) <= TOL
            assert max_diff(o_batch.self_attention[b], o_alone.self_attention[0]) <= TOL
            assert max_diff(o_batch.hidden[b], o_alone.hidden[0]) <= TOL


@torch.no_grad()
def test_reorder_then_step_equals_stepping_the_reordered_batch():
    model = small()
    src, lengths, tgt_in = padded_batch()
    index = torch.tensor([2, 0, 0, 1])
    memory = model.encode(src, lengths)
    state = model.start(memory)
    for t in range(3):
        _, state = model.step(memory, state, tgt_in[:, t])
    state = model.reorder(state, index)
    memory = memory.index_select(index)
    assert state["k"].shape == (4, 2, 2, 3, 16)
    reordered = run_steps(model, model.encode(src[index], lengths[index]), tgt_in[index])
    for t in range(3, 6):
        out, state = model.step(memory, state, tgt_in[index, t])
        ref = reordered[t]
        assert max_diff(out.logits, ref.logits) <= TOL
        assert max_diff(out.attention, ref.attention) <= TOL
        assert max_diff(out.self_attention, ref.self_attention) <= TOL


def reverse_batch(g: torch.Generator, batch: int = 64):
    """Source: 3-6 symbols from 8 (ids 4..11); target: the same symbols reversed, then EOS."""
    lengths = torch.randint(3, 7, (batch,), generator=g)  # (B,)
    S = int(lengths.max())
    j = torch.arange(S + 1)[None, :]  # (1, S+1)
    n = lengths[:, None]  # (B, 1)
    src = torch.randint(4, 12, (batch, S), generator=g).masked_fill(j[:, :S] >= n, PAD)
    rev = src.gather(1, (n - 1 - j).clamp(min=0))  # (B, S+1): y_j = x_(n-1-j) for j < n
    tgt_out = torch.where(j < n, rev, torch.where(j == n, EOS, PAD))
    tgt_in = torch.cat([torch.full((batch, 1), BOS), tgt_out[:, :-1]], dim=1)
    tgt_in = tgt_in.masked_fill(tgt_in == EOS, PAD)
    return src, lengths, tgt_in, tgt_out


def test_reverse_batch_is_the_reverse_task():
    src, lengths, tgt_in, tgt_out = reverse_batch(torch.Generator().manual_seed(3), 5)
    for b, n in enumerate(lengths.tolist()):
        assert tgt_out[b, :n].tolist() == src[b, :n].flip(0).tolist()
        assert tgt_out[b, n] == EOS and torch.all(tgt_out[b, n + 1 :] == PAD)
        assert tgt_in[b, 0] == BOS and tgt_in[b, 1 : n + 1].tolist() == tgt_out[b, :n].tolist()
        assert torch.all(tgt_in[b, n + 1 :] == PAD) and torch.all(src[b, n:] == PAD)


def test_tiny_transformer_learns_to_reverse():
    torch.set_num_threads(1)
    model = build_model(
        dict(
            arch="transformer",
            src_vocab=12,
            tgt_vocab=12,
            d_model=32,
            heads=2,
            enc_layers=1,
            dec_layers=1,
            d_ff=64,
            dropout=0.0,
        )
    )
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(200):
        src, lengths, tgt_in, tgt_out = reverse_batch(g)
        logits = model(src, lengths, tgt_in).logits
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, 12), tgt_out.reshape(-1), ignore_index=PAD
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        src, lengths, tgt_in, tgt_out = reverse_batch(torch.Generator().manual_seed(99), 256)
        pred = model(src, lengths, tgt_in).logits.argmax(-1)
    real = tgt_out != PAD
    accuracy = (pred[real] == tgt_out[real]).float().mean().item()
    assert accuracy > 0.9


def test_sinusoidal_positions_known_values():
    pe = sinusoidal_positions(10, 8)
    assert pe.shape == (10, 8)
    assert torch.allclose(pe[3, 0], torch.tensor(math.sin(3.0)))
    assert torch.allclose(pe[3, 1], torch.tensor(math.cos(3.0)))
    assert torch.allclose(pe[5, 2], torch.tensor(math.sin(5 / 10000 ** (2 / 8))))
    assert torch.allclose(pe[5, 7], torch.tensor(math.cos(5 / 10000 ** (6 / 8))))


def test_sinusoidal_positions_from_an_offset_are_the_rows_of_the_whole_table():
    whole = sinusoidal_positions(40, 16)
    assert torch.equal(sinusoidal_positions(7, 16, start=30), whole[30:37])
    assert torch.equal(sinusoidal_positions(1, 16, start=0), whole[:1])


@torch.no_grad()
def test_embeddings_are_scaled_by_sqrt_d_model():
    model = small(dropout=0.0)
    tokens = torch.tensor([[5, 9]])
    x = model.src_embed(tokens)
    expected = model.src_embed.tok.weight[[5, 9]] * math.sqrt(32) + sinusoidal_positions(2, 32)
    assert max_diff(x[0], expected) <= TOL


@torch.no_grad()
def test_tied_output_projection_is_the_decoder_embedding():
    tied, untied = small(tie_embeddings=True), small(tie_embeddings=False)
    assert tied.W_out is None and untied.W_out is not None
    assert untied.num_parameters - tied.num_parameters == 60 * 32
    h = torch.randn(4, 32)
    expected = tied.dec_ln_f(h) @ tied.tgt_embed.tok.weight.T
    assert max_diff(tied.project(h), expected) <= TOL
    # no tensor is shared in the state dict, so safetensors can store it as is
    state = tied.state_dict()
    assert len({t.data_ptr() for t in state.values()}) == len(state)
    assert "tgt_embed.pe" not in state  # sinusoidal table is recomputed, not stored


def test_safetensors_round_trip(tmp_path):
    from safetensors.torch import load_file, save_file

    model = small(positions="learned")
    save_file(model.state_dict(), tmp_path / "m.safetensors")
    other = small(positions="learned")
    other.load_state_dict(load_file(tmp_path / "m.safetensors"))
    src, lengths, tgt_in = padded_batch()
    with torch.no_grad():
        assert max_diff(model(src, lengths, tgt_in).logits, other(src, lengths, tgt_in).logits) == 0


def test_build_model_from_dict_round_trips_config():
    model = build_model({"arch": "transformer", "src_vocab": 50, "tgt_vocab": 60, "d_model": 64})
    assert isinstance(model, TransformerSeq2Seq)
    assert model.arch == "transformer"
    assert len(model.encoder) == 3 and len(model.decoder) == 3
    again = build_model(config_to_dict(model.config))
    assert again.config == model.config


@pytest.mark.parametrize(
    "field,value,words",
    [
        ("d_model", 30, "divisible by heads"),
        ("heads", 0, "positive"),
        ("src_vocab", 0, ">= 4"),
        ("tgt_vocab", 2, ">= 4"),
        ("enc_layers", 0, "positive"),
        ("dec_layers", -1, "positive"),
        ("d_ff", 0, "positive"),
        ("max_len", 0, "positive"),
        ("dropout", 1.0, "[0, 1)"),
        ("positions", "rotary", "sinusoidal, learned"),
        ("norm", "sandwich", "pre, post"),
        ("activation", "tanh", "relu, gelu"),
        ("tie_embeddings", "yes", "True or False"),
        ("arch", "bahdanau", "'transformer'"),
    ],
)
def test_config_errors_name_the_field(field, value, words):
    fields = dict(src_vocab=50, tgt_vocab=60, heads=4)
    fields[field] = value
    with pytest.raises(TransformerConfigError) as err:
        TransformerConfig(**fields)
    message = str(err.value)
    assert f"TransformerConfig.{field}={value!r}" in message
    assert words in message
    assert isinstance(err.value, ValueError)


def test_odd_d_model_with_sinusoidal_positions_is_refused():
    with pytest.raises(TransformerConfigError, match="d_model=9.*even"):
        TransformerConfig(src_vocab=50, tgt_vocab=60, d_model=9, heads=3)
    TransformerConfig(src_vocab=50, tgt_vocab=60, d_model=9, heads=3, positions="learned")


def test_make_config_rejects_unknown_fields():
    with pytest.raises(ValueError, match="unknown transformer config field"):
        make_config("transformer", src_vocab=50, tgt_vocab=60, layers=3)


@torch.no_grad()
def test_sequence_longer_than_max_len_is_refused():
    model = small(max_len=8)
    src = torch.full((1, 9), 5)
    with pytest.raises(SequenceTooLongError, match="max_len=8"):
        model.encode(src, torch.tensor([9]))
    memory = model.encode(src[:, :8], torch.tensor([8]))
    state = model.start(memory)
    for _ in range(8):
        _, state = model.step(memory, state, torch.tensor([5]))
    with pytest.raises(SequenceTooLongError, match="position 8"):
        model.step(memory, state, torch.tensor([5]))


@torch.no_grad()
def test_dropout_is_active_in_training_mode_only():
    model = small(dropout=0.5)
    src, lengths, tgt_in = padded_batch()
    model.train()
    a, b = model(src, lengths, tgt_in).logits, model(src, lengths, tgt_in).logits
    assert max_diff(a, b) > 1e-3
    model.eval()
    a, b = model(src, lengths, tgt_in).logits, model(src, lengths, tgt_in).logits
    assert max_diff(a, b) == 0


@torch.no_grad()
def test_source_lengths_out_of_range_are_refused():
    model = small()
    src = torch.full((2, 4), 5)
    with pytest.raises(ValueError, match=r"src_lengths value must be in 1..4.*\[4, 0\]"):
        model.encode(src, torch.tensor([4, 0]))
    with pytest.raises(ValueError, match=r"src_lengths value must be in 1..4.*\[5, 2\]"):
        model.encode(src, torch.tensor([5, 2]))
    with pytest.raises(ValueError, match=r"src \(B, S\) and src_lengths \(B,\)"):
        model.encode(src, torch.tensor([4]))
