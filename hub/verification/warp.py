"""A smooth horizontal warp that registers a candidate's rendering on the ink beyond its extent.

Registration by extent alone leaves glyphs a few pixels off in the middle of a tilted photo
(perspective) and far off on a ring band (the band turns away: letters near the ends are
foreshortened). Thin strokes correlate poorly even 3 px off, so the ordered text could fit its
own photo worse than a rival with a space removed. Two smooth terms model those optics:
``bow`` (u(1-u): the middle shifts, perspective) and ``squeeze`` (u(1-u)(u-1/2): the ends
compress against the middle, a cylinder). Both keep the ends fixed and stay monotone over the
searched range. A warp is smooth over the whole line, so it cannot imitate a character-sized
step (an extra or missing space, a swapped pair): each candidate gets its own best warp and
the candidates are still told apart by how well they fit.

The search runs on column profiles (ink per column, blurred): 1-D, so all warps cost ~1 ms.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

FloatImage = npt.NDArray[np.float32]
Columns = npt.NDArray[np.float64]

BOWS = tuple(np.linspace(-0.12, 0.12, 7))  # middle shift up to 3 % of the line's width
SQUEEZES = tuple(np.linspace(-1.2, 1.2, 9))  # a band turning ~70 degrees away at its ends


@dataclass(frozen=True, slots=True)
class Warp:
    bow: float = 0.0
    squeeze: float = 0.0

    def source_columns(self, width: int) -> Columns:
        """For each observed column, the rendering's column that lands there."""
        u = (np.arange(width, dtype=np.float64) + 0.5) / width
        shape = u * (1 - u)
        return (u + self.bow * shape + self.squeeze * shape * (u - 0.5)) * width - 0.5

    def to_observed(self, source_x: float, width: int) -> float:
        """Where the rendering's column ``source_x`` lands in the photo (the inverse map)."""
        columns = self.source_columns(width)
        return float(np.interp(source_x, columns, np.arange(width, dtype=np.float64)))

    def apply(self, image: FloatImage) -> FloatImage:
        """``image`` (the registered rendering) warped into the photo's columns."""
        if self.bow == 0.0 and self.squeeze == 0.0:
            return image
        height, width = image.shape
        map_x = np.tile(self.source_columns(width).astype(np.float32), (height, 1))
        map_y = np.repeat(np.arange(height, dtype=np.float32)[:, None], width, axis=1)
        warped = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderValue=0.0)
        return np.asarray(warped, np.float32)


NO_WARP = Warp()


def best_warp(observed: FloatImage, expected: FloatImage, sigma: float) -> tuple[Warp, float]:
    """The warp whose column profile of ``expected`` best matches ``observed``'s, and its NCC."""
    width = observed.shape[1]
    seen = _profile(observed, sigma)
    planned = _profile(expected, sigma)
    columns = np.arange(width, dtype=np.float64)
    best, best_score = NO_WARP, _ncc(seen, planned)
    for bow, squeeze in itertools.product(BOWS, SQUEEZES):
        warp = Warp(float(bow), float(squeeze))
        score = _ncc(seen, np.interp(warp.source_columns(width), columns, planned))
        if score > best_score + 1e-6:
            best, best_score = warp, score
    return best, best_score


def _profile(image: FloatImage, sigma: float) -> Columns:
    column_ink = image.sum(axis=0, dtype=np.float64)[None, :]
    blurred = cv2.GaussianBlur(column_ink, (0, 0), sigmaX=sigma, sigmaY=0.1)
    return np.asarray(blurred[0], np.float64)


def _ncc(a: Columns, b: Columns) -> float:
    a_centred, b_centred = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt((a_centred**2).sum() * (b_centred**2).sum()))
    if denominator <= 1e-9:
        return 0.0
    return float((a_centred * b_centred).sum()) / denominator
