"""The per-character diff and font twins (pure functions, no OCR)."""

from __future__ import annotations

import pytest

from hub.verification.compare import align, differences, fold, twin_map


@pytest.mark.parametrize(
    ("read", "op", "position", "expected", "seen"),
    [
        ("Anma Ben", "substitute", 2, "n", "m"),
        ("Ana Ben", "delete", 1, "n", ""),
        ("Annna Ben", "insert", 1, "", "n"),
        ("Anan Ben", "transpose", 2, "na", "an"),
        ("anna Ben", "substitute", 0, "A", "a"),
        ("AnnaBen", "delete", 4, " ", ""),
        ("An na Ben", "insert", 2, "", " "),
    ],
)
def test_each_edit_type_gives_one_named_difference(
    read: str, op: str, position: int, expected: str, seen: str
) -> None:
    diff = differences(align("Anna Ben", read))
    assert [(d.op, d.position, d.expected, d.read) for d in diff] == [
        (op, position, expected, seen)
    ]


def test_identical_texts_align_as_all_equal() -> None:
    diff = align("Love, Mom", "Love, Mom")
    assert len(diff) == 9
    assert not differences(diff)


def test_futural_twins_fold_to_one_character_but_case_stays() -> None:
    twins = twin_map("futural")
    assert fold("Ilse", twins) == fold("llse", twins)  # same strokes: one character
    assert fold("Anna", twins) != fold("anna", twins)
    assert twin_map("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf") == {}
