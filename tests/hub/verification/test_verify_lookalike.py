"""OCR reads the order off a wrong engraving with a descender: the look-alike veto (issue 8).

The regression case is the benchmark's own photo (seed 23, #175: "Be mjne" engraved for
"Be mine", rowmand, blurred) that RapidOCR read as the order at 0.95 and that used to PASS.
The other photos are real (laser layout burned and photographed, conftest.py); where a test
must force "OCR read the order", the engine is a stub reading a fixed text (RapidOCR's misreads
cannot be provoked on demand), as in test_verify_confirm.py.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from bench.verify_set import sample_at
from hub.verification import Expected, OcrEngine, OcrLine, Verdict, VerificationResult, verify
from hub.verification.lookalike import lower_lookalikes

Photo = Callable[..., np.ndarray]
TEMPLATE = "bar_pendant"


class FixedReading:
    """An OCR engine that reads ``text`` at ``score`` whatever the crop (a stub, see above)."""

    name = "fixed"

    def __init__(self, text: str, score: float = 0.95) -> None:
        self._line = OcrLine(text, score)

    def read(self, image: np.ndarray) -> list[OcrLine]:
        return [self._line]


def _read_as_ordered(photo: Photo, engraved: str, ordered: str, font: str) -> VerificationResult:
    image = photo(engraved, template=TEMPLATE, font=font, blur=2.0)
    return verify(image, Expected(ordered, font, TEMPLATE), engine=FixedReading(ordered))


def test_the_benchmark_false_accept_no_longer_passes(engine: OcrEngine) -> None:
    sample = sample_at(175, 23)
    assert (sample.ordered, sample.engraved, sample.font) == ("Be mine", "Be mjne", "rowmand")
    expected = Expected(sample.ordered, sample.font, sample.template)
    result = verify(sample.image, expected, engine=engine)
    assert result.verdict is Verdict.REVIEW, (result.reasons, result.checks.get("lookalikes"))
    assert result.reasons == ["lookalike_fits_better"]
    vetoing = [test for test in result.checks["lookalikes"]["tests"] if test["vetoed"]]
    assert vetoing[0]["rival_line"] > vetoing[0]["line"]  # the descender fixes the whole line


def test_a_benchmark_positive_with_descenders_still_passes(engine: OcrEngine) -> None:
    sample = sample_at(62, 23)  # rowmans, clean: a "y" and a "d" the gate looks at
    assert sample.edit == "none"
    expected = Expected(sample.ordered, sample.font, sample.template)
    result = verify(sample.image, expected, engine=engine)
    assert result.verdict is Verdict.PASS, (result.reasons, result.checks.get("lookalikes"))


@pytest.mark.parametrize(
    ("ordered", "engraved", "font"),
    [("Be mine", "Be mjne", "rowmand"), ("Hannah", "Hannqh", "futural"), ("Eva", "Eqa", "futural")],
)
def test_a_descender_read_as_the_order_is_never_passed(
    photo: Photo, ordered: str, engraved: str, font: str
) -> None:
    result = _read_as_ordered(photo, engraved, ordered, font)
    assert result.verdict is Verdict.REVIEW, result.checks.get("lookalikes")
    assert result.reasons == ["lookalike_fits_better"]


@pytest.mark.parametrize(
    ("text", "font"), [("Be mine", "rowmand"), ("Hannah", "futural"), ("Mary Jay", "rowmand")]
)
def test_the_correct_engraving_read_as_the_order_passes(photo: Photo, text: str, font: str) -> None:
    result = _read_as_ordered(photo, text, text, font)
    assert result.verdict is Verdict.PASS, (result.reasons, result.checks.get("lookalikes"))
    assert not any(test["vetoed"] for test in result.checks["lookalikes"]["tests"])


def test_rivals_are_look_alikes_that_reach_lower() -> None:
    assert "j" in lower_lookalikes("rowmand", "i")
    assert "q" in lower_lookalikes("futural", "a")
    assert "i" not in lower_lookalikes("rowmand", "j")  # "i" does not reach lower than "j"
