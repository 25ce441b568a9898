"""Single-stroke Hershey fonts (PyPI ``hershey-fonts``), reduced to the metrics layout needs.

The package keys glyphs by ASCII code from 32 and silently draws nothing for any other
character, so this module exposes which characters a font really has; callers refuse the rest
instead of engraving a truncated name. Glyph data is converted once per font into immutable
records in font units with the y axis pointing up and the baseline at y = 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

from HersheyFonts import HersheyFonts  # type: ignore[import-untyped]

Point = tuple[float, float]
Stroke = tuple[Point, ...]

PRINTABLE_ASCII = frozenset(chr(code) for code in range(0x20, 0x7F))

# Fonts whose ASCII slots hold Latin letters. The package also ships Greek, Cyrillic, Japanese
# and symbol sets on the same ASCII codes: "Anna" in `greekc` engraves Greek letters, a wrong
# engraving that every glyph check would pass, so those fonts are never offered.
ENGRAVING_FONTS: tuple[str, ...] = (
    "futural",
    "futuram",
    "rowmans",
    "rowmand",
    "rowmant",
    "timesr",
    "timesi",
    "timesrb",
    "timesib",
    "scripts",
    "scriptc",
    "cursive",
    "gothiceng",
)
# The script and blackletter fonts: their capitals and small letters overlap, and some glyphs
# are near twins (gothiceng u/v, c/r), so OCR misreads them far more than the plain fonts.
DECORATIVE_FONTS = frozenset({"scripts", "scriptc", "cursive", "gothiceng"})

# Slots where a Latin font draws a different character than the ASCII code says, found by
# drawing every font's ASCII set: futuram has angle brackets for braces, the rowman and script
# fonts an up arrow for "^". Refused like a missing glyph.
_SUBSTITUTED_GLYPHS: Mapping[str, frozenset[str]] = {
    "futuram": frozenset("{}"),
    "rowmans": frozenset("^"),
    "rowmand": frozenset("^"),
    "rowmant": frozenset("^"),
    "scripts": frozenset("^"),
    "scriptc": frozenset("^"),
}


class UnknownFontError(ValueError):
    """The font is not one of :data:`ENGRAVING_FONTS`."""


@dataclass(frozen=True, slots=True)
class Glyph:
    """One character: strokes from its pen origin (left side bearing), and its advance."""

    char: str
    strokes: tuple[Stroke, ...]
    advance: float
    ink_left: float
    ink_right: float


@dataclass(frozen=True, slots=True)
class Font:
    """A loaded font; ``ascent``/``descent`` bound every printable glyph around the baseline."""

    name: str
    glyphs: Mapping[str, Glyph]
    ascent: float
    descent: float
    cap_height: float

    @property
    def line_height(self) -> float:
        """Height of the box every printable glyph fits in, in font units."""
        return self.ascent + self.descent

    def can_render(self, char: str) -> bool:
        """True when ``char`` is printable ASCII and drawn with strokes (space: no strokes)."""
        glyph = self.glyphs.get(char)
        return glyph is not None and (char == " " or bool(glyph.strokes))


def available_fonts() -> tuple[str, ...]:
    """Names accepted by :func:`load_font`, in the order a UI should list them."""
    return ENGRAVING_FONTS


@cache
def load_font(name: str) -> Font:
    """The font ``name``, converted once and cached (decompressing the set takes tens of ms)."""
    if name not in ENGRAVING_FONTS:
        raise UnknownFontError(f"unknown font {name!r}; known: {', '.join(ENGRAVING_FONTS)}")
    source = HersheyFonts()
    source.load_default_font(name)
    options = source.render_options
    baseline = float(options["base_line"])
    cap_height = baseline - float(options["cap_line"])
    skip = _SUBSTITUTED_GLYPHS.get(name, frozenset())
    glyphs = {
        char: _convert_glyph(char, raw, baseline)
        for char, raw in source.all_glyphs.items()
        if char in PRINTABLE_ASCII and char not in skip
    }
    inked = [glyph for glyph in glyphs.values() if glyph.strokes]
    ascent = max(y for glyph in inked for stroke in glyph.strokes for _, y in stroke)
    descent = -min(y for glyph in inked for stroke in glyph.strokes for _, y in stroke)
    return Font(name, MappingProxyType(glyphs), ascent, descent, cap_height)


def identical_glyphs(name: str) -> frozenset[frozenset[str]]:
    """Groups of characters ``name`` draws identically (futural's "I" and "l").

    Such characters engrave the same strokes, so the G-code and its hash cannot tell them apart
    and neither can a photo: verification must treat them as one character.
    """
    groups: dict[tuple[tuple[Stroke, ...], float], set[str]] = {}
    for glyph in load_font(name).glyphs.values():
        if glyph.strokes:
            groups.setdefault((glyph.strokes, glyph.advance), set()).add(glyph.char)
    return frozenset(frozenset(chars) for chars in groups.values() if len(chars) > 1)


def _convert_glyph(char: str, raw: object, baseline: float) -> Glyph:
    left = float(raw.left_offset)  # type: ignore[attr-defined]
    strokes = tuple(
        tuple((float(x) - left, baseline - float(y)) for x, y in stroke)
        for stroke in raw.strokes  # type: ignore[attr-defined]
    )
    xs = [x for stroke in strokes for x, _ in stroke]
    return Glyph(
        char=char,
        strokes=strokes,
        advance=float(raw.char_width),  # type: ignore[attr-defined]
        ink_left=min(xs, default=0.0),
        ink_right=max(xs, default=0.0),
    )
