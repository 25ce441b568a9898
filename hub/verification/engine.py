"""OCR engines behind one small interface, so the pipeline can swap or stub them.

The pipeline locates the text itself and hands the engine one straightened line crop at a time:
RapidOCR's detection model costs ~1.5 s per photo on the hub's 2 cores, its recogniser ~15-40 ms
per line. Only RapidOCR's bundled default models are used - any other model setting downloads
at run time, and the hub runs offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

BgrImage = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class OcrLine:
    """One recognised line: its text and the engine's confidence (0..1)."""

    text: str
    score: float


class OcrEngine(Protocol):
    """Recognises the text of a single-line crop (BGR uint8); ``[]`` when it reads nothing."""

    name: str

    def read(self, image: BgrImage) -> list[OcrLine]: ...


class RapidOcrEngine:
    """RapidOCR's recogniser only (no detection, no angle classifier), default models."""

    def __init__(self) -> None:
        from rapidocr import RapidOCR  # heavy: load on demand

        self._ocr: Any = RapidOCR(params={"Global.log_level": "warning"})
        self.name = f"rapidocr-{_package_version('rapidocr')}"

    def read(self, image: BgrImage) -> list[OcrLine]:
        output = self._ocr(image, use_det=False, use_cls=False)
        texts = output.txts or ()
        scores = output.scores or ()
        return [
            OcrLine(str(text), float(score))
            for text, score in zip(texts, scores, strict=False)
            if str(text).strip()
        ]


def default_engine() -> OcrEngine:
    """A new RapidOCR engine with its bundled default models (takes ~1 s to load)."""
    return RapidOcrEngine()


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"
