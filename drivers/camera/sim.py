"""The simulated camera (backend ``"sim"``).

With no scene options it is the skeleton's stand-in: a small grey gradient PNG made with the
standard library, different every frame (options ``width``, ``height``; default 64 x 48).

With any scene option it photographs the bench (:mod:`drivers.camera.scene`): the laser
simulator's rendering at ``scene_path`` when that file exists (re-read every shot, so a new
engraving shows up), else a plain metal plate; under ``light``, ``light_jitter``, ``glare``,
``blur``, ``perspective`` and ``noise``, deterministic by ``seed``; ``width`` x ``height``
defaults to 640 x 480 in this mode. ``frame``: ``"item"`` (default) shows the whole item in
the frame; ``"engraving"`` is a station's macro lens framed on the engraving (the burned text
fills the frame's width, so a ring band's 1.4 mm letters are ~30-60 px high, as verification
needs). The focus gate options of :class:`Camera` apply as usual.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from drivers.camera.base import PNG_MAGIC, Camera

BASE_EXPOSURE_MS = 8.0  # the sim's exposure at mid-grey (mean 128)
SCENE_OPTIONS = frozenset(
    {
        "scene_path",
        "light",
        "light_jitter",
        "glare",
        "blur",
        "perspective",
        "noise",
        "seed",
        "frame",
    }
)
FRAMES = ("item", "engraving")


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
    """Simulated camera; each capture differs (a frame counter shades or reseeds the image)."""

    backend: ClassVar[str] = "sim"

    def __init__(self, name: str, url: str | None, options: Mapping[str, Any]) -> None:
        super().__init__(name, url, options)
        self.photographs_scene = bool(SCENE_OPTIONS & self.options.keys())
        default_size = (640, 480) if self.photographs_scene else (64, 48)
        self.width = int(self.options.get("width", default_size[0]))
        self.height = int(self.options.get("height", default_size[1]))
        scene_path = self.options.get("scene_path")
        self.scene_path = Path(scene_path) if scene_path else None
        self.frame = str(self.options.get("frame", "item"))
        if self.frame not in FRAMES:
            raise ValueError(f"unknown frame {self.frame!r}; known: {', '.join(FRAMES)}")
        self.frames = 0

    @property
    def model(self) -> str:
        return "sim-camera"

    async def _capture(self) -> bytes:
        self.frames += 1
        if not self.photographs_scene:
            self.exposure_ms = BASE_EXPOSURE_MS  # the wrapped gradient is mid-grey on average
            return grey_png(self.width, self.height, shade=self.frames)
        return self._photograph()

    def _meter(self, mean: float, image: bytes) -> None:
        """The sim's auto exposure (dim scene, longer exposure) and focus meter (telemetry)."""
        from drivers.camera.focus import focus_score

        self.exposure_ms = round(BASE_EXPOSURE_MS * 128 / max(mean, 1.0), 3)
        self.last_focus_score = focus_score(image, roi=self.focus_roi)

    def _photograph(self) -> bytes:
        import cv2  # the skeleton's mode must not need OpenCV

        from drivers.camera.scene import (
            FILL_FRAME,
            ShotConditions,
            engraving_view,
            load_scene,
            photograph,
        )

        shot = ShotConditions(
            width=self.width,
            height=self.height,
            seed=int(self.options.get("seed", 0)),
            **{
                key: float(self.options[key])
                for key in ("light", "light_jitter", "glare", "blur", "perspective", "noise")
                if key in self.options
            },
        )
        view = None
        if self.frame == "engraving":
            view = engraving_view(self.scene_path, self.width, self.height)
        if view is not None:
            shot = replace(shot, fill=FILL_FRAME)
        scene = view if view is not None else load_scene(self.scene_path)
        frame = photograph(scene, shot, self.frames)
        ok, encoded = cv2.imencode(".png", frame)
        if not ok:
            raise RuntimeError("PNG encoding failed")
        image: bytes = encoded.tobytes()
        self._meter(float(frame.mean()), image)
        return image
