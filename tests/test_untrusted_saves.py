"""Where a run's files go, and that a run never ends with its model lost (issue 15).

A stored run's options are data: checked field by field, clamped to the machine; the command line
chooses the files. A save leaves no temporary file for ever, and never removes a live writer's.
"""

import errno
import io
import json
import os
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer import cli
from explorer.cli_common import (
    CliError,
    check_output_path,
    escaped,
    finite_json,
    read_sentences,
    stored_corpus,
)
from explorer.seq2seq import checkpoint as checkpoint_module
from explorer.seq2seq.checkpoint import load_checkpoint, save_checkpoint
from explorer.seq2seq.training.options import TrainOptionError, TrainOptions, usable_threads
from explorer.tools.hostile import save_tiny

# stored options -------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
NAMES = [f for f in TrainOptions().to_dict()]


@settings(max_examples=150, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(NAMES), JSON, max_size=4))
def test_stored_options_of_any_json_are_accepted_whole_or_refused_by_name(changes):
    values = {**TrainOptions().to_dict(), **changes}
    try:
        o = TrainOptions.from_dict(values)
    except TrainOptionError as e:
        assert "\n" not in str(e) and str(e).startswith("training option")
        return
    assert o.batch_size >= 1 and isinstance(o.threads, int) and o.threads >= 0
    assert o.corpus_size is None or 1 <= o.corpus_size <= 1_000_000


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("batch_size", 0, "'batch_size' = 0: must be a whole number from 1"),
        ("threads", "many", "'threads' = 'many': must be a whole number from 0"),
        ("lr", float("nan"), "'lr' = nan: must be a number above 0"),
        ("corpus_size", 10**9, "'corpus_size' = 1000000000: must be a whole number from 1 to"),
        ("model", [1], "'model' = [1]: must map field names"),
        ("amp", 1, "'amp' = 1: must be one of False, True"),
    ],
)
def test_wrong_stored_options_name_the_field(field, value, message):
    with pytest.raises(TrainOptionError, match=message.replace("[", r"\[").replace("]", r"\]")):
        TrainOptions.from_dict({field: value})


def test_thread_counts_are_clamped_to_the_cpus():
    cpus = len(os.sched_getaffinity(0))
    assert usable_threads(100_000) == cpus
    assert usable_threads(1) == 1 and usable_threads(0) == 0


def test_a_checkpoint_names_only_built_in_corpora():
    assert stored_corpus("m.safetensors", "classroom", None) == "classroom"
    assert stored_corpus("m.safetensors", "/etc/passwd", "mine.tsv") == "mine.tsv"
    with pytest.raises(
        CliError, match=r"m\.safetensors was trained on the corpus file '/dev/zero'"
    ):
        stored_corpus("m.safetensors", "/dev/zero", None)


# output path checked before training; a failed save rescued -----------------------------------


def test_output_path_is_checked_before_training(tmp_path):
    check_output_path(str(tmp_path / "m.safetensors"))
    assert list(tmp_path.iterdir()) == []  # the probe file is gone
    with pytest.raises(CliError, match="does not exist"):
        check_output_path(str(tmp_path / "missing" / "m.safetensors"))
    with pytest.raises(CliError, match="exists and is not a regular file"):
        check_output_path("/dev/null")
    with pytest.raises(CliError, match="exists and is not a regular file"):
        check_output_path(str(tmp_path))


def test_a_failed_final_save_leaves_the_model_in_the_temp_folder_and_says_so(
    tmp_path, monkeypatch, capsys
):
    out = tmp_path / "run.safetensors"
    real = checkpoint_module._atomic_write

    def full_disk(path, data):
        if path == out:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, data)

    monkeypatch.setattr(checkpoint_module, "_atomic_write", full_disk)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    argv = ["train", "--quiet", "--preset", "tiny", "--steps", "3", "--eval-every", "0",
            "--corpus-size", "200", "--out", str(out)]  # fmt: skip
    assert cli.run(argv) == 1
    err = capsys.readouterr().err
    rescued = list((tmp_path / "tmp").glob("run-unsaved-*.safetensors"))
    assert len(rescued) == 1 and f"the model of step 3 is saved in {rescued[0]}" in err
    assert load_checkpoint(rescued[0]).train_state["step"] == 3
    assert not out.exists()


# temporary files of saves ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    ck = load_checkpoint(save_tiny(tmp_path_factory.mktemp("m") / "m.safetensors"))
    return ck.model, ck.tokenizer


def test_a_killed_writers_temporary_file_goes_at_the_next_save_a_live_ones_stays(tmp_path, small):
    path = tmp_path / "m.safetensors"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = tmp_path / f".m.safetensors.{2**22 + 7}.abc.tmp"  # beyond any Linux pid
        alive = tmp_path / f".m.safetensors.{live.pid}.def.tmp"
        old = tmp_path / f".m.safetensors.{live.pid}.ghi.tmp"
        for p in (dead, alive, old):
            p.write_bytes(b"partial")
        os.utime(old, (time.time() - 2 * 86400,) * 2)  # a reused pid: judged by age
        save_checkpoint(path, *small)
        assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name, path.name]
    finally:
        live.kill()
        live.wait()


def test_two_writers_of_one_path_never_remove_each_others_file(tmp_path, small):
    path = tmp_path / "m.safetensors"
    errors = []

    def writer():
        try:
            for _ in range(6):
                save_checkpoint(path, *small)
        except Exception as e:  # noqa: BLE001  (any failure is the finding)
            errors.append(e)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    load_checkpoint(path)


# standard input, JSON and printing -------------------------------------------------------------


def test_standard_input_lines_are_capped_before_being_held(capsys):
    stream = io.BytesIO(b"the cat\n\n" + b"x" * 100_000 + b"\nthe dog\r\n")
    sentences = read_sentences(stream)
    assert [len(s) for s in sentences] == [7, 16 * 1024, 7]
    assert "line 3 of standard input cut to its first 16,384 bytes" in capsys.readouterr().err


def test_json_never_holds_nan(capsys):
    text = finite_json({"score": float("nan"), "xs": [1.0, float("-inf")]})
    assert json.loads(text) == {"score": None, "xs": [1.0, None]}
    assert "2 number(s) were NaN or infinite" in capsys.readouterr().err


def test_escaped_leaves_no_control_character_anywhere():
    value = escaped({"cmd\x1b": ["\x1b[2J", {"k": "a\nb\u2028"}], "n": 1.5})
    assert value == {"cmd\\x1b": ["\\x1b[2J", {"k": "a\\nb\\u2028"}], "n": 1.5}
