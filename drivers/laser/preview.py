"""A preview of a toolpath for the technician and the order record: strokes over the area.

Drawn with OpenCV's core and imgcodecs only (HighGUI aborts a process without a display).
The item outline is drawn when the template is given; the engraving area always is.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from drivers.laser.templates import ItemTemplate
from drivers.laser.toolpath import Toolpath

_BACKGROUND = (255, 255, 255)
_ITEM = (170, 170, 170)
_AREA = (60, 160, 60)
_STROKE = (20, 20, 20)
_PAD_MM = 1.0


def preview_png(
    toolpath: Toolpath, *, px_per_mm: float = 20.0, template: ItemTemplate | None = None
) -> bytes:
    """A PNG of ``toolpath`` drawn over its engraving area (and the item, given ``template``)."""
    if px_per_mm <= 0:
        raise ValueError("px_per_mm must be positive")
    # The item frame when we know the item, else the area frame padded a little.
    if template is not None:
        offset = template.area_offset_mm
        size = (template.item_width_mm, template.item_height_mm)
    else:
        offset = (_PAD_MM, _PAD_MM)
        size = (toolpath.area.x1 + 2 * _PAD_MM, toolpath.area.y1 + 2 * _PAD_MM)
    width, height = round(size[0] * px_per_mm), round(size[1] * px_per_mm)
    image = np.full((height, width, 3), _BACKGROUND, np.uint8)

    def to_px(x: float, y: float) -> tuple[int, int]:
        return round((x + offset[0]) * px_per_mm), round((size[1] - y - offset[1]) * px_per_mm)

    if template is not None:
        _draw_item(image, template)
    area = toolpath.area
    cv2.rectangle(image, to_px(area.x0, area.y1), to_px(area.x1, area.y0), _AREA, 1)
    for stroke in toolpath.strokes:
        points = np.array([to_px(x, y) for x, y in stroke], np.int32)
        cv2.polylines(image, [points], False, _STROKE, 1, cv2.LINE_AA)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("OpenCV could not encode the preview as PNG")
    return encoded.tobytes()


def _draw_item(image: npt.NDArray[np.uint8], template: ItemTemplate) -> None:
    height, width = image.shape[:2]
    if template.outline == "disc":
        radius = min(width, height) // 2 - 1
        cv2.circle(image, (width // 2, height // 2), radius, _ITEM, 1, cv2.LINE_AA)
    else:
        cv2.rectangle(image, (0, 0), (width - 1, height - 1), _ITEM, 1)
