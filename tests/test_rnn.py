"""The RNN families: faithful step API, shapes, masking, reordering, learning a copy task."""

from __future__ import annotations

import itertools

import pytest
import torch

from explorer.seq2seq.models.attention import DotScore
from explorer.seq2seq.models.base import BOS, EOS, PAD
from explorer.seq2seq.models.families import build_model
from explorer.seq2seq.models.rnn import ARCHS, RNNConfig, RNNConfigError, RNNInputError

SRC_V, TGT_V, EMB, HID = 12, 13, 8, 10

# Three sentences of different lengths, padded; targets padded too.
SRC = torch.tensor([[5, 6, 7, 8, 9, 3], [9, 4, 11, 3, 0, 0], [7, 3, 0, 0, 0, 0]])
SRC_LEN = torch.tensor([6, 4, 2])
TGT_IN = torch.tensor([[BOS, 5, 6, 7, 8], [BOS, 9, 4, 0, 0], [BOS, 7, 7, 4, 0]])
TGT_LEN = torch.tensor([5, 3, 4])


def tiny(arch: str, **kw):
    fields = dict(arch=arch, src_vocab=SRC_V, tgt_vocab=TGT_V, emb_dim=EMB, hidden_dim=HID)
    fields.update(dropout=0.3, **kw)
    return build_model(fields).eval()


def run_steps(model, src, src_len, tgt_in):
    """encode/start/step over tgt_in; returns the step outputs, the memory and every state."""
    memory = model.encode(src, src_len)
    state = model.start(memory)
    outs, states = [], [state]
    for t in range(tgt_in.shape[1]):
        out, state = model.step(memory, state, tgt_in[:, t])
        outs.append(out)
        states.append(state)
    return outs, memory, states


def real_positions(lengths: torch.Tensor, T: int) -> torch.Tensor:
    return torch.arange(T) < lengths.unsqueeze(1)  # (B, T)


# ------------------------------------------------------------------------- faithfulness

COMBOS = list(itertools.product(ARCHS, ("gru", "lstm"), (1, 2), (True, False), (False, True)))


@pytest.mark.parametrize("arch,cell,layers,bidirectional,tie", COMBOS)
@torch.no_grad()
def test_stacked_steps_equal_forward(arch, cell, layers, bidirectional, tie):
    model = tiny(arch, cell=cell, layers=layers, bidirectional=bidirectional, tie_embeddings=tie)
    fwd = model(SRC, SRC_LEN, TGT_IN)
    outs, _, _ = run_steps(model, SRC, SRC_LEN, TGT_IN)
    real = real_positions(TGT_LEN, TGT_IN.shape[1])  # (B, T)

    step_logp = torch.stack([o.logits for o in outs], 1).log_softmax(-1)
    fwd_logp = fwd.logits.log_softmax(-1)
    assert (step_logp - fwd_logp)[real].abs().max() <= 1e-5
    step_hidden = torch.stack([o.hidden for o in outs], 1)
    assert (step_hidden - fwd.hidden)[real].abs().max() <= 1e-5
    step_context = torch.stack([o.context for o in outs], 1)
    assert (step_context - fwd.context)[real].abs().max() <= 1e-5
    if arch == "none":
        assert fwd.attention is None and fwd.scores is None and fwd.query is None
        assert all(o.attention is None and o.scores is None and o.query is None for o in outs)
    else:
        step_query = torch.stack([o.query for o in outs], 1)  # (B, T, 1, 1, D_q)
        assert (step_query - fwd.query)[real].abs().max() <= 1e-5
        step_attn = torch.stack([o.attention for o in outs], 1)  # (B, T, 1, 1, S)
        assert (step_attn - fwd.attention)[real].abs().max() <= 1e-5
        step_scores = torch.stack([o.scores for o in outs], 1)
        assert torch.equal(step_scores.isinf(), fwd.scores.isinf())
        finite = ~fwd.scores.isinf() & real[:, :, None, None, None]
        assert (step_scores - fwd.scores)[finite].abs().max() <= 1e-5


# ------------------------------------------------------------------------- shapes and masking


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("cell", ("gru", "lstm"))
@torch.no_grad()
def test_step_output_shapes_and_masking(arch, cell):
    model = tiny(arch, cell=cell, layers=2)
    outs, memory, states = run_steps(model, SRC, SRC_LEN, TGT_IN)
    B, S = SRC.shape
    d_ctx = HID if arch == "luong-dot" else 2 * HID  # bidirectional encoder: 2H, dot projects
    assert memory.states.shape == (B, S, d_ctx)
    assert memory.mask.tolist() == real_positions(SRC_LEN, S).tolist()
    for out in outs:
        assert out.logits.shape == (B, TGT_V)
        assert out.hidden.shape == (B, 2, HID)
        assert out.context.shape == (B, 1, d_ctx)
        assert out.self_attention is None
        if arch == "none":
            assert out.attention is None and out.scores is None
            continue
        assert out.attention.shape == out.scores.shape == (B, 1, 1, S)
        alpha = out.attention[:, 0, 0]  # (B, S)
        assert torch.allclose(alpha.sum(-1), torch.ones(B), atol=1e-6)
        assert (alpha[~memory.mask] == 0).all()
        assert (out.scores[:, 0, 0][~memory.mask] == float("-inf")).all()
        assert out.scores[:, 0, 0][memory.mask].isfinite().all()
        # the context is the attention-weighted sum of the memory states
        expected = torch.bmm(alpha.unsqueeze(1), memory.states)
        assert torch.allclose(out.context, expected, atol=1e-6)
    # Every tensor the decoder keeps has the batch first, so rows can be picked.
    for state in states:
        assert all(v.shape[0] == B for v in state.values())
        assert state["h"].shape == (B, 2, HID)
        assert ("cell" in state) == (cell == "lstm")
    assert all(v.shape[0] == B for v in memory.extra.values())


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("cell", ("gru", "lstm"))
@torch.no_grad()
def test_sentence_alone_equals_sentence_in_padded_batch(arch, cell):
    model = tiny(arch, cell=cell, layers=2)
    batch_outs, _, _ = run_steps(model, SRC, SRC_LEN, TGT_IN)
    for b in range(SRC.shape[0]):
        n, m = SRC_LEN[b].item(), TGT_LEN[b].item()
        alone, _, _ = run_steps(
            model, SRC[b : b + 1, :n], SRC_LEN[b : b + 1], TGT_IN[b : b + 1, :m]
        )
        for t in range(m):
            a, z = alone[t], batch_outs[t]
            assert (a.logits[0] - z.logits[b]).abs().max() <= 1e-5
            assert (a.hidden[0] - z.hidden[b]).abs().max() <= 1e-5
            assert (a.context[0] - z.context[b]).abs().max() <= 1e-5
            if arch != "none":
                assert (a.attention[0, ..., :n] - z.attention[b, ..., :n]).abs().max() <= 1e-5
                assert (z.attention[b, ..., n:] == 0).all()


def test_none_context_is_the_encoders_forward_and_backward_final_states():
    model = tiny("none", bidirectional=True)
    with torch.no_grad():
        memory = model.encode(SRC, SRC_LEN)
        out, _ = model.step(memory, model.start(memory), torch.full((3,), BOS))
    for b, n in enumerate(SRC_LEN.tolist()):
        forward_final = memory.states[b, n - 1, :HID]  # after reading the last real token
        backward_final = memory.states[b, 0, HID:]  # after reading back to the first
        c = out.context[b, 0]
        assert torch.allclose(c, torch.cat([forward_final, backward_final]), atol=1e-6)


# ------------------------------------------------------------------------- reorder


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("cell", ("gru", "lstm"))
@torch.no_grad()
def test_reorder_then_step_equals_stepping_the_reordered_batch(arch, cell):
    model = tiny(arch, cell=cell, layers=2)
    index = torch.tensor([2, 0, 0, 1])
    tgt = torch.tensor([[BOS, 5, 6, 7, 8], [BOS, 9, 4, 5, 5], [BOS, 7, 7, 4, 9]])
    memory = model.encode(SRC, SRC_LEN)
    state = model.start(memory)
    for t in range(2):
        _, state = model.step(memory, state, tgt[:, t])
    state = model.reorder(state, index)
    memory = memory.index_select(index)
    after = []
    for t in range(2, tgt.shape[1]):
        out, state = model.step(memory, state, tgt[index, t])
        after.append(out)

    expected, _, _ = run_steps(model, SRC[index], SRC_LEN[index], tgt[index])
    for got, want in zip(after, expected[2:], strict=True):
        assert torch.allclose(got.logits, want.logits, atol=1e-6)
        assert torch.allclose(got.hidden, want.hidden, atol=1e-6)
        if arch != "none":
            assert torch.allclose(got.attention, want.attention, atol=1e-6)


# ------------------------------------------------------------------------- learning


def copy_batch(generator: torch.Generator, batch: int = 32):
    """Source: 3-6 symbols from 4..11; target: the same symbols, then EOS."""
    lengths = torch.randint(3, 7, (batch,), generator=generator)
    S = int(lengths.max())
    symbols = torch.randint(4, 12, (batch, S), generator=generator)
    real = torch.arange(S) < lengths.unsqueeze(1)
    src = symbols.masked_fill(~real, PAD)
    tgt = torch.full((batch, S + 2), PAD)
    tgt[:, 0] = BOS
    tgt[:, 1 : S + 1] = src
    tgt[torch.arange(batch), lengths + 1] = EOS
    return src, lengths, tgt[:, :-1], tgt[:, 1:]


@pytest.mark.parametrize("arch", ARCHS)
def test_tiny_model_learns_to_copy(arch):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    model = build_model(
        dict(arch=arch, src_vocab=12, tgt_vocab=12, emb_dim=16, hidden_dim=48, dropout=0.0)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(250):
        src, lengths, tgt_in, tgt_out = copy_batch(generator)
        logits = model(src, lengths, tgt_in).logits
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, 12), tgt_out.reshape(-1), ignore_index=PAD
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    model.eval()
    src, lengths, tgt_in, tgt_out = copy_batch(torch.Generator().manual_seed(99), batch=200)
    with torch.no_grad():
        predicted = model(src, lengths, tgt_in).logits.argmax(-1)
    real = tgt_out != PAD
    accuracy = (predicted == tgt_out)[real].float().mean().item()
    assert accuracy > 0.9, f"{arch}: token accuracy {accuracy:.3f}"


# ------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "field,value",
    [
        ("arch", "transformer-ish"),
        ("src_vocab", 3),
        ("tgt_vocab", 2.5),
        ("emb_dim", 0),
        ("hidden_dim", -4),
        ("layers", 0),
        ("cell", "rnn"),
        ("bidirectional", "yes"),
        ("dropout", 1.0),
        ("dropout", -0.1),
        ("tie_embeddings", 1),
        ("attn_dim", 0),
    ],
)
def test_config_rejects_bad_fields_naming_them(field, value):
    fields = dict(arch="bahdanau", src_vocab=SRC_V, tgt_vocab=TGT_V)
    fields[field] = value
    with pytest.raises(RNNConfigError, match=rf"RNNConfig\.{field} must be"):
        RNNConfig(**fields)
    if field != "arch":  # an unknown arch is the family registry's to reject
        with pytest.raises(ValueError, match=rf"RNNConfig\.{field}"):
            build_model(fields)


def test_build_model_from_dict_sets_arch_and_defaults():
    model = build_model({"arch": "bahdanau", "src_vocab": 50, "tgt_vocab": 60})
    assert model.arch == "bahdanau"
    assert model.config == RNNConfig(arch="bahdanau", src_vocab=50, tgt_vocab=60)
    assert model.out.out_features == 60


def test_dot_scores_need_equal_sizes_and_luong_dot_projects_a_wider_encoder():
    with pytest.raises(ValueError, match="equal query and key sizes"):
        DotScore(HID, 2 * HID)
    wide = tiny("luong-dot", bidirectional=True)  # encoder 2H wide: projected to H
    assert wide.key_proj is not None
    assert wide.encode(SRC, SRC_LEN).states.shape == (3, SRC.shape[1], HID)
    narrow = tiny("luong-dot", bidirectional=False)  # already H wide: nothing to project
    assert narrow.key_proj is None
    assert tiny("luong-general", bidirectional=True).key_proj is None
    assert tiny("bahdanau", bidirectional=True).key_proj is None


def test_tied_embeddings_share_one_matrix():
    model = tiny("bahdanau", tie_embeddings=True)
    assert model.out.weight is model.tgt_embedding.weight
    assert model.out_proj is not None  # hidden 10 → emb 8 before the tied layer
    same = build_model(
        dict(arch="luong-general", src_vocab=SRC_V, tgt_vocab=TGT_V, emb_dim=16, hidden_dim=16)
        | {"tie_embeddings": True}
    )
    assert same.out_proj is None
    untied = tiny("bahdanau")
    assert untied.out.weight is not untied.tgt_embedding.weight


def test_bad_inputs_are_rejected_with_the_argument_named():
    model = tiny("bahdanau")
    with pytest.raises(RNNInputError, match="src_lengths must lie in"):
        model.encode(SRC, torch.tensor([6, 4, 0]))
    with pytest.raises(RNNInputError, match="src_lengths must have shape"):
        model.encode(SRC, torch.tensor([6, 4]))
    with pytest.raises(RNNInputError, match="src holds ids outside"):
        model.encode(SRC.masked_fill(SRC == 9, SRC_V), SRC_LEN)
    with pytest.raises(RNNInputError, match="tgt_in holds ids outside"):
        model(SRC, SRC_LEN, TGT_IN + TGT_V)
    memory = model.encode(SRC, SRC_LEN)
    with pytest.raises(RNNInputError, match="y_prev must be"):
        model.step(memory, model.start(memory), TGT_IN)
