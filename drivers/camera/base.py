"""The camera family's public face; backends implement one hook, :meth:`Camera._capture`."""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import ClassVar

from drivers.base import Device
from drivers.errors import DeviceError, DeviceProtocolError

log = logging.getLogger(__name__)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Camera(Device):
    """A camera. Call :meth:`capture`; backends override :meth:`_capture`."""

    family: ClassVar[str] = "camera"

    async def capture(self) -> bytes:
        """One still image as PNG bytes; every failure is a :class:`DeviceError`."""
        try:
            image = await self._capture()
        except DeviceError:
            raise
        except Exception as err:
            raise DeviceError(f"camera {self.name!r}: unexpected {type(err).__name__}") from err
        if not image.startswith(PNG_MAGIC):
            raise DeviceProtocolError(f"camera {self.name!r} returned something that is not a PNG")
        log.info("camera %s: captured %d bytes", self.name, len(image))
        return image

    @abstractmethod
    async def _capture(self) -> bytes:
        """Take one picture and return it PNG-encoded."""
