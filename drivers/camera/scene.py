"""Photographing a simulated bench: an item (or the laser simulator's rendering) under bench
conditions that vary shot to shot.

Every effect is seeded (``seed`` plus the frame number), so a failing test replays exactly.
Order follows the light path: the item sits on a mat at a slight angle (perspective), the lamp
sets the exposure (light), a polished surface reflects it (glare), the lens blurs, the sensor
adds noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

MAT_BGR = (46, 52, 40)  # dark green bench mat
METAL_BGR = (150, 196, 214)  # a yellow-gold plate
ITEM_FILL = 0.7  # the item takes this fraction of the frame's shorter side


@dataclass(frozen=True, slots=True)
class ShotConditions:
    """How one camera sees the bench. Zero everywhere (and light 1) is a perfect photo."""

    width: int = 640
    height: int = 480
    light: float = 1.0  # exposure gain
    light_jitter: float = 0.0  # +/- fraction of ``light``, drawn per shot
    glare: float = 0.0  # 0..1, peak of a specular highlight at a random place
    blur: float = 0.0  # Gaussian sigma in pixels (defocus)
    perspective: float = 0.0  # corner displacement, as a fraction of the frame
    noise: float = 0.0  # sensor noise sigma, in 8-bit levels
    seed: int = 0


def plain_item(size: int = 256) -> np.ndarray:
    """A blank metal plate (what the camera sees when nothing was engraved yet)."""
    item = np.zeros((size, size, 3), np.uint8)
    item[:] = MAT_BGR
    cv2.rectangle(item, (8, 8), (size - 9, size - 9), METAL_BGR, thickness=-1)
    return item


def load_scene(path: Path | None) -> np.ndarray:
    """The laser simulator's rendering at ``path`` when it exists, else a plain item."""
    if path is not None and path.is_file():
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is not None:
            return image
    return plain_item()


def _place(item: np.ndarray, shot: ShotConditions) -> np.ndarray:
    frame = np.zeros((shot.height, shot.width, 3), np.uint8)
    frame[:] = MAT_BGR
    side = ITEM_FILL * min(shot.width, shot.height)
    scale = side / max(item.shape[:2])
    size = (max(1, round(item.shape[1] * scale)), max(1, round(item.shape[0] * scale)))
    resized = cv2.resize(item, size, interpolation=cv2.INTER_NEAREST)
    top, left = (shot.height - size[1]) // 2, (shot.width - size[0]) // 2
    frame[top : top + size[1], left : left + size[0]] = resized
    return frame


def _tilt(frame: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    height, width = frame.shape[:2]
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    shift = rng.uniform(-amount, amount, size=(4, 2)) * np.array([width, height])
    matrix = cv2.getPerspectiveTransform(corners, (corners + shift).astype(np.float32))
    tilted: np.ndarray = cv2.warpPerspective(frame, matrix, (width, height), borderValue=MAT_BGR)
    return tilted


def _glare(frame: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    height, width = frame.shape[:2]
    cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
    radius = 0.12 * min(width, height)
    ys, xs = np.mgrid[0:height, 0:width]
    spot = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * radius**2))
    glared: np.ndarray = frame + (255.0 * strength * spot)[..., None]
    return glared


def photograph(item: np.ndarray, shot: ShotConditions, frame_number: int) -> np.ndarray:
    """One BGR frame of ``item`` on the bench, as ``shot`` sees it."""
    rng = np.random.default_rng([shot.seed, frame_number])
    frame = _place(item, shot)
    if shot.perspective > 0:
        frame = _tilt(frame, shot.perspective, rng)
    gain = shot.light * (1 + rng.uniform(-shot.light_jitter, shot.light_jitter))
    lit: np.ndarray = frame.astype(np.float64) * gain
    if shot.glare > 0:
        lit = _glare(lit, shot.glare, rng)
    if shot.blur > 0:
        lit = cv2.GaussianBlur(lit, (0, 0), shot.blur)
    if shot.noise > 0:
        lit = lit + rng.normal(0.0, shot.noise, size=lit.shape)
    photo: np.ndarray = np.clip(lit, 0, 255).astype(np.uint8)
    return photo
