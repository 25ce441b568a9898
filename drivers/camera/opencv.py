"""A USB/V4L2 camera through OpenCV (``opencv-python-headless``).

What real cameras need (research/device-anchors.md §6):

* a pinned capture backend (``cv2.CAP_V4L2`` on Linux): properties mean different things on
  different backends, and auto-selection changes with the build (opencv#14494);
* properties set in order (FOURCC before size; auto-exposure off before exposure; autofocus off
  before focus) and **read back**: ``set()`` may return True and change nothing.
  :attr:`OpenCvCamera.settings` reports what stuck; nothing fails on a property the device
  lacks, but a proof taken with auto exposure is logged as such;
* stale frames flushed: drivers queue frames, so after idle the first ``read()`` is old
  (opencv#13145); we ``grab()`` ``flush_frames`` times and retrieve the last;
* no HighGUI: ``cv2.imshow`` and friends abort a process without a display.

Blocking OpenCV calls run in a worker thread so the agent's event loop keeps going.

Options: ``profile`` (a model in ``firmware_configs/camera/``; default: no profile, the
camera's own settings) and any :class:`~drivers.camera.profile.CameraProfile` field as an
override. The URL is a device path (``/dev/v4l/by-id/...``, ``/dev/video0``) or an index.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import cv2
import numpy as np

from drivers.camera.base import Camera
from drivers.camera.profile import CameraProfile, load_camera_profile
from drivers.errors import DeviceProtocolError, DeviceUnavailableError

log = logging.getLogger(__name__)

PINNED_BACKEND = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
READBACK_TOLERANCE = 0.01


class VideoCaptureLike(Protocol):
    """The part of ``cv2.VideoCapture`` we use (tests pass a fake)."""

    def isOpened(self) -> bool: ...
    def set(self, prop: int, value: float) -> bool: ...
    def get(self, prop: int) -> float: ...
    def grab(self) -> bool: ...
    def retrieve(self) -> tuple[bool, Any]: ...
    def release(self) -> None: ...


CaptureFactory = Callable[[int | str, int], VideoCaptureLike]


@dataclass(frozen=True, slots=True)
class SettingResult:
    """One property: what we asked, what ``set()`` said, what the device reports now."""

    requested: float
    accepted: bool
    read_back: float

    @property
    def stuck(self) -> bool:
        return self.accepted and abs(self.read_back - self.requested) <= READBACK_TOLERANCE


def _fourcc_code(fourcc: str) -> float:
    return float(cv2.VideoWriter.fourcc(*fourcc))


def _properties(profile: CameraProfile) -> list[tuple[str, int, float]]:
    """``(name, property, value)`` in the order that makes them stick."""
    wanted: list[tuple[str, int, float | None]] = [
        ("fourcc", cv2.CAP_PROP_FOURCC, _fourcc_code(profile.fourcc) if profile.fourcc else None),
        ("width", cv2.CAP_PROP_FRAME_WIDTH, profile.width),
        ("height", cv2.CAP_PROP_FRAME_HEIGHT, profile.height),
        ("auto_exposure", cv2.CAP_PROP_AUTO_EXPOSURE, profile.auto_exposure),
        ("exposure", cv2.CAP_PROP_EXPOSURE, profile.exposure),
        ("autofocus", cv2.CAP_PROP_AUTOFOCUS, _flag(profile.autofocus)),
        ("focus", cv2.CAP_PROP_FOCUS, profile.focus),
        ("auto_white_balance", cv2.CAP_PROP_AUTO_WB, _flag(profile.auto_white_balance)),
        ("white_balance_k", cv2.CAP_PROP_WB_TEMPERATURE, profile.white_balance_k),
    ]
    return [(name, prop, float(value)) for name, prop, value in wanted if value is not None]


def _flag(value: bool | None) -> float | None:
    return None if value is None else float(value)


class OpenCvCamera(Camera):
    """A V4L2 camera with locked settings, stale-frame flush and the focus gate."""

    backend: ClassVar[str] = "opencv"
    capture_factory: ClassVar[CaptureFactory] = cv2.VideoCapture  # type: ignore[assignment]

    def __init__(self, name: str, url: str | None, options: Mapping[str, Any]) -> None:
        super().__init__(name, url, options)
        overrides = {k: v for k, v in self.options.items() if k in CameraProfile.model_fields}
        model = self.options.get("profile")
        self.profile = (
            load_camera_profile(str(model), overrides=overrides)
            if model
            else CameraProfile.model_validate(overrides)
        )
        self.focus_min = self.profile.focus_min
        self.focus_retries = self.profile.focus_retries
        self.focus_roi = self.profile.focus_roi
        self.settings: dict[str, SettingResult] = {}
        self._capture_device: VideoCaptureLike | None = None
        self._lock = asyncio.Lock()

    @property
    def model(self) -> str:
        return self.profile.model

    async def open(self) -> None:
        """Open the device on the pinned backend and apply the profile."""
        source: int | str = int(self.url) if self.url and self.url.isdigit() else self.url or 0
        device = await asyncio.to_thread(type(self).capture_factory, source, PINNED_BACKEND)
        if not device.isOpened():
            device.release()
            raise DeviceUnavailableError(f"camera {self.name!r}: cannot open {source!r} (V4L2)")
        self._capture_device = device
        self.settings = await asyncio.to_thread(self._apply_profile, device)

    async def close(self) -> None:
        if self._capture_device is not None:
            device, self._capture_device = self._capture_device, None
            await asyncio.to_thread(device.release)

    def _apply_profile(self, device: VideoCaptureLike) -> dict[str, SettingResult]:
        results = {}
        for name, prop, value in _properties(self.profile):
            accepted = bool(device.set(prop, value))
            results[name] = SettingResult(value, accepted, float(device.get(prop)))
            if not results[name].stuck:
                log.warning(
                    "camera %s: %s=%s did not stick (set %s, reads %s)",
                    self.name,
                    name,
                    value,
                    "accepted" if accepted else "refused",
                    results[name].read_back,
                )
        return results

    async def _capture(self) -> bytes:
        if self._capture_device is None:
            raise DeviceUnavailableError(f"camera {self.name!r} is not open")
        async with self._lock:
            frame = await asyncio.to_thread(self._fresh_frame, self._capture_device)
        return await asyncio.to_thread(_encode_png, frame)

    def _fresh_frame(self, device: VideoCaptureLike) -> np.ndarray:
        for _ in range(self.profile.flush_frames + 1):
            if not device.grab():
                raise DeviceUnavailableError(f"camera {self.name!r}: no frame (unplugged?)")
        ok, frame = device.retrieve()
        if not ok or frame is None:
            raise DeviceUnavailableError(f"camera {self.name!r}: frame could not be retrieved")
        return np.asarray(frame)


def _encode_png(frame: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", frame)
    if not ok:
        raise DeviceProtocolError(f"frame of shape {frame.shape} does not encode as PNG")
    return encoded.tobytes()
