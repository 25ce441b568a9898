"""The verification benchmark set: deterministic, labelled right, every edit a visible one."""

from __future__ import annotations

import random
from collections import Counter

import cv2
import numpy as np
import pytest

from bench.verify_set import (
    BENCH_METALS,
    EDITS,
    HARD_CONDITIONS,
    Sample,
    generate,
    sample_at,
)
from bench.verify_texts import EDIT_KINDS, SAME_SHAPE_CASE, GlyphRules, apply_edit, realistic_text
from drivers.laser.fonts import identical_glyphs, load_font

SET_SIZE = 70  # 28 negatives: every edit kind 4 times


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    return list(generate(SET_SIZE, seed=3))


def test_same_seed_same_pixels_and_labels() -> None:
    first, again = list(generate(4, seed=11)), list(generate(4, seed=11))
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.image, b.image)
        assert (a.ordered, a.engraved, a.font, a.conditions) == (
            b.ordered,
            b.engraved,
            b.font,
            b.conditions,
        )
    other = next(generate(1, seed=12))
    assert other.seed != first[0].seed


def test_a_sample_depends_on_its_index_only() -> None:
    listed = list(generate(7, seed=5))
    alone = sample_at(6, seed=5)
    assert np.array_equal(listed[6].image, alone.image)
    assert listed[6].engraved == alone.engraved


def test_difficulty_filter_yields_only_that_split() -> None:
    hard = list(generate(5, seed=2, difficulty="hard"))
    assert len(hard) == 5
    assert all(sample.difficulty == "hard" for sample in hard)
    assert all(set(sample.conditions[1:]) <= set(HARD_CONDITIONS) for sample in hard)
    assert all(len(sample.conditions) >= 2 for sample in hard)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="difficulty"):
        next(generate(1, difficulty="medium"))
    with pytest.raises(ValueError, match="count"):
        next(generate(-1))


def test_every_edit_kind_present_and_about_40_percent_negatives(samples: list[Sample]) -> None:
    edits = Counter(sample.edit for sample in samples)
    assert set(edits) == set(EDITS)
    negatives = SET_SIZE - edits["none"]
    assert negatives / SET_SIZE == pytest.approx(0.4)
    for difficulty in ("clean", "hard"):
        split = {s.edit for s in samples if s.difficulty == difficulty}
        assert split == set(EDITS), difficulty


def test_positives_are_engraved_as_ordered(samples: list[Sample]) -> None:
    for sample in samples:
        assert (sample.edit == "none") == (sample.ordered == sample.engraved)


def test_each_negative_is_exactly_its_one_edit(samples: list[Sample]) -> None:
    for sample in samples:
        if sample.edit != "none":
            assert _one_edit(sample.ordered, sample.engraved) == sample.edit, sample


def test_no_negative_only_swaps_font_twins_or_case_lookalikes(samples: list[Sample]) -> None:
    for sample in samples:
        if sample.edit in ("substitution", "transposition", "case"):
            a, b = _changed_pair(sample.ordered, sample.engraved)
            twins = identical_glyphs(sample.font) if sample.template else frozenset()
            assert not any({a, b} <= group for group in twins), sample
            if sample.edit == "case":
                assert a not in SAME_SHAPE_CASE, sample
        if sample.template is not None:  # Hershey: every engraved glyph exists in the font
            font = load_font(sample.font)
            assert all(font.can_render(char) for char in sample.engraved)


def test_fonts_metals_and_conditions_all_occur(samples: list[Sample]) -> None:
    assert any(s.font.endswith(".ttf") for s in samples)
    assert any(s.template is not None for s in samples)
    assert {s.conditions[0] for s in samples} == set(BENCH_METALS)
    assert {c for s in samples for c in s.conditions[1:]} == set(HARD_CONDITIONS)
    for sample in samples:
        if "curvature" in sample.conditions and sample.template is not None:
            assert sample.template == "ring_band"


def test_images_are_photos_with_ink(samples: list[Sample]) -> None:
    for sample in samples:
        assert sample.image.shape == (480, 640, 3)
        assert sample.image.dtype == np.uint8
        if sample.difficulty == "clean":
            assert 0.005 < _ink_fraction(sample.image) < 0.4, sample.seed


def test_futural_twins_never_make_a_transposition() -> None:
    rules = GlyphRules(load_font("futural").can_render, identical_glyphs("futural"))
    assert apply_edit("Il", "transposition", random.Random(0), rules) is None
    assert apply_edit("oso", "case", random.Random(0), rules) is None
    assert apply_edit("Anna", "space_missing", random.Random(0), rules) is None


def _ink_fraction(image: np.ndarray) -> float:
    """Share of the item (bright metal) area that is clearly darker: the burned strokes."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    metal = gray > 100
    ys, xs = np.nonzero(metal)
    item = gray[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    level = float(np.median(gray[metal]))
    return float(np.mean(item < 0.6 * level))


def _changed_pair(ordered: str, engraved: str) -> tuple[str, str]:
    diff = [i for i, (a, b) in enumerate(zip(ordered, engraved, strict=True)) if a != b]
    return ordered[diff[0]], engraved[diff[0]]


def _one_edit(ordered: str, engraved: str) -> str | None:
    """Which single edit turns ``ordered`` into ``engraved`` (None: not exactly one)."""
    if len(engraved) == len(ordered) + 1:
        return _inserted(ordered, engraved)
    if len(engraved) == len(ordered) - 1:
        inserted = _inserted(engraved, ordered)
        return {"insertion": "deletion", "space_extra": "space_missing"}.get(inserted or "")
    if len(engraved) != len(ordered):
        return None
    diff = [i for i, (a, b) in enumerate(zip(ordered, engraved, strict=True)) if a != b]
    if len(diff) == 1:
        a, b = ordered[diff[0]], engraved[diff[0]]
        if " " in (a, b):
            return None
        return "case" if a.swapcase() == b else "substitution"
    if len(diff) == 2 and diff[1] == diff[0] + 1:
        i = diff[0]
        if ordered[i] == engraved[i + 1] and ordered[i + 1] == engraved[i]:
            return "transposition"
    return None


def _inserted(shorter: str, longer: str) -> str | None:
    for i in range(len(longer)):
        if longer[:i] + longer[i + 1 :] == shorter:
            return "space_extra" if longer[i] == " " else "insertion"
    return None


@pytest.mark.parametrize("font", ["futural", "scripts"])
def test_every_edit_kind_on_many_texts_is_one_visible_edit(font: str) -> None:
    rules = GlyphRules(load_font(font).can_render, identical_glyphs(font))
    rng = random.Random(font)
    made = Counter[str]()
    for _ in range(300):
        text = realistic_text(rng)
        for kind in EDIT_KINDS:
            edited = apply_edit(text, kind, rng, rules)
            if edited is None:
                continue
            made[kind] += 1
            assert _one_edit(text, edited) == kind, (text, edited)
            assert edited == edited.strip(" "), (text, edited)
            assert "  " not in edited, (text, edited)
            assert all(rules.can_render(char) for char in edited), (text, edited)
    assert all(made[kind] > 50 for kind in EDIT_KINDS), made
