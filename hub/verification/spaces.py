"""Hypothesis tests for spaces: does the ordered text fit the ink clearly better than the same
text with a space removed, or with one added?

OCR drops spaces next to punctuation and reads two spaces as one, and a gap check alone is
unsure (registration on the ink extent stretches a shorter line, so other blanks widen). A
rival rendering registered with its own warp is not: a missing or extra space misplaces every
glyph on one side of it.
"""

from __future__ import annotations

from typing import Any

from hub.verification.confirm import registered_on
from hub.verification.geometry import Registered, line_ncc, window_ncc
from hub.verification.layout import Rendering, render
from hub.verification.locate import TextLine
from hub.verification.model import Expected

FIT_MARGIN = 0.02  # NCC difference that counts as "fits better"
# A space the whole line cannot settle (a long line dilutes one misplaced word) is confirmed
# by the glyphs either side of it when the order wins there by this much and the line is not
# against it. Right engravings that needed it won by 0.34-0.81 (clean DejaVu dates, whose
# line fits only ~0.74); engravings truly missing that space by at most 0.22 (297 photos).
SPACE_WINDOW_MARGIN = 0.3


def a_space_may_be_missing(line: TextLine, expected: Expected, checks: dict[str, Any]) -> bool:
    """Per space of the order: the text without it must fit the ink clearly worse - over the
    whole line, or, where the line is undecided, across the space's two neighbours."""
    text = expected.text
    rendering = render(text, expected.font, expected.template)
    ordered = registered_on(text, expected, line)
    if ordered is None:
        return True
    mine = line_ncc(ordered)
    best, window_gains, doubted = -1.0, [], False
    for position in (p for p, char in enumerate(text) if char == " "):
        rival = registered_on(text[:position] + text[position + 1 :], expected, line)
        theirs = -1.0 if rival is None else line_ncc(rival)
        best = max(best, theirs)
        if rival is None or mine >= theirs + FIT_MARGIN:
            continue
        gain = _window_gain(rendering, ordered, rival, position)
        window_gains.append(round(gain, 4))
        doubted |= mine < theirs - FIT_MARGIN or gain < SPACE_WINDOW_MARGIN
    checks["space_rivals"] = {
        "ordered": round(mine, 4),
        "best_without": round(best, 4),
        "window_gains": window_gains,
    }
    return doubted


def an_extra_space_may_fit(line: TextLine, expected: Expected, checks: dict[str, Any]) -> bool:
    """When the gap check sees a blank too wide but OCR read the order's spacing exactly:
    a space inserted between any two characters must fit the ink clearly worse than the
    order, else the wide blank may be an extra space (REVIEW). A space doubled is a rival
    too: OCR reads two spaces as one (a stub reading "F & E" off "F &  E" used to PASS)."""
    text = expected.text
    ordered = line_fit(text, expected, line)
    rivals = {text[:p] + " " + text[p:] for p in range(1, len(text))}
    best = max((line_fit(rival, expected, line) for rival in rivals), default=-1.0)
    checks["extra_space_rivals"] = {"ordered": round(ordered, 4), "best_with": round(best, 4)}
    return best >= ordered - FIT_MARGIN


def line_fit(text: str, expected: Expected, line: TextLine) -> float:
    """Whole-line fit of ``text`` in the order's font (a rival one space longer may exceed
    the template's length limit: :func:`registered_on` lays it out without the template)."""
    registered = registered_on(text, expected, line)
    return -1.0 if registered is None else line_ncc(registered)


def _window_gain(
    rendering: Rendering, ordered: Registered, rival: Registered, position: int
) -> float:
    """How much better the order fits than ``rival`` from the inked glyph before the space
    at ``position`` to the one after it (the order's columns)."""
    before = [box for box in rendering.glyph_boxes if box[0] < position]
    after = [box for box in rendering.glyph_boxes if box[0] > position]
    if not before or not after:
        return 0.0
    width = ordered.observed.shape[1]
    left = ordered.warp.to_observed(before[-1][1] * width, width)
    right = ordered.warp.to_observed(after[0][3] * width, width)
    pad = round(ordered.stroke_px)
    columns = (int(left) - pad, int(right) + pad + 1)
    return window_ncc(ordered, columns) - window_ncc(rival, columns)
