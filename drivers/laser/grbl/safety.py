"""Laser-safe program rules, checked before anything is sent (research notes, §1 "Laser").

``M4`` only (dynamic power: off when the axes stand still; ``M3`` keeps a standing beam on),
burning only after ``M4`` with ``S>0``, no ``$`` commands or realtime characters inside a
program (``?`` in a comment would be taken as a status request), lines within GRBL's 80-byte
line buffer, and the beam off at the end: the last line is ``M5 S0``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MAX_LINE = 80
_WORD = re.compile(r"([A-Z])([-+]?(?:\d+\.?\d*|\.\d+))")
_COMMENT = re.compile(r"\([^)]*\)|;.*$")
_FORBIDDEN_CHARS = set("$?!~")


class UnsafeProgram(ValueError):
    """The program breaks a laser-safety rule; ``line`` is 1-based (0: the whole program)."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}" if line else reason)
        self.line = line
        self.reason = reason


def check_program(lines: Sequence[str]) -> None:
    """Raise :class:`UnsafeProgram` unless ``lines`` is a laser-safe GRBL program."""
    if not lines:
        raise UnsafeProgram(0, "empty program")
    spindle = 5.0
    for number, line in enumerate(lines, 1):
        _check_text(number, line)
        words = _words(line)
        codes = {value for letter, value in words if letter == "M"}
        if 3.0 in codes:
            raise UnsafeProgram(number, "M3 (constant power) fires while standing still; use M4")
        spindle = next((c for c in (4.0, 5.0) if c in codes), spindle)
        burning = any(letter == "G" and value in (1.0, 2.0, 3.0) for letter, value in words)
        if burning and spindle != 4.0 and _sets_power(words):
            raise UnsafeProgram(number, "burning move without M4")
    last = dict(_words(lines[-1]))
    if last.get("M") != 5.0 or last.get("S") != 0.0:
        raise UnsafeProgram(len(lines), "a program must end with M5 S0 (beam off)")


def _check_text(number: int, line: str) -> None:
    if len(line) > MAX_LINE:
        raise UnsafeProgram(number, f"longer than GRBL's {MAX_LINE}-character line buffer")
    if not line.isascii() or not line.isprintable():
        raise UnsafeProgram(number, "non-ASCII or control characters")
    if _FORBIDDEN_CHARS & set(line):
        raise UnsafeProgram(number, "'$' commands or realtime characters (?!~) in a program")


def _words(line: str) -> list[tuple[str, float]]:
    text = _COMMENT.sub("", line).upper().replace(" ", "")
    return [(letter, float(value)) for letter, value in _WORD.findall(text)]


def _sets_power(words: list[tuple[str, float]]) -> bool:
    """A burning move is only a problem when a non-zero S could be in force; be strict."""
    return not any(letter == "S" and value == 0 for letter, value in words)
