"""Locating and straightening the engraved line: what the reading and the geometry start from."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bench.verify_set import sample_at
from hub.verification import Expected, OcrEngine, Verdict, verify
from hub.verification.locate import locate_line
from hub.verification.preprocess import to_grey

GREY_METAL = (150, 150, 150)


def _tops_in_crop(image: np.ndarray) -> list[int]:
    """The top ink row of each part (columns with ink, split at blank columns) of the
    straightened line."""
    line = locate_line(image, to_grey(image))
    assert line is not None
    inked = line.ink.any(axis=0)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], inked.astype(np.int8), [0]))))
    tops = []
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        rows = np.flatnonzero(line.ink[:, start:end].any(axis=1))
        tops.append(int(rows[0]))
    return tops


def test_a_level_short_line_with_a_descender_stays_level() -> None:
    """Two glyph-sized outlines and a third as tall again below the line (a script "J"):
    a line through the three centres tilts, and the straightened crop then lifts the first
    two against the third (seed 34 #2, "E & J" in scripts, read "ε&8")."""
    image = np.full((480, 640, 3), GREY_METAL, np.uint8)
    for x in (200, 280):
        cv2.rectangle(image, (x, 200), (x + 40, 250), (40, 40, 40), 3)
    cv2.rectangle(image, (360, 200), (400, 300), (40, 40, 40), 3)  # the descender
    tops = _tops_in_crop(image)
    assert len(tops) == 3
    assert max(tops) - min(tops) <= 1, tops


@pytest.mark.parametrize("degrees", [-6.0, 4.0])
def test_a_tilted_short_line_is_straightened(degrees: float) -> None:
    image = np.full((480, 640, 3), GREY_METAL, np.uint8)
    for x in (200, 280, 360):
        cv2.rectangle(image, (x, 200), (x + 40, 250), (40, 40, 40), 3)
    turn = cv2.getRotationMatrix2D((320.0, 240.0), degrees, 1.0)
    image = cv2.warpAffine(image, turn, (640, 480), borderValue=GREY_METAL)
    tops = _tops_in_crop(image)
    assert len(tops) == 3
    assert max(tops) - min(tops) <= 2, tops


@pytest.mark.parametrize(("seed", "index", "ordered"), [(34, 2, "E & J"), (21, 44, "C & J")])
def test_a_short_script_line_with_a_capital_j_passes(
    engine: OcrEngine, seed: int, index: int, ordered: str
) -> None:
    """Benchmark false rejects (clean photos): straightened through the parts' centres, the
    line bent "E" and "&" away from the "J"; OCR read "ε&8" and the glyphs fitted nothing."""
    sample = sample_at(index, seed)
    assert (sample.ordered, sample.edit) == (ordered, "none")
    expected = Expected(sample.ordered, sample.font, sample.template)
    result = verify(sample.image, expected, engine=engine)
    assert result.verdict is Verdict.PASS, (result.reasons, result.checks)
