"""Decoding and the photometric steps: grey conversion, contrast normalisation, glare.

Metal photos vary mostly in exposure and in specular highlights; ink (laser oxide) is a thin
dark-on-bright (or, on some finishes, bright-on-dark) stroke. Everything here is pure numpy/
OpenCV on BGR uint8 arrays.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

BgrImage = npt.NDArray[np.uint8]
GreyImage = npt.NDArray[np.uint8]

MAX_PIXELS = 40_000_000  # a decoded photo larger than this is refused, not processed
GLARE_LEVEL = 245  # grey level at which a highlight has wiped out the ink contrast


class BadImageError(ValueError):
    """The input is not a decodable PNG/JPEG or BGR uint8 array."""


def decode_image(image: bytes | npt.NDArray[np.generic]) -> BgrImage:
    """A BGR uint8 image from PNG/JPEG bytes or an array (grey arrays are expanded)."""
    if isinstance(image, bytes | bytearray | memoryview):
        if len(image) == 0:
            raise BadImageError("empty image")
        decoded = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
        if decoded is None:
            raise BadImageError("not a decodable PNG or JPEG image")
        return _checked(np.asarray(decoded, np.uint8))
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise BadImageError("image must be PNG/JPEG bytes or a uint8 numpy array")
    pixels: BgrImage = np.asarray(image, np.uint8)
    if pixels.ndim == 2:
        return _checked(np.asarray(cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR), np.uint8))
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise BadImageError(f"image array must be HxW, HxWx3 or HxWx4, not {pixels.shape}")
    if pixels.shape[2] == 4:
        return _checked(np.asarray(cv2.cvtColor(pixels, cv2.COLOR_BGRA2BGR), np.uint8))
    return _checked(pixels)


def to_grey(image: BgrImage) -> GreyImage:
    """Luminance as uint8."""
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), np.uint8)


def normalise_contrast(grey: GreyImage, *, tile_px: int = 32) -> GreyImage:
    """CLAHE: local contrast stretch, so faint oxide on bright metal reaches full range."""
    tiles = max(1, min(grey.shape[:2]) // max(tile_px, 1))
    clahe = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(tiles, tiles))
    return np.asarray(clahe.apply(grey), np.uint8)


def glare_fraction(grey: GreyImage) -> float:
    """Fraction of ``grey`` at or above :data:`GLARE_LEVEL` (saturated highlight)."""
    if grey.size == 0:
        return 0.0
    return float(np.count_nonzero(grey >= GLARE_LEVEL)) / float(grey.size)


def _checked(image: BgrImage) -> BgrImage:
    height, width = image.shape[:2]
    if height < 8 or width < 8:
        raise BadImageError(f"image too small ({width}x{height} px)")
    if height * width > MAX_PIXELS:
        raise BadImageError(f"image too large ({width}x{height} px)")
    return image
