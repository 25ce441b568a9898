"""Text to toolpath: one line of single-stroke text fitted to an item template's engraving area.

Every refusal happens before any geometry is made, and :func:`check_engravable` runs the same
checks without making strokes, so the hub can refuse an order at intake with the reason the
station would give. Coordinates are mm in the template's area frame (see
:mod:`drivers.laser.templates`). Layout: the text is centred horizontally on its ink, vertically
on the font's line box (so the baseline does not jump between "anna" and "Anja"), and scaled as
large as both the area's width and height allow inside the margins.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Literal, get_args

from drivers.laser.fonts import PRINTABLE_ASCII, Font, Glyph, Point, Stroke, load_font
from drivers.laser.templates import ItemTemplate

RefusalKind = Literal["font", "too_long", "no_glyph", "blank", "edge_space", "too_small"]
REFUSAL_KINDS: tuple[RefusalKind, ...] = get_args(RefusalKind)


class TextNotEngravable(ValueError):
    """The request cannot be engraved as asked; nothing was rendered.

    ``kind`` is stable for programs (one of :data:`REFUSAL_KINDS`), ``reason`` is for people.
    ``position`` is the index in the text of the offending character (or of the first character
    over the limit), ``char`` the character itself; both are ``None`` for whole-text problems.
    """

    def __init__(
        self,
        kind: RefusalKind,
        reason: str,
        *,
        position: int | None = None,
        char: str | None = None,
    ) -> None:
        where = "" if position is None else f" at position {position}"
        what = "" if char is None else f" ({char!r}, U+{ord(char):04X})"
        super().__init__(f"{reason}{where}{what}")
        self.kind = kind
        self.reason = reason
        self.position = position
        self.char = char


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box in mm."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0


@dataclass(frozen=True, slots=True)
class GlyphBox:
    """Where character ``text[index]`` was drawn (its ink), for per-character verification."""

    index: int
    char: str
    box: Box


@dataclass(frozen=True, slots=True)
class WordGap:
    """The blank between the ink of ``text[after_index]`` and ``text[before_index]``."""

    after_index: int
    before_index: int
    x0: float
    x1: float


@dataclass(frozen=True, slots=True)
class Toolpath:
    """Strokes (polylines, mm) and the layout facts verification needs."""

    text: str = field(repr=False)  # personal data: kept out of reprs and logs
    font: str
    template: str
    area: Box
    strokes: tuple[Stroke, ...] = field(repr=False)
    bbox: Box
    glyphs: tuple[GlyphBox, ...] = field(repr=False)
    word_gaps: tuple[WordGap, ...]
    char_height_mm: float  # cap height
    burn_length_mm: float
    travel_length_mm: float  # from the origin, between strokes; no return move


@dataclass(frozen=True, slots=True)
class _Layout:
    font: Font
    scale: float  # mm per font unit
    origin_x: float  # mm, where pen position 0 lands
    baseline_y: float
    pens: tuple[float, ...]  # pen position of each character, font units


def check_engravable(text: str, font: str, template: ItemTemplate) -> None:
    """Raise :class:`TextNotEngravable` unless ``text`` can be engraved whole on ``template``."""
    _plan(text, font, template, max_char_height_mm=None)


def render_text(
    text: str,
    *,
    font: str | None = None,
    template: ItemTemplate,
    max_char_height_mm: float | None = None,
) -> Toolpath:
    """The toolpath engraving ``text`` in ``font`` (default: the template's first font).

    ``max_char_height_mm`` caps the cap height for short texts that would otherwise fill
    the area's height.
    """
    font_name = font or template.default_font
    layout = _plan(text, font_name, template, max_char_height_mm=max_char_height_mm)
    strokes: list[Stroke] = []
    glyph_boxes: list[GlyphBox] = []
    for index, char in enumerate(text):
        glyph = layout.font.glyphs[char]
        if not glyph.strokes:
            continue  # a space: it shows only as a word gap
        placed = _place_glyph(glyph, layout, layout.pens[index])
        strokes.extend(placed)
        glyph_boxes.append(GlyphBox(index, char, _bounds(placed)))
    return Toolpath(
        text=text,
        font=font_name,
        template=template.name,
        area=Box(0.0, 0.0, template.area_width_mm, template.area_height_mm),
        strokes=tuple(strokes),
        bbox=_bounds(strokes),
        glyphs=tuple(glyph_boxes),
        word_gaps=_word_gaps(glyph_boxes),
        char_height_mm=layout.scale * layout.font.cap_height,
        burn_length_mm=sum(_polyline_length(stroke) for stroke in strokes),
        travel_length_mm=_travel_length(strokes),
    )


def _plan(
    text: str, font_name: str, template: ItemTemplate, *, max_char_height_mm: float | None
) -> _Layout:
    _check_request(text, font_name, template)
    font = load_font(font_name)
    _check_glyphs(text, font)
    _check_spacing(text)
    pens = _pen_positions(text, font)
    ink_left, ink_right = _ink_extent(text, font, pens)
    scale = _fit_scale(ink_right - ink_left, font, template, max_char_height_mm)
    if scale * font.cap_height < template.min_char_height_mm:
        raise TextNotEngravable(
            "too_small",
            f"text too long for the area: it would be {scale * font.cap_height:.2f} mm high, "
            f"below the {template.min_char_height_mm} mm minimum",
        )
    origin_x = template.area_width_mm / 2 - scale * (ink_left + ink_right) / 2
    baseline_y = template.area_height_mm / 2 - scale * (font.ascent - font.descent) / 2
    return _Layout(font, scale, origin_x, baseline_y, pens)


def _check_request(text: str, font_name: str, template: ItemTemplate) -> None:
    if font_name not in template.fonts:
        raise TextNotEngravable(
            "font",
            f"font {font_name!r} is not allowed on {template.name!r} "
            f"(allowed: {', '.join(template.fonts)})",
        )
    if len(text) > template.max_chars:
        raise TextNotEngravable(
            "too_long",
            f"{len(text)} characters, over the {template.max_chars} allowed on {template.name!r}",
            position=template.max_chars,
        )


def _check_spacing(text: str) -> None:
    if not text.strip(" "):
        raise TextNotEngravable("blank", "nothing to engrave: the text is empty or blank")
    # An edge space is invisible yet would shift the layout; refuse rather than guess.
    if text != text.strip(" "):
        position = 0 if text[0] == " " else len(text) - 1
        raise TextNotEngravable(
            "edge_space", "leading or trailing space", position=position, char=" "
        )


def _check_glyphs(text: str, font: Font) -> None:
    for position, char in enumerate(text):
        if char not in PRINTABLE_ASCII:
            raise TextNotEngravable(
                "no_glyph", "only printable ASCII can be engraved", position=position, char=char
            )
        if not font.can_render(char):
            raise TextNotEngravable(
                "no_glyph",
                f"font {font.name!r} has no glyph for this character",
                position=position,
                char=char,
            )


def _pen_positions(text: str, font: Font) -> tuple[float, ...]:
    pens: list[float] = []
    pen = 0.0
    for char in text:
        pens.append(pen)
        pen += font.glyphs[char].advance
    return tuple(pens)


def _ink_extent(text: str, font: Font, pens: tuple[float, ...]) -> tuple[float, float]:
    inked = [(font.glyphs[char], pen) for char, pen in zip(text, pens, strict=True)]
    lefts = [pen + glyph.ink_left for glyph, pen in inked if glyph.strokes]
    rights = [pen + glyph.ink_right for glyph, pen in inked if glyph.strokes]
    return min(lefts), max(rights)


def _fit_scale(
    ink_width: float, font: Font, template: ItemTemplate, max_char_height_mm: float | None
) -> float:
    usable_width = template.area_width_mm - 2 * template.margin_mm
    usable_height = template.area_height_mm - 2 * template.margin_mm
    scale = usable_height / font.line_height
    if ink_width > 0:  # "|" or "." alone have no width to fit
        scale = min(scale, usable_width / ink_width)
    if max_char_height_mm is not None:
        scale = min(scale, max_char_height_mm / font.cap_height)
    return scale


def _place_glyph(glyph: Glyph, layout: _Layout, pen: float) -> list[Stroke]:
    def place(point: Point) -> Point:
        x, y = point
        return (layout.origin_x + layout.scale * (pen + x), layout.baseline_y + layout.scale * y)

    return [tuple(place(point) for point in stroke) for stroke in glyph.strokes]


def _bounds(strokes: list[Stroke]) -> Box:
    xs = [x for stroke in strokes for x, _ in stroke]
    ys = [y for stroke in strokes for _, y in stroke]
    return Box(min(xs), min(ys), max(xs), max(ys))


def _word_gaps(glyph_boxes: list[GlyphBox]) -> tuple[WordGap, ...]:
    pairs = itertools.pairwise(glyph_boxes)
    return tuple(
        WordGap(left.index, right.index, left.box.x1, right.box.x0)
        for left, right in pairs
        if right.index > left.index + 1  # spaces between them
    )


def _polyline_length(stroke: Stroke) -> float:
    return sum(math.dist(a, b) for a, b in itertools.pairwise(stroke))


def _travel_length(strokes: list[Stroke]) -> float:
    position: Point = (0.0, 0.0)
    travel = 0.0
    for stroke in strokes:
        travel += math.dist(position, stroke[0])
        position = stroke[-1]
    return travel
