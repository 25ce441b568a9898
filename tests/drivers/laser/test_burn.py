"""Burn rendering: the item canvas, the G-code replay, the preview, save and load."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.laser.burn import METALS, BurnCanvas, render_gcode, toolpath_mask
from drivers.laser.gcode import to_gcode
from drivers.laser.preview import preview_png
from drivers.laser.templates import ItemTemplate, load_templates
from drivers.laser.toolpath import render_text

TEMPLATES = load_templates()
RING = TEMPLATES["ring_band"]
DISC = TEMPLATES["pendant_disc"]


class Recorder:
    """A canvas stand-in that records what the interpreter asked to burn."""

    def __init__(self) -> None:
        self.segments: list[tuple[float, float, float, float, float]] = []

    def burn_segment(
        self, x0: float, y0: float, x1: float, y1: float, *, power_fraction: float
    ) -> None:
        self.segments.append((x0, y0, x1, y1, power_fraction))


def iou(a: npt.NDArray[np.bool_], b: npt.NDArray[np.bool_]) -> float:
    return float((a & b).sum() / (a | b).sum())


def decode(png: bytes) -> npt.NDArray[np.uint8]:
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return np.asarray(image, np.uint8)


# --- the canvas ----------------------------------------------------------------------------


@pytest.mark.parametrize("metal", sorted(METALS))
def test_canvas_is_the_item_in_its_metal(metal: str) -> None:
    canvas = BurnCanvas(RING, metal=metal, px_per_mm=10)
    image = canvas.image
    assert image.shape == (35, 544, 3)
    mean = image.reshape(-1, 3).mean(axis=0)
    assert np.allclose(mean, METALS[metal].base_bgr, atol=4)
    assert image.std() > 1  # brushed, not flat


def test_texture_is_deterministic_by_seed() -> None:
    assert np.array_equal(BurnCanvas(RING, seed=3).image, BurnCanvas(RING, seed=3).image)
    assert not np.array_equal(BurnCanvas(RING, seed=3).image, BurnCanvas(RING, seed=4).image)


def test_disc_items_sit_on_a_dark_jig() -> None:
    image = BurnCanvas(DISC, metal="silver").image
    assert image[0, 0].max() < 60  # corner: outside the disc
    centre = image[image.shape[0] // 2, image.shape[1] // 2]
    assert centre.min() > 150


def test_unknown_metal_is_refused() -> None:
    with pytest.raises(ValueError, match="brass"):
        BurnCanvas(RING, metal="brass")


def test_burn_darkens_along_the_segment_with_power() -> None:
    canvas = BurnCanvas(RING, px_per_mm=20)
    canvas.burn_segment(5, 1.25, 35, 1.25, power_fraction=0.0)
    assert not canvas.burn_mask().any()
    canvas.burn_segment(5, 1.25, 15, 1.25, power_fraction=0.2)
    canvas.burn_segment(25, 1.25, 35, 1.25, power_fraction=1.0)
    row = round(canvas.to_px(0, 1.25)[1])
    image = canvas.image.astype(float).mean(axis=2)
    faint = image[row, round(canvas.to_px(10, 0)[0])]
    strong = image[row, round(canvas.to_px(30, 0)[0])]
    blank = image[row, round(canvas.to_px(20, 0)[0])]
    assert strong < faint < blank
    assert canvas.line_width_px(1.0) >= canvas.line_width_px(0.2)


def test_burns_off_the_item_are_clipped() -> None:
    canvas = BurnCanvas(RING)
    canvas.burn_segment(-100, -100, -90, -90, power_fraction=1.0)
    assert not canvas.burn_mask().any()


# --- G-code replay -------------------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(
    st.sampled_from(sorted(TEMPLATES)),
    st.text(alphabet="ABCDEFGHJKMNOPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789&", min_size=1),
    st.sampled_from(sorted(METALS)),
)
def test_replayed_gcode_shows_the_toolpath(name: str, text: str, metal: str) -> None:
    template = TEMPLATES[name]
    toolpath = render_text(text[: template.max_chars], template=template)
    program = to_gcode(toolpath, power_s=800, feed_mm_min=600)
    canvas = BurnCanvas(template, metal=metal, px_per_mm=40)
    burned = render_gcode(program.lines, canvas)
    assert burned == sum(line.startswith("G1") for line in program.lines)
    assert iou(canvas.burn_mask(), toolpath_mask(toolpath, canvas, power_fraction=0.8)) > 0.8


def test_interpreter_burns_only_lasing_g1_moves() -> None:
    program = [
        "G21 G90",
        "G1 X1 Y1 S500",  # laser not on yet
        "M4 S0",
        "G1 X2 Y1",  # S0
        "G0 X3 Y3 S500",  # G0 never fires
        "G1 X4 Y3 (comment X9)",
        "G1 X4 Y3",  # no movement
        "G91",
        "G1 X1",  # relative
        "G90 G20",
        "G1 X1 ; inches",
        "$H",
        "M5",
        "G1 X0 Y0",
    ]
    recorder = Recorder()
    assert render_gcode(program, recorder, max_s=1000) == 3
    assert recorder.segments == [
        (3, 3, 4, 3, 0.5),
        (4, 3, 5, 3, 0.5),
        (5, 3, 25.4, 3, 0.5),
    ]


def test_interpreter_refuses_arcs() -> None:
    with pytest.raises(ValueError, match="line 2: arcs"):
        render_gcode(["M4 S100", "G2 X1 Y1 I1 J0"], Recorder())


# --- PNG, save, load, preview --------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    canvas = BurnCanvas(DISC, metal="platinum", px_per_mm=16, seed=9, spot_mm=0.1)
    render_gcode(
        to_gcode(render_text("Mia", template=DISC), power_s=900, feed_mm_min=600).lines, canvas
    )
    path = tmp_path / "burn.png"
    canvas.save(path)
    assert np.array_equal(decode(path.read_bytes()), canvas.image)

    loaded = BurnCanvas.load(path)
    assert (loaded.metal, loaded.px_per_mm, loaded.seed, loaded.spot_mm) == ("platinum", 16, 9, 0.1)
    assert loaded.template == DISC
    assert np.array_equal(loaded.image, canvas.image)
    assert np.array_equal(loaded.burn_mask(), canvas.burn_mask())
    loaded.burn_segment(1, 1, 12, 4, power_fraction=1.0)  # burning goes on after a load
    assert loaded.burn_mask().sum() > canvas.burn_mask().sum()


def test_load_refuses_a_foreign_png(tmp_path: Path) -> None:
    ok, encoded = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))
    assert ok
    path = tmp_path / "other.png"
    path.write_bytes(encoded.tobytes())
    with pytest.raises(ValueError, match="no benchfleet canvas settings"):
        BurnCanvas.load(path)


@pytest.mark.parametrize("template", [RING, DISC], ids=lambda t: t.name)
def test_preview_png_shows_strokes_over_the_item(template: ItemTemplate) -> None:
    toolpath = render_text("Jo", template=template)
    image = decode(preview_png(toolpath, px_per_mm=20, template=template))
    assert image.shape[:2] == (
        round(template.item_height_mm * 20),
        round(template.item_width_mm * 20),
    )
    assert (image.max(axis=2) < 100).sum() > 50  # dark strokes
    bare = decode(preview_png(toolpath, px_per_mm=10))
    assert bare.shape[:2] == (
        round((template.area_height_mm + 2) * 10),
        round((template.area_width_mm + 2) * 10),
    )
