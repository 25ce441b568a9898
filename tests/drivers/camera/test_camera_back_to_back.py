"""What every camera backend must do, run against each registered backend.

``opencv`` runs against a fake ``VideoCapture`` (tests/support/camera_rig.py): there is no
/dev/video* here, so the V4L2 calls themselves are the untested part.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from support.camera_rig import FakeCapture

from drivers.camera import BACKENDS
from drivers.camera.barcode import make_code_png, read_codes
from drivers.camera.base import PNG_MAGIC, Camera, OutOfFocusError
from drivers.camera.opencv import OpenCvCamera
from drivers.camera.scene import ShotConditions
from drivers.registry import open_device

CameraFactory = Callable[..., Awaitable[Camera]]


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    path = tmp_path / "engraved.png"
    path.write_bytes(make_code_png("CERT-0042"))
    return path


@pytest_asyncio.fixture(params=sorted(BACKENDS))
async def camera_factory(
    request: pytest.FixtureRequest, scene: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[CameraFactory]:
    opened: list[Camera] = []

    async def make(blur: float = 0.0, **options: object) -> Camera:
        if request.param == "opencv":
            fake = FakeCapture(scene, ShotConditions(blur=blur))
            monkeypatch.setattr(OpenCvCamera, "capture_factory", lambda *_: fake)
            camera = await open_device("camera", "opencv", "cam", "0", options)
        else:
            sim_options = {"scene_path": str(scene), "blur": blur, **options}
            camera = await open_device("camera", "sim", "cam", None, sim_options)
        assert isinstance(camera, Camera)
        opened.append(camera)
        return camera

    yield make
    for camera in opened:
        await camera.close()


@pytest.mark.asyncio
async def test_captures_a_png_of_the_scene(camera_factory: CameraFactory) -> None:
    camera = await camera_factory()
    png = await camera.capture()
    assert png.startswith(PNG_MAGIC)
    assert [c.text for c in read_codes(png)] == ["CERT-0042"]


@pytest.mark.asyncio
async def test_focus_gate_is_the_same_everywhere(camera_factory: CameraFactory) -> None:
    sharp = await camera_factory(focus_min=500)
    await sharp.capture()
    blurred = await camera_factory(blur=3.0, focus_min=500, focus_retries=1)
    with pytest.raises(OutOfFocusError):
        await blurred.capture()
