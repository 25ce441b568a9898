"""The expected engraving's shape: a text rendered in its font, for comparison with the photo.

Hershey fonts go through the laser's own layout (:func:`drivers.laser.toolpath.render_text`), so
glyph boxes and word gaps are exactly what the toolpath burned; a TTF/OTF path is drawn with
Pillow. Either way the result is a :class:`Rendering`: stroke geometry in a unit frame (ink box
= [0, 1] x [0, 1], y down) plus each inked character's box in that frame, which
:func:`rasterise` scales onto any pixel box. Registration on the ink extent is what makes a
missing space, an extra letter or a swapped pair show: the candidates' ink no longer lines up.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from drivers.laser.fonts import ENGRAVING_FONTS, load_font
from drivers.laser.templates import ItemTemplate, load_templates
from drivers.laser.toolpath import TextNotEngravable, render_text

Mask = npt.NDArray[np.uint8]
DEFAULT_FONT = "futural"
_TTF_RENDER_PX = 96  # glyph size Pillow draws at before scaling to the photo's box


class LayoutError(ValueError):
    """The text cannot be laid out in the font (unknown font, glyph missing)."""


@dataclass(frozen=True, slots=True)
class Rendering:
    """A text's ink in a unit frame: ``strokes`` (Hershey polylines) or ``bitmap`` (TTF)."""

    strokes: tuple[npt.NDArray[np.float64], ...]  # each (n, 2) x, y in the unit frame
    bitmap: Mask | None  # TTF ink, covering the unit frame exactly
    glyph_boxes: tuple[tuple[int, float, float, float, float], ...]  # index, x0, y0, x1, y1
    aspect: float  # ink width / ink height
    stroke_ratio: float  # stroke width / ink height (Hershey; TTF: 0 = drawn filled)
    space_width: float  # a space's advance in the unit frame (x)


def render(text: str, font: str | None, template: str | None) -> Rendering:
    """The rendering of ``text`` (cached: the pipeline renders the same candidates often)."""
    return _render_cached(text, font or DEFAULT_FONT, template)


def rasterise(rendering: Rendering, width: int, height: int, stroke_px: float) -> Mask:
    """``rendering`` scaled onto a ``width`` x ``height`` box (uint8 0/255)."""
    width, height = max(width, 1), max(height, 1)
    if rendering.bitmap is not None:
        scaled = cv2.resize(rendering.bitmap, (width, height), interpolation=cv2.INTER_AREA)
        return np.asarray(np.where(scaled > 96, 255, 0), np.uint8)
    canvas = np.zeros((height, width), np.uint8)
    scale = np.array([width - 1, height - 1], np.float64)
    polylines = [np.rint(stroke * scale * 16).astype(np.int32) for stroke in rendering.strokes]
    cv2.polylines(canvas, polylines, False, 255, max(1, round(stroke_px)), cv2.LINE_8, 4)
    return canvas


@lru_cache(maxsize=2048)  # bounded: rival texts are rendered once and forgotten
def _render_cached(text: str, font: str, template: str | None) -> Rendering:
    if font in ENGRAVING_FONTS:
        return _render_hershey(text, font, template)
    if Path(font).suffix.lower() in (".ttf", ".otf") and Path(font).is_file():
        return _render_ttf(text, font)
    raise LayoutError(f"unknown font {font!r}: neither a Hershey font nor a .ttf/.otf file")


def _render_hershey(text: str, font: str, template: str | None) -> Rendering:
    try:
        toolpath = render_text(text, font=font, template=_template_for(font, template))
    except TextNotEngravable as err:
        raise LayoutError(f"cannot lay out the text: {err.reason}") from None
    box = toolpath.bbox
    width, height = max(box.width, 1e-6), max(box.height, 1e-6)

    def unit(x: float, y: float) -> tuple[float, float]:
        return (x - box.x0) / width, (box.y1 - y) / height  # y down, like an image

    strokes = tuple(np.array([unit(x, y) for x, y in stroke]) for stroke in toolpath.strokes)
    glyphs = []
    for glyph in toolpath.glyphs:
        x0, y0 = unit(glyph.box.x0, glyph.box.y1)
        x1, y1 = unit(glyph.box.x1, glyph.box.y0)
        glyphs.append((glyph.index, x0, y0, x1, y1))
    spot_mm = 0.08  # the burn line the laser draws (drivers.laser.burn's default spot)
    space_mm = (
        load_font(font).glyphs[" "].advance * toolpath.char_height_mm / load_font(font).cap_height
    )
    return Rendering(
        strokes, None, tuple(glyphs), width / height, spot_mm / height, space_mm / width
    )


def _template_for(font: str, template: str | None) -> ItemTemplate:
    """The order's template if it allows ``font``, else a roomy one (only the shape matters)."""
    known = _templates()
    if template in known and font in known[template].fonts:
        return known[template]
    return ItemTemplate(
        name="verification",
        item_width_mm=400.0,
        item_height_mm=10.0,
        area_width_mm=400.0,
        area_height_mm=10.0,
        max_chars=400,
        fonts=(font,),
    )


@cache
def _templates() -> dict[str, ItemTemplate]:
    return load_templates()


def _render_ttf(text: str, path: str) -> Rendering:
    face = ImageFont.truetype(path, _TTF_RENDER_PX)
    left, top, right, bottom = face.getbbox(text)
    if right <= left or bottom <= top:
        raise LayoutError("the text has no ink in this font")
    image = Image.new("L", (int(right - left), int(bottom - top)), 0)
    ImageDraw.Draw(image).text((-left, -top), text, font=face, fill=255)
    bitmap = np.asarray(image, np.uint8)
    width, height = float(right - left), float(bottom - top)
    glyphs = []
    for index, char in enumerate(text):
        if char.isspace():
            continue
        pen = face.getlength(text[:index])
        g_left, g_top, g_right, g_bottom = face.getbbox(char)
        glyphs.append(
            (
                index,
                (pen + g_left - left) / width,
                (g_top - top) / height,
                (pen + g_right - left) / width,
                (g_bottom - top) / height,
            )
        )
    return Rendering((), bitmap, tuple(glyphs), width / height, 0.0, face.getlength(" ") / width)


def font_is_known(font: str | None) -> bool:
    """True for a Hershey font name or an existing .ttf/.otf path (or ``None``: default)."""
    if font is None or font in ENGRAVING_FONTS:
        return True
    return Path(font).suffix.lower() in (".ttf", ".otf") and Path(font).is_file()


__all__ = ["LayoutError", "Rendering", "font_is_known", "load_font", "rasterise", "render"]
