"""A stand-in camera for the skeleton: a small valid PNG, made with the standard library.

The simulator that photographs what the simulated laser rendered comes with the drivers issue.
Options: ``width``, ``height`` (default 64 x 48).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from typing import Any, ClassVar

from drivers.camera.base import PNG_MAGIC, Camera


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def grey_png(width: int, height: int, shade: int = 0) -> bytes:
    """An 8-bit greyscale PNG with a diagonal gradient, offset by ``shade``."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(
        b"\x00" + bytes((x + y + shade) % 256 for x in range(width)) for y in range(height)
    )
    return (
        PNG_MAGIC
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows))
        + _chunk(b"IEND", b"")
    )


class SimCamera(Camera):
    """Simulated camera; each capture differs (a frame counter shades the image)."""

    backend: ClassVar[str] = "sim"

    def __init__(self, name: str, url: str | None, options: Mapping[str, Any]) -> None:
        super().__init__(name, url, options)
        self.width = int(self.options.get("width", 64))
        self.height = int(self.options.get("height", 48))
        self.frames = 0

    @property
    def model(self) -> str:
        return "sim-camera"

    async def _capture(self) -> bytes:
        self.frames += 1
        return grey_png(self.width, self.height, shade=self.frames)
