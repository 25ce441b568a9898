"""Reading the located line: RapidOCR (or another engine) on two preprocessings of one crop.

The first crop is the straightened line scaled so its ink is ``OCR_HEIGHT_PX`` high, the second
a CLAHE-normalised copy. What was read, at what confidence, and - from a scoring engine - the
posteriors of every crop read travel on as one :class:`Reading`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace

import cv2
import numpy as np

from hub.verification.compare import fold, twin_map
from hub.verification.confirm import Confirmation
from hub.verification.engine import OcrEngine, OcrLine, Posteriors, ScoringEngine
from hub.verification.locate import TextLine
from hub.verification.model import Expected
from hub.verification.preprocess import BgrImage, normalise_contrast, to_grey

PASS_MIN_SCORE = 0.80  # OCR confidence below this is never enough to PASS
OCR_HEIGHT_PX = 32  # ink height the recogniser sees (it resizes lines to 48 px)


@dataclass(slots=True)
class Reading:
    """What OCR read; the crops it was read from, and the posteriors of those it read (a
    scoring engine only)."""

    text: str
    score: float
    variants: int
    crops: list[BgrImage]
    posteriors: list[Posteriors]
    engine: OcrEngine
    settled: frozenset[int] = frozenset()  # positions the geometry confirmed

    def confirmed(self, confirmation: Confirmation) -> Reading:
        """OCR's reading with the glyphs the geometry confirmed put back."""
        return replace(self, text=confirmation.reading, settled=self.settled | confirmation.settled)


def read_line(line: TextLine, expected: Expected, engine: OcrEngine) -> Reading:
    """Recognise the line; the second preprocessing only when the first does not read the
    order exactly (characters *and* spacing) at a confidence that can PASS. RapidOCR drops a
    space next to punctuation on one crop and keeps it on the other: an exact confident
    reading is taken at once, else the most confident one matching the order's characters."""
    twins = twin_map(expected.font)
    target = fold(expected.text, twins)
    best: OcrLine | None = None
    matching: OcrLine | None = None
    variants = 0
    posteriors: list[Posteriors] = []
    crops = ocr_crops(line)
    for crop in crops:
        variants += 1
        lines = _recognise(engine, crop, posteriors)
        if not lines:
            continue
        candidate = OcrLine(" ".join(item.text for item in lines), min(i.score for i in lines))
        seen = fold(candidate.text.strip(), twins)
        if seen == target and candidate.score >= PASS_MIN_SCORE:
            return Reading(candidate.text, candidate.score, variants, crops, posteriors, engine)
        same_characters = seen.replace(" ", "") == target.replace(" ", "")
        if same_characters and (matching is None or candidate.score > matching.score):
            matching = candidate
        if best is None or candidate.score > best.score:
            best = candidate
    chosen = matching or best
    text, score = (chosen.text, chosen.score) if chosen else ("", 0.0)
    return Reading(text, score, variants, crops, posteriors, engine)


def _recognise(engine: OcrEngine, crop: BgrImage, posteriors: list[Posteriors]) -> list[OcrLine]:
    """One recognition, NFKC-normalised (RapidOCR emits full-width forms of ASCII, U+FF06 for
    "&"); a scoring engine's posteriors are appended to ``posteriors``."""
    if isinstance(engine, ScoringEngine):
        lines, scored = engine.read_scored(crop)
        posteriors.append(scored)
    else:
        lines = engine.read(crop)
    return [OcrLine(unicodedata.normalize("NFKC", item.text), item.score) for item in lines]


def all_posteriors(read: Reading) -> list[Posteriors]:
    """Posteriors of every crop: the ones OCR stopped short of are read now (a PASS weighs
    the evidence of both preprocessings, not only of the one that matched the order)."""
    posteriors, engine = list(read.posteriors), read.engine
    if isinstance(engine, ScoringEngine):
        for crop in read.crops[len(posteriors) :]:
            posteriors.append(engine.read_scored(crop)[1])
    return posteriors


def ocr_crops(line: TextLine) -> list[BgrImage]:
    """The line crop scaled so its ink is OCR_HEIGHT_PX high; then a CLAHE-normalised copy."""
    x0, y0, x1, y1 = line.ink_box
    pad = max(2, (y1 - y0) // 2)
    crop = line.bgr[max(0, y0 - pad) : y1 + pad, max(0, x0 - pad) : x1 + pad]
    factor = OCR_HEIGHT_PX / max(y1 - y0, 1)
    scaled = np.asarray(
        cv2.resize(crop, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC), np.uint8
    )
    normalised = normalise_contrast(to_grey(scaled))
    return [scaled, np.asarray(cv2.cvtColor(normalised, cv2.COLOR_GRAY2BGR), np.uint8)]
