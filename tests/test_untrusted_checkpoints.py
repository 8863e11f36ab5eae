"""Checkpoints from anywhere: every bad file is refused with one line naming it, nothing runs.

The fixed bad files in tests/data/bad_checkpoints are written by tests/data/make_bad_files.py;
the fuzz tests break the valid tiny Transformer checkpoint they were made from at random.
"""

import json
import os
import pickletools
import re
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from explorer.seq2seq.checkpoint import CheckpointError, load_checkpoint, read_card

DATA = Path(__file__).parent / "data"
BAD = DATA / "bad_checkpoints"
MARKER = "PWNED_BY_UNTRUSTED_FILE"  # the payloads' Path.touch target, relative to the cwd

# file -> what its refusal must say (load_checkpoint)
EXPECTED = {
    "empty.safetensors": r"not a checkpoint \(no safetensors header\)",
    "length_only.safetensors": r"not a checkpoint \(no safetensors header\)",
    "cut_in_header.safetensors": r"truncated \(header declares \d+ bytes, file has \d+",
    "cut_in_data.safetensors": r"truncated \(tensor data needs \d+ bytes",
    "cut_last_byte.safetensors": r"truncated \(tensor data needs (\d+) bytes, file has \d+\)",
    "random_bytes.safetensors": r"not a checkpoint",
    "pickle_payload.safetensors": r"this is a pickle file; it is never unpickled",
    "pickle_protocol0_payload.safetensors": r"not a checkpoint \(no safetensors header\)",
    "torch_save_payload.safetensors": r"this is a zip archive \(torch.save or similar\)",
    "zip_with_pickle.safetensors": r"this is a zip archive",
    "header_claims_1tb.safetensors": r"header too large \(1099511627776 bytes declared",
    "header_claims_past_end.safetensors": r"truncated \(header declares 5000 bytes",
    "header_not_json.safetensors": r"header is not JSON",
    "header_is_a_list.safetensors": r"not a checkpoint \(no safetensors header\)",
    "header_deeply_nested.safetensors": r"header is not JSON",
    "offsets_past_end.safetensors": r"truncated \(tensor data needs \d+ bytes",
    "plain_safetensors.safetensors": r"unknown format None",
    "format_version_2.safetensors": r"unsupported format_version '2'",
    "unknown_arch.safetensors": r"cannot build the model: unknown architecture 'martian'",
    "absurd_hidden_dim.safetensors": r"config field 'd_model' = 1000000000 is larger than",
    "absurd_layers.safetensors": r"config field 'enc_layers' = 10000000 is more layers than",
    "negative_dim.safetensors": r"cannot build the model: .*d_ff=-4: must be a positive",
    "shape_disagrees.safetensors": r"weight \S+ has shape \(\d+, 4\) but the config gives",
    "config_field_wrong_type.safetensors": r"cannot build the model: .*d_model='four'",
    "config_unknown_field.safetensors": r"cannot build the model: .*flux_capacitor",
    "config_not_dict.safetensors": r"metadata field 'config' is a list, expected a dict",
    "config_not_string.safetensors": r"metadata field 'config' is not JSON",
    "card_not_json.safetensors": r"metadata field 'card' is not JSON",
    "history_wrong_type.safetensors": r"metadata field 'history' is a dict, expected a list",
    "history_missing.safetensors": r"missing metadata field 'history'",
    "num_parameters_list.safetensors": r"metadata field 'num_parameters' is not an integer",
    "aliases_not_names.safetensors": r"alias x.weight does not name a weight",
    "alias_to_missing.safetensors": r"alias x.weight names a missing weight nowhere",
    "nan_weights.safetensors": r"weight \S+ contains NaN values",
    "inf_weights.safetensors": r"weight \S+ contains infinite values",
    "weight_read_as_bytes.safetensors": r"weight \S+ has shape \(\d+,\) but the config gives",
    "spm_not_bytes.safetensors": r"tensor 'spm.src' is not a 1-D uint8 byte string",
    "spm_garbage.safetensors": r"corrupt target sentencepiece model",
}
# refused by read_card too (the rest are metadata-sound: read_card never builds or reads weights)
CARD_REFUSES = {
    name
    for name in EXPECTED
    if not re.match(
        r"(unknown_arch|absurd|negative|shape|config_(field|unknown)|alias_to|"
        r"nan|inf|weight_read|spm)",
        name,
    )
}


def refusal(load, path: Path) -> str:
    """The one-line CheckpointError message ``load(path)`` must raise; any other outcome fails."""
    with pytest.raises(CheckpointError) as info:
        load(path)
    text = str(info.value)
    assert "\n" not in text and "\r" not in text
    assert text.startswith(f"{path}: ")
    return text


@pytest.fixture
def in_tmp_cwd(tmp_path, monkeypatch):
    """Run in an empty directory, where a payload that ran would leave its marker file."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    assert not (tmp_path / MARKER).exists(), "a payload in an untrusted file was executed"


def test_every_bad_file_is_listed():
    on_disk = {p.name for p in BAD.iterdir()} - {"valid.safetensors"}
    assert on_disk == set(EXPECTED)
    assert all(p.stat().st_size <= 16 * 1024 for p in BAD.iterdir())


def test_the_valid_file_they_were_made_from_loads():
    loaded = load_checkpoint(BAD / "valid.safetensors")
    assert loaded.config["arch"] == "transformer" and loaded.config["d_model"] == 4
    assert loaded.history == [{"step": 1, "loss": 3.0}]
    assert read_card(BAD / "valid.safetensors")["num_parameters"] == loaded.model.num_parameters


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_is_refused_with_one_line(name, in_tmp_cwd):
    path = BAD / name
    assert re.search(EXPECTED[name], refusal(load_checkpoint, path))
    if name in CARD_REFUSES:
        refusal(read_card, path)
    else:  # only the metadata is read: it is sound, and it comes back as it was written
        assert isinstance(read_card(path)["config"], dict)


def test_cut_last_byte_names_the_exact_shortfall():
    path = BAD / "cut_last_byte.safetensors"
    needed = int(re.search(EXPECTED[path.name], refusal(load_checkpoint, path)).group(1))
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    assert path.stat().st_size == 8 + header_len + needed - 1


def global_references(data: bytes) -> set[str]:
    """Every module.name a pickle would import, read from its opcodes without running it."""
    found, strings = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            found.add(arg.replace(" ", "."))
        elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif op.name == "STACK_GLOBAL":
            found.add(".".join(strings[-2:]))
    return found


def assert_live_payload(data: bytes) -> None:
    """The pickle would call Path(MARKER).touch() (directly, or via getattr in protocols < 4)."""
    refs = global_references(data)
    assert "pathlib.Path.touch" in refs or {"pathlib.Path", "__builtin__.getattr"} <= refs
    assert MARKER.encode() in data and b"touch" in data


@pytest.mark.parametrize(
    "name", ["pickle_payload.safetensors", "pickle_protocol0_payload.safetensors"]
)
def test_pickle_payloads_are_live_and_never_run(name, in_tmp_cwd):
    data = (BAD / name).read_bytes()
    assert_live_payload(data)
    refusal(load_checkpoint, BAD / name)
    refusal(read_card, BAD / name)


def test_torch_save_payload_is_live_and_never_run(in_tmp_cwd):
    import zipfile

    with zipfile.ZipFile(BAD / "torch_save_payload.safetensors") as z:
        pkl = next(n for n in z.namelist() if n.endswith("data.pkl"))
        assert_live_payload(z.read(pkl))
    refusal(load_checkpoint, BAD / "torch_save_payload.safetensors")


def test_weights_that_overflow_float32_are_refused(tmp_path):
    path = tmp_path / "big.safetensors"
    path.write_bytes((BAD / "valid.safetensors").read_bytes())
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    name = next(k for k in tensors if k.startswith("model.") and tensors[k].dim() == 2)
    tensors[name] = torch.full(tensors[name].shape, 1e300, dtype=torch.float64)
    save_file(tensors, str(path), metadata=meta)
    assert re.search(r"contains infinite values", refusal(load_checkpoint, path))


def test_absurd_transformer_max_len_allocates_no_position_table(tmp_path):
    """Sinusoidal positions are computed for the positions each call needs, never as a
    max_len x d_model table: a config claiming 10**7 positions costs nothing to load."""
    from explorer.seq2seq.checkpoint import save_checkpoint
    from explorer.seq2seq.decoding.decode import greedy
    from explorer.seq2seq.models.families import build_model

    tok = load_checkpoint(BAD / "valid.safetensors").tokenizer
    config = dict(
        arch="transformer",
        src_vocab=tok.src_vocab_size,
        tgt_vocab=tok.tgt_vocab_size,
        d_model=8,
        heads=2,
        enc_layers=1,
        dec_layers=1,
        d_ff=8,
        max_len=16,
    )
    path = save_checkpoint(tmp_path / "t.safetensors", build_model(config), tok)
    small = load_checkpoint(path)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())

    meta["config"] = json.dumps(dict(config, max_len=10**7))
    save_file(load_file(str(path)), str(path), metadata=meta)
    big = load_checkpoint(path)
    assert big.config["max_len"] == 10**7
    elements = sum(t.numel() for t in (*big.model.parameters(), *big.model.buffers()))
    assert elements == sum(t.numel() for t in (*small.model.parameters(), *small.model.buffers()))
    assert (
        greedy(big.model, tok, "a b", max_len=5).tokens
        == greedy(small.model, tok, "a b", max_len=5).tokens
    )


# fuzzing ------------------------------------------------------------------------------------

VALID = (BAD / "valid.safetensors").read_bytes()
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def write_temp(data: bytes) -> Path:
    fd, name = tempfile.mkstemp(suffix=".safetensors")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return Path(name)


def load_or_refuse(data: bytes) -> object:
    """Load ``data`` as a checkpoint file: a Checkpoint with finite weights, or a one-line
    CheckpointError naming the file. Any other exception fails the test."""
    path = write_temp(data)
    try:
        try:
            card = read_card(path)
            assert isinstance(card["config"], dict)
        except CheckpointError as e:
            assert "\n" not in str(e) and str(e).startswith(f"{path}: ")
        try:
            loaded = load_checkpoint(path)
        except CheckpointError as e:
            assert "\n" not in str(e) and str(e).startswith(f"{path}: ")
            return e
        for name, t in loaded.model.state_dict().items():
            if t.is_floating_point():
                assert torch.isfinite(t).all(), name
        return loaded
    finally:
        path.unlink()


@FUZZ
@given(cut=st.integers(min_value=0, max_value=len(VALID) - 1))
def test_every_truncation_is_refused(cut, in_tmp_cwd):
    assert isinstance(load_or_refuse(VALID[:cut]), CheckpointError)


@FUZZ
@given(
    flips=st.lists(
        st.tuples(st.integers(0, len(VALID) - 1), st.integers(1, 255)), min_size=1, max_size=4
    )
)
def test_flipped_bytes_load_finite_or_are_refused(flips, in_tmp_cwd):
    data = bytearray(VALID)
    for offset, xor in flips:
        data[offset] ^= xor
    load_or_refuse(bytes(data))


@FUZZ
@given(
    offset=st.integers(0, int.from_bytes(VALID[:8], "little") + 7),
    xor=st.integers(1, 255),
)
def test_flipped_header_bytes_load_finite_or_are_refused(offset, xor, in_tmp_cwd):
    data = bytearray(VALID)
    data[offset] ^= xor
    load_or_refuse(bytes(data))


@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes_are_refused(data, in_tmp_cwd):
    assert isinstance(load_or_refuse(data), CheckpointError)


@FUZZ
@given(body=st.binary(max_size=512))
def test_random_bytes_after_a_plausible_header_length_are_refused(body, in_tmp_cwd):
    data = len(body).to_bytes(8, "little") + b"{" + body
    assert isinstance(load_or_refuse(data), CheckpointError)


def test_run_reliability_counts_every_case_and_finds_no_crash(capsys):
    from explorer.tools.reliability import FIELDS, run_reliability

    results = run_reliability(report=True, cases=5)
    assert set(results) == {"checkpoints", "corpora", "sentences"}
    assert results["checkpoints"]["tried"] == 3 + 3 * 5  # 2 pickles, an empty file, 3 per round
    assert results["corpora"]["tried"] == 5
    assert results["sentences"]["tried"] == 10
    for counts in results.values():
        assert set(counts) == set(FIELDS)
        assert counts["refused"] + counts["accepted"] + counts["crashes"] == counts["tried"]
        assert counts["crashes"] == 0 and counts["lost"] == 0
    assert results["checkpoints"]["refused"] >= 3 + 5 * 2  # every cut and random file at least
    assert results["sentences"]["refused"] == 3  # "", "   " and only punctuation
    assert "checkpoints" in capsys.readouterr().out


# fuzzing the fields a stranger controls, with values of any JSON type -------------------------

ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
HEADER_LEN = int.from_bytes(VALID[:8], "little")
HEADER = json.loads(VALID[8 : 8 + HEADER_LEN])
TENSORS = sorted(k for k in HEADER if k != "__metadata__")


def with_header(edit) -> bytes:
    header = json.loads(json.dumps(HEADER))
    edit(header)
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + VALID[8 + HEADER_LEN :]


@FUZZ
@given(
    name=st.sampled_from(TENSORS),
    key=st.sampled_from(["shape", "data_offsets", "dtype"]),
    value=ANY_JSON,
)
def test_header_entries_of_any_type_are_refused_or_loaded(name, key, value, in_tmp_cwd):
    def edit(header):
        header[name][key] = value
        header["__metadata__"]["num_parameters"] = "-1"  # read_card then sums the shapes

    load_or_refuse(with_header(edit))


@FUZZ
@given(
    field=st.sampled_from(["config", "history", "aliases", "optimizer", "train_state", "card"]),
    value=ANY_JSON,
    digits=st.sampled_from([None, 5000]),
)
def test_metadata_of_any_json_is_refused_or_loaded(field, value, digits, in_tmp_cwd):
    def edit(header):
        text = json.dumps(value)
        if digits:  # an integer json.loads refuses with a plain ValueError
            text = "[" + "9" * digits + "]"
        header["__metadata__"][field] = text

    outcome = load_or_refuse(with_header(edit))
    if not isinstance(outcome, CheckpointError):  # info prints it: one line per field, escaped
        from explorer.cli import format_card
        from explorer.cli_common import escaped

        shown = {"config": outcome.config, "history": outcome.history, "card": outcome.card,
                 "corpus": outcome.corpus, "num_parameters": 1}  # fmt: skip
        assert "\x1b" not in format_card(escaped(shown))


@FUZZ
@given(entry=st.dictionaries(st.sampled_from(["step", "val_bleu", "loss", "probe_output"]),
                             ANY_JSON, max_size=4))  # fmt: skip
def test_history_entries_are_checked_at_load_so_info_cannot_fail(entry, in_tmp_cwd):
    from explorer.cli import format_card
    from explorer.cli_common import escaped

    def edit(header):
        header["__metadata__"]["history"] = json.dumps([entry])

    path = write_temp(with_header(edit))
    try:
        card = read_card(path)
    except CheckpointError as e:
        assert "\n" not in str(e) and "history entry 0" in str(e)
    else:
        format_card(escaped(card))
    finally:
        path.unlink()
