"""The other direction: OCR read the order off a wrong engraving with a descender.

A blurred "j" reads as "i", a "q" as "a", a "y" as "v": OCR then reads the *order*, and no
check that starts from OCR's differences (:mod:`hub.verification.confirm`) runs. The ink gives
it away: the wrong glyph hangs below the baseline where the ordered glyph does not, and
because registration is by extent, the whole ordered line is stretched over that descender
and fits poorly everywhere. So before a PASS:

1. **gate** (one registration, ~3 ms): under each glyph's columns, how far the lowest ink lies
   below the line's common bottom (the median over glyphs: most sit on the baseline), in the
   photo and in the ordered rendering registered on it, both measured the same way. A glyph
   whose ink hangs lower than the order's by ``HANG_GATE`` ink heights is doubtful.
2. **rivals** (only at doubtful glyphs): the font's glyphs most similar to the ordered one
   among those that reach lower, each rendered in its place and registered with its own warp.
   One vetoes the PASS (REVIEW, never FAIL: OCR did not see it) only if it fits clearly better
   in the glyph's columns, with its neighbours, and over the whole line (the descender
   restores the registration of every glyph).

A veto by look-alikes at every glyph (no gate) was tried: where the order registers poorly
(low contrast, a text laid on an arc) a descender rival fits better by chance, and it turned
7/60 clean and 15/60 hard good photos of a seed into REVIEW and tripled the latency. Either
half alone has false alarms on good photos; together 2 in 1320 over eleven simulated seeds,
both in a cursive font (docs/verification.md has the numbers).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from drivers.laser.fonts import ENGRAVING_FONTS, load_font
from hub.verification.compare import fold, twin_map
from hub.verification.confirm import font_glyphs, registered_on, window_around
from hub.verification.geometry import Registered, line_ncc, register, window_ncc
from hub.verification.layout import DEFAULT_FONT, Rendering, render
from hub.verification.locate import TextLine
from hub.verification.model import Expected

HANG_GATE = 0.08  # ink hanging this much lower than the order's glyph (ink heights) is doubtful
GLYPH_MARGIN = 0.06  # a rival vetoes if it fits the glyph's columns better by this,
CONTEXT_MARGIN = 0.02  # ... with the neighbours by this,
LINE_MARGIN = 0.05  # ... and the whole line by this
CLOSEST = 3  # rivals tried at a doubtful glyph
INK_LEVEL = 0.35  # a blurred pixel is ink at this fraction of its image's peak
MIN_GLYPHS = 3  # fewer glyphs give no baseline to measure against
_CELL = 48  # px per font line height when glyphs are compared with each other
_LOWER_PX = 2  # a rival's ink must reach this much lower in the cell than the ordered glyph's

FloatImage = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class LookalikeCheck:
    """``doubted``: positions of the order where a lower-reaching look-alike fits better."""

    doubted: tuple[int, ...]
    facts: dict[str, Any] = field(default_factory=dict)


def check_lookalikes(line: TextLine, expected: Expected) -> LookalikeCheck:
    """Gate on hanging ink, then put the look-alikes of each doubtful glyph to the test."""
    rendering = render(expected.text, expected.font, expected.template)
    x0, y0, x1, y1 = line.ink_box
    if len(rendering.glyph_boxes) < MIN_GLYPHS or y1 - y0 < 4 or x1 - x0 < 4:
        return LookalikeCheck((), {"hanging": 0})
    ordered = register(rendering, line.ink, line.ink_box)
    hanging = hanging_glyphs(rendering, ordered)
    facts: dict[str, Any] = {"hanging": len(hanging), "tests": []}
    doubted = []
    for position in hanging:
        test = _rival_test(line, expected, rendering, ordered, position)
        facts["tests"].append(test)
        if test["vetoed"]:
            doubted.append(position)
    return LookalikeCheck(tuple(doubted), facts)


def hanging_glyphs(rendering: Rendering, ordered: Registered) -> list[int]:
    """Positions (in the ordered text) whose ink hangs lower than the ordered glyph."""
    boxes = rendering.glyph_boxes
    columns = [_glyph_columns(ordered, box[1], box[3]) for box in boxes]
    seen = _drops(ordered.observed, columns)
    planned = _drops(ordered.expected, columns)
    return [
        box[0]
        for box, drop_seen, drop_planned in zip(boxes, seen, planned, strict=True)
        if drop_seen - drop_planned >= HANG_GATE
    ]


def _rival_test(
    line: TextLine, expected: Expected, rendering: Rendering, ordered: Registered, position: int
) -> dict[str, Any]:
    """Does one of the glyph's lower-reaching look-alikes fit clearly better? (numbers only:
    the facts are stored with the job and must not carry the engraving text)"""
    windows = (
        window_around(rendering, ordered, position, 0),
        window_around(rendering, ordered, position, 1),
    )
    mine = (window_ncc(ordered, windows[0]), window_ncc(ordered, windows[1]), line_ncc(ordered))
    text = expected.text
    best = (-1.0, -1.0, -1.0)
    for other in lower_lookalikes(expected.font or DEFAULT_FONT, text[position]):
        registered = registered_on(text[:position] + other + text[position + 1 :], expected, line)
        if registered is None:
            continue
        theirs = (
            window_ncc(registered, windows[0]),
            window_ncc(registered, windows[1]),
            line_ncc(registered),
        )
        best = max(best, theirs, key=lambda fits: fits[0] - mine[0])
        if (
            theirs[0] >= mine[0] + GLYPH_MARGIN
            and theirs[1] >= mine[1] + CONTEXT_MARGIN
            and theirs[2] >= mine[2] + LINE_MARGIN
        ):
            return _test_facts(mine, theirs, vetoed=True)
    return _test_facts(mine, best, vetoed=False)


def _test_facts(
    mine: tuple[float, float, float], theirs: tuple[float, float, float], *, vetoed: bool
) -> dict[str, Any]:
    names = ("glyph", "context", "line")
    facts: dict[str, Any] = {"vetoed": vetoed}
    facts.update({name: round(value, 4) for name, value in zip(names, mine, strict=True)})
    facts.update({f"rival_{name}": round(v, 4) for name, v in zip(names, theirs, strict=True)})
    return facts


def _glyph_columns(registered: Registered, left: float, right: float) -> tuple[int, int]:
    """Photo columns of a glyph's box, trimmed by half a stroke each side (neighbours' strokes
    reach into a glyph's box where the font kerns)."""
    width = registered.observed.shape[1]
    trim = registered.stroke_px / 2
    start = registered.warp.to_observed(left * width, width) + trim
    end = registered.warp.to_observed(right * width, width) - trim
    if end - start < 1:  # a glyph narrower than a stroke: its centre column
        start = end = (start + end) / 2
    return max(0, int(start)), min(width, int(end) + 1)


def _drops(image: FloatImage, columns: list[tuple[int, int]]) -> list[float]:
    """How far (in image heights) each glyph's lowest ink lies below the median glyph bottom.
    Photo and rendering are blurred alike (:class:`Registered`) and thresholded alike."""
    ink = image >= INK_LEVEL * max(float(image.max()), 1e-6)
    bottoms = [_bottom(ink[:, start:end]) for start, end in columns]
    inked = [bottom for bottom in bottoms if bottom >= 0]
    baseline = statistics.median(inked) if inked else 0.0
    height = image.shape[0]
    return [(bottom - baseline) / height if bottom >= 0 else 0.0 for bottom in bottoms]


def _bottom(columns: npt.NDArray[np.bool_]) -> int:
    """The lowest row with ink in ``columns`` (-1: none)."""
    rows = np.flatnonzero(columns.any(axis=1))
    return int(rows[-1]) if rows.size else -1


@cache
def lower_lookalikes(font: str, char: str) -> tuple[str, ...]:
    """The CLOSEST glyphs of ``font`` most similar to ``char`` among those whose ink reaches
    lower (drawn in one frame - baseline and size shared - so a descender or a dot counts)."""
    twins = twin_map(font)
    char = fold(char, twins)
    mine = _glyph_image(font, char)
    mine_bottom = _bottom(mine > 0.5 * max(float(mine.max()), 1e-6))
    scored = []
    for other in font_glyphs(font):
        image = _glyph_image(font, other)
        if other == char or _bottom(image > 0.5 * max(float(image.max()), 1e-6)) < (
            mine_bottom + _LOWER_PX
        ):
            continue
        scored.append((_ncc(mine, image), other))
    return tuple(other for _, other in sorted(scored, reverse=True)[:CLOSEST])


@cache
def _glyph_image(font: str, char: str) -> FloatImage:
    """``char`` drawn in a cell shared by all glyphs of the font (same baseline and scale)."""
    canvas = np.zeros((_CELL, _CELL * 2), np.uint8)
    if font in ENGRAVING_FONTS:
        loaded = load_font(font)
        scale = (_CELL - 4) / loaded.line_height
        for stroke in loaded.glyphs[char].strokes:
            points = np.array(
                [(2 + x * scale, 2 + (loaded.ascent - y) * scale) for x, y in stroke], np.float64
            )
            cv2.polylines(
                canvas, [np.rint(points * 16).astype(np.int32)], False, 255, 2, cv2.LINE_AA, 4
            )
    elif Path(font).is_file():
        face = ImageFont.truetype(font, _CELL * 3 // 4)
        image = Image.new("L", (_CELL * 2, _CELL), 0)
        ImageDraw.Draw(image).text((2, 2), char, font=face, fill=255)
        canvas = np.asarray(image, np.uint8)
    return np.asarray(cv2.GaussianBlur(canvas.astype(np.float32), (0, 0), 2.0), np.float32)


def _ncc(a: FloatImage, b: FloatImage) -> float:
    a_centred, b_centred = a - float(a.mean()), b - float(b.mean())
    denominator = float(np.sqrt((a_centred**2).sum() * (b_centred**2).sum()))
    return float((a_centred * b_centred).sum()) / denominator if denominator > 1e-9 else 0.0
