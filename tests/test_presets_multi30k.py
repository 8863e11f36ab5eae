"""The Multi30k de→en presets build valid options and models, and the command line keeps them
when it names the corpus."""

from __future__ import annotations

import pytest

from explorer.cli import _parser
from explorer.cli_train import train_options_from_args
from explorer.seq2seq.models.families import build_model, make_config
from explorer.seq2seq.training.presets import PRESETS
from explorer.seq2seq.training.train import TrainOptions

NAMES = ["multi30k-de-en-transformer", "multi30k-de-en-bahdanau"]


@pytest.mark.parametrize("name", NAMES)
def test_preset_builds_valid_options_and_a_model(name):
    o = TrainOptions.from_preset(name)
    assert o.validated() is o
    assert (o.src_lang, o.tgt_lang, o.joint_vocab) == ("de", "en", True)
    assert o.batch_size * 14 > o.batch_tokens  # at ~14 pieces a sentence the tokens bind
    assert o.label_smoothing == 0.1 and o.average_last >= 2 and o.eval_every > 0
    assert o.max_minutes == 60 and o.threads == 0  # an hour; torch's default: every core
    assert 0.1 <= o.model["dropout"] <= 0.3
    config = make_config(o.arch, src_vocab=o.vocab_size, tgt_vocab=o.vocab_size, **o.model)
    model = build_model(config)
    assert model.arch == o.arch and model.num_parameters > 1_000_000


def test_transformer_preset_is_issue_19s_configuration_with_a_warm_up():
    o = TrainOptions.from_preset("multi30k-de-en-transformer")
    assert o.schedule == "noam" and o.warmup > 0
    sizes = {k: o.model[k] for k in ("d_model", "heads", "enc_layers", "dec_layers", "d_ff")}
    assert sizes == {"d_model": 256, "heads": 4, "enc_layers": 3, "dec_layers": 3, "d_ff": 1024}
    assert o.model["norm"] == "pre" and o.model["tie_embeddings"] is True


@pytest.mark.parametrize("name", NAMES)
def test_the_command_line_names_the_corpus_and_keeps_the_preset(name):
    args = _parser().parse_args(
        ["train", "--preset", name, "--corpus", "data/multi30k/train", "--corpus-size", "2000"]
    )
    o = train_options_from_args(args).validated()
    want = TrainOptions.from_preset(name)
    assert o.corpus == "data/multi30k/train" and o.corpus_size == 2000
    assert (o.src_lang, o.tgt_lang, o.model, o.batch_tokens) == (
        "de", "en", want.model, want.batch_tokens,
    )  # fmt: skip
    assert name in PRESETS


def test_the_gpu_preset_is_the_base_transformer_in_three_minutes():
    o = TrainOptions.from_preset("multi30k-de-en-transformer-base")
    assert o.validated() is o
    sizes = {k: o.model[k] for k in ("d_model", "heads", "enc_layers", "dec_layers", "d_ff")}
    assert sizes == {"d_model": 512, "heads": 8, "enc_layers": 6, "dec_layers": 6, "d_ff": 2048}
    assert o.max_minutes == 3 and o.amp and o.device == "auto"
    assert o.batch_size * 14 > o.batch_tokens == 16384  # the tokens bind, as above
    config = make_config(o.arch, src_vocab=o.vocab_size, tgt_vocab=o.vocab_size, **o.model)
    # 6 x 3,152,384 per encoder layer + 6 x 4,204,032 per decoder layer + 2 x 8,000 x 512
    # embeddings (the output tied to the target ones) + the two final norms
    assert build_model(config).num_parameters == 52_332_544
