"""The motion side of the GRBL simulator: parse a G-code block like GRBL would, plan it, run it.

Deliberately small: straight moves at their nominal rate (no acceleration), ``G4`` dwell,
``M3``/``M4``/``M5``, ``S``, ``F``, ``G20/21``, ``G90/91``. What it refuses, it refuses with the
GRBL error code a real controller would give, so the driver's ``$C`` preflight is exercised.
Laser physics that matter for safety are kept: the beam fires only on ``G1`` with ``M3``/``M4``
and ``S>0`` in laser mode (``$32=1``); with ``$32=0`` the "spindle" also stays on during ``G0``.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass

MAX_LINE = 80
_WORD = re.compile(r"([A-Z])([-+]?(?:\d+\.?\d*|\.\d+))")
_COMMENT = re.compile(r"\([^)]*\)|;.*$")
_MOTION_G = {0.0, 1.0}
_MODAL_G = {4.0, 17.0, 20.0, 21.0, 54.0, 90.0, 91.0, 94.0}
_KNOWN_M = {2.0, 3.0, 4.0, 5.0, 7.0, 8.0, 9.0, 30.0}
_VALUE_LETTERS = set("XYZFSPN")


class GcodeError(Exception):
    """A block GRBL refuses; ``code`` is the ``error:N`` it answers."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, slots=True)
class Block:
    """One planned move (or dwell): where from and to, how long, and the laser power."""

    start: tuple[float, float, float]
    end: tuple[float, float, float]
    seconds: float
    feed: float
    power: float  # 0..1 of full PWM while this block runs; 0 means dark


@dataclass(slots=True)
class Modal:
    motion: float = 0.0
    absolute: bool = True
    mm_per_unit: float = 1.0
    spindle: float = 5.0  # M5
    s: float = 0.0
    feed: float = 0.0


class Machine:
    """Machine state and the planner queue; ``settings`` is the live ``$N`` table."""

    def __init__(self, settings: dict[int, float], *, blocks: int = 15) -> None:
        self.settings = settings
        self.capacity = blocks
        self.planner: deque[Block] = deque()
        self.position = (0.0, 0.0, 0.0)  # where the last planned block ends
        self.modal = Modal()
        self.head_elapsed = 0.0

    def reset(self) -> None:
        """Soft reset: planner flushed, modal state back to power-up (position is kept)."""
        self.planner.clear()
        self.head_elapsed = 0.0
        self.modal = Modal()
        self.position = self.current_position()

    @property
    def room(self) -> bool:
        return len(self.planner) < self.capacity

    def parse(self, line: str) -> list[tuple[str, float]]:
        """The block's words, or :class:`GcodeError` with GRBL's code."""
        if len(line) > MAX_LINE:
            raise GcodeError(11)
        text = _COMMENT.sub("", line).upper().replace(" ", "")
        words = [(letter, float(value)) for letter, value in _WORD.findall(text)]
        if "".join(f"{m[0]}{m[1]}" for m in _WORD.findall(text)) != text:
            raise GcodeError(1 if text[:1].isdigit() or not text[:1].isalpha() else 2)
        letters = [letter for letter, _ in words if letter not in {"G", "M"}]
        if len(letters) != len(set(letters)):
            raise GcodeError(25)
        for letter, value in words:
            self._check_word(letter, value)
        if sum(1 for letter, value in words if letter == "G" and value in _MOTION_G) > 1:
            raise GcodeError(21)
        return words

    def _check_word(self, letter: str, value: float) -> None:
        if letter == "G" and value not in _MOTION_G | _MODAL_G:
            raise GcodeError(20)
        if letter == "M" and value not in _KNOWN_M:
            raise GcodeError(20)
        if letter not in "GM" and letter not in _VALUE_LETTERS:
            raise GcodeError(20)
        if letter in "FSP" and value < 0:
            raise GcodeError(4)

    def plan(self, words: list[tuple[str, float]]) -> Block | None:
        """Apply one parsed block; the move or dwell it makes (``None`` for modal-only)."""
        modal, target, dwell = self.modal, {}, None
        for letter, value in words:
            if letter == "G":
                self._apply_g(value)
            elif letter == "M":
                self._apply_m(value)
            elif letter == "S":
                modal.s = min(value, self.settings.get(30, 1000.0))
            elif letter == "F":
                modal.feed = value * modal.mm_per_unit
            elif letter == "P" and ("G", 4.0) in words:
                dwell = value
            elif letter in "XYZ":
                target[letter] = value * modal.mm_per_unit
        if dwell is not None:
            return Block(self.position, self.position, dwell, 0.0, 0.0)
        return self._move(target) if target else None

    def _apply_g(self, value: float) -> None:
        modal = self.modal
        if value in _MOTION_G:
            modal.motion = value
        elif value in (20.0, 21.0):
            modal.mm_per_unit = 25.4 if value == 20.0 else 1.0
        elif value in (90.0, 91.0):
            modal.absolute = value == 90.0

    def _apply_m(self, value: float) -> None:
        if value in (3.0, 4.0, 5.0):
            self.modal.spindle = value
        elif value in (2.0, 30.0):
            self.modal = Modal()

    def _move(self, target: dict[str, float]) -> Block:
        modal = self.modal
        if modal.motion == 1.0 and modal.feed <= 0:
            raise GcodeError(22)
        axes = "XYZ"
        end = tuple(
            (target[a] if modal.absolute else p + target[a]) if a in target else p
            for a, p in zip(axes, self.position, strict=True)
        )
        rapid = min(self.settings.get(110, 500.0), self.settings.get(111, 500.0))
        rate = rapid if modal.motion == 0.0 else min(modal.feed, rapid)
        seconds = math.dist(self.position, end) / rate * 60.0
        block = Block(self.position, (end[0], end[1], end[2]), seconds, rate, self._power())
        self.position = block.end
        return block

    def _power(self) -> float:
        modal = self.modal
        lasing = modal.spindle in (3.0, 4.0) and modal.s > 0
        laser_mode = self.settings.get(32, 0.0) == 1.0
        if not lasing or (laser_mode and modal.motion == 0.0):
            return 0.0
        return modal.s / max(self.settings.get(30, 1000.0), 1.0)

    def current_position(self) -> tuple[float, float, float]:
        """Where the head is now (interpolated inside the running block)."""
        if not self.planner:
            return self.position
        head = self.planner[0]
        share = min(self.head_elapsed / head.seconds, 1.0) if head.seconds > 0 else 1.0
        return (
            head.start[0] + (head.end[0] - head.start[0]) * share,
            head.start[1] + (head.end[1] - head.start[1]) * share,
            head.start[2] + (head.end[2] - head.start[2]) * share,
        )

    def advance(self, seconds: float) -> list[Block]:
        """Run the planner for ``seconds`` of machine time; the blocks that finished."""
        done: list[Block] = []
        budget = seconds
        while self.planner:
            head = self.planner[0]
            left = head.seconds - self.head_elapsed
            if left > budget:
                self.head_elapsed += budget
                break
            budget -= left
            done.append(self.planner.popleft())
            self.head_elapsed = 0.0
        return done
