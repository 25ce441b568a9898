"""Barcodes and DataMatrix in proof photos, with zxing-cpp: serial-to-certificate matching.

zxing-cpp decodes DataMatrix and EAN-13, which OpenCV's ``BarcodeDetector`` missed in our test
(research/device-anchors.md §6); DataMatrix suits tiny laser-marked serials. :func:`make_code_png`
writes a code with the same library, so tests photograph a real label.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np
import zxingcpp

Point = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Code:
    """One decoded code: its format (``"DataMatrix"``, ``"QRCode"``, ``"EAN13"``...), its text,
    and its corners in the picture (top-left, top-right, bottom-right, bottom-left)."""

    format: str
    text: str
    position: tuple[Point, Point, Point, Point]


def _formats(names: Iterable[str] | None) -> zxingcpp.BarcodeFormats | None:
    if names is None:
        return None
    try:
        return zxingcpp.barcode_formats_from_str(",".join(names))
    except ValueError as err:
        raise ValueError(f"unknown barcode format in {list(names)}: {err}") from err


def _corners(position: zxingcpp.Position) -> tuple[Point, Point, Point, Point]:
    points = (position.top_left, position.top_right, position.bottom_right, position.bottom_left)
    tl, tr, br, bl = ((p.x, p.y) for p in points)
    return tl, tr, br, bl


def read_codes(png: bytes, *, formats: Iterable[str] | None = None) -> list[Code]:
    """Every valid code in a PNG (or any image OpenCV decodes); ``[]`` when there is none."""
    image = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError("not an image")
    wanted = _formats(formats)
    found = (
        zxingcpp.read_barcodes(image)
        if wanted is None
        else zxingcpp.read_barcodes(image, formats=wanted)
    )
    return [
        Code(format=result.format.name, text=result.text, position=_corners(result.position))
        for result in found
        if result.valid
    ]


def make_code_png(text: str, code_format: str = "DataMatrix", *, scale: int = 8) -> bytes:
    """A printable code (black on white, with its quiet zone) as PNG bytes."""
    barcode = zxingcpp.create_barcode(text, zxingcpp.barcode_format_from_str(code_format))
    image = np.asarray(barcode.to_image(scale=scale, add_quiet_zones=True))
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"cannot encode a {code_format} of {text!r}")
    return encoded.tobytes()
