"""verify() on fixed simulated-station photos: one per verdict and one per edit type."""

from __future__ import annotations

import json
from collections.abc import Callable

import cv2
import numpy as np
import pytest

from drivers.camera.scene import ShotConditions, photograph, plain_item
from hub.verification import (
    BadImageError,
    Expected,
    LayoutError,
    OcrEngine,
    Verdict,
    VerificationResult,
    verify,
)

ORDERED = "Love, Mom 2026"
Photo = Callable[..., np.ndarray]  # the conftest `photo` fixture: text -> BGR photo


def test_clean_photo_of_the_ordered_text_passes(photo: Photo, engine: OcrEngine) -> None:
    result = verify(photo(ORDERED), Expected(ORDERED, template="bar_pendant"), engine=engine)
    assert result.verdict is Verdict.PASS, result.reasons
    assert result.read_text == ORDERED
    assert result.diff == []
    assert result.engine.endswith("+geometry")
    assert result.elapsed_ms < 2000


def test_space_dropped_by_ocr_next_to_a_comma_is_confirmed_by_geometry(
    photo: Photo, engine: OcrEngine
) -> None:
    text = "Anna, Ben & Leo"
    result = verify(photo(text), Expected(text, template="bar_pendant"), engine=engine)
    assert result.verdict is Verdict.PASS, (result.reasons, result.checks)


@pytest.mark.parametrize(
    ("edit", "engraved"),
    [
        ("substitution", "Love, Mum 2026"),
        ("deletion", "Love, Mom 206"),
        ("insertion", "Love, Mom 20226"),
        ("transposition", "Love, Mom 2062"),
        ("case", "love, Mom 2026"),
        ("space_missing", "Love,Mom 2026"),
        ("space_extra", "Love, Mom 20 26"),
    ],
)
def test_a_one_character_difference_never_passes(
    photo: Photo, engine: OcrEngine, edit: str, engraved: str
) -> None:
    result = verify(photo(engraved), Expected(ORDERED, template="bar_pendant"), engine=engine)
    assert result.verdict is not Verdict.PASS, edit
    if result.verdict is Verdict.FAIL:
        assert any(entry.op != "equal" for entry in result.diff)


def test_substitution_fails_with_the_differing_character(photo: Photo, engine: OcrEngine) -> None:
    result = verify(photo("Love, Mum 2026"), Expected(ORDERED), engine=engine)
    assert result.verdict is Verdict.FAIL
    changed = [entry for entry in result.diff if entry.op != "equal"]
    assert [(d.op, d.position, d.expected, d.read) for d in changed] == [
        ("substitute", 7, "o", "u")
    ]


def test_font_twins_are_one_character(photo: Photo, engine: OcrEngine) -> None:
    # futural draws "I" and "l" with identical strokes: "Ilse" engraved is "llse" engraved.
    result = verify(photo("Ilse 2026"), Expected("llse 2026", font="futural"), engine=engine)
    assert result.verdict is Verdict.PASS, result.reasons


def test_blank_item_needs_review(engine: OcrEngine) -> None:
    blank = photograph(plain_item(), ShotConditions(), 1)
    result = verify(blank, Expected(ORDERED), engine=engine)
    assert result.verdict is Verdict.REVIEW
    assert result.reasons == ["nothing_found"]
    assert result.read_text == ""


def test_ring_band_photo_with_glare_never_passes_wrongly(photo: Photo, engine: OcrEngine) -> None:
    image = photo("Anna & Bem", template="ring_band", glare=0.9, seed=3)
    result = verify(image, Expected("Anna & Ben", template="ring_band"), engine=engine)
    assert result.verdict is not Verdict.PASS


def test_png_bytes_and_json_round_trip(photo: Photo, engine: OcrEngine) -> None:
    ok, encoded = cv2.imencode(".png", photo(ORDERED))
    assert ok
    result = verify(encoded.tobytes(), Expected(ORDERED), engine=engine)
    payload = json.loads(result.model_dump_json())
    assert payload["verdict"] == result.verdict.value
    assert VerificationResult.model_validate(payload) == result


def test_bad_input_is_refused_with_a_reason(engine: OcrEngine) -> None:
    with pytest.raises(BadImageError, match="not a decodable"):
        verify(b"not an image", Expected(ORDERED), engine=engine)
    with pytest.raises(LayoutError, match="unknown font"):
        verify(b"", Expected(ORDERED, font="nosuchfont"), engine=engine)
