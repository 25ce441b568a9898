"""OpenCvCamera: the real device path, and its logic against a fake VideoCapture.

There is no /dev/video* on this machine: opening a real camera is the one thing these tests
cannot do; they check that its absence is a clean DeviceUnavailableError.
"""

from __future__ import annotations

import cv2
import pytest
from support.camera_rig import FakeCapture

from drivers.camera.focus import decode_grey
from drivers.camera.opencv import OpenCvCamera, _properties
from drivers.camera.profile import CameraProfile, load_camera_profile
from drivers.camera.scene import ShotConditions
from drivers.errors import DeviceUnavailableError
from drivers.registry import open_device


@pytest.mark.asyncio
async def test_no_video_device_is_unavailable() -> None:
    with pytest.raises(DeviceUnavailableError):
        await open_device("camera", "opencv", "cam", "/dev/video0", {})


def use_fake(monkeypatch: pytest.MonkeyPatch, fake: FakeCapture) -> list[tuple[object, int]]:
    calls: list[tuple[object, int]] = []

    def factory(source: int | str, backend: int) -> FakeCapture:
        calls.append((source, backend))
        return fake

    monkeypatch.setattr(OpenCvCamera, "capture_factory", factory)
    return calls


@pytest.mark.asyncio
async def test_pinned_backend_and_index_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = use_fake(monkeypatch, FakeCapture())
    async with OpenCvCamera("cam", "2", {}):
        pass
    assert calls == [(2, cv2.CAP_V4L2)]


@pytest.mark.asyncio
async def test_profile_is_applied_in_order_and_read_back(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCapture(ignored=frozenset({cv2.CAP_PROP_FOCUS}))  # a fixed-focus camera
    use_fake(monkeypatch, fake)
    async with OpenCvCamera("cam", "/dev/v4l/by-id/x", {"profile": "generic-uvc-1080p"}) as cam:
        assert cam.settings["exposure"].stuck
        assert cam.settings["auto_exposure"].read_back == 1.0
        assert not cam.settings["focus"].stuck
        assert cam.settings["focus"].accepted  # set() said yes; the read-back says no
    assert fake.released
    names = [name for name, _, _ in _properties(load_camera_profile())]
    assert names.index("fourcc") < names.index("width")
    assert names.index("auto_exposure") < names.index("exposure")
    assert names.index("autofocus") < names.index("focus")


@pytest.mark.asyncio
async def test_stale_frames_are_flushed(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCapture()
    use_fake(monkeypatch, fake)
    async with OpenCvCamera("cam", "0", {"flush_frames": 4}) as cam:
        png = await cam.capture()
    assert fake.grabs == 5
    assert decode_grey(png).shape == (480, 640)


@pytest.mark.asyncio
async def test_focus_gate_retries_then_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    from drivers.camera.base import OutOfFocusError

    fake = FakeCapture(shot=ShotConditions(blur=4.0))
    use_fake(monkeypatch, fake)
    options = {"flush_frames": 0, "focus_min": 100.0, "focus_retries": 2}
    async with OpenCvCamera("cam", "0", options) as cam:
        with pytest.raises(OutOfFocusError):
            await cam.capture()
    assert fake.grabs == 3


@pytest.mark.asyncio
async def test_unplugged_camera_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCapture()
    use_fake(monkeypatch, fake)
    async with OpenCvCamera("cam", "0", {}) as cam:
        fake.unplugged = True
        with pytest.raises(DeviceUnavailableError):
            await cam.capture()


@pytest.mark.asyncio
async def test_a_device_that_does_not_open_is_released(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCapture(opened=False)
    use_fake(monkeypatch, fake)
    with pytest.raises(DeviceUnavailableError):
        await OpenCvCamera("cam", "0", {}).open()
    assert fake.released


def test_profile_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="fourcc"):
        CameraProfile.model_validate({"fourcc": "MJPEG"})
    with pytest.raises(ValueError, match="flush_frames"):
        load_camera_profile(overrides={"flush_frames": -1})
