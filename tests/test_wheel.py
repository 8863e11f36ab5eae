"""The bundled models and resources are found in a checkout and in an installed wheel alike; the
wheel carries them; bundled models are named on the command line; commands that write into the
checkout refuse an installed copy with one line. (.ci/wheel-check installs the real wheel into a
fresh environment and runs it; this file needs no network.)"""

import json
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from explorer import assets
from explorer.cli import run
from explorer.seq2seq.data.classroom_grammar import RESOURCES, ClassroomError, load_grammar

ROOT = Path(__file__).resolve().parent.parent
ARCH = {
    "classroom-bahdanau": "bahdanau",
    "classroom-none": "none",
    "classroom-luong": "luong-general",
    "classroom-transformer": "transformer",
    "multi30k-de-en-transformer": "transformer",
}


def test_a_checkout_finds_its_own_models_and_resources():
    assert assets.checkout() == ROOT
    assert assets.models_dir() == ROOT / "models"
    assert assets.resources_dir() == ROOT / "resources"
    assert [p.name for p in assets.bundled_paths()] == [f"{n}.safetensors" for n in ARCH]
    assert assets.BUNDLED[0] == "classroom-bahdanau"  # the window's default model
    assert RESOURCES == ROOT / "resources" / "classroom"
    assert load_grammar().nouns["cat"]["fr"] == "chat"


def test_a_broken_install_names_the_missing_file(monkeypatch):
    """No folder in the package and no checkout: the installed path is reported as missing."""
    monkeypatch.setattr(assets, "checkout", lambda: None)
    package = Path(assets.__file__).parent
    assert assets.models_dir() == package / "_models"
    assert assets.bundled_paths() == []
    with pytest.raises(ClassroomError, match=r"_resources/classroom: cannot read .*lexicon\.json"):
        load_grammar(str(assets.resources_dir() / "classroom"))


@pytest.mark.parametrize("name", list(ARCH))
def test_a_bundled_model_by_name(name, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert assets.checkpoint_path(name) == ROOT / "models" / f"{name}.safetensors"
    assert run(["info", name, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["arch"] == ARCH[name]


def test_a_file_wins_over_a_bundled_name_and_an_unknown_name_is_a_missing_file(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "classroom-luong").write_bytes(b"")
    assert assets.checkpoint_path("classroom-luong") == Path("classroom-luong")
    assert assets.checkpoint_path("classroom-bahdanau.safetensors") == Path(
        "classroom-bahdanau.safetensors"
    )
    assert run(["translate", "--checkpoint", "classroom-typo", "a cat"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: classroom-typo") and err.count("\n") == 1


def test_translate_with_a_bundled_model_by_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run(["translate", "--checkpoint", "classroom-bahdanau", "the black cat"]) == 0
    assert capsys.readouterr().out == "le chat noir\n"


@pytest.mark.parametrize(
    ("argv", "writes"),
    [(["bench", "--quick"], "BENCHMARKS.md"), (["report", "--limit", "1"], "models/README.md")],
)
def test_commands_that_write_into_the_checkout_refuse_an_installed_copy(
    argv, writes, monkeypatch, capsys
):
    monkeypatch.setattr(assets, "checkout", lambda: None)
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"attention-explorer {argv[0]} writes {writes}" in err and "git clone" in err


def _copy_sources(dest: Path) -> None:
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("explorer", "models", "resources"):
        shutil.copytree(ROOT / name, dest / name, ignore=skip)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, dest / name)


@pytest.mark.slow
def test_the_wheel_carries_models_and_resources_and_finds_them_installed(tmp_path):
    src, dist, site = tmp_path / "src", tmp_path / "dist", tmp_path / "site"
    _copy_sources(src)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--wheel-dir", str(dist), str(src)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    (wheel,) = dist.glob("attention_explorer-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(site)
    code = {f"explorer/{p.relative_to(ROOT / 'explorer')}" for p in ROOT.glob("explorer/**/*.py")}
    assert code - names == set(), "every module of the package is in the wheel"
    assert {f"explorer/_models/{n}.safetensors" for n in ARCH} <= names
    cards = {"README.md", "multi30k-de-en-transformer.md"}
    assert {f"explorer/_models/{n}" for n in cards} | {"explorer/py.typed"} <= names
    assert {f"explorer/_resources/classroom/{n}.json" for n in ("lexicon", "grammar")} <= names
    assert "explorer/_resources/lessons/lecture.json" in names
    assert not [n for n in names if n.split("/")[0] in ("models", "resources", "tests")]
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "attention-explorer = explorer.__main__:main" in (site / entry).read_text()

    probe = textwrap.dedent(
        """
        from explorer import assets
        from explorer.seq2seq.data.classroom_grammar import RESOURCES, load_grammar
        load_grammar()
        print(assets.checkout())
        print(assets.models_dir())
        print(RESOURCES)
        print(assets.checkpoint_path("classroom-bahdanau"))
        print(len(assets.bundled_paths()))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(site)},
        check=True, capture_output=True, text=True,
    ).stdout.split("\n")  # fmt: skip
    assert out[:5] == [
        "None",
        str(site / "explorer/_models"),
        str(site / "explorer/_resources/classroom"),
        str(site / "explorer/_models/classroom-bahdanau.safetensors"),
        "5",
    ]
