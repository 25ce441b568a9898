"""Finding the engraved line in a photo with classical CV, and straightening it.

Ink is a thin stroke against the metal around it, so a morphological black-hat (closing minus
the image) lights up strokes thinner than the kernel and ignores what is flat or broad: the
brushed texture's slow shading, a highlight's gradient, item edges. Connected ink components are
chained into lines (neighbours overlapping vertically, close horizontally); the line with the
most ink wins. A quadratic baseline under its glyphs follows a tilted or curved (ring band)
line; resampling columns along it gives a straight crop the recogniser can read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from hub.verification.preprocess import BgrImage, GreyImage

FloatImage = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]

MIN_COMPONENT_PX = 3  # specks below this are sensor noise
MIN_LINE_INK_PX = 40  # a line of text has at least this much ink
MIN_LINE_HEIGHT_PX = 5  # ... and a glyph at least this tall (ring bands: ~11 px caps)
NOISE_SIGMAS = 5.0  # ink response must stand this many robust sigmas above the background
COMMON_HEIGHT = 0.15  # short lines: parts within this fraction of the median height set the tilt
BASELINE_TOLERANCE = 0.12  # of the median part height: a bottom further off the baseline hangs
MIN_BASELINE_PARTS = 5  # ... and the baseline needs this many glyphs on it


@dataclass(frozen=True, slots=True)
class Component:
    x0: int
    y0: int
    x1: int  # exclusive
    y1: int  # exclusive
    area: int

    @property
    def height(self) -> int:
        return self.y1 - self.y0


@dataclass(frozen=True, slots=True)
class TextLine:
    """A straightened line of ink: ``bgr``/``ink`` are the resampled crop around it."""

    bgr: BgrImage
    ink: Mask  # ink pixels of the crop (the located polarity)
    response: FloatImage  # the stroke response the mask was thresholded from
    ink_box: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) of the ink in the crop
    photo_box: tuple[int, int, int, int]  # the line's box in the photo
    dark_ink: bool
    components: int


def stroke_response(grey: GreyImage, kernel_px: int, *, dark_ink: bool) -> FloatImage:
    """Black-hat (dark strokes) or top-hat (bright strokes) of ``grey``."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel_px, kernel_px))
    op = cv2.MORPH_BLACKHAT if dark_ink else cv2.MORPH_TOPHAT
    return np.asarray(cv2.morphologyEx(grey, op, kernel), np.float32)


def ink_threshold(response: FloatImage) -> float:
    """A level that separates strokes from texture: robust noise sigmas, or Otsu if higher."""
    median = float(np.median(response))
    mad = float(np.median(np.abs(response - median))) * 1.4826
    floor = median + NOISE_SIGMAS * max(mad, 1.0)
    strong = response[response > floor]
    if strong.size < MIN_COMPONENT_PX:
        return floor
    scaled = np.clip(strong, 0, 255).astype(np.uint8).reshape(-1, 1)
    otsu, _ = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return max(floor, 0.5 * float(otsu))


def locate_line(bgr: BgrImage, grey: GreyImage) -> TextLine | None:
    """The most inked text line of the photo, straightened; ``None`` when there is no ink."""
    kernel_px = max(7, (min(grey.shape[:2]) // 24) | 1)
    # Laser oxide darkens every metal we engrave; bright ink is only the fallback, because on
    # dark strokes the top-hat also lights up the metal between them (letter counters).
    for dark_ink in (True, False):
        response = stroke_response(grey, kernel_px, dark_ink=dark_ink)
        line = _line_from_response(bgr, response, dark_ink)
        if line is not None:
            return line
    return None


def _line_from_response(bgr: BgrImage, response: FloatImage, dark_ink: bool) -> TextLine | None:
    level = ink_threshold(response)
    mask = (response > level).astype(np.uint8)
    components = _components(mask, max_height=grey_height(bgr) // 2)
    if not components:
        return None
    cluster = _best_cluster(components)
    if sum(part.area for part in cluster) < MIN_LINE_INK_PX or (
        max(part.height for part in cluster) < MIN_LINE_HEIGHT_PX
    ):
        return None  # specks of texture or noise, not a line of text
    return _straighten(bgr, response, level, cluster, dark_ink)


def grey_height(image: BgrImage) -> int:
    return int(image.shape[0])


def _components(mask: npt.NDArray[np.uint8], *, max_height: int) -> list[Component]:
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    found = []
    for index in range(1, count):
        x, y, w, h, area = (int(value) for value in stats[index])
        if area >= MIN_COMPONENT_PX and h <= max_height:
            found.append(Component(x, y, x + w, y + h, area))
    return found


def _best_cluster(components: list[Component]) -> list[Component]:
    """Chain components into lines; the line with the most ink (and glyph-sized parts) wins."""
    ordered = sorted(components, key=lambda part: part.x0)
    parent = list(range(len(ordered)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    for i, left in enumerate(ordered):
        for j in range(i + 1, len(ordered)):
            right = ordered[j]
            reach = 2.5 * max(left.height, right.height, 4)
            if right.x0 - left.x1 > reach:
                break
            if _overlaps_vertically(left, right):
                parent[root(j)] = root(i)
    groups: dict[int, list[Component]] = {}
    for index, part in enumerate(ordered):
        groups.setdefault(root(index), []).append(part)
    return max(groups.values(), key=_cluster_weight)


def _cluster_weight(parts: list[Component]) -> float:
    ink = sum(part.area for part in parts)
    return float(ink) * (1.0 + math.log1p(len(parts)))


def _overlaps_vertically(a: Component, b: Component) -> bool:
    overlap = min(a.y1, b.y1) - max(a.y0, b.y0)
    return overlap >= 0.3 * min(a.height, b.height)


def _centreline(parts: list[Component]) -> np.poly1d:
    """The line's centre row as a function of the column. From 6 parts on: half a glyph height
    above the baseline (:func:`_baseline`), or, where too few parts share one, a quadratic
    through the parts' centres (a ring band bows the line). For 2-5 parts a straight line
    through the centres of the parts of the common height only. A part taller or shorter than
    most is a capital among small letters or a glyph with a descender (script "J"): its box
    centre is off the line's centre, and through 2-5 centres it tilts the fit - the
    straightened line then bends the other glyphs away from the rendering and from OCR ("E & J"
    read "ε&8")."""
    xs = np.array([(part.x0 + part.x1) / 2 for part in parts], np.float64)
    ys = np.array([(part.y0 + part.y1) / 2 for part in parts], np.float64)
    weights = np.array([part.area for part in parts], np.float64) ** 0.5
    if len(parts) >= 6 and float(np.ptp(xs)) >= 1.0:
        baseline = _baseline(parts, xs)
        if baseline is not None:
            return baseline
        return np.poly1d(np.polyfit(xs, ys, 2, w=weights))
    heights = np.array([part.height for part in parts], np.float64)
    common = np.abs(heights - np.median(heights)) <= COMMON_HEIGHT * np.median(heights)
    if common.sum() >= 2 and float(np.ptp(xs[common])) >= 1.0:
        return np.poly1d(np.polyfit(xs[common], ys[common], 1, w=weights[common]))
    return np.poly1d(np.polyfit(xs, ys, 0, w=weights))  # level: no two parts to tilt it


def _baseline(parts: list[Component], xs: npt.NDArray[np.float64]) -> np.poly1d | None:
    """A quadratic through the bottoms of the glyphs that stand on one baseline, raised by half
    the median part height; None when fewer than 5 glyphs, or too short a stretch, agree.

    Box centres lie at different heights for capitals, small letters and descenders: through
    them, gothiceng "Amor Vincit" (tall "A" and "V" among small letters) bowed 4.5 px on a
    level photo, and the bent "V" and "c" read "Y" and "r". Most glyphs of any line stand on
    the baseline, so its bottoms are fitted robustly: from their median, a line, then the
    quadratic, each through the bottoms near the last fit (every glyph counts once: a long
    joined script word must not outweigh the digits after it). Dots and specks are left out."""
    bottoms = np.array([part.y1 for part in parts], np.float64)
    heights = np.array([part.height for part in parts], np.float64)
    median = float(np.median(heights))
    tolerance = max(2.0, BASELINE_TOLERANCE * median)
    glyphs = heights >= 0.5 * median
    curve = np.poly1d([float(np.median(bottoms[glyphs]))])
    for degree, reach in ((1, 2.0), (1, 2.0), (2, 1.0), (2, 1.0)):
        on_it = glyphs & (np.abs(bottoms - curve(xs)) <= reach * tolerance)
        if on_it.sum() < MIN_BASELINE_PARTS or np.ptp(xs[on_it]) < 0.5 * np.ptp(xs):
            return None
        curve = np.poly1d(np.polyfit(xs[on_it], bottoms[on_it], degree))
    return curve - median / 2


def _straighten(
    bgr: BgrImage, response: FloatImage, level: float, parts: list[Component], dark_ink: bool
) -> TextLine:
    x0 = min(part.x0 for part in parts)
    x1 = max(part.x1 for part in parts)
    heights = sorted(part.height for part in parts)
    line_height = max(heights[-1], 4)
    centre = _centreline(parts)
    pad_x = max(4, line_height // 2)
    half = line_height  # rows above and below the centreline kept in the crop
    columns = np.arange(x0 - pad_x, x1 + pad_x, dtype=np.float32)
    rows = np.arange(-half, half + 1, dtype=np.float32)
    map_x = np.repeat(columns[None, :], rows.size, axis=0)
    map_y = (rows[:, None] + centre(columns)[None, :]).astype(np.float32)
    crop = cv2.remap(bgr, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    crop_response = cv2.remap(
        response, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    ink = np.asarray(crop_response > level)
    return TextLine(
        bgr=np.asarray(crop, np.uint8),
        ink=ink,
        response=np.asarray(crop_response, np.float32),
        ink_box=_ink_box(ink),
        photo_box=(x0, min(part.y0 for part in parts), x1, max(part.y1 for part in parts)),
        dark_ink=dark_ink,
        components=len(parts),
    )


def _ink_box(ink: Mask) -> tuple[int, int, int, int]:
    cols = np.flatnonzero(ink.any(axis=0))
    rows = np.flatnonzero(ink.any(axis=1))
    if cols.size == 0:
        return (0, 0, 0, 0)
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
