"""Build any model family from a plain config dict (as stored in checkpoints).

``arch`` names the family: ``none`` (RNN without attention), ``bahdanau``, ``luong-dot``,
``luong-general`` (RNN with attention) or ``transformer``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from explorer.seq2seq.models.base import Seq2Seq

RNN_ARCHS = ("none", "bahdanau", "luong-dot", "luong-general")
ARCHS = RNN_ARCHS + ("transformer",)


def _family(arch: str):
    if arch in RNN_ARCHS:
        from explorer.seq2seq.models.rnn import RNNConfig, RNNSeq2Seq

        return RNNConfig, RNNSeq2Seq
    if arch == "transformer":
        from explorer.seq2seq.models.transformer import TransformerConfig, TransformerSeq2Seq

        return TransformerConfig, TransformerSeq2Seq
    raise ValueError(f"unknown architecture {arch!r}; expected one of {', '.join(ARCHS)}")


def make_config(arch: str, **fields: Any):
    """The family's config dataclass for ``arch``; unknown field names are an error."""
    config_cls, _ = _family(arch)
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"unknown {arch} config field(s): {', '.join(unknown)}")
    return config_cls(arch=arch, **fields)


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def build_model(config: Any) -> Seq2Seq:
    """A freshly initialised model from a config dataclass or a dict with an ``arch`` key."""
    if isinstance(config, dict):
        fields = dict(config)
        arch = fields.pop("arch", None)
        if not isinstance(arch, str):
            raise ValueError("model config has no 'arch' field")
        config = make_config(arch, **fields)
    _, model_cls = _family(config.arch)
    return model_cls(config)
