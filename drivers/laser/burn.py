"""What the laser burned, as an image of the item: the GRBL simulator draws into a
:class:`BurnCanvas`, the simulated camera photographs it.

The canvas is the item seen from above (see :mod:`drivers.laser.templates` for the frames):
a metal tint with a brushed texture that is a pure function of (template, metal, seed, scale),
so :meth:`BurnCanvas.burn_mask` can tell burned pixels from texture by regenerating the blank
item. Coordinates passed in are mm in the engraving area's frame, as in toolpaths and G-code.
Only OpenCV's core and imgcodecs are used: HighGUI calls abort a process without a display.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import cv2
import numpy as np
import numpy.typing as npt

from drivers.laser.gcode_interpreter import render_gcode
from drivers.laser.templates import ItemTemplate
from drivers.laser.toolpath import Toolpath

__all__ = ["METALS", "BurnCanvas", "MetalTint", "render_gcode", "toolpath_mask"]

Image = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]

_SUBPIXEL_BITS = 4  # cv2 draws at 1/16 px, so 0.001 mm moves are not lost to rounding
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_META_KEY = b"benchfleet-canvas"
_JIG_BGR = (38.0, 38.0, 40.0)  # the dark fixture around a round item


@dataclass(frozen=True, slots=True)
class MetalTint:
    """BGR colours of a metal as polished and as fully darkened by the laser."""

    base_bgr: tuple[float, float, float]
    burn_bgr: tuple[float, float, float]


METALS: Mapping[str, MetalTint] = {
    "gold": MetalTint((70.0, 180.0, 222.0), (30.0, 42.0, 58.0)),
    "rose_gold": MetalTint((140.0, 158.0, 214.0), (38.0, 40.0, 66.0)),
    "silver": MetalTint((206.0, 204.0, 200.0), (58.0, 56.0, 54.0)),
    "steel": MetalTint((178.0, 174.0, 168.0), (62.0, 44.0, 36.0)),  # blued oxide
    "platinum": MetalTint((214.0, 216.0, 218.0), (72.0, 72.0, 74.0)),
}


class BurnCanvas:
    """An image of one item that laser strokes darken, and that survives a save/load."""

    def __init__(
        self,
        template: ItemTemplate,
        *,
        metal: str = "gold",
        px_per_mm: float = 40.0,  # 0.025 mm pixels: a 0.08 mm burn line is 3 px wide
        seed: int = 0,
        spot_mm: float = 0.08,
    ) -> None:
        if metal not in METALS:
            raise ValueError(f"unknown metal {metal!r}; known: {', '.join(METALS)}")
        if px_per_mm <= 0 or spot_mm <= 0:
            raise ValueError("px_per_mm and spot_mm must be positive")
        self.template = template
        self.metal = metal
        self.px_per_mm = px_per_mm
        self.seed = seed
        self.spot_mm = spot_mm
        self._pixels = _blank_item(template, METALS[metal], px_per_mm, seed)

    @property
    def image(self) -> npt.NDArray[np.uint8]:
        """The item as an 8-bit BGR image (a copy)."""
        return np.clip(np.rint(self._pixels), 0, 255).astype(np.uint8)

    def to_px(self, x_mm: float, y_mm: float) -> tuple[float, float]:
        """Pixel coordinates (x right, y down) of a point in the area frame."""
        offset_x, offset_y = self.template.area_offset_mm
        return (
            (x_mm + offset_x) * self.px_per_mm,
            (self.template.item_height_mm - y_mm - offset_y) * self.px_per_mm,
        )

    def line_width_px(self, power_fraction: float) -> int:
        """Burn line width: the spot, widened a little by power (heat spreads)."""
        width_mm = self.spot_mm * (0.6 + 0.4 * power_fraction)
        return max(1, round(width_mm * self.px_per_mm))

    def burn_segment(
        self, x0: float, y0: float, x1: float, y1: float, *, power_fraction: float
    ) -> None:
        """Darken the line from (x0, y0) to (x1, y1) mm; ``power_fraction`` is 0..1.

        Darkness grows with the square root of power (oxide forms fast, then saturates) and
        passes compound, so a stroke burned twice is darker. Work is limited to the segment's
        bounding box: a toolpath has thousands of segments.
        """
        power = min(max(power_fraction, 0.0), 1.0)
        if power == 0.0:
            return
        thickness = self.line_width_px(power)
        (px0, py0), (px1, py1) = self.to_px(x0, y0), self.to_px(x1, y1)
        pad = thickness + 2
        height, width = self._pixels.shape[:2]
        left, top = max(int(min(px0, px1)) - pad, 0), max(int(min(py0, py1)) - pad, 0)
        right = min(int(max(px0, px1)) + pad + 1, width)
        bottom = min(int(max(py0, py1)) + pad + 1, height)
        if left >= right or top >= bottom:
            return  # entirely off the item
        coverage = np.zeros((bottom - top, right - left), np.uint8)
        cv2.line(
            coverage,
            _fixed(px0 - left, py0 - top),
            _fixed(px1 - left, py1 - top),
            255,
            thickness,
            cv2.LINE_AA,
            _SUBPIXEL_BITS,
        )
        alpha = (coverage.astype(np.float32) / 255.0 * (0.95 * power**0.5))[..., None]
        burn = np.array(METALS[self.metal].burn_bgr, np.float32)
        region = self._pixels[top:bottom, left:right]
        region[...] = region * (1.0 - alpha) + burn * alpha

    def burn_mask(self, threshold: float = 0.4) -> Mask:
        """Pixels darkened by more than ``threshold`` (0..1) of the way to a full burn.

        Measured against the regenerated blank item, so the texture does not count; as a
        fraction of the metal's contrast, so gold and silver threshold alike.
        """
        blank = _blank_item(self.template, METALS[self.metal], self.px_per_mm, self.seed)
        full = blank - np.array(METALS[self.metal].burn_bgr, np.float32)
        darkened = (blank - self._pixels).sum(axis=2) / np.maximum(full.sum(axis=2), 1.0)
        return np.asarray(darkened > threshold)

    def to_png(self) -> bytes:
        """A PNG of the item carrying the canvas settings, so :meth:`load` can resume it."""
        ok, encoded = cv2.imencode(".png", self.image)
        if not ok:
            raise RuntimeError("OpenCV could not encode the canvas as PNG")
        return _with_text_chunk(encoded.tobytes(), json.dumps(self._settings()).encode())

    def save(self, path: Path | str) -> None:
        """Write :meth:`to_png` to ``path``."""
        Path(path).write_bytes(self.to_png())

    @classmethod
    def load(cls, path: Path | str) -> Self:
        """A canvas saved by :meth:`save`; burning on continues where it stopped."""
        data = Path(path).read_bytes()
        settings = json.loads(_read_text_chunk(data))
        canvas = cls(
            ItemTemplate.model_validate(settings["template"]),
            metal=settings["metal"],
            px_per_mm=settings["px_per_mm"],
            seed=settings["seed"],
            spot_mm=settings["spot_mm"],
        )
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if pixels is None or pixels.shape != canvas._pixels.shape:
            raise ValueError(f"{path}: image does not match its canvas settings")
        # 8-bit storage loses under half a grey level; blending onto it is otherwise exact.
        canvas._pixels = pixels.astype(np.float32)
        return canvas

    def _settings(self) -> dict[str, Any]:
        return {
            "template": self.template.model_dump(mode="json"),
            "metal": self.metal,
            "px_per_mm": self.px_per_mm,
            "seed": self.seed,
            "spot_mm": self.spot_mm,
        }


def toolpath_mask(toolpath: Toolpath, canvas: BurnCanvas, *, power_fraction: float = 1.0) -> Mask:
    """The toolpath rasterised like the canvas would burn it: the expected dark pixels."""
    mask = np.zeros(canvas.image.shape[:2], np.uint8)
    thickness = canvas.line_width_px(power_fraction)
    for stroke in toolpath.strokes:
        points = np.array([_fixed(*canvas.to_px(x, y)) for x, y in stroke], np.int32)
        cv2.polylines(mask, [points], False, 255, thickness, cv2.LINE_8, _SUBPIXEL_BITS)
    return mask > 0


def _fixed(x_px: float, y_px: float) -> tuple[int, int]:
    scale = 1 << _SUBPIXEL_BITS
    return round(x_px * scale), round(y_px * scale)


def _blank_item(template: ItemTemplate, tint: MetalTint, px_per_mm: float, seed: int) -> Image:
    """The polished item: tint plus brushed streaks along X, the jig outside a disc."""
    height = max(1, round(template.item_height_mm * px_per_mm))
    width = max(1, round(template.item_width_mm * px_per_mm))
    rng = np.random.default_rng(seed)
    grain = rng.normal(0.0, 1.0, (height, width)).astype(np.float32)
    # Long horizontal blur turns white noise into brushing marks; row offsets vary the streaks.
    streaks = cv2.blur(grain, (max(3, width // 8) | 1, 1)) * 6.0
    streaks += rng.normal(0.0, 2.0, (height, 1)).astype(np.float32)
    pixels = np.empty((height, width, 3), np.float32)
    pixels[...] = np.array(tint.base_bgr, np.float32)
    pixels += streaks[..., None]
    if template.outline == "disc":
        outside = np.ones((height, width), np.uint8)
        centre = (width // 2, height // 2)
        cv2.circle(outside, centre, min(width, height) // 2, 0, -1, cv2.LINE_8)
        pixels[outside.astype(bool)] = _JIG_BGR
    return pixels


def _with_text_chunk(png: bytes, text: bytes) -> bytes:
    """``png`` with a ``tEXt`` chunk after IHDR (IHDR is always first and 25 bytes long)."""
    body = b"tEXt" + _META_KEY + b"\0" + text
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    split = len(_PNG_SIGNATURE) + 25
    return png[:split] + chunk + png[split:]


def _read_text_chunk(png: bytes) -> str:
    if not png.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    offset = len(_PNG_SIGNATURE)
    while offset + 8 <= len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        data = png[offset + 8 : offset + 8 + length]
        if kind == b"tEXt" and data.startswith(_META_KEY + b"\0"):
            return data[len(_META_KEY) + 1 :].decode("latin-1")
        offset += 12 + length
    raise ValueError("PNG has no benchfleet canvas settings (not saved by BurnCanvas.save)")
