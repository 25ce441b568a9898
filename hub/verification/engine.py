"""OCR engines behind one small interface, so the pipeline can swap or stub them.

The pipeline locates the text itself and hands the engine one straightened line crop at a time:
RapidOCR's detection model costs ~1.5 s per photo on the hub's 2 cores, its recogniser ~15-40 ms
per line. Only RapidOCR's bundled default models are used - any other model setting downloads
at run time, and the hub runs offline.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from drivers.laser.fonts import PRINTABLE_ASCII

BgrImage = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class OcrLine:
    """One recognised line: its text and the engine's confidence (0..1)."""

    text: str
    score: float


@dataclass(frozen=True, slots=True)
class Posteriors:
    """A CTC recogniser's per-frame character log-probabilities for one crop.

    ``log_probs`` is frames x alphabet with column 0 the CTC blank; ``alphabet`` maps each
    character to its column. :mod:`hub.verification.rivals` scores any text against it.
    """

    log_probs: npt.NDArray[np.float32]
    alphabet: Mapping[str, int]


class OcrEngine(Protocol):
    """Recognises the text of a single-line crop (BGR uint8); ``[]`` when it reads nothing."""

    name: str

    def read(self, image: BgrImage) -> list[OcrLine]: ...


@runtime_checkable
class ScoringEngine(OcrEngine, Protocol):
    """An engine that also hands out its posteriors, so the pipeline can ask how much more
    likely the ordered text is than each near rival (not only what the best path reads)."""

    def read_scored(self, image: BgrImage) -> tuple[list[OcrLine], Posteriors]: ...


class RapidOcrEngine:
    """RapidOCR's recogniser only (no detection, no angle classifier), default models."""

    def __init__(self) -> None:
        from rapidocr import RapidOCR  # heavy: load on demand

        self._ocr: Any = RapidOCR(params={"Global.log_level": "warning"})
        self.name = f"rapidocr-{_package_version('rapidocr')}"
        self._columns: _AsciiColumns | None = None

    def read(self, image: BgrImage) -> list[OcrLine]:
        output = self._ocr(image, use_det=False, use_cls=False)
        texts = output.txts or ()
        scores = output.scores or ()
        return [
            OcrLine(str(text), float(score))
            for text, score in zip(texts, scores, strict=False)
            if str(text).strip()
        ]

    def read_scored(self, image: BgrImage) -> tuple[list[OcrLine], Posteriors]:
        """:meth:`read` plus the recogniser's posteriors, from one run of the model.

        Goes one level below RapidOCR's public call (its recogniser object, rapidocr pinned
        in pyproject.toml): the public call decodes the best path and drops the per-frame
        probabilities. Same preprocessing and decoding as the public call - a test holds the
        two readings equal.
        """
        prepared, _ = self._ocr.preprocess_img(image)
        recogniser = self._recogniser()
        _, height, width = recogniser.rec_image_shape[:3]
        ratio = max(prepared.shape[1] / max(prepared.shape[0], 1), width / height)
        batch = recogniser.resize_norm_img(prepared, ratio)[np.newaxis].astype(np.float32)
        preds = recogniser.session(batch)
        decoded, _ = recogniser.postprocess_op(
            preds, False, wh_ratio_list=[ratio], max_wh_ratio=ratio
        )
        text, score = decoded[0]
        lines = [OcrLine(str(text), float(score))] if str(text).strip() else []
        if self._columns is None:
            self._columns = _AsciiColumns(recogniser.postprocess_op.character)
        return lines, self._columns.posteriors(np.asarray(preds[0], np.float64))

    def _recogniser(self) -> Any:
        return self._ocr._load_rec_model()


class _AsciiColumns:
    """Folds a recogniser's alphabet onto the characters a customer can order.

    RapidOCR's model (trained on Chinese and English) has ~18,700 characters, among them the
    full-width forms of ASCII (U+FF06 for "&", U+FF2C for "L") it often emits for engraved
    text. Each ASCII character's probability is the sum over every model character whose NFKC
    form it is; the others are left out (a text of ASCII characters never uses them).
    """

    def __init__(self, characters: Sequence[str]) -> None:
        ascii_index = {char: k + 1 for k, char in enumerate(sorted(PRINTABLE_ASCII))}
        pairs = [
            (k, ascii_index[folded])
            for k, char in enumerate(characters)
            if k > 0 and (folded := unicodedata.normalize("NFKC", char)) in ascii_index
        ]
        self._source = np.array([k for k, _ in pairs], np.intp)
        self._target = np.array([t for _, t in pairs], np.intp)
        self._width = len(PRINTABLE_ASCII) + 1
        self.alphabet: Mapping[str, int] = ascii_index

    def posteriors(self, probs: npt.NDArray[np.float64]) -> Posteriors:
        folded = np.zeros((probs.shape[0], self._width), np.float64)
        folded[:, 0] = probs[:, 0]  # the CTC blank
        np.add.at(folded.T, self._target, probs[:, self._source].T)  # .T: a view, rows summed
        log_probs = np.log(np.maximum(folded, 1e-12)).astype(np.float32)
        return Posteriors(log_probs, self.alphabet)


def default_engine() -> OcrEngine:
    """A new RapidOCR engine with its bundled default models (takes ~1 s to load)."""
    return RapidOcrEngine()


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"
