"""Per-glyph confirmation: the geometry confirms a character OCR misread.

RapidOCR misreads decorative single-stroke fonts (gothiceng's "J" as "I", a script "Z" as "J",
"Vincit" as "Uinrit"). The engraving's shape is known exactly, so where OCR's reading differs
from the order at a few positions, each doubtful position is put to a hypothesis test: the
ordered text is rendered, and so is every rival a wrong engraving could be there - OCR's own
reading, every other glyph of the font at that position, the glyph deleted, a glyph inserted
next to it. Each rival is registered on the ink with its own best warp, and all are scored on
the same photo columns around the doubtful position. The ordered glyph is confirmed only if it
fits there well, clearly better than every rival, and the whole line fits no worse.

Every rival covers one physical mistake at that spot, so a wrong engraving whose mistake OCR
saw (the reading differs there) is one of the rivals - and fits at least as well as the order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from drivers.laser.fonts import ENGRAVING_FONTS, PRINTABLE_ASCII, load_font
from hub.verification.compare import align, fold, twin_map
from hub.verification.geometry import Registered, line_ncc, register, window_ncc
from hub.verification.layout import LayoutError, Rendering, render
from hub.verification.locate import TextLine
from hub.verification.model import Expected

MAX_DOUBTFUL = 2  # characters OCR may misread and the geometry still confirm
MAX_SHORT_TEXT = 3  # inked characters of a text whose every glyph may be confirmed
GLYPH_MARGIN = 0.06  # the ordered glyph must beat every rival by this in its own columns
CONTEXT_MARGIN = 0.02  # ... and by this with its neighbours (insertions, deletions show there)
CONTEXT_WIN = 0.2  # ... or by this with its neighbours while no worse in its own columns
# ... or, where the order fits closely, leave the rival this many times its own misfit (1 - NCC)
GLYPH_MISFIT_RATIO = 1.5  # in the glyph's columns, ahead by at least MIN_GLYPH_LEAD,
CONTEXT_MISFIT_RATIO = 1.2  # and with its neighbours
MIN_GLYPH_LEAD = 0.01
LINE_SLACK = 0.02  # ... and no rival near it in the glyph's columns may fit the line better
LINE_RIVAL_NEAR = 0.25  # ... "near": within this of the order's glyph fit
MIN_LOCAL_FIT = 0.55  # the ordered glyph must fit its own columns this well: else no proof
MIN_WINDOW = 0.5  # the narrowest window, in ink heights


@dataclass(frozen=True, slots=True)
class Confirmation:
    """``reading``: OCR's spacing with the ordered characters, when every doubt is settled;
    ``settled``: the positions of the order whose glyph was put to the test."""

    confirmed: bool
    reading: str
    facts: dict[str, Any] = field(default_factory=dict)
    settled: frozenset[int] = frozenset()


def confirm_characters(line: TextLine, expected: Expected, read_text: str) -> Confirmation:
    """Test each position where ``read_text`` differs from the order (spaces aside)."""
    reading, doubtful, inserted, misread = _doubts(expected, read_text)
    if not doubtful or len(doubtful) > MAX_DOUBTFUL:
        return Confirmation(False, reading, {"doubtful": len(doubtful)})
    return _confirm(line, expected, read_text, reading, doubtful, (inserted, misread))


def confirm_every_glyph(line: TextLine, expected: Expected, read_text: str) -> Confirmation:
    """For a short text (initials: "A & P") OCR is unsure of, or misread: every glyph."""
    reading, _, inserted, _ = _doubts(expected, read_text)
    inked = {index for index, char in enumerate(expected.text) if char != " "}
    if len(inked) > MAX_SHORT_TEXT:
        return Confirmation(False, reading, {"doubtful": len(inked)})
    return _confirm(line, expected, read_text, reading, inked, (inserted, inked))


def is_short(expected: Expected) -> bool:
    """Few enough glyphs for :func:`confirm_every_glyph`."""
    return len(expected.text.replace(" ", "")) <= MAX_SHORT_TEXT


def _confirm(  # noqa: PLR0917 - private, the state of one confirmation
    line: TextLine,
    expected: Expected,
    read_text: str,
    reading: str,
    doubtful: set[int],
    ocr_says: tuple[dict[int, str], set[int]],
) -> Confirmation:
    """``ocr_says``: the characters OCR read in addition at a position, and the positions
    whose own glyph OCR misread (the others were doubted for an insertion only)."""
    inserted, misread = ocr_says
    ordered = registered_on(expected.text, expected, line)
    if ordered is None:
        return Confirmation(False, reading, {"doubtful": len(doubtful)})
    rendering = render(expected.text, expected.font, expected.template)
    facts: dict[str, Any] = {"doubtful": len(doubtful), "windows": []}
    for position in sorted(doubtful):
        windows = (
            window_around(rendering, ordered, position, 0),
            window_around(rendering, ordered, position, 1),
        )
        extra = inserted.get(position, "")
        rivals = _rivals(expected, position, extra, misread=position in misread)
        verdict = _settle(
            line, expected, ordered, windows, [*_other_glyphs(expected, read_text), *rivals]
        )
        facts["windows"].append(verdict)
        if not verdict["confirmed"]:
            return Confirmation(False, reading, facts)
    facts["confirmed"] = True
    return Confirmation(True, reading, facts, frozenset(doubtful))


def _other_glyphs(expected: Expected, read_text: str) -> list[str]:
    """OCR's reading as a rival, unless it differs from the order in spacing only (spacing
    is not this test's question: the spacing checks decide it)."""
    twins = twin_map(expected.font)
    same = fold(read_text, twins).replace(" ", "") == fold(expected.text, twins).replace(" ", "")
    return [] if same else [read_text.strip()]


def _doubts(expected: Expected, read_text: str) -> tuple[str, set[int], dict[int, str], set[int]]:
    """OCR's reading with the ordered characters put back (OCR's spacing kept), the doubtful
    positions (indices of the order), the characters OCR read in addition at a position, and
    the positions whose own glyph OCR misread (substituted, swapped or dropped).

    Characters are aligned without spaces (OCR drops and adds spaces next to misread
    characters); each ordered character keeps the space OCR saw after its partner."""
    twins = twin_map(expected.font)
    text = expected.text
    inked = [index for index, char in enumerate(text) if char != " "]
    read = read_text.strip()
    read_inked = [index for index, char in enumerate(read) if char != " "]
    spaced_after = {k for k, index in enumerate(read_inked) if read[index + 1 : index + 2] == " "}
    ordered_ns = fold("".join(text[i] for i in inked), twins)
    read_ns = fold("".join(read[i] for i in read_inked), twins)
    doubtful: set[int] = set()
    misread: set[int] = set()
    inserted: dict[int, str] = {}
    space_after: set[int] = set()  # indices into ``inked``
    j = 0
    for entry in align(ordered_ns, read_ns):
        k = entry.position
        if entry.op == "insert":
            spot = inked[min(k, len(inked) - 1)]
            doubtful.add(spot)
            inserted[spot] = inserted.get(spot, "") + entry.read
            j += 1
            continue
        width = len(entry.expected)
        if entry.op != "equal":
            doubtful.update(inked[k : k + width])
            misread.update(inked[k : k + width])
        if entry.op == "delete":
            if text[inked[k] + 1 : inked[k] + 2] == " ":
                space_after.add(k)
            continue
        space_after.update(k + n for n in range(width) if j + n in spaced_after)
        j += width
    reading = "".join(
        text[index] + (" " if k in space_after else "") for k, index in enumerate(inked)
    )
    return reading.strip(), doubtful, inserted, misread


def _rivals(expected: Expected, position: int, inserted: str, *, misread: bool) -> list[str]:
    """Every text one physical mistake at ``position`` away from the order; only the
    insertions where OCR read the glyph itself and one character more (script "&" read "&:":
    the glyph after it is doubted for the ":" only, and its near twins are no question)."""
    text = expected.text
    twins = twin_map(expected.font)
    char = fold(text[position], twins)
    glyphs = font_glyphs(expected.font)
    rivals = []
    if misread:
        rivals = [
            text[:position] + other + text[position + 1 :] for other in glyphs if other != char
        ]
        rivals.append(text[:position] + text[position + 1 :])
    # Where OCR read an extra character, the character it read may be a misread as well
    # ("JIonas" read "fdonas"): then every glyph of the font is a candidate insertion.
    extras = {text[position], *inserted, *(glyphs if inserted else ())}
    for spot in (position, position + 1):
        for extra in extras:
            rivals.append(text[:spot] + extra + text[spot:])
    return [rival for rival in rivals if rival.strip() and rival != text]


def _settle(
    line: TextLine,
    expected: Expected,
    ordered: Registered,
    windows: tuple[tuple[int, int], tuple[int, int]],
    rivals: Iterable[str],
) -> dict[str, Any]:
    """Does the order fit the glyph's columns well, and beat every rival (:func:`_beats`)?"""
    mine = (
        window_ncc(ordered, windows[0]),
        window_ncc(ordered, windows[1]),
        line_ncc(ordered),
    )
    confirmed = mine[0] >= MIN_LOCAL_FIT
    closest = (-1.0, -1.0, -1.0)  # the rival nearest to winning, for the record
    for rival in rivals if confirmed else ():
        registered = registered_on(rival, expected, line)
        if registered is None:
            continue
        theirs = (
            window_ncc(registered, windows[0]),
            window_ncc(registered, windows[1]),
            line_ncc(registered),
        )
        won = (
            beats_insertion(mine, theirs)
            if is_insertion(expected.text, rival)
            else beats(mine, theirs)
        )
        if not won:
            confirmed = False
            closest = theirs
            break
        if theirs[0] - mine[0] > closest[0] - mine[0]:
            closest = theirs
    return {
        "confirmed": confirmed,
        "glyph": round(mine[0], 4),
        "rival_glyph": round(closest[0], 4),
        "context": round(mine[1], 4),
        "rival_context": round(closest[1], 4),
        "line": round(mine[2], 4),
        "rival_line": round(closest[2], 4),
    }


def beats(
    mine: tuple[float, float, float], theirs: tuple[float, float, float], *, by_ratio: bool = True
) -> bool:
    """(glyph window, neighbour window, whole line) NCCs: the order wins clearly in its glyph's
    columns and a little with the neighbours; or, for a rival that misplaces the neighbours (a
    glyph doubled at the line's end squeezes into the glyph's columns), by far with the
    neighbours and no worse in the glyph's columns. And a rival near the order in the glyph's
    columns must not fit the whole line better: the windows are the order's columns, and a
    rival whose glyphs are shifted (a glyph inserted) or whose registration differs (a
    descender more or less) is judged unfairly in them ("Dijem" for "Diem", "Stav" for "Stay"
    lost in the windows by 0.15-0.17, won the line by 0.12-0.14). A rival far off in the
    glyph's columns may win a poor line fit by chance: "Zoe & Mia" in scripts fits its line
    at 0.39, "/oe & Mia" at 0.60 but its glyph 0.39 against 0.80. ``by_ratio``: where the
    order fits closely, misfits are compared as a ratio (:func:`_ahead`)."""
    glyph_ratio, context_ratio = (
        (GLYPH_MISFIT_RATIO, CONTEXT_MISFIT_RATIO) if by_ratio else (math.inf, math.inf)
    )
    clearly = _ahead(mine[0], theirs[0], GLYPH_MARGIN, glyph_ratio, MIN_GLYPH_LEAD) and _ahead(
        mine[1], theirs[1], CONTEXT_MARGIN, context_ratio, 0.0
    )
    by_far = mine[1] >= theirs[1] + CONTEXT_WIN and mine[0] >= theirs[0]
    wins_line = theirs[2] >= mine[2] + LINE_SLACK and theirs[0] >= mine[0] - LINE_RIVAL_NEAR
    return (clearly or by_far) and not wins_line


def _ahead(mine: float, theirs: float, margin: float, misfit_ratio: float, lead: float) -> bool:
    """The order's NCC ahead of the rival's by ``margin``, or - where the order fits closely -
    the rival's misfit at least ``misfit_ratio`` times the order's (and ``lead`` ahead).

    For zero-mean unit-norm profiles 1 - NCC is half the squared residual: a residual energy.
    A fixed margin asks a lot where the order fits at 0.98 (gothiceng "Luca" read "Lura": the
    order's "c" 0.986, the "r" 0.957 - the rival's residual three times the order's) and little
    at 0.6; the ratio of residuals is the fair comparison there (an F-test's statistic)."""
    if mine >= theirs + margin:
        return True
    return mine >= theirs + lead and (1.0 - theirs) >= misfit_ratio * (1.0 - mine)


def beats_insertion(mine: tuple[float, float, float], theirs: tuple[float, float, float]) -> bool:
    """The order against a rival with one glyph more: that glyph's ink lies beside the
    glyph's own columns (where both carry the same glyph), so the order must be about as
    good there and win with the neighbours and over the whole line, where the extra ink would
    show. Script photos read "&:" had the order win the neighbours by 0.08-0.17 and the line
    by 0.07-0.09, but the glyph's columns by only 0.02-0.056 against the 0.06 of :func:`beats`.
    A close fit there is no evidence against the extra glyph: no misfit ratio."""
    return (
        mine[0] >= theirs[0] - CONTEXT_MARGIN
        and mine[1] >= theirs[1] + CONTEXT_MARGIN
        and mine[2] >= theirs[2] + LINE_SLACK
    ) or beats(mine, theirs, by_ratio=False)


def is_insertion(text: str, rival: str) -> bool:
    """Is ``rival`` ``text`` with one character inserted?"""
    if len(rival) != len(text) + 1:
        return False
    index = next(
        (k for k, (a, b) in enumerate(zip(text, rival, strict=False)) if a != b), len(text)
    )
    return rival[:index] + rival[index + 1 :] == text


def window_around(
    rendering: Rendering, ordered: Registered, position: int, neighbours: int
) -> tuple[int, int]:
    """Photo columns of the inked glyph at ``position`` and ``neighbours`` glyphs each side."""
    boxes = rendering.glyph_boxes
    indices = [box[0] for box in boxes]
    here = min(range(len(indices)), key=lambda k: abs(indices[k] - position))
    first = boxes[max(0, here - neighbours)]
    last = boxes[min(len(boxes) - 1, here + neighbours)]
    width = ordered.observed.shape[1]
    left = ordered.warp.to_observed(first[1] * width, width)
    right = ordered.warp.to_observed(last[3] * width, width)
    # A narrow glyph ("I", ".") alone is a few columns: too few to register; widen it.
    pad = max(
        round(ordered.stroke_px),
        round(MIN_WINDOW * ordered.observed.shape[0] - (right - left)) // 2,
    )
    return int(left) - pad, int(right) + pad + 1


def registered_on(text: str, expected: Expected, line: TextLine) -> Registered | None:
    """``text`` in the order's font registered on the line's ink (None: no glyph for it).
    A rival longer than the template allows is laid out without the template."""
    try:
        rendering = render(text, expected.font, expected.template)
    except LayoutError:
        try:
            rendering = render(text, expected.font, None)
        except LayoutError:
            return None
    return register(rendering, line.ink, line.ink_box)


@cache
def font_glyphs(font: str | None) -> tuple[str, ...]:
    """The inked characters ``font`` can draw, twins folded to one."""
    twins = twin_map(font)
    if font is not None and font in ENGRAVING_FONTS:
        loaded = load_font(font)
        chars = {char for char in PRINTABLE_ASCII if char != " " and loaded.can_render(char)}
    else:
        chars = set(PRINTABLE_ASCII) - {" "}
    return tuple(sorted({fold(char, twins) for char in chars}))
