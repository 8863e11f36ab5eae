"""Lesson files: a saved lesson reads back as it was, every kind of bad input is refused in one
line naming the file and the field, model paths cannot leave the lesson's folder, a checksum
mismatch is refused, and the shipped lecture resolves to the bundled models."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from explorer import assets
from explorer.seq2seq.lesson import (
    FORMAT,
    AttentionEdit,
    Forced,
    Lesson,
    LessonError,
    Scene,
    load_lesson,
    parse_lesson,
    save_lesson,
)

LECTURE = assets.resources_dir() / "lessons" / "lecture.json"


def checkpoint(folder, name="model.safetensors", data=b"weights"):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def write(folder, scenes, name="lesson.json", **top):
    doc = {"format": FORMAT, "version": 1, "title": "t", "scenes": scenes, **top}
    path = folder / name
    path.write_text(json.dumps(doc))
    return path


def test_a_saved_lesson_reads_back_scene_for_scene(tmp_path):
    path, digest = checkpoint(tmp_path / "models", "mine.safetensors")
    bundled = assets.models_dir() / "classroom-bahdanau.safetensors"
    bundled_sum = hashlib.sha256(bundled.read_bytes()).hexdigest()
    scenes = (
        Scene("x", digest, "the black cat", 3, "step", "arithmetic",
              forced=(Forced(2, "le"),), edits=(AttentionEdit(2, source_index=1),
                                                AttentionEdit(3, weights=(0.5, 0.5), layer=1)),
              beam={"beam": 4, "length_penalty": "gnmt", "alpha": 0.6}, note="look «here»",
              title="one", path=path),
        Scene("y", bundled_sum, "her rabbit", tab="beam", path=bundled),
    )  # fmt: skip
    out = save_lesson(Lesson("Lesson", scenes), tmp_path / "l.json")
    doc = json.loads(out.read_text())
    assert [s["model"] for s in doc["scenes"]] == ["models/mine.safetensors", "classroom-bahdanau"]
    back = load_lesson(out)
    assert back.title == "Lesson"
    assert [s.model for s in back.scenes] == ["models/mine.safetensors", "classroom-bahdanau"]
    for a, b in zip(scenes, back.scenes, strict=True):
        assert (a.sentence, a.step, a.tab, a.view, a.forced, a.edits, a.beam, a.note, a.title) == (
            b.sentence, b.step, b.tab, b.view, b.forced, b.edits, b.beam, b.note, b.title
        )  # fmt: skip
        assert b.path == a.path.resolve()


def test_a_model_outside_the_lessons_folder_cannot_be_saved(tmp_path):
    path, digest = checkpoint(tmp_path / "elsewhere")
    (tmp_path / "lessons").mkdir()
    with pytest.raises(LessonError, match="outside the lesson's folder"):
        save_lesson(Lesson("t", (Scene("m", digest, path=path),)), tmp_path / "lessons" / "l.json")


BAD = [
    ('{"format": ', r"lesson\.json: line 1, column 12: not JSON"),
    ('{"format": "x", "format": "y"}', r"lesson\.json: field 'format' given twice"),
    ('{"format": "attention-explorer lesson", "version": NaN}', r"NaN is not a number"),
    ("[1, 2]", r"lesson\.json: top level: expected an object, got a list"),
    ('{"format": "slides", "version": 1, "scenes": []}', r"lesson\.json: format: expected one of"),
    ('{"format": "attention-explorer lesson", "version": 2, "scenes": []}', r"version: .* got 2"),
    ('{"format": "attention-explorer lesson", "version": 1}', r"lesson\.json: scenes: missing"),
    ('{"format": "attention-explorer lesson", "version": 1, "scenes": []}', r"scenes: .*one scene"),
    ('{"format": "attention-explorer lesson", "version": 1, "scenes": [{}], "run": "rm -rf"}',
     r"lesson\.json: top level: unknown field\(s\): run"),
]  # fmt: skip


@pytest.mark.parametrize("text, message", BAD)
def test_bad_documents_are_refused_in_one_line(tmp_path, text, message):
    (tmp_path / "lesson.json").write_text(text)
    with pytest.raises(LessonError, match=message) as e:
        load_lesson(tmp_path / "lesson.json")
    assert "\n" not in str(e.value)


SCENE_BAD = [
    ({"model": None}, r"scenes\[0\]\.model: expected a string, got null"),
    ({"sha256": "abc"}, r"scenes\[0\]\.sha256: expected 64 lowercase hexadecimal"),
    ({"step": 0}, r"scenes\[0\]\.step: expected a whole number from 1 to 1000, got 0"),
    ({"step": 2.5}, r"scenes\[0\]\.step: expected a whole number"),
    ({"step": True}, r"scenes\[0\]\.step: expected a whole number"),
    ({"tab": "settings"}, r"scenes\[0\]\.tab: expected one of train, step, beam"),
    ({"view": "terminal"}, r"scenes\[0\]\.view: expected one of"),
    ({"sentence": "a\x00b"}, r"scenes\[0\]\.sentence: holds control characters"),
    ({"sentence": "x" * 3000}, r"scenes\[0\]\.sentence: longer than 2000"),
    ({"note": 3}, r"scenes\[0\]\.note: expected a string"),
    ({"forced": {"step": 1}}, r"scenes\[0\]\.forced: expected a list"),
    ({"forced": [{"step": 1}]}, r"scenes\[0\]\.forced\[0\]\.piece: missing"),
    ({"forced": [{"step": 1, "piece": "le", "eval": 1}]}, r"forced\[0\]: unknown field\(s\): eval"),
    ({"edits": [{"step": 1}]}, r"scenes\[0\]\.edits\[0\]: give either source \(one-hot\) or"),
    ({"edits": [{"step": 1, "source": 0, "weights": [1]}]}, r"edits\[0\]: give either"),
    ({"edits": [{"step": 1, "weights": [-1, 2]}]}, r"edits\[0\]\.weights: expected weights"),
    ({"beam": {"beam": 0}}, r"scenes\[0\]\.beam\.beam: expected a whole number from 1 to 64"),
    ({"beam": {"length_penalty": "wu"}}, r"beam\.length_penalty: expected one of none, avg, gnmt"),
    ({"beam": {"threads": 64}}, r"scenes\[0\]\.beam: unknown field\(s\): threads"),
    ({"beam": []}, r"scenes\[0\]\.beam: expected an object, got a list"),
    ({"script": "import os"}, r"scenes\[0\]: unknown field\(s\): script"),
]  # fmt: skip


@pytest.mark.parametrize("change, message", SCENE_BAD)
def test_bad_fields_are_named(tmp_path, change, message):
    _, digest = checkpoint(tmp_path)
    path = write(tmp_path, [{"model": "model.safetensors", "sha256": digest, **change}])
    with pytest.raises(LessonError, match=message):
        load_lesson(path)


def test_a_missing_field_is_named(tmp_path):
    path = write(tmp_path, [{"model": "model.safetensors"}])
    with pytest.raises(LessonError, match=r"lesson\.json: scenes\[0\]\.sha256: missing"):
        load_lesson(path)


@pytest.mark.parametrize(
    "model, message",
    [
        ("../model.safetensors", "neither a bundled model"),
        ("/etc/passwd", "neither a bundled model"),
        ("sub/../../model.safetensors", "neither a bundled model"),
        ("C:\\model.safetensors", "neither a bundled model"),
        ("link.safetensors", "leads out of the lesson's folder"),
        ("missing.safetensors", "no such checkpoint file"),
    ],
)
def test_model_paths_cannot_leave_the_lessons_folder(tmp_path, model, message):
    outside, digest = checkpoint(tmp_path)
    folder = tmp_path / "lesson"
    folder.mkdir()
    os.symlink(outside, folder / "link.safetensors")
    path = write(folder, [{"model": model, "sha256": digest}])
    with pytest.raises(LessonError, match=rf"lesson\.json: scenes\[0\]\.model: .*{message}"):
        load_lesson(path)


def test_a_checksum_mismatch_is_refused(tmp_path):
    checkpoint(tmp_path, data=b"the weights the teacher saved")
    other = hashlib.sha256(b"other weights").hexdigest()
    path = write(tmp_path, [{"model": "model.safetensors", "sha256": other}])
    with pytest.raises(LessonError, match=r"scenes\[0\]\.model: model\.safetensors has sha256 "):
        load_lesson(path)


def test_a_file_too_large_or_not_text_is_refused(tmp_path):
    big = tmp_path / "big.json"
    big.write_bytes(b" " * ((1 << 20) + 1))
    with pytest.raises(LessonError, match=r"big\.json: larger than 1 MiB"):
        load_lesson(big)
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"title": "caf\xe9"}')
    with pytest.raises(LessonError, match=r"latin\.json: not UTF-8 text"):
        load_lesson(latin)
    with pytest.raises(LessonError, match=r"nowhere\.json: no such lesson file"):
        load_lesson(tmp_path / "nowhere.json")
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(LessonError, match="lesson"):
        parse_lesson(deep)


def test_the_shipped_lecture_follows_the_lectures_story():
    lesson = load_lesson(LECTURE)  # the checksums are the bundled models'
    story = [(s.model, s.tab, s.view, s.step, s.sentence) for s in lesson.scenes]
    assert story[0][:2] == ("classroom-none", "step")  # the bottleneck
    noir = next(s for s in lesson.scenes if s.sentence == "the black cat sat on the mat")
    assert (noir.model, noir.step) == ("classroom-bahdanau", 3)
    assert any(s.view == "hand exercise" for s in lesson.scenes)
    beam = next(s for s in lesson.scenes if s.tab == "beam")
    assert (beam.model, beam.sentence) == ("classroom-none", "her rabbit sometimes follows her")
    assert all(s.note for s in lesson.scenes)
    assert all(s.path.parent == assets.models_dir() for s in lesson.scenes)


def test_a_shipped_lesson_opens_by_name_and_a_file_of_that_name_wins(tmp_path, monkeypatch):
    assert "lecture" in assets.shipped_lessons()
    shipped = assets.lesson_path("lecture")
    assert shipped == assets.resources_dir() / "lessons" / "lecture.json" and shipped.is_file()
    assert load_lesson(shipped).scenes  # it reads
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lecture").write_text("{}")
    assert assets.lesson_path("lecture") == Path("lecture")  # the file in the working folder
    assert assets.lesson_path("no-such") == Path("no-such")  # left for the reader to refuse
