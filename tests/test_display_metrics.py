"""Font sizes as a function of the screen, colour contrast, the status line for a loaded model and
the gallery's plan and page: the display's logic, without a window."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from explorer.gui.widgets import theme
from explorer.tools import gallery


@pytest.mark.parametrize(("size", "floor"), [((1280, 720), 16), ((1920, 1080), 24)])
def test_projector_text_is_a_45th_of_the_screen_height(size, floor):
    m = theme.metrics(*size, projector=True)
    assert m.body_px == floor == m.floor_px
    assert m.plot_px >= floor and m.title_px > floor
    assert m.body_px * 45 >= size[1]  # the rule itself: at least 1/45 of the height


def test_projector_floor_rounds_up_between_the_named_sizes():
    assert theme.metrics(1400, 900, projector=True).body_px == 20  # 900 / 45
    assert theme.metrics(1366, 768, projector=True).body_px == 18  # 17.07, rounded up


def test_normal_mode_follows_the_screen_and_stays_below_projector_mode():
    small, large = theme.metrics(1280, 720), theme.metrics(1920, 1080)
    assert small.body_px == 13  # the least size: 720 / 64 would be 11
    assert large.body_px == 17  # about 1/64 of 1080 (13 px before it followed the screen)
    assert large.body_px > small.body_px
    for size in ((1280, 720), (1920, 1080), (3840, 2160)):
        assert theme.metrics(*size).body_px < theme.metrics(*size, projector=True).body_px
    assert theme.metrics(1920, 1080).floor_px == theme.NORMAL_MIN_PX


def test_scale_is_the_body_text_against_the_ten_point_base():
    assert theme.metrics(1280, 720).scale == pytest.approx(13 / (10 * 96 / 72))
    assert theme.metrics(1920, 1080, projector=True).scale == pytest.approx(1.8)


@pytest.mark.parametrize("size", [(0, 720), (1280, -1)])
def test_a_screen_without_area_is_refused(size):
    with pytest.raises(ValueError, match="screen size must be positive"):
        theme.metrics(*size)


def test_contrast_ratio_known_answers():
    assert theme.contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert theme.contrast_ratio("#777777", "#777777") == pytest.approx(1.0)
    # WCAG's own example: #777 on white is just under the 4.5 that body text needs
    assert theme.contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize("name", theme.THEMES)
@pytest.mark.parametrize("kind", ["warn", "error"])
def test_every_banner_and_body_text_is_readable_in_both_themes(name, kind):
    c = theme.COLORS[name]
    assert theme.contrast_ratio(c[f"{kind}_fg"], c[f"{kind}_bg"]) >= 4.5
    assert theme.contrast_ratio(c["text"], c["window"]) >= 4.5
    assert theme.contrast_ratio(c["text"], c["base"]) >= 4.5


def test_the_status_line_of_a_load_names_what_is_current():
    from explorer.gui.window import load_message

    bahdanau = SimpleNamespace(name="classroom-bahdanau · bahdanau (classroom)")
    transformer = SimpleNamespace(name="classroom-transformer · transformer (classroom)")
    path = Path("models/classroom-transformer.safetensors")
    behind = load_message(path, transformer, bahdanau)
    assert "also opened classroom-transformer" in behind and "Model menu" in behind
    assert "current" not in behind  # the model label beside it names the current one
    assert load_message(path, transformer, transformer).endswith("now the current model")
    assert load_message(path, transformer, None).endswith("now the current model")


def test_the_gallery_plans_every_tab_at_every_size_and_mode():
    shots = gallery.plan(["train", "step", "beam", gallery.COMPARE])
    assert len(shots) == 2 * 3 * 4
    assert len({s.file for s in shots}) == len(shots)
    assert {s.size for s in shots} == {(1280, 720), (1920, 1080)}
    assert {s.mode for s in shots} == {"light", "dark", "projector"}
    # grouped: one theme switch per (size, mode)
    groups = [(s.size, s.mode) for s in shots]
    assert len([g for i, g in enumerate(groups) if i == 0 or groups[i - 1] != g]) == 6


def test_the_gallery_page_shows_each_picture_and_says_which_are_missing():
    shots = gallery.plan(["step", "beam"], sizes=((1280, 720),), modes=("dark",))
    text = gallery.page(shots, {shots[1].file: "the window is 1400×900"}, "gallery", "offscreen")
    assert "## 1280 × 720" in text and "### Dark" in text
    assert f"](gallery/{shots[0].file})" in text
    assert f"](gallery/{shots[1].file})" not in text
    assert "Beam vs greedy: not captured (the window is 1400×900)" in text


@pytest.mark.parametrize("text", ["1280", "ax720", "100x100", "99999x720"])
def test_the_gallery_refuses_a_size_it_cannot_use(text):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match="WIDTHxHEIGHT|within"):
        gallery.parse_size(text)
