"""Engraving texts and the near-miss edits of the verification benchmark (pure string logic).

An edit must change the engraving PHYSICALLY: a swap between font twins (futural draws "I" and
"l" alike) engraves the same strokes, a character the font cannot draw cannot be engraved, and a
case flip of "o" or "s" changes only the size. Such edits are skipped, and the caller draws
another position or text, so every negative in the set is a real, visible mistake.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

EditKind = Literal[
    "substitution",
    "deletion",
    "insertion",
    "transposition",
    "case",
    "space_missing",
    "space_extra",
]
EDIT_KINDS: tuple[EditKind, ...] = get_args(EditKind)

# Letters whose upper and lower case share a shape (only the size differs): a case flip of these
# is not a near miss anyone could be asked to see on a photo.
SAME_SHAPE_CASE = frozenset("cosuvwxzCOSUVWXZ")

# Look-alike substitutions first: what a tired operator (or an OCR engine) confuses.
_LOOKALIKES: dict[str, str] = {
    "a": "oe", "e": "co", "o": "ae", "n": "mh", "m": "nw", "u": "vn", "r": "n", "h": "bn",
    "i": "j", "l": "t", "t": "f", "c": "e", "s": "z", "y": "v", "b": "h", "d": "b",
    "A": "R", "E": "F", "F": "E", "O": "Q", "M": "N", "N": "M", "R": "P", "P": "R",
    "B": "R", "C": "G", "G": "C", "D": "O", "J": "I", "K": "X", "L": "I", "H": "N",
    "1": "7", "2": "3", "3": "8", "5": "6", "6": "8", "7": "1", "8": "3", "9": "0", "0": "9",
    ".": ",", ",": ".", "&": "8",
}  # fmt: skip

FIRST_NAMES = (
    "Anna", "Jonas", "Marie", "Lukas", "Sophie", "Elias", "Emma", "Noah", "Mia", "Ben",
    "Clara", "Felix", "Lea", "Paul", "Hannah", "Leon", "Julia", "Max", "Greta", "Oskar",
    "Isabella", "Matthew", "Olivia", "Henry", "Charlotte", "James", "Amelia", "Luca",
    "Zoe", "Kai", "Yusuf", "Aylin", "Nora", "Theo", "Ida", "Milo", "Rosa", "Jakob",
)  # fmt: skip
PHRASES = (
    "Forever Yours", "Love, Mom", "Always & Forever", "My Love", "Love you, Dad",
    "To the moon & back", "Just Married", "Best Friends", "Yours, always", "Be mine",
    "Hold on", "Carpe Diem", "Amor Vincit", "Thank you, Oma", "Ever thine",
    "Love, Grandpa", "With love", "Never apart", "Stay wild", "Here we go",
)  # fmt: skip


def realistic_text(rng: random.Random) -> str:
    """One engraving text: names, initials with "&", dates, short phrases, mixed forms."""
    shape = rng.choices(range(7), weights=(2, 2, 1, 1, 1, 1, 3))[0]
    name, other = rng.sample(FIRST_NAMES, 2)
    if shape == 0:
        return name
    if shape == 1:
        return f"{name} & {other}"
    if shape == 2:
        return f"{name[0]} & {other[0]}"
    if shape == 3:
        return _date(rng)
    if shape == 4:
        return f"{name[0]} & {other[0]} {_date(rng)}"
    if shape == 5:
        return f"{name} {_date(rng)}"
    return rng.choice(PHRASES)


def _date(rng: random.Random) -> str:
    return f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.{rng.randint(1990, 2030)}"


@dataclass(frozen=True, slots=True)
class GlyphRules:
    """What a font can engrave and which characters it draws identically."""

    can_render: Callable[[str], bool]
    twins: frozenset[frozenset[str]]

    def same_glyph(self, a: str, b: str) -> bool:
        """True when ``a`` and ``b`` engrave identically (equal, or font twins)."""
        return a == b or any(a in group and b in group for group in self.twins)


def apply_edit(text: str, kind: EditKind, rng: random.Random, rules: GlyphRules) -> str | None:
    """``text`` with one physically visible ``kind`` edit, or None when none is possible."""
    return _EDITORS[kind](text, rng, rules)


def _positions(text: str, wanted: Callable[[int], bool], rng: random.Random) -> list[int]:
    found = [index for index in range(len(text)) if wanted(index)]
    rng.shuffle(found)
    return found


def _substitute(text: str, rng: random.Random, rules: GlyphRules) -> str | None:
    for index in _positions(text, lambda i: text[i] != " ", rng):
        char = text[index]
        pool = _LOOKALIKES.get(char, "") + _same_class_letters(char, rng)
        for new in pool:
            if new == char.swapcase() or rules.same_glyph(char, new) or not rules.can_render(new):
                continue  # a case flip is the "case" edit; twins engrave the same strokes
            return text[:index] + new + text[index + 1 :]
    return None


def _same_class_letters(char: str, rng: random.Random) -> str:
    if char.isdigit():
        pool = list("0123456789")
    elif char.isupper():
        pool = list("ABDEFGHKLMNPRT")
    else:
        pool = list("abdeghkmnprt")
    rng.shuffle(pool)
    return "".join(pool)


def _delete(text: str, rng: random.Random, rules: GlyphRules) -> str | None:
    for index in _positions(text, lambda i: text[i] != " ", rng):
        edited = text[:index] + text[index + 1 :]
        if _well_spaced(edited) and edited.replace(" ", ""):
            return edited
    return None


def _insert(text: str, rng: random.Random, rules: GlyphRules) -> str | None:
    # Doubling a neighbour ("Anna" -> "Annna") is the classic slip; a look-alike otherwise.
    for index in _positions(text, lambda i: text[i] != " ", rng):
        char = text[index]
        new = char if rng.random() < 0.6 else _LOOKALIKES.get(char, char)[0]
        if rules.can_render(new):
            return text[: index + 1] + new + text[index + 1 :]
    return None


def _transpose(text: str, rng: random.Random, rules: GlyphRules) -> str | None:
    def swappable(i: int) -> bool:
        a, b = text[i], text[i + 1] if i + 1 < len(text) else " "
        return " " not in (a, b) and not rules.same_glyph(a, b)

    for index in _positions(text, swappable, rng):
        return text[:index] + text[index + 1] + text[index] + text[index + 2 :]
    return None


def _flip_case(text: str, rng: random.Random, rules: GlyphRules) -> str | None:
    def visible(i: int) -> bool:
        char = text[i]
        return (
            char.isalpha()
            and char not in SAME_SHAPE_CASE
            and rules.can_render(char.swapcase())
            and not rules.same_glyph(char, char.swapcase())
        )

    for index in _positions(text, visible, rng):
        return text[:index] + text[index].swapcase() + text[index + 1 :]
    return None


def _drop_space(text: str, rng: random.Random, rules: GlyphRules) -> str | None:
    for index in _positions(text, lambda i: text[i] == " ", rng):
        return text[:index] + text[index + 1 :]
    return None


def _add_space(text: str, rng: random.Random, rules: GlyphRules) -> str | None:
    def inside_word(i: int) -> bool:  # between two inked characters: a new, visible gap
        return 0 < i < len(text) and text[i - 1] != " " and text[i] != " "

    for index in _positions(text, inside_word, rng):
        return text[:index] + " " + text[index:]
    return None


def _well_spaced(text: str) -> bool:
    return text == text.strip(" ") and "  " not in text


_EDITORS: dict[EditKind, Callable[[str, random.Random, GlyphRules], str | None]] = {
    "substitution": _substitute,
    "deletion": _delete,
    "insertion": _insert,
    "transposition": _transpose,
    "case": _flip_case,
    "space_missing": _drop_space,
    "space_extra": _add_space,
}
