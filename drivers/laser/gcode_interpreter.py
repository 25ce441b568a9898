"""A tiny G-code interpreter: enough of GRBL's laser dialect to replay a program as burns.

It understands what :mod:`drivers.laser.gcode` writes and what a hand-written test program
needs: ``G0``/``G1``, ``X``/``Y``, ``S``, ``F``, ``M3``/``M4``/``M5``, ``G20``/``G21``,
``G90``/``G91``, comments in ``( )`` or after ``;``. ``$`` and ``%`` lines, dwell and other
words that move nothing are skipped; arcs raise, so a program we cannot draw is never drawn
wrong. Feed is ignored: scaling power with the actual speed (``M4``) is the simulator's job,
here a ``G1`` burns at ``S / max_s``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

_WORD = re.compile(r"([A-Z])\s*([-+]?(?:\d+\.?\d*|\.\d+))")
_COMMENT = re.compile(r"\([^)]*\)|;.*$")
_MM_PER_INCH = 25.4


class SegmentBurner(Protocol):
    """Anything that can burn a straight segment (e.g. :class:`drivers.laser.burn.BurnCanvas`)."""

    def burn_segment(
        self, x0: float, y0: float, x1: float, y1: float, *, power_fraction: float
    ) -> None: ...


@dataclass(slots=True)
class _State:
    x: float = 0.0
    y: float = 0.0
    motion: int = 0  # GRBL powers up in G0
    absolute: bool = True
    mm_per_unit: float = 1.0
    spindle_s: float = 0.0
    laser_on: bool = False


def render_gcode(lines: Iterable[str], canvas: SegmentBurner, *, max_s: int = 1000) -> int:
    """Burn every lasing ``G1`` of ``lines`` onto ``canvas``; return how many segments burned."""
    state = _State()
    burned = 0
    for number, raw in enumerate(lines, start=1):
        line = _COMMENT.sub("", raw).strip().upper()
        if not line or line[0] in "$%":
            continue
        words = [(letter, float(value)) for letter, value in _WORD.findall(line)]
        start = (state.x, state.y)
        moved = _apply(words, state, number)
        lasing = state.motion == 1 and state.laser_on and state.spindle_s > 0
        if moved and lasing and start != (state.x, state.y):
            power = min(state.spindle_s / max_s, 1.0)
            canvas.burn_segment(*start, state.x, state.y, power_fraction=power)
            burned += 1
    return burned


def _apply(words: list[tuple[str, float]], state: _State, number: int) -> bool:
    """Update ``state`` from one line's words; True when the line moves the head."""
    target: dict[str, float] = {}
    for letter, value in words:
        if letter == "G":
            _modal_g(value, state, number)
        elif letter == "M":
            _modal_m(value, state)
        elif letter == "S":
            state.spindle_s = value
        elif letter in "XY":
            target[letter] = value * state.mm_per_unit
    if not target:
        return False
    if state.absolute:
        state.x = target.get("X", state.x)
        state.y = target.get("Y", state.y)
    else:
        state.x += target.get("X", 0.0)
        state.y += target.get("Y", 0.0)
    return True


def _modal_g(code: float, state: _State, number: int) -> None:
    if code in (0, 1):
        state.motion = int(code)
    elif code in (2, 3):
        raise ValueError(f"line {number}: arcs (G{int(code)}) are not supported")
    elif code in (20, 21):
        state.mm_per_unit = _MM_PER_INCH if code == 20 else 1.0
    elif code in (90, 91):
        state.absolute = code == 90


def _modal_m(code: float, state: _State) -> None:
    if code in (3, 4):
        state.laser_on = True
    elif code in (2, 5, 30):  # program end switches the laser off too
        state.laser_on = False
