"""GRBL 1.1 lines from the controller: responses, push messages and status reports.

Every line the controller sends is exactly one of: a *response* (``ok``/``error:N``, one per line
we sent, the only thing character counting counts) or a *push message* (``<status>``, the banner,
``ALARM:N``, ``$N=v``, ``[...]`` feedback, ``>startup:ok``). Anything else is not GRBL talking,
and :func:`parse_line` raises :class:`DeviceProtocolError` for it, whatever the bytes were.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from drivers.errors import DeviceProtocolError

Vector = tuple[float, ...]

STATES = ("Idle", "Run", "Hold", "Jog", "Alarm", "Door", "Check", "Home", "Sleep")
BANNER = re.compile(r"^(Grbl|GrblHAL) (\d+\.\d+[a-z]?) \[.*\]$")
_CODE = re.compile(r"^(error|ALARM):(\d{1,3})$")
_SETTING = re.compile(r"^\$(\d{1,3})=(\S*)$")
_STARTUP_LISTING = re.compile(r"^\$(N\d)=(.*)$")
_FEEDBACK = re.compile(r"^\[([A-Z][A-Z0-9]*):(.*)\]$")


@dataclass(frozen=True, slots=True)
class Ok:
    """A line was executed (or accepted into the planner)."""


@dataclass(frozen=True, slots=True)
class Error:
    """A line was refused; it will not run."""

    code: int


@dataclass(frozen=True, slots=True)
class Alarm:
    """The controller stopped and locked out G-code."""

    code: int


@dataclass(frozen=True, slots=True)
class Banner:
    """The controller (re)booted or was reset: position is unknown from here on."""

    firmware: str
    version: str


@dataclass(frozen=True, slots=True)
class Feedback:
    """``[MSG:...]``, ``[VER:...]``, ``[OPT:...]``, ``[GC:...]`` and friends."""

    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class Setting:
    """One ``$N=value`` line of a ``$$`` listing."""

    number: int
    value: str


@dataclass(frozen=True, slots=True)
class StartupLine:
    """``>G54G20:ok``: a startup line's result, on one line so hosts do not count it."""

    text: str


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A ``<...>`` report; optional fields are ``None`` when the report did not carry them."""

    state: str
    substate: int | None = None
    mpos: Vector | None = None
    wpos: Vector | None = None
    buffer: tuple[int, int] | None = None
    line: int | None = None
    feed: float | None = None
    speed: float | None = None
    pins: str | None = None
    wco: Vector | None = None
    overrides: tuple[int, int, int] | None = None
    accessories: str | None = None


Response = Ok | Error
Message = Ok | Error | Alarm | Banner | Feedback | Setting | StartupLine | StatusReport


def parse_line(raw: bytes) -> Message:
    """One line (without CR/LF) as a message; :class:`DeviceProtocolError` for non-GRBL bytes."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as err:
        raise DeviceProtocolError(f"non-ASCII reply from controller: {raw[:40]!r}") from err
    try:
        return _classify(text)
    except (ValueError, IndexError) as err:
        raise DeviceProtocolError(f"unparseable reply from controller: {raw[:40]!r}") from err


def _classify(text: str) -> Message:  # noqa: PLR0911 - one return per message kind
    if text == "ok":
        return Ok()
    if text.startswith("<") and text.endswith(">"):
        return parse_status(text)
    if match := _CODE.match(text):
        kind, code = match.group(1), int(match.group(2))
        return Error(code) if kind == "error" else Alarm(code)
    if match := BANNER.match(text):
        return Banner(match.group(1), match.group(2))
    if match := _FEEDBACK.match(text):
        return Feedback(match.group(1), match.group(2))
    if match := _STARTUP_LISTING.match(text):  # ``$N`` lists stored startup lines
        return Feedback(match.group(1), match.group(2))
    if match := _SETTING.match(text):
        return Setting(int(match.group(1)), match.group(2))
    if text.startswith(">") and text.endswith(":ok"):
        return StartupLine(text[1:-3])
    raise ValueError(text)


def parse_status(text: str) -> StatusReport:
    """``<Idle|MPos:0.000,0.000,0.000|FS:0,0>`` as a :class:`StatusReport`."""
    fields = text[1:-1].split("|")
    state, _, sub = fields[0].partition(":")
    if state not in STATES:
        raise ValueError(f"unknown state {state!r}")
    report = StatusReport(state=state, substate=int(sub) if sub else None)
    values: dict[str, Any] = {}
    for item in fields[1:]:
        name, sep, value = item.partition(":")
        if not sep or name in values:
            raise ValueError(f"bad status field {item!r}")
        values[name] = _FIELD_PARSERS.get(name, _unknown)(value)
    if "F" in values:
        values["FS"] = (values.pop("F"), None)
    feed_speed = values.pop("FS", None)
    return replace(
        report,
        **{_FIELD_NAMES[name]: value for name, value in values.items()},
        **_feed_fields(feed_speed),
    )


def _feed_fields(feed_speed: object) -> dict[str, Any]:
    if not isinstance(feed_speed, tuple):
        return {}
    return {"feed": feed_speed[0], "speed": feed_speed[1]}


def _floats(value: str) -> Vector:
    numbers = tuple(float(part) for part in value.split(","))
    if not numbers or not all(math.isfinite(n) for n in numbers):
        raise ValueError(value)
    return numbers


def _ints(count: int) -> Callable[[str], tuple[int, ...]]:
    def parse(value: str) -> tuple[int, ...]:
        numbers = tuple(int(part) for part in value.split(","))
        if len(numbers) != count:
            raise ValueError(value)
        return numbers

    return parse


def _feed_speed(value: str) -> tuple[float, float | None]:
    numbers = _floats(value)
    if len(numbers) != 2:
        raise ValueError(value)
    return numbers[0], numbers[1]


def _feed(value: str) -> float:
    (number,) = _floats(value)
    return number


def _letters(allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if any(char not in allowed for char in value):
            raise ValueError(value)
        return value

    return parse


def _unknown(value: str) -> str:
    raise ValueError(f"unknown status field value {value!r}")


_FIELD_PARSERS: dict[str, Callable[[str], Any]] = {
    "MPos": _floats,
    "WPos": _floats,
    "WCO": _floats,
    "Bf": _ints(2),
    "Ln": int,
    "FS": _feed_speed,
    "F": _feed,
    "Ov": _ints(3),
    "Pn": _letters("XYZABCPDHRS"),
    "A": _letters("SCFM"),
}
_FIELD_NAMES = {
    "MPos": "mpos",
    "WPos": "wpos",
    "WCO": "wco",
    "Bf": "buffer",
    "Ln": "line",
    "Ov": "overrides",
    "Pn": "pins",
    "A": "accessories",
}


def format_status(report: StatusReport) -> str:
    """The wire form of ``report`` (the simulator's writer; the parser's round-trip oracle)."""
    state = report.state if report.substate is None else f"{report.state}:{report.substate}"
    parts = [state]
    if report.mpos is not None:
        parts.append("MPos:" + _join(report.mpos))
    if report.wpos is not None:
        parts.append("WPos:" + _join(report.wpos))
    if report.buffer is not None:
        parts.append("Bf:{},{}".format(*report.buffer))
    if report.line is not None:
        parts.append(f"Ln:{report.line}")
    if report.feed is not None:
        speed = "" if report.speed is None else f",{report.speed:.0f}"
        parts.append(("FS:" if speed else "F:") + f"{report.feed:.0f}{speed}")
    if report.pins:
        parts.append(f"Pn:{report.pins}")
    if report.wco is not None:
        parts.append("WCO:" + _join(report.wco))
    if report.overrides is not None:
        parts.append("Ov:{},{},{}".format(*report.overrides))
    if report.accessories:
        parts.append(f"A:{report.accessories}")
    return "<" + "|".join(parts) + ">"


def _join(vector: Vector) -> str:
    return ",".join(f"{value:.3f}" for value in vector)


@dataclass
class StatusCache:
    """Fills the fields GRBL sends only now and then (``WCO``, ``Ov``, ``A``) from earlier reports.

    ``A:`` only ever comes with ``Ov:``, so an ``Ov`` without ``A`` means "all accessories off".
    """

    wco: Vector = (0.0, 0.0, 0.0)
    overrides: tuple[int, int, int] = (100, 100, 100)
    accessories: str = ""
    last: StatusReport | None = field(default=None)

    def update(self, report: StatusReport) -> StatusReport:
        """Remember what ``report`` carries; return it complete (both positions, cached fields)."""
        if report.wco is not None:
            self.wco = report.wco
        if report.overrides is not None:
            self.overrides = report.overrides
            self.accessories = report.accessories or ""
        mpos, wpos = report.mpos, report.wpos
        if mpos is not None and wpos is None:
            wpos = tuple(m - w for m, w in zip(mpos, self.wco, strict=False))
        elif wpos is not None and mpos is None:
            mpos = tuple(p + w for p, w in zip(wpos, self.wco, strict=False))
        full = replace(
            report,
            mpos=mpos,
            wpos=wpos,
            wco=self.wco,
            overrides=self.overrides,
            accessories=self.accessories,
        )
        self.last = full
        return full


def parse_options(text: str) -> tuple[str, int, int]:
    """``[OPT:V,15,128]``'s text ``V,15,128`` as (option letters, planner blocks, RX bytes)."""
    try:
        letters, blocks, rx = text.split(",")[:3]
        return letters, int(blocks), int(rx)
    except ValueError as err:
        raise DeviceProtocolError(f"unparseable build options {text!r}") from err
