"""Fixed engraving photos for the verification tests, made deterministically.

The laser's own layout (render_text) is burned into a BurnCanvas and photographed by the
simulated camera's scene code - the same path the simulated station takes - so these are the
photos the pipeline meets in the demo and integration tests.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest

from drivers.camera.scene import ShotConditions, photograph
from drivers.laser.burn import BurnCanvas
from drivers.laser.templates import load_templates
from drivers.laser.toolpath import render_text
from hub.verification import OcrEngine, default_engine

Photo = Callable[..., np.ndarray]


@pytest.fixture(scope="session")
def engine() -> OcrEngine:
    """One RapidOCR engine for the whole session (loading it takes about a second)."""
    return default_engine()


def engraving_photo(
    text: str,
    *,
    template: str = "bar_pendant",
    font: str | None = None,
    metal: str = "gold",
    **shot: float,
) -> np.ndarray:
    """A 640x480 photo of ``text`` burned on ``template`` in ``metal`` under ``shot``."""
    item = load_templates()[template]
    canvas = BurnCanvas(item, metal=metal, seed=1)
    for stroke in render_text(text, font=font, template=item).strokes:
        for start, end in itertools.pairwise(stroke):
            canvas.burn_segment(*start, *end, power_fraction=0.8)
    return photograph(canvas.image, ShotConditions(**shot), 1)  # type: ignore[arg-type]


@pytest.fixture
def photo() -> Photo:
    return engraving_photo
