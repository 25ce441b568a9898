"""Balances that stream readings: A&D continuous output and Ohaus ``CP`` (continuous print).

A&D lines (GX/GF/FX-i "A&D standard format"): ``ST,+0012.345  g`` -- a two-letter header
(``ST`` stable, ``US`` unstable, ``OL`` out of range, ``QT`` counting), a comma, a signed
zero-padded number, the unit right-aligned in three characters. ``EC,E01`` style lines report a
command error. Ohaus lines: ``     192.21 g`` right-justified, with a trailing ``?`` when
unstable; ``ES`` answers an invalid command.

A background task reads every line and keeps only the latest; :meth:`read_stable` waits for a
*fresh* stable line (one that arrived after the call), so a reading taken before the item was
placed is never returned. Unreadable lines are skipped; if nothing readable arrives the error
says so instead of "never settled".

The stream carries no identity, so ``serial_number`` and ``model`` come from the options (a
declared identity: after a replug this backend cannot tell another balance from ours).
Zero and tare send ``Z``/``T`` (both makers accept them) and are confirmed by the stream coming
back to zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from drivers.errors import (
    DeviceError,
    DeviceProtocolError,
    DeviceReportedError,
    DeviceTimeoutError,
    DeviceUnavailableError,
)
from drivers.scale.base import ScaleIdentity, Unit, Weight
from drivers.scale.serial_scale import SerialScale

log = logging.getLogger(__name__)

AD_LINE = re.compile(r"(?P<header>[A-Z]{2}),(?P<data>.*)")
AD_WEIGHT = re.compile(r"(?P<sign>[+-])(?P<number>\d+(?:\.\d+)?) *(?P<unit>[a-z]+)")
OHAUS_LINE = re.compile(
    r" *(?P<sign>-?) *(?P<number>\d+(?:\.\d+)?) +(?P<unit>[a-z]+) *(?P<q>\??) *"
)
TO_GRAMS = {"g": Decimal(1), "mg": Decimal("0.001"), "kg": Decimal(1000)}


def _weight(number: str, unit: str, stable: bool, raw: str) -> Weight:
    value = Decimal(number)
    if unit == Unit.CARAT.value:
        return Weight(value, Unit.CARAT, stable, raw)
    if unit not in TO_GRAMS:
        raise DeviceProtocolError(f"unit {unit!r} not supported (set the balance to g or ct)")
    return Weight(value * TO_GRAMS[unit], Unit.GRAM, stable, raw)


def _parse_ad(header: str, data: str, raw: str) -> Weight:
    if header == "OL":
        what = "underload" if data.lstrip().startswith("-") else "overload"
        raise DeviceReportedError(f"scale reports {what}: {raw!r}")
    if header == "EC":
        raise DeviceReportedError(f"scale reports command error {data.strip()!r}")
    if header == "QT":
        raise DeviceProtocolError(f"scale is in counting mode, not weighing: {raw!r}")
    match = AD_WEIGHT.fullmatch(data.strip())
    if header not in ("ST", "US") or match is None:
        raise DeviceProtocolError(f"unreadable A&D line: {raw!r}")
    number = match["sign"] + match["number"]
    return _weight(number, match["unit"], header == "ST", raw)


def parse_line(line: bytes) -> Weight:
    """One streamed line as a :class:`Weight`; every failure is a :class:`DeviceError`."""
    try:
        raw = line.decode("ascii").rstrip("\r\n")
    except UnicodeDecodeError as err:
        raise DeviceProtocolError(f"line is not ASCII: {line[:40]!r}") from err
    if not raw.isprintable():
        raise DeviceProtocolError(f"line has control characters: {raw[:40]!r}")
    if raw.strip() == "ES":
        raise DeviceProtocolError("scale answered ES: command not recognised")
    if ad := AD_LINE.fullmatch(raw):
        return _parse_ad(ad["header"], ad["data"], raw)
    if ohaus := OHAUS_LINE.fullmatch(raw):
        number = ohaus["sign"] + ohaus["number"]
        return _weight(number, ohaus["unit"], ohaus["q"] != "?", raw)
    raise DeviceProtocolError(f"unreadable line: {raw[:40]!r}")


def format_ad_line(weight: Weight, decimals: int) -> str:
    """A weight as an A&D balance streams it: ``ST,+0012.345  g``."""
    header = "ST" if weight.stable else "US"
    sign = "-" if weight.value < 0 else "+"
    number = f"{abs(weight.value):0{8}.{decimals}f}"
    return f"{header},{sign}{number}{weight.unit.value:>3}"


class ContinuousScale(SerialScale):
    """A balance that streams readings. Extra options: ``serial_number``, ``model`` (declared
    identity), ``zero_tolerance_g`` (how close to 0 counts as "back to zero", default 0)."""

    backend: ClassVar[str] = "continuous"

    def __init__(self, name: str, url: str | None, options: Mapping[str, Any]) -> None:
        super().__init__(name, url, options)
        self.zero_tolerance_g = Decimal(str(self.options.get("zero_tolerance_g", "0")))
        self._latest: asyncio.Queue[Weight | DeviceError] = asyncio.Queue(maxsize=1)
        self._reader: asyncio.Task[None] | None = None
        self._failure: DeviceUnavailableError | None = None

    async def _connect(self) -> None:
        await super()._connect()
        self._failure = None
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_forever(), name=f"scale-{self.name}")

    async def _disconnect(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        await super()._disconnect()

    async def _identify(self) -> ScaleIdentity:
        # Handshake: something readable arrives (a weight, or an out-of-range report).
        await self._next_line(
            time.monotonic() + self.reply_within_s, fresh=True, accept_errors=True
        )
        serial = self.expected_serial or str(self.options.get("serial_number", ""))
        return ScaleIdentity(serial_number=serial, model=str(self.options.get("model", "")))

    async def _read_stable(self, within: float) -> Weight:
        deadline = time.monotonic() + within
        weight = await self._next_line(deadline, fresh=True)
        while not weight.stable:
            try:
                weight = await self._next_line(deadline, fresh=False)
            except DeviceTimeoutError as err:
                raise DeviceTimeoutError(
                    f"scale {self.name!r} never settled within {within:.1f} s "
                    f"(last line: {weight.raw!r})"
                ) from err
        return weight

    async def _read_now(self) -> Weight:
        return await self._next_line(time.monotonic() + self.reply_within_s, fresh=True)

    async def _zero(self, within: float) -> None:
        await self._send("Z")
        await self._back_to_zero("Z", time.monotonic() + within)

    async def _tare(self, within: float) -> Weight:
        deadline = time.monotonic() + within
        before = await self._read_stable(within)
        await self._send("T")
        await self._back_to_zero("T", deadline)
        return before

    # ---- the stream -------------------------------------------------------------------------

    async def _back_to_zero(self, command: str, deadline: float) -> None:
        while True:
            try:
                weight = await self._next_line(deadline, fresh=False)
            except DeviceTimeoutError as err:
                raise DeviceTimeoutError(
                    f"scale {self.name!r} never settled at zero after {command}"
                ) from err
            if weight.stable and abs(weight.grams) <= self.zero_tolerance_g:
                return

    async def _next_line(
        self, deadline: float, *, fresh: bool, accept_errors: bool = False
    ) -> Weight:
        """The next reading to arrive before ``deadline`` (``fresh``: drop what is queued)."""
        if fresh:
            self._drop_queued()
        unreadable: DeviceProtocolError | None = None
        while True:
            if self._failure is not None:
                raise self._failure
            try:
                item = await asyncio.wait_for(
                    self._latest.get(), max(deadline - time.monotonic(), 0)
                )
            except TimeoutError as err:
                raise self._nothing_arrived(unreadable) from err
            if isinstance(item, Weight):
                return item
            if isinstance(item, DeviceReportedError) and accept_errors:
                return Weight(Decimal(0), Unit.GRAM, stable=False, raw=str(item))
            if isinstance(item, DeviceProtocolError):
                unreadable = item
                continue
            raise item

    def _nothing_arrived(self, unreadable: DeviceProtocolError | None) -> DeviceError:
        if unreadable is not None:
            return DeviceProtocolError(
                f"scale {self.name!r}: only unreadable lines arrived (last: {unreadable})"
            )
        return DeviceTimeoutError(f"scale {self.name!r}: no line arrived in time")

    def _drop_queued(self) -> None:
        with contextlib.suppress(asyncio.QueueEmpty):
            self._latest.get_nowait()

    def _keep_latest(self, item: Weight | DeviceError) -> None:
        self._drop_queued()
        self._latest.put_nowait(item)

    async def _read_forever(self) -> None:
        """Parse every line; keep only the newest (old readings are worthless)."""
        while True:
            try:
                line = await self.line.readline(within=3600)
                item: Weight | DeviceError = parse_line(line)
            except DeviceTimeoutError:
                continue
            except DeviceUnavailableError as err:
                self._failure = err
                self._keep_latest(err)  # wakes a waiting reader
                return
            except DeviceError as err:
                item = err
            self._keep_latest(item)
