"""How sure is OCR of the ordered text against every text one mistake away?

The best path a CTC recogniser decodes says what it reads, not how close the runner-up came.
A cursive "ALways" engraved for "Always" read as the order at 0.96 (seed 41 #45): the plain
crop read "ALways", the contrast-normalised one "Always", and the pipeline took the reading
that matched. The recogniser's posteriors hold the rest of the evidence: the CTC likelihood of
any text can be computed from them (the forward algorithm), so before a PASS every rival one
physical mistake away from the order - each character substituted by every character the
recogniser saw anywhere in the line, each case flipped, deleted, a character inserted, two
swapped - is scored on every crop OCR read, and the log-likelihoods are summed over crops.

- a rival the order beats by at least ``OCR_MARGIN`` nats (~20x) is ruled out by OCR alone;
- a closer rival goes to the geometry (its own rendering, registered with its own warp, scored
  in the changed glyph's columns like :mod:`hub.verification.confirm` does): if the rival fits
  there clearly better than the order, the PASS is vetoed (``REVIEW ocr_rival_fits``);
- a rival OCR prefers outright (the order behind it) vetoes unless the geometry confirms the
  order against it with the confirmation's own rule (:func:`~hub.verification.confirm.beats`);
- in the decorative fonts a case flip goes to the geometry unless OCR rules it out by
  ``CASE_MARGIN`` (10 nats): OCR is a weak judge of case in single-stroke script.

Spacing is mostly the pipeline's space checks' question (RapidOCR drops spaces next to
punctuation), so rivals differing from the order in spaces only are left out - except a space
inserted between two inked characters, which a script font's loops can hide from the gap check
("Yusu f", seed 51 #171): a close one vetoes when the whole line fits better with it. Font
twins (identical strokes) are folded before comparing.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from drivers.laser.fonts import DECORATIVE_FONTS, PRINTABLE_ASCII
from hub.verification.compare import fold, twin_map
from hub.verification.confirm import beats, font_glyphs, registered_on, window_around
from hub.verification.engine import Posteriors
from hub.verification.geometry import Registered, line_ncc, window_ncc
from hub.verification.layout import render
from hub.verification.locate import TextLine
from hub.verification.model import Expected

OCR_MARGIN = 3.0  # nats over all crops: a rival this much less likely is ruled out by OCR
# In the decorative fonts a case flip is ruled out by OCR alone only this far behind (nats):
# the models never saw single-stroke script. On the development photos the flips the ink
# preferred were 16.6-28.8 nats behind on right engravings, 6.3 on the wrong one ("ALways").
CASE_MARGIN = 10.0
VETO_GLYPH = 0.06  # a closer rival vetoes when it fits the glyph's columns better by this
VETO_CONTEXT = 0.02  # ... and the columns with one neighbour each side by this
SPACE_VETO_LINE = 0.02  # ... and a close inserted space when the whole line fits better by this
MAX_TESTED = 8  # closest rivals put to the geometry (the rest are further off in OCR's view)
_NEG_INF = -np.inf


@dataclass(frozen=True, slots=True)
class RivalCheck:
    """``doubted``: the rivals that vetoed the PASS (empty: OCR and geometry agree)."""

    doubted: tuple[str, ...]
    facts: dict[str, Any] = field(default_factory=dict)


def check_ocr_rivals(
    line: TextLine,
    expected: Expected,
    posteriors: Sequence[Posteriors],
    settled: Set[int] = frozenset(),
) -> RivalCheck:
    """Score every single-mistake rival on ``posteriors``; test the close ones on the ink.

    ``settled``: positions whose glyph the confirmation (:mod:`hub.verification.confirm`)
    already tested against every rival there, with stricter rules; rivals changing the order
    first at one of them are not tested again.
    """
    text = expected.text
    if not posteriors:
        return RivalCheck((), {"rivals": 0, "close": 0})
    ordered = sum(float(ctc_log_likelihoods(p, [text])[0]) for p in posteriors)
    characters = _characters_in_reach(posteriors, ordered - OCR_MARGIN)
    rivals = [
        rival
        for rival in single_mistake_rivals(text, expected.font, characters)
        if _changed_position(text, rival) not in settled
    ]
    spaced = inserted_space_rivals(text)
    flipped = [
        rival
        for rival in case_flip_rivals(text, expected.font)
        if _changed_position(text, rival) not in settled
    ]
    known = set(rivals)
    candidates = [*rivals, *spaced, *(rival for rival in flipped if rival not in known)]
    if not candidates:
        return RivalCheck((), {"rivals": 0, "close": 0})
    scores = np.sum([ctc_log_likelihoods(p, candidates) for p in posteriors], axis=0)
    margins = {
        rival: ordered - float(score) for score, rival in zip(scores, candidates, strict=True)
    }
    close = sorted((margin, rival) for rival, margin in margins.items() if margin < OCR_MARGIN)
    space_rivals = set(spaced)
    close_glyphs = [(margin, rival) for margin, rival in close if rival not in space_rivals]
    # OCR is a weak judge of case in these fonts: a case flip is put to the ink unless OCR
    # rules it out by CASE_MARGIN (cursive "ALways" on a well-straightened crop: 6.3 nats).
    unsure_case = [
        (margins[rival], rival) for rival in flipped if OCR_MARGIN <= margins[rival] < CASE_MARGIN
    ]
    facts: dict[str, Any] = {
        "ordered_log_likelihood": round(ordered, 3),
        "rivals": len(candidates),
        "close": len(close),
        "case_flips": len(unsure_case),
        "tests": [],
    }
    if not close and not unsure_case:
        return RivalCheck((), facts)
    order = _OrderOnInk(line, expected)  # registered once for every rival tested
    doubted = [
        rival
        for margin, rival in [*close_glyphs[:MAX_TESTED], *unsure_case]
        if _vetoes(order, rival, margin, facts["tests"])
    ]
    if len(close_glyphs) > MAX_TESTED:  # too many near rivals: OCR is unsure of the whole line
        doubted.extend(rival for _, rival in close_glyphs[MAX_TESTED:])
    doubted.extend(
        rival
        for margin, rival in close
        if rival in space_rivals and _space_vetoes(order, rival, margin, facts["tests"])
    )
    return RivalCheck(tuple(doubted), facts)


class _OrderOnInk:
    """The ordered text's rendering and its registration on the line's ink, made once."""

    def __init__(self, line: TextLine, expected: Expected) -> None:
        self.line, self.expected = line, expected
        self.rendering = render(expected.text, expected.font, expected.template)
        self.registered = registered_on(expected.text, expected, line)

    def rival(self, text: str) -> Registered | None:
        return registered_on(text, self.expected, self.line)


def inserted_space_rivals(text: str) -> list[str]:
    """``text`` with one space inserted between two inked characters. The script fonts'
    loops reach into a space ("Yusu f": the "f" loop leaves no blank column), so the gap
    check cannot see every extra space; OCR usually does."""
    return [
        text[:index] + " " + text[index:]
        for index in range(1, len(text))
        if text[index - 1] != " " and text[index] != " "
    ]


def case_flip_rivals(text: str, font: str | None) -> list[str]:
    """``text`` with one letter's case flipped, in the fonts whose capitals OCR confuses with
    small letters (``DECORATIVE_FONTS``; none elsewhere), unless the two are font twins."""
    if font not in DECORATIVE_FONTS:
        return []
    twins = twin_map(font)
    flips = (
        text[:index] + char.swapcase() + text[index + 1 :]
        for index, char in enumerate(text)
        if char.isascii() and char.isalpha()
    )
    return [rival for rival in flips if fold(rival, twins) != fold(text, twins)]


def single_mistake_rivals(text: str, font: str | None, characters: set[str]) -> list[str]:
    """Every text one substitution, case flip, deletion, insertion or swap away from
    ``text`` using ``characters``, that differs from it in more than spacing or font twins."""
    rivals: set[str] = set()
    for index in range(len(text)):
        for char in characters:
            rivals.add(text[:index] + char + text[index + 1 :])
        rivals.add(text[:index] + text[index + 1 :])
        rivals.add(text[:index] + text[index + 1 : index + 2] + text[index] + text[index + 2 :])
    for index in range(len(text) + 1):
        for char in characters:
            rivals.add(text[:index] + char + text[index:])
    twins = twin_map(font)
    inked = fold(text, twins).replace(" ", "")
    return sorted(
        rival for rival in rivals if rival.strip() and fold(rival, twins).replace(" ", "") != inked
    )


def ctc_log_likelihoods(posteriors: Posteriors, texts: Sequence[str]) -> npt.NDArray[np.float64]:
    """log P(text | crop) under CTC for each text, all texts at once (forward algorithm over
    the blank-extended label sequences; -inf for a text with a character outside the model)."""
    count = len(texts)
    longest = max(len(text) for text in texts)
    states = 2 * longest + 1
    labels = np.zeros((count, states), np.intp)  # blanks (column 0) at the even states
    ends = np.zeros(count, np.intp)
    known = np.ones(count, bool)
    for row, text in enumerate(texts):
        columns = [posteriors.alphabet.get(char, -1) for char in text]
        known[row] = all(column > 0 for column in columns)
        labels[row, 1 : 2 * len(text) : 2] = [max(column, 0) for column in columns]
        ends[row] = 2 * len(text)
    # A label may be reached skipping the blank before it unless it repeats the previous one.
    may_skip = np.zeros((count, states), bool)
    may_skip[:, 3::2] = labels[:, 3::2] != labels[:, 1:-2:2]
    log_probs = posteriors.log_probs.astype(np.float64)
    alpha = np.full((count, states), _NEG_INF)
    alpha[:, :2] = log_probs[0][labels[:, :2]]
    pad1, pad2 = np.full((count, 1), _NEG_INF), np.full((count, 2), _NEG_INF)
    for frame in log_probs[1:]:
        stay_or_step = np.logaddexp(alpha, np.concatenate([pad1, alpha[:, :-1]], axis=1))
        skip = np.where(may_skip, np.concatenate([pad2, alpha[:, :-2]], axis=1), _NEG_INF)
        alpha = np.logaddexp(stay_or_step, skip) + frame[labels]
    rows = np.arange(count)
    last = np.logaddexp(alpha[rows, ends], alpha[rows, np.maximum(ends - 1, 0)])
    return np.where(known, last, _NEG_INF)


def _characters_in_reach(posteriors: Sequence[Posteriors], floor: float) -> set[str]:
    """Characters a close rival may use (customer-orderable ones, and a space).

    A text containing ``c`` is at most as likely as the sum over frames of P(c) (every CTC
    path emits ``c`` in some frame), so a character whose summed log of that bound over the
    crops stays below ``floor`` (the order's log-likelihood minus the margin) can only make
    rivals the order beats by the margin: leaving it out loses no close rival.
    """
    bound = np.sum([_log_sum_over_frames(posterior) for posterior in posteriors], axis=0)
    alphabet = posteriors[0].alphabet
    return {" "} | {
        char
        for char in PRINTABLE_ASCII
        if char != " " and char in alphabet and bound[alphabet[char]] >= floor
    }


def _log_sum_over_frames(posterior: Posteriors) -> npt.NDArray[np.float64]:
    log_probs = posterior.log_probs.astype(np.float64)
    peak = log_probs.max(axis=0)
    return np.asarray(peak + np.log(np.exp(log_probs - peak).sum(axis=0)), np.float64)


def _vetoes(order: _OrderOnInk, rival: str, margin: float, tests: list[dict[str, Any]]) -> bool:
    """The geometry's word on one close rival: True if it keeps the rival in the running."""
    expected = order.expected
    position = _changed_position(expected.text, rival)
    ordered, theirs_registered = order.registered, order.rival(rival)
    if ordered is None or theirs_registered is None or not _renderable(rival, expected):
        return False  # the font cannot draw the rival: it cannot be what was engraved
    windows = (
        window_around(order.rendering, ordered, position, 0),
        window_around(order.rendering, ordered, position, 1),
    )
    mine = _scores(ordered, windows)
    theirs = _scores(theirs_registered, windows)
    if margin < 0:  # OCR prefers the rival: the order must be confirmed against it
        vetoed = not beats(mine, theirs)
    else:
        vetoed = theirs[0] >= mine[0] + VETO_GLYPH and theirs[1] >= mine[1] + VETO_CONTEXT
    tests.append(
        {
            "margin": round(margin, 3),
            "glyph_gain": round(theirs[0] - mine[0], 4),
            "context_gain": round(theirs[1] - mine[1], 4),
            "line_gain": round(theirs[2] - mine[2], 4),
            "vetoed": vetoed,
        }
    )
    return vetoed


def _space_vetoes(
    order: _OrderOnInk, rival: str, margin: float, tests: list[dict[str, Any]]
) -> bool:
    """A space OCR nearly believes in vetoes if the line with it fits the ink better."""
    ordered, spaced = order.registered, order.rival(rival)
    if ordered is None or spaced is None:
        return False
    gain = line_ncc(spaced) - line_ncc(ordered)
    vetoed = gain >= SPACE_VETO_LINE
    tests.append({"margin": round(margin, 3), "space_line_gain": round(gain, 4), "vetoed": vetoed})
    return vetoed


def _scores(
    registered: Registered, windows: tuple[tuple[int, int], tuple[int, int]]
) -> tuple[float, float, float]:
    return (
        window_ncc(registered, windows[0]),
        window_ncc(registered, windows[1]),
        line_ncc(registered),
    )


def _renderable(rival: str, expected: Expected) -> bool:
    glyphs = set(font_glyphs(expected.font))
    twins = twin_map(expected.font)
    return all(char == " " or fold(char, twins) in glyphs for char in rival)


def _changed_position(text: str, rival: str) -> int:
    """Index in ``text`` of the first inked character where ``rival`` departs from it."""
    index = 0
    while index < min(len(text), len(rival)) and text[index] == rival[index]:
        index += 1
    index = min(index, len(text) - 1)
    while index < len(text) - 1 and text[index] == " ":
        index += 1
    return index
