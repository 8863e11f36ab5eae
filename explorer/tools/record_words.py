"""Add the training words to a checkpoint written before checkpoints recorded them, without
retraining: ``python -m explorer.tools.record_words models/*.safetensors``.

The run's stored options regenerate its training split (the classroom generator is deterministic
for its size and seed); the split must have the sizes the corpus description records, or the file
is left alone. Only the header's ``corpus`` entry changes: the tensor data after the header is
copied byte for byte, and every other metadata field keeps its exact text.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

from explorer.seq2seq.checkpoint import CheckpointError, _atomic_write, _metadata, _read_header
from explorer.seq2seq.data.words import FIELD, words_record


def regenerated_words(path: Path, corpus: dict[str, Any], train_state: dict[str, Any]) -> str:
    """The word list of the training split the stored options regenerate, after checking the
    split against the stored corpus description."""
    from explorer.seq2seq.training.options import TrainOptions, load_splits

    options = train_state.get("options")
    if not isinstance(options, dict):
        raise CheckpointError(f"{path}: train_state has no options to regenerate the corpus from")
    full, splits = load_splits(TrainOptions.from_dict(options))
    sizes = {k: len(s.pairs) for k, s in zip(("train", "valid", "test"), splits, strict=True)}
    for key, size in sizes.items():
        if corpus.get(key) != size:
            raise CheckpointError(
                f"{path}: the regenerated corpus has {size} {key} pairs but the checkpoint "
                f"records {corpus.get(key)}: not the corpus it was trained on"
            )
    record = words_record(splits[0].pairs, full.description)
    if not record:
        raise CheckpointError(f"{path}: the training words are too many to record")
    return record[FIELD]


def add_words(path: str | Path) -> str:
    """Rewrite ``path`` with its training words in the corpus description; returns the list."""
    path = Path(path)
    header = _read_header(path)
    records = _metadata(path, header)
    listed = regenerated_words(path, records["corpus"], records["train_state"])
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header["__metadata__"]["corpus"] = json.dumps({**records["corpus"], FIELD: listed})
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # safetensors keeps the data 8-byte aligned
    _atomic_write(path, struct.pack("<Q", len(text)) + text + raw[8 + n :])
    return listed


def main(argv: list[str]) -> int:
    for name in argv:
        try:
            listed = add_words(name)
        except CheckpointError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"{name}: {len(listed.split())} training words recorded")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
