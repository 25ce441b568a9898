"""The simulated bench camera, the focus gate, and DataMatrix round-trips through the camera."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.camera.barcode import make_code_png, read_codes
from drivers.camera.base import OutOfFocusError
from drivers.camera.focus import decode_grey, focus_score
from drivers.camera.sim import SimCamera

BENCH = {"glare": 0.3, "perspective": 0.03, "light_jitter": 0.2, "noise": 2.0}


def label(tmp_path: Path, text: str = "SN-2024-000123") -> Path:
    path = tmp_path / "engraved.png"  # where the laser simulator saves its rendering
    path.write_bytes(make_code_png(text))
    return path


@pytest.mark.asyncio
async def test_shots_are_deterministic_by_seed_and_frame(tmp_path: Path) -> None:
    options = {"scene_path": str(label(tmp_path)), "seed": 7, **BENCH}
    first, again = SimCamera("a", None, options), SimCamera("b", None, options)
    shots = [await first.capture(), await first.capture()]
    assert shots == [await again.capture(), await again.capture()]
    assert shots[0] != shots[1]  # light and glare vary shot to shot
    other_seed = await SimCamera("c", None, {**options, "seed": 8}).capture()
    assert other_seed != shots[0]


@pytest.mark.asyncio
async def test_a_missing_scene_is_a_plain_item_and_a_new_one_shows_up(tmp_path: Path) -> None:
    scene = tmp_path / "engraved.png"
    camera = SimCamera("cam", None, {"scene_path": str(scene), "width": 320, "height": 240})
    plain = await camera.capture()
    assert decode_grey(plain).shape == (240, 320)
    assert read_codes(plain) == []
    scene.write_bytes(make_code_png("SN-1"))  # the laser finished meanwhile
    assert [c.text for c in read_codes(await camera.capture())] == ["SN-1"]


@pytest.mark.asyncio
async def test_focus_gate_accepts_a_sharp_frame(tmp_path: Path) -> None:
    camera = SimCamera("cam", None, {"scene_path": str(label(tmp_path)), "focus_min": 500})
    await camera.capture()
    assert camera.last_focus_score is not None
    assert camera.last_focus_score > 500


@pytest.mark.asyncio
async def test_focus_gate_rejects_a_blurred_frame_after_retries(tmp_path: Path) -> None:
    options = {"scene_path": str(label(tmp_path)), "blur": 3.0, "focus_min": 500}
    camera = SimCamera("cam", None, {**options, "focus_retries": 2})
    with pytest.raises(OutOfFocusError) as caught:
        await camera.capture()
    assert camera.frames == 3
    assert caught.value.score < 500
    assert not caught.value.retryable


@pytest.mark.asyncio
async def test_sharp_scores_far_above_blurred(tmp_path: Path) -> None:
    scene = str(label(tmp_path))
    sharp = focus_score(await SimCamera("s", None, {"scene_path": scene}).capture())
    blurred = focus_score(await SimCamera("b", None, {"scene_path": scene, "blur": 3}).capture())
    assert sharp > 20 * blurred


@pytest.mark.asyncio
@pytest.mark.parametrize("blur", [0.0, 1.0, 1.5])
async def test_datamatrix_round_trip_through_the_bench_camera(tmp_path: Path, blur: float) -> None:
    options = {"scene_path": str(label(tmp_path)), "blur": blur, **BENCH}
    for seed in range(3):
        png = await SimCamera("cam", None, {**options, "seed": seed}).capture()
        codes = read_codes(png, formats=["DataMatrix"])
        assert [(c.format, c.text) for c in codes] == [("DataMatrix", "SN-2024-000123")]


serials = st.text(alphabet="ABCDEFGHJKLMNPRSTUVWXYZ0123456789-", min_size=1, max_size=24)


@settings(max_examples=25, deadline=None)
@given(serials, st.sampled_from(["DataMatrix", "QRCode", "Code128"]))
def test_generated_codes_read_back(text: str, code_format: str) -> None:
    codes = read_codes(make_code_png(text, code_format, scale=4))
    assert [(c.format, c.text) for c in codes] == [(code_format, text)]


def test_code_positions_are_the_four_corners() -> None:
    (code,) = read_codes(make_code_png("SN-9", scale=6))
    xs = sorted({x for x, _ in code.position})
    assert len(code.position) == 4
    assert xs[0] < xs[-1]


def test_reading_something_that_is_not_an_image_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not an image"):
        read_codes(b"hello")
