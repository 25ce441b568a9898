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
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from drivers.laser.burn import BurnCanvas

MAT_BGR = (46, 52, 40)  # dark green bench mat
METAL_BGR = (150, 196, 214)  # a yellow-gold plate
ITEM_FILL = 0.7  # the item takes this fraction of the frame's shorter side
FILL_FRAME = float("inf")  # ``fill`` for a view already cut to the frame (a macro lens)
ENGRAVING_MARGIN = 0.8  # macro view: margin around the engraved ink, in ink heights


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
    fill: float = ITEM_FILL  # item's longer side / frame's shorter side, capped at the frame


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


def engraving_view(path: Path | None, width: int, height: int) -> np.ndarray | None:
    """What a macro lens framed on the engraving sees of the laser simulator's rendering.

    The burned ink (or, before any burn, the item's engraving area) with a margin, widened to
    the frame's aspect ratio (the bench mat beyond the item) and scaled to ``width`` x
    ``height``; photograph it with ``fill=FILL_FRAME``. ``None`` when ``path`` is not a
    rendering saved by the laser simulator (then the whole item is photographed).
    """
    from drivers.laser.burn import BurnCanvas  # the sim camera's only tie to the sim laser

    if path is None or not path.is_file():
        return None
    try:
        canvas = BurnCanvas.load(path)
    except (OSError, ValueError, KeyError):
        return None
    x0, y0, x1, y1 = _engraving_box(canvas)
    margin = ENGRAVING_MARGIN * (y1 - y0)
    x0, y0, x1, y1 = x0 - margin, y0 - margin, x1 + margin, y1 + margin
    centre_x, centre_y = (x0 + x1) / 2, (y0 + y1) / 2
    half_w = max(x1 - x0, (y1 - y0) * width / height) / 2
    half_h = half_w * height / width
    box = [round(centre_x - half_w), round(centre_y - half_h)]
    box += [round(centre_x + half_w), round(centre_y + half_h)]
    view = crop_on_mat(canvas.image, box)
    resized: np.ndarray = cv2.resize(view, (width, height), interpolation=cv2.INTER_AREA)
    return resized


def _engraving_box(canvas: BurnCanvas) -> tuple[float, float, float, float]:
    """The burned ink's box in canvas px; the template's engraving area when nothing burned."""
    ink = canvas.burn_mask()
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size:
        return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)
    template = canvas.template
    left, top = canvas.to_px(0.0, template.area_height_mm)
    right, bottom = canvas.to_px(template.area_width_mm, 0.0)
    return left, top, right, bottom


def crop_on_mat(image: np.ndarray, box: list[int]) -> np.ndarray:
    """``image[box]``, with the bench mat where the box passes the image's edge."""
    x0, y0, x1, y1 = box
    height, width = image.shape[:2]
    inner = image[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
    padded: np.ndarray = cv2.copyMakeBorder(
        inner,
        max(-y0, 0),
        max(y1 - height, 0),
        max(-x0, 0),
        max(x1 - width, 0),
        cv2.BORDER_CONSTANT,
        value=MAT_BGR,
    )
    return padded


def _place(item: np.ndarray, shot: ShotConditions) -> np.ndarray:
    frame = np.zeros((shot.height, shot.width, 3), np.uint8)
    frame[:] = MAT_BGR
    side = shot.fill * min(shot.width, shot.height)
    scale = min(side / max(item.shape[:2]), shot.width / item.shape[1], shot.height / item.shape[0])
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
