"""The camera family's public face; backends implement one hook, :meth:`Camera._capture`.

The focus gate lives here, once for every backend: with ``focus_min`` set, a frame whose focus
score (:mod:`drivers.camera.focus`) is below it is retaken up to ``focus_retries`` times, then
refused with :class:`OutOfFocusError`. Without ``focus_min`` every frame is accepted.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from drivers.base import Device
from drivers.errors import DeviceError, DeviceProtocolError, DeviceReportedError
from drivers.telemetry import MetricSpec, Scalar

log = logging.getLogger(__name__)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class OutOfFocusError(DeviceReportedError):
    """Every attempt scored below ``focus_min``: refocus, clean the lens or fix the light."""

    def __init__(self, message: str, score: float) -> None:
        super().__init__(message)
        self.score = score


class Camera(Device):
    """A camera. Call :meth:`capture`; backends override :meth:`_capture`.

    Options: ``focus_min`` (float, default off), ``focus_retries`` (default 2), ``focus_roi``
    (centre fraction scored, default 1.0).
    """

    family: ClassVar[str] = "camera"
    METRICS: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("frames", "", "counter", "frames captured since the driver started"),
        MetricSpec("focus_score", "", "gauge", "focus score of the last scored frame"),
        MetricSpec("exposure_ms", "ms", "gauge", "exposure time of the last frame"),
    )

    def __init__(self, name: str, url: str | None, options: Mapping[str, Any]) -> None:
        super().__init__(name, url, options)
        focus_min = self.options.get("focus_min")
        self.focus_min: float | None = None if focus_min is None else float(focus_min)
        self.focus_retries = int(self.options.get("focus_retries", 2))
        self.focus_roi = float(self.options.get("focus_roi", 1.0))
        self.last_focus_score: float | None = None
        self.frames_captured = 0
        exposure = self.options.get("exposure_ms")
        self.exposure_ms: float | None = None if exposure is None else float(exposure)

    async def sample(self) -> dict[str, Scalar]:
        """Telemetry (``METRICS``) from what the last capture left; never takes a picture."""
        values: dict[str, Scalar] = {"frames": self.frames_captured}
        if self.last_focus_score is not None:
            values["focus_score"] = round(self.last_focus_score, 2)
        if self.exposure_ms is not None:
            values["exposure_ms"] = round(self.exposure_ms, 3)
        return values

    async def capture(self) -> bytes:
        """One still image as PNG bytes; every failure is a :class:`DeviceError`."""
        if self.focus_min is None:
            return await self._capture_png()
        from drivers.camera.focus import focus_score  # numpy and cv2 only when gating

        score = 0.0
        for attempt in range(1 + self.focus_retries):
            image = await self._capture_png()
            score = self.last_focus_score = focus_score(image, roi=self.focus_roi)
            if score >= self.focus_min:
                return image
            log.warning(
                "camera %s: focus score %.1f below %.1f (attempt %d)",
                self.name,
                score,
                self.focus_min,
                attempt + 1,
            )
        raise OutOfFocusError(
            f"camera {self.name!r}: focus score {score:.1f} below {self.focus_min:.1f} "
            f"after {1 + self.focus_retries} attempts",
            score,
        )

    async def _capture_png(self) -> bytes:
        try:
            image = await self._capture()
        except DeviceError:
            raise
        except Exception as err:
            raise DeviceError(f"camera {self.name!r}: unexpected {type(err).__name__}") from err
        if not image.startswith(PNG_MAGIC):
            raise DeviceProtocolError(f"camera {self.name!r} returned something that is not a PNG")
        self.frames_captured += 1
        log.info("camera %s: captured %d bytes", self.name, len(image))
        return image

    @abstractmethod
    async def _capture(self) -> bytes:
        """Take one picture and return it PNG-encoded."""
