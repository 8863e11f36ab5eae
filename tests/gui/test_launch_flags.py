"""The launch flags together: a bundled model named by --checkpoint is current, opened once (the
bundled models loading behind it skip it), and --step picks the step of the sentence's decode."""

from PySide6.QtCore import QThreadPool

from explorer import assets
from explorer.gui import app as app_module


def test_a_bundled_checkpoint_named_at_launch_is_current_once_at_the_step_asked(
    qapp, qtbot, tmp_path, monkeypatch
):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    seen = {}
    real = app_module._screenshot

    def spy(app, window, args):
        seen["window"] = window
        return real(app, window, args)

    monkeypatch.setattr(app_module, "_screenshot", spy)
    out = tmp_path / "step.png"
    args = ["--screenshot", str(out), "--panel", "step", "--checkpoint", "classroom-transformer",
            "--sentence", "the black cat sat on the mat", "--step", "3"]  # fmt: skip
    assert app_module.main(args) == 0 and out.is_file()
    window = seen["window"]
    state = window.state
    transformer = assets.models_dir() / "classroom-transformer.safetensors"
    assert state.current.path.resolve() == transformer.resolve()
    assert state.step == 2 and state.trace.pieces[2] == "noir"  # step 3 of 11, not step 1
    title = window.panels["step"].alignment.plot.getPlotItem().titleLabel.text
    assert "layer 3" in title and "no attention" not in title
    # the bundled models go on loading behind it: none of them opens the transformer again
    qtbot.waitUntil(lambda: not window.loading, timeout=120_000)
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=60_000)
    paths = [m.path.resolve() for m in state.models if m.path is not None]
    assert len(paths) == len(set(paths)) == len(assets.bundled_paths())
    assert any(m is state.current for m in state.models)
    assert not window.busy.isVisible()
    window.deleteLater()
