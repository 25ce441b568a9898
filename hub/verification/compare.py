"""Aligning what was read with what was ordered: a per-character diff, case-sensitive.

Font twins (characters a font draws with identical strokes, e.g. futural's "I" and "l") are
folded to one representative before comparing: the laser engraved the same strokes for either,
so a photo cannot - and need not - tell them apart. Nothing else is folded, case least of all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache

from drivers.laser.fonts import ENGRAVING_FONTS, identical_glyphs
from hub.verification.model import CharDiff


@cache
def twin_map(font: str | None) -> Mapping[str, str]:
    """Each twin character -> its group's representative (the smallest); empty for TTF."""
    if font is None or font not in ENGRAVING_FONTS:
        return {}
    mapping: dict[str, str] = {}
    for group in identical_glyphs(font):
        representative = min(group)
        for char in group:
            mapping[char] = representative
    return mapping


def fold(text: str, twins: Mapping[str, str]) -> str:
    """``text`` with every twin replaced by its representative."""
    return "".join(twins.get(char, char) for char in text)


def align(expected: str, read: str) -> list[CharDiff]:
    """Optimal string alignment (Levenshtein + adjacent transposition) as a diff.

    Callers fold twins first. The backtrace prefers equal > substitute > transpose >
    delete > insert so a diff reads naturally.
    """
    cost = _distance_table(expected, read)
    ops: list[CharDiff] = []
    i, j = len(expected), len(read)
    while i > 0 or j > 0:
        step = _backtrack_step(cost, expected, read, i, j)
        ops.append(step[0])
        i, j = step[1], step[2]
    ops.reverse()
    return ops


def differences(diff: Iterable[CharDiff]) -> list[CharDiff]:
    """Only the positions that differ."""
    return [entry for entry in diff if entry.op != "equal"]


def _distance_table(a: str, b: str) -> list[list[int]]:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        table[i][0] = i
    for j in range(len(b) + 1):
        table[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            best = min(
                table[i - 1][j] + 1,
                table[i][j - 1] + 1,
                table[i - 1][j - 1] + (a[i - 1] != b[j - 1]),
            )
            if _transposed(a, b, i, j):
                best = min(best, table[i - 2][j - 2] + 1)
            table[i][j] = best
    return table


def _transposed(a: str, b: str, i: int, j: int) -> bool:
    return (
        i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1] and a[i - 1] != a[i - 2]
    )


def _backtrack_step(
    cost: list[list[int]], a: str, b: str, i: int, j: int
) -> tuple[CharDiff, int, int]:
    here = cost[i][j]
    if i > 0 and j > 0 and a[i - 1] == b[j - 1] and cost[i - 1][j - 1] == here:
        return CharDiff(op="equal", position=i - 1, expected=a[i - 1], read=b[j - 1]), i - 1, j - 1
    if i > 0 and j > 0 and cost[i - 1][j - 1] + 1 == here:
        return (
            CharDiff(op="substitute", position=i - 1, expected=a[i - 1], read=b[j - 1]),
            i - 1,
            j - 1,
        )
    if _transposed(a, b, i, j) and cost[i - 2][j - 2] + 1 == here:
        entry = CharDiff(op="transpose", position=i - 2, expected=a[i - 2 : i], read=b[j - 2 : j])
        return entry, i - 2, j - 2
    if i > 0 and cost[i - 1][j] + 1 == here:
        return CharDiff(op="delete", position=i - 1, expected=a[i - 1], read=""), i - 1, j
    return CharDiff(op="insert", position=i, expected="", read=b[j - 1]), i, j - 1
