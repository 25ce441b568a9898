"""The simulated station's own proof photos: the sim laser burns, the sim camera (framed on the
engraving, as the demo and the floor tests configure it) photographs, verify() decides.

Real parts throughout: the GRBL simulator behind the production driver, the BurnCanvas it
renders into, the camera's scene code and RapidOCR.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from drivers.camera.sim import SimCamera
from drivers.laser.sim import SimLaser
from hub.verification import Expected, OcrEngine, Verdict, verify
from hub.verification.locate import locate_line
from hub.verification.preprocess import decode_image, to_grey

DEMO_TEXT = "Anna & Ben 2026"  # what benchfleet/demo.py orders
RING = {"template": "ring_band", "font": "futural"}


def _engrave(path: Path, text: str) -> None:
    laser = SimLaser("laser", None, {"render_path": str(path), "seconds_per_char": 0})
    asyncio.run(laser.engrave(text, **RING))


def _shoot(path: Path, **options: object) -> bytes:
    camera = SimCamera("camera", None, {"scene_path": str(path), **options})
    return asyncio.run(camera.capture())


@pytest.fixture(scope="module")
def demo_burn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("station") / "burn.png"
    _engrave(path, DEMO_TEXT)
    return path


def _ink_height(photo: bytes) -> int:
    bgr = decode_image(photo)
    line = locate_line(bgr, to_grey(bgr))
    assert line is not None
    return line.photo_box[3] - line.photo_box[1]


def test_engraving_frame_makes_ring_band_letters_readable_size(demo_burn: Path) -> None:
    whole_item = _ink_height(_shoot(demo_burn, seed=1))
    macro = _ink_height(_shoot(demo_burn, seed=1, frame="engraving"))
    assert whole_item < 15  # the whole 54 mm band in 70 % of the frame: ~10 px letters
    assert macro >= 30


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_demo_engraving_photographed_by_the_sim_station_passes(
    demo_burn: Path, engine: OcrEngine, seed: int
) -> None:
    photo = _shoot(demo_burn, seed=seed, frame="engraving")
    result = verify(photo, Expected(DEMO_TEXT, **RING), engine=engine)
    assert result.verdict is Verdict.PASS, result.reasons
    assert result.read_text == DEMO_TEXT


def test_dotted_date_on_the_ring_band_passes(tmp_path: Path, engine: OcrEngine) -> None:
    text = "Lea 18.10.2027"  # "." read as "-" at the whole-item framing's ~11 px letters
    _engrave(tmp_path / "burn.png", text)
    photo = _shoot(tmp_path / "burn.png", frame="engraving", blur=0.8, noise=2)
    result = verify(photo, Expected(text, **RING), engine=engine)
    assert result.verdict is Verdict.PASS, result.reasons


def test_sim_station_photo_of_a_wrong_digit_does_not_pass(
    demo_burn: Path, engine: OcrEngine
) -> None:
    photo = _shoot(demo_burn, seed=1, frame="engraving")
    result = verify(photo, Expected("Anna & Ben 2025", **RING), engine=engine)
    assert result.verdict is Verdict.FAIL, result.reasons
    assert [(d.op, d.expected, d.read) for d in result.diff if d.op != "equal"] == [
        ("substitute", "5", "6")
    ]


def test_engraving_frame_before_any_burn_shows_the_blank_area(
    tmp_path: Path, engine: OcrEngine
) -> None:
    from drivers.laser.burn import BurnCanvas
    from drivers.laser.templates import load_templates

    BurnCanvas(load_templates()["ring_band"]).save(tmp_path / "blank.png")
    photo = _shoot(tmp_path / "blank.png", frame="engraving")
    result = verify(photo, Expected(DEMO_TEXT, **RING), engine=engine)
    assert result.verdict is Verdict.REVIEW
    assert result.reasons == ["nothing_found"]


def test_unknown_frame_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown frame"):
        SimCamera("camera", None, {"scene_path": "x.png", "frame": "wide"})
