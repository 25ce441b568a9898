"""Toolpath to GRBL 1.1 laser-mode G-code, deterministic so its SHA-256 is the job's evidence.

The program is laser-safe by construction: ``M4`` (dynamic power: GRBL scales the power with the
actual speed and switches it off when the axes stand still, so corners and accelerations do not
over-burn), travel only with ``G0`` (which never fires), burning only with ``G1``, and ``M5 S0``
as the last line. Numbers are written with at most 3 decimals and no trailing zeros, lines stay
under 70 characters (GRBL's ``LINE_BUFFER_SIZE`` is 80), and the hash covers the program text as
streamed: the lines joined with ``"\\n"`` plus a final ``"\\n"``.

Time estimate: every move at its nominal speed (``G1`` at the feed, ``G0`` at
``travel_mm_min``, which should be the machine's ``$110``/``$111`` rapid rate: GRBL ignores
``F`` on ``G0``). Acceleration and junction slow-downs are ignored, so the estimate is a lower
bound; Hershey text is many short segments, and real jobs take noticeably longer.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from drivers.laser.fonts import Point, Stroke
from drivers.laser.toolpath import Toolpath

MAX_LINE_CHARS = 70
GRBL_DEFAULT_MAX_S = 1000  # GRBL's $30 default: the S value mapped to full power
DEFAULT_TRAVEL_MM_MIN = 3000.0
HEADER = ("G21 G90", "M4 S0")
FOOTER = ("M5 S0",)


@dataclass(frozen=True, slots=True)
class GcodeProgram:
    """Lines to stream (no newlines), the SHA-256 of the program text, a time estimate."""

    lines: tuple[str, ...]
    sha256: str
    estimated_seconds: float

    @property
    def text(self) -> str:
        """The program exactly as hashed: one ``\\n`` after every line."""
        return program_text(self.lines)


def program_text(lines: Iterable[str]) -> str:
    """The bytes-to-be of a program: every line followed by ``\\n``."""
    return "".join(f"{line}\n" for line in lines)


def to_gcode(
    toolpath: Toolpath,
    *,
    power_s: int,
    feed_mm_min: float,
    travel_mm_min: float = DEFAULT_TRAVEL_MM_MIN,
    max_s: int = GRBL_DEFAULT_MAX_S,
) -> GcodeProgram:
    """The engraving program for ``toolpath`` at ``power_s`` (0..``max_s``, i.e. ``$30``)."""
    return _program(toolpath.strokes, power_s, feed_mm_min, travel_mm_min, max_s)


def frame_gcode(
    toolpath: Toolpath,
    *,
    power_s: int = 10,
    feed_mm_min: float = 3000.0,
    travel_mm_min: float = DEFAULT_TRAVEL_MM_MIN,
    max_s: int = GRBL_DEFAULT_MAX_S,
) -> GcodeProgram:
    """A trace of the toolpath's bounding box at low power, for the technician's frame pass.

    The default ``S10`` of 1000 under ``M4`` at a fast feed shows the diode's or the guide
    beam's spot without marking metal (LaserGRBL's frame button uses ``M4 S2``).
    """
    box = toolpath.bbox
    corners = ((box.x0, box.y0), (box.x1, box.y0), (box.x1, box.y1), (box.x0, box.y1))
    outline: Stroke = (*corners, corners[0])
    return _program((outline,), power_s, feed_mm_min, travel_mm_min, max_s)


def format_number(value: float) -> str:
    """``value`` with at most 3 decimals and no trailing zeros (``1.5``, ``2``, ``-0.125``)."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _program(
    strokes: Sequence[Stroke], power_s: int, feed: float, travel: float, max_s: int
) -> GcodeProgram:
    _check_settings(power_s, feed, travel, max_s)
    lines = list(HEADER)
    seconds = 0.0
    position: Point = (0.0, 0.0)
    first_burn = True
    for command, point in _moves(strokes):
        if command == "G0" and point == position:
            continue  # the next stroke starts where the last one ended
        distance = math.dist(position, point)
        position = point
        words = f"{command} X{format_number(point[0])} Y{format_number(point[1])}"
        if command == "G1" and first_burn:
            words += f" F{format_number(feed)} S{power_s}"  # both modal from here on
            first_burn = False
        seconds += distance / (feed if command == "G1" else travel) * 60.0
        lines.append(words)
    lines.extend(FOOTER)
    too_long = [line for line in lines if len(line) > MAX_LINE_CHARS]
    if too_long:  # only absurd coordinates get here; GRBL would answer error:11
        raise ValueError(f"G-code line over {MAX_LINE_CHARS} characters: {too_long[0]!r}")
    digest = hashlib.sha256(program_text(lines).encode("ascii")).hexdigest()
    return GcodeProgram(tuple(lines), digest, seconds)


def _moves(strokes: Sequence[Stroke]) -> Iterator[tuple[str, Point]]:
    """``("G0", start)`` then ``("G1", point)...`` per stroke, on the 0.001 mm output grid.

    Points that round onto the previous one are dropped, and so are strokes that collapse to a
    single point: a zero-length ``G1`` burns nothing under ``M4`` but costs a planner block.
    """
    for stroke in strokes:
        points = _dedupe(_snap(point) for point in stroke)
        if len(points) < 2:
            continue
        yield "G0", points[0]
        for point in points[1:]:
            yield "G1", point


def _snap(point: Point) -> Point:
    return (float(format_number(point[0])), float(format_number(point[1])))


def _dedupe(points: Iterable[Point]) -> list[Point]:
    kept: list[Point] = []
    for point in points:
        if not kept or kept[-1] != point:
            kept.append(point)
    return kept


def _check_settings(power_s: int, feed: float, travel: float, max_s: int) -> None:
    if isinstance(power_s, bool) or not isinstance(power_s, int) or not 0 <= power_s <= max_s:
        raise ValueError(f"power_s must be an integer in 0..{max_s}, got {power_s!r}")
    for name, value in (("feed_mm_min", feed), ("travel_mm_min", travel)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
