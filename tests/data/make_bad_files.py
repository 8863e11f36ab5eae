"""Write the hand-made bad checkpoints and corpora under tests/data (deterministic, a few KB each).

    PYTHONPATH=. python tests/data/make_bad_files.py

Checkpoints start from one valid tiny Transformer checkpoint and break it in one way each; the
expected refusal of every file is listed in tests/test_untrusted_checkpoints.py. Files whose
header has to be malformed in ways safetensors itself would refuse to write are assembled by hand
(8-byte little-endian header length, JSON header, raw data).
"""

from __future__ import annotations

import gzip
import io
import json
import pathlib
import pickle
import random
import struct
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

import sentencepiece as spm  # noqa: E402
import torch  # noqa: E402

from explorer.seq2seq.checkpoint import save_checkpoint  # noqa: E402
from explorer.seq2seq.data.tokenizer import Tokenizer  # noqa: E402
from explorer.seq2seq.models.base import BOS, EOS, PAD, UNK  # noqa: E402
from explorer.seq2seq.models.families import build_model  # noqa: E402

CHECKPOINTS = HERE / "bad_checkpoints"
CORPORA = HERE / "bad_corpora"
MARKER = "PWNED_BY_UNTRUSTED_FILE"  # created in the working directory if a payload ever runs

EN = ["the cat sleeps", "the dog eats", "a cat eats", "a dog sleeps"]
FR = ["le chat dort", "le chien mange", "un chat mange", "un chien dort"]


def tiny_config(tokenizer) -> dict:
    return {
        "arch": "transformer",
        "src_vocab": tokenizer.src_vocab_size,
        "tgt_vocab": tokenizer.tgt_vocab_size,
        "d_model": 4,
        "heads": 1,
        "enc_layers": 1,
        "dec_layers": 1,
        "d_ff": 4,
        "dropout": 0.0,
        "max_len": 16,
    }


def small_spm(sentences: list[str]) -> bytes:
    """A sentencepiece model without the default normaliser table (which alone is ~240 KB)."""
    spm.set_random_generator_seed(0)
    writer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=writer,
        vocab_size=24,
        model_type="bpe",
        character_coverage=1.0,
        hard_vocab_limit=False,
        normalization_rule_name="identity",
        pad_id=PAD,
        unk_id=UNK,
        bos_id=BOS,
        eos_id=EOS,
        num_threads=1,
        minloglevel=2,
    )
    return writer.getvalue()


def valid_checkpoint(path: Path) -> Path:
    torch.manual_seed(0)
    tokenizer = Tokenizer.from_bytes(small_spm(EN), small_spm(FR))
    model = build_model(tiny_config(tokenizer))
    return save_checkpoint(path, model, tokenizer, history=[{"step": 1, "loss": 3.0}])


class Payload:
    """Unpickling this calls pathlib.Path.touch(MARKER): proof that code ran."""

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(MARKER),)


# raw safetensors surgery --------------------------------------------------------------------


def split(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def join(header: dict | str, body: bytes) -> bytes:
    if not isinstance(header, str):  # sorted: safetensors writes metadata in hash order
        header = json.dumps(header, separators=(",", ":"), sort_keys=True)
    raw = header
    raw = raw.encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + body


def with_metadata(data: bytes, **changes) -> bytes:
    """The same file with metadata fields replaced (None removes one); values may be non-strings,
    which safetensors would never write but an attacker can."""
    header, body = split(data)
    meta = header["__metadata__"]
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    return join(header, body)


def with_config(data: bytes, **changes) -> bytes:
    header, _ = split(data)
    config = json.loads(header["__metadata__"]["config"])
    config.update(changes)
    return with_metadata(data, config=json.dumps(config))


def with_tensor_bytes(data: bytes, name: str, fill: bytes) -> bytes:
    """Overwrite the raw data of one tensor with ``fill`` repeated."""
    header, body = split(data)
    lo, hi = header[name]["data_offsets"]
    body = body[:lo] + (fill * (hi - lo))[: hi - lo] + body[hi:]
    return join(header, body)


def with_tensor_dtype(data: bytes, name: str, dtype: str, width: int) -> bytes:
    """Re-declare one tensor's dtype, keeping its bytes (shape adjusted to the same length)."""
    header, body = split(data)
    info = header[name]
    lo, hi = info["data_offsets"]
    info["dtype"], info["shape"] = dtype, [(hi - lo) // width]
    return join(header, body)


def bad_checkpoints(valid: bytes) -> dict[str, bytes]:
    header, body = split(valid)
    n = len(valid) - len(body) - 8
    rng = random.Random(0)
    weight = sorted(k for k in header if k.startswith("model.") and len(header[k]["shape"]) == 2)[0]
    torch_zip = io.BytesIO()
    torch.save({"weights": torch.zeros(3), "payload": Payload()}, torch_zip)
    plain_zip = io.BytesIO()
    with zipfile.ZipFile(plain_zip, "w") as z:
        z.writestr(
            zipfile.ZipInfo("data.pkl", date_time=(2020, 1, 1, 0, 0, 0)), pickle.dumps(Payload())
        )
    offsets_past_end = dict(header)
    offsets_past_end[weight] = dict(header[weight], data_offsets=[0, len(body) + 4096])
    return {
        "empty.safetensors": b"",
        "length_only.safetensors": valid[:8],
        "cut_in_header.safetensors": valid[: 8 + n // 2],
        "cut_in_data.safetensors": valid[: 8 + n + len(body) // 2],
        "cut_last_byte.safetensors": valid[:-1],
        "random_bytes.safetensors": bytes(rng.randrange(256) for _ in range(2048)),
        "pickle_payload.safetensors": pickle.dumps(Payload()),
        "pickle_protocol0_payload.safetensors": pickle.dumps(Payload(), protocol=0),
        "torch_save_payload.safetensors": torch_zip.getvalue(),
        "zip_with_pickle.safetensors": plain_zip.getvalue(),
        "header_claims_1tb.safetensors": struct.pack("<Q", 1 << 40) + b'{"a":' + b" " * 64,
        "header_claims_past_end.safetensors": struct.pack("<Q", 5000) + b"{" + b" " * 100,
        "header_not_json.safetensors": join("{not json at all" + " " * 8, body),
        "header_is_a_list.safetensors": join("[1, 2, 3]", body),
        "header_deeply_nested.safetensors": join('{"a":' + "[" * 1500 + "]" * 1500 + "}", b""),
        "offsets_past_end.safetensors": join(offsets_past_end, body),
        "plain_safetensors.safetensors": with_metadata(valid, format=None),
        "format_version_2.safetensors": with_metadata(valid, format_version="2"),
        "unknown_arch.safetensors": with_config(valid, arch="martian"),
        "absurd_hidden_dim.safetensors": with_config(valid, d_model=10**9),
        "absurd_layers.safetensors": with_config(valid, enc_layers=10**7),
        "negative_dim.safetensors": with_config(valid, d_ff=-4),
        "shape_disagrees.safetensors": with_config(valid, d_ff=6),
        "config_field_wrong_type.safetensors": with_config(valid, d_model="four"),
        "config_unknown_field.safetensors": with_config(valid, flux_capacitor=1),
        "config_not_dict.safetensors": with_metadata(valid, config="[1, 2]"),
        "config_not_string.safetensors": with_metadata(valid, config={"arch": "transformer"}),
        "card_not_json.safetensors": with_metadata(valid, card="{not json"),
        "history_wrong_type.safetensors": with_metadata(valid, history='{"step": 1}'),
        "history_missing.safetensors": with_metadata(valid, history=None),
        "num_parameters_list.safetensors": with_metadata(valid, num_parameters=[1, 2]),
        "aliases_not_names.safetensors": with_metadata(valid, aliases='{"x.weight": [1]}'),
        "alias_to_missing.safetensors": with_metadata(valid, aliases='{"x.weight": "nowhere"}'),
        "nan_weights.safetensors": with_tensor_bytes(
            valid, weight, struct.pack("<f", float("nan"))
        ),
        "inf_weights.safetensors": with_tensor_bytes(
            valid, weight, struct.pack("<f", float("inf"))
        ),
        "weight_read_as_bytes.safetensors": with_tensor_dtype(valid, weight, "U8", 1),
        "spm_not_bytes.safetensors": with_tensor_dtype(valid, "spm.src", "I8", 1),
        "spm_garbage.safetensors": with_tensor_bytes(valid, "spm.tgt", b"\xff\x07garbage"),
    }


# corpora ------------------------------------------------------------------------------------


def bad_corpora() -> dict[str, bytes]:
    rng = random.Random(1)
    good = "".join(f"{s}\t{t}\n" for s, t in zip(EN, FR, strict=True)).encode()
    full_gz = gzip.compress(good * 20, mtime=0)
    first = good.index(b"\n") + 1
    return {
        "random_bytes.tsv": bytes(rng.randrange(256) for _ in range(1024)),
        "random_bytes_no_nul.tsv": bytes(rng.randrange(1, 256) for _ in range(1024)),
        "latin1_in_gzip.tsv.gz": gzip.compress(
            good + "na\u00efve\tna\u00eff\n".encode("latin-1"), mtime=0
        ),
        "latin1_line.tsv": good[:first] + "caf\u00e9\tcaf\u00e9\n".encode("latin-1") + good[first:],
        "bom.tsv": b"\xef\xbb\xbf" + good,
        "crlf.tsv": good.replace(b"\n", b"\r\n"),
        "empty_lines.tsv": b"\n" + good.replace(b"\n", b"\n\n", 2) + b"\n\n",
        "extra_tabs.tsv": good + b"one\ttwo\tthree\n\t\t\n",
        "no_tab.tsv": good + b"just one column\n",
        "empty.tsv": b"",
        "truncated.tsv.gz": full_gz[: len(full_gz) // 2],
        "nul_bytes.tsv": good + b"a\x00b\tc\n",
        "lines_4.en": "\n".join(EN).encode() + b"\n",
        "lines_3.fr": "\n".join(FR[:3]).encode() + b"\n",
    }


def main() -> None:
    CHECKPOINTS.mkdir(exist_ok=True)
    CORPORA.mkdir(exist_ok=True)
    path = valid_checkpoint(CHECKPOINTS / "valid.safetensors")
    valid = join(*split(path.read_bytes()))
    path.write_bytes(valid)
    for folder, files in ((CHECKPOINTS, bad_checkpoints(valid)), (CORPORA, bad_corpora())):
        for name, data in files.items():
            (folder / name).write_bytes(data)
    print(f"valid checkpoint: {len(valid)} bytes")


if __name__ == "__main__":
    main()
