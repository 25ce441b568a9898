"""Checking a candidate text against the photo's ink: render it, register it, correlate.

The candidate's rendering (:mod:`hub.verification.layout`) is scaled onto the located ink box
(registration by extent: translation and a per-axis scale), both masks are blurred by about a
stroke width, and compared by normalised cross-correlation - over the whole line and per glyph
(each glyph may shift a little, which absorbs residual perspective and curvature). A candidate
with a missing space, an extra letter or a swapped pair no longer lines up with the ink, and a
wrong glyph scores low in its own window: the checks OCR cannot make.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from hub.verification.layout import Rendering, rasterise
from hub.verification.warp import NO_WARP, Warp, best_warp

FloatImage = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Fit:
    """How well one candidate's rendering matches the ink."""

    score: float  # whole-line NCC, -1..1
    glyph_scores: tuple[tuple[int, float], ...]  # (index in the candidate text, NCC)
    aspect_ratio: float  # observed ink aspect / candidate's
    profile: float = -1.0  # NCC of the column profiles (where ink is along the line), warped
    warp: Warp = NO_WARP

    @property
    def worst_glyph(self) -> float:
        return min((score for _, score in self.glyph_scores), default=self.score)


def fit(
    rendering: Rendering, ink: Mask, ink_box: tuple[int, int, int, int], *, glyphs: bool = True
) -> Fit:
    """Register ``rendering`` on ``ink`` within ``ink_box`` and score the match (per glyph
    too, unless ``glyphs`` is false: the whole-line score is all a rival test needs)."""
    x0, y0, x1, y1 = ink_box
    if y1 - y0 < 2 or x1 - x0 < 2:
        return Fit(-1.0, (), 0.0)
    model = register(rendering, ink, ink_box)
    warp, stroke_px = model.warp, model.stroke_px
    obs_blur, exp_blur = model.observed, model.expected
    height, width = obs_blur.shape
    shift = max(1, round(0.12 * height))
    glyph_scores = tuple(
        (
            index,
            _glyph_score(
                obs_blur,
                exp_blur,
                (warp.to_observed(gx0 * width, width), warp.to_observed(gx1 * width, width)),
                stroke_px,
                shift,
            ),
        )
        for index, gx0, _, gx1, _ in (rendering.glyph_boxes if glyphs else ())
    )
    aspect = (width / height) / max(rendering.aspect, 1e-6)
    return Fit(_ncc(obs_blur, exp_blur), glyph_scores, aspect, model.profile, warp)


@dataclass(frozen=True, slots=True)
class Registered:
    """A candidate's rendering registered (extent + its best warp) on the ink, both blurred
    by about a stroke width: the images every score is computed from."""

    observed: FloatImage  # the ink crop, blurred
    expected: FloatImage  # the candidate, registered, warped and blurred
    warp: Warp
    profile: float  # NCC of the column profiles under ``warp``
    stroke_px: float


def register(rendering: Rendering, ink: Mask, ink_box: tuple[int, int, int, int]) -> Registered:
    """Register ``rendering`` on the ink within ``ink_box`` (at least 2 x 2 px)."""
    x0, y0, x1, y1 = ink_box
    observed = ink[y0:y1, x0:x1].astype(np.float32)
    height, width = observed.shape
    stroke_px = _stroke_width(rendering, observed)
    expected = _registered(rendering, width, height, stroke_px).astype(np.float32)
    sigma = max(1.0, 0.6 * stroke_px)
    warp, profile = best_warp(observed, expected, sigma)
    return Registered(
        _blur(observed, sigma), _blur(warp.apply(expected), sigma), warp, profile, stroke_px
    )


def window_ncc(registered: Registered, columns: tuple[int, int]) -> float:
    """NCC of the candidate and the ink over the photo's ``columns`` [start, end) only."""
    start, end = max(0, columns[0]), min(registered.observed.shape[1], columns[1])
    if end - start < 2:
        return -1.0
    return _ncc(registered.observed[:, start:end], registered.expected[:, start:end])


def line_ncc(registered: Registered) -> float:
    """NCC of the candidate and the ink over the whole line."""
    return _ncc(registered.observed, registered.expected)


def _stroke_width(rendering: Rendering, observed: FloatImage) -> float:
    """Stroke width in px: observed ink area over the candidate's stroke length."""
    if rendering.bitmap is not None:
        return max(1.0, float(observed.shape[0]) * 0.08)
    height, width = observed.shape
    length = sum(
        float(np.hypot(np.diff(stroke[:, 0]) * width, np.diff(stroke[:, 1]) * height).sum())
        for stroke in rendering.strokes
    )
    return float(np.clip(observed.sum() / max(length, 1.0), 1.0, 0.3 * height))


def _registered(rendering: Rendering, width: int, height: int, stroke_px: float) -> FloatImage:
    """The rendering in a ``width`` x ``height`` box whose ink (strokes included) fills it."""
    if rendering.bitmap is not None:
        return (rasterise(rendering, width, height, stroke_px) > 0).astype(np.float32)
    margin = round(stroke_px / 2)
    inner_w, inner_h = max(width - 2 * margin, 1), max(height - 2 * margin, 1)
    inner = rasterise(rendering, inner_w, inner_h, stroke_px)
    canvas = np.zeros((height, width), np.float32)
    canvas[margin : margin + inner_h, margin : margin + inner_w] = inner > 0
    return canvas


def _glyph_score(
    observed: FloatImage,
    expected: FloatImage,
    columns: tuple[float, float],
    stroke_px: float,
    shift: int,
) -> float:
    """Best NCC of the glyph's window (``columns`` in the photo) over small shifts."""
    width = observed.shape[1]
    pad = max(1, round(stroke_px))
    left = max(0, int(columns[0]) - pad)
    right = min(width, int(np.ceil(columns[1])) + pad + 1)
    window = expected[:, left:right]
    best = -1.0
    steps = (-shift, 0, shift)  # a coarse search: 9 placements keep the check cheap
    for dx in steps:
        a, b = left + dx, right + dx
        if a < 0 or b > width:
            continue
        for dy in steps:
            target = np.roll(observed[:, a:b], -dy, axis=0)
            best = max(best, _ncc(target, window))
    return best


def _blur(image: FloatImage, sigma: float) -> FloatImage:
    return np.asarray(cv2.GaussianBlur(image, (0, 0), sigma), np.float32)


def _ncc(a: FloatImage, b: FloatImage) -> float:
    a_centred = a - float(a.mean())
    b_centred = b - float(b.mean())
    denominator = float(np.sqrt((a_centred**2).sum() * (b_centred**2).sum()))
    if denominator <= 1e-9:
        return 0.0
    return float((a_centred * b_centred).sum()) / denominator


@dataclass(frozen=True, slots=True)
class GapCheck:
    """Word gaps the layout expects versus wide blanks in the ink (units: crop px)."""

    expected: int  # word gaps in the expected layout
    found: int  # wide blank runs in the ink
    missing: tuple[int, ...]  # text index of the space whose gap is not in the ink
    extra: int  # wide blanks where the layout has none

    @property
    def ok(self) -> bool:
        return not self.missing and self.extra == 0


def check_gaps(rendering: Rendering, ink: Mask, ink_box: tuple[int, int, int, int]) -> GapCheck:
    """Compare blank column runs of the ink with those of the registered expected rendering.

    A space adds about a space's advance of blank: an observed blank at least half a space
    wider than the layout's blank at the same place is an extra space; a word gap of the
    layout at least half a space narrower in the ink is a missing one. "The same place" is
    the other side's blank whose centre is nearest, within half a space: registration is off
    by a few pixels, and a fixed column (the blank's centre) then falls just beside a narrow
    blank of the other side (a clean DejaVu date: "1" leaves 6-8 px blanks, half a space is
    ~6 px, and one such blank read as 0 px planned made the line an extra space).
    """
    x0, y0, x1, y1 = ink_box
    observed = ink[y0:y1, x0:x1]
    height, width = observed.shape
    if width < 2:
        return GapCheck(0, 0, (), 0)
    min_ink = max(1, round(0.04 * height))  # a column with a noise speck is still blank
    seen = _blank_runs(observed.sum(axis=0) < min_ink)
    stroke_px = _stroke_width(rendering, observed.astype(np.float32))
    layout = _registered(rendering, width, height, stroke_px)
    warp, _ = best_warp(observed.astype(np.float32), layout, max(1.0, 0.6 * stroke_px))
    planned = _blank_runs(warp.apply(layout).sum(axis=0) < 0.5)
    half_space = 0.5 * rendering.space_width * width
    word_gaps = [
        (index, round(warp.to_observed(centre, width)))
        for index, centre in _word_gap_centres(rendering, width)
    ]
    missing = tuple(
        index
        for index, centre in word_gaps
        if _run_width(planned, centre, 0.0) - _run_width(seen, centre, half_space) >= half_space
    )
    wide = [run for run in seen if run[1] - run[0] >= half_space]
    extra = sum(
        1
        for start, end in wide
        if (end - start) - _run_width(planned, (start + end) / 2, half_space) >= half_space
    )
    return GapCheck(len(word_gaps), len(wide), missing, extra)


def _run_width(runs: list[tuple[int, int]], centre: float, reach: float) -> int:
    """Width of the run whose centre is nearest ``centre`` and at most ``reach`` from it (a run
    containing ``centre`` always counts); 0 when there is none."""
    best, best_distance = 0, math.inf
    for start, end in runs:
        distance = abs((start + end) / 2 - centre)
        if (distance <= reach or start <= centre < end) and distance < best_distance:
            best, best_distance = end - start, distance
    return best


def _blank_runs(blank: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    runs, start = [], None
    for column, is_blank in enumerate(blank.tolist()):
        if is_blank and start is None:
            start = column
        elif not is_blank and start is not None:
            runs.append((start, column))
            start = None
    if start is not None:
        runs.append((start, len(blank)))
    return runs


def _word_gap_centres(rendering: Rendering, width: int) -> list[tuple[int, int]]:
    """Word gaps of the layout as (index of the space, centre column in px)."""
    boxes = rendering.glyph_boxes
    return [
        (index + 1, int((right + left) / 2 * width))
        for (index, _, _, right, _), (next_index, left, _, _, _) in itertools.pairwise(boxes)
        if next_index > index + 1
    ]
