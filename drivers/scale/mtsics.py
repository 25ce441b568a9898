"""Mettler Toledo MT-SICS (level 0/1): ``@``, ``I2``, ``I4``, ``S``, ``SI``, ``Z``, ``T``.

Wire format: uppercase ASCII, fields separated by spaces, lines ending in CR LF. A reply starts
with the answering command's id and a status: ``S S 100.00 g`` (stable), ``S D`` (dynamic, only
from ``SI``), ``S I`` (not executable: busy, or the balance's own stability timeout ran out),
``S +``/``S -`` (overload/underload), ``Z A``, ``T S <tare> g``, ``I4 A "<serial>"``. ``ES``,
``ET`` and ``EL`` answer any command: syntax, transmission and logical errors.

After a timeout or an unreadable reply the driver sends ``@`` (cancel and reset; the balance
answers ``I4 A "<serial>"``) and reads until that answer, so no stale reply of a cancelled ``S``
can later be taken for the answer to the next command.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from drivers.errors import (
    DeviceError,
    DeviceProtocolError,
    DeviceReportedError,
    DeviceTimeoutError,
)
from drivers.scale.base import ScaleIdentity, Unit, Weight
from drivers.scale.serial_scale import SerialScale

log = logging.getLogger(__name__)

# Which reply id answers which command (``SI`` and ``S`` both answer with ``S``).
REPLY_ID = {"@": "I4", "I2": "I2", "I4": "I4", "S": "S", "SI": "S", "Z": "Z", "T": "T"}
GENERAL_ERRORS = {
    "ES": (DeviceProtocolError, "syntax error: the balance did not recognise the command"),
    "ET": (DeviceProtocolError, "transmission error: check baud rate, parity and cable"),
    "EL": (DeviceReportedError, "logical error: the command cannot run now"),
}
LIMIT_MEANING = {
    "S": ("overload: load above capacity", "underload: pan missing or load below zero"),
    "Z": ("zero range exceeded (too much on the pan)", "below the zero range"),
    "T": ("tare range exceeded", "below the tare range"),
}
NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
TOKEN = re.compile(r'"([^"]*)"|(\S+)')
UNIT_TO_GRAMS = {"g": Decimal(1), "mg": Decimal("0.001"), "kg": Decimal(1000)}
RECOVER_WITHIN_S = 1.0
BUSY_RETRY_S = 0.05


@dataclass(frozen=True, slots=True)
class Reply:
    """One parsed MT-SICS reply line."""

    id: str
    status: str
    fields: tuple[str, ...]
    raw: str


def parse_reply(line: bytes) -> Reply:
    """Split one reply line; :class:`DeviceProtocolError` when it is not MT-SICS."""
    try:
        text = line.decode("ascii").strip()
    except UnicodeDecodeError as err:
        raise DeviceProtocolError(f"MT-SICS reply is not ASCII: {line[:40]!r}") from err
    tokens = [quoted if quoted or bare == "" else bare for quoted, bare in TOKEN.findall(text)]
    if not tokens or not re.fullmatch(r"[A-Z][A-Z0-9]*", tokens[0]) or not text.isprintable():
        raise DeviceProtocolError(f"not an MT-SICS reply: {text[:40]!r}")
    status = tokens[1] if len(tokens) > 1 else ""
    return Reply(tokens[0], status, tuple(tokens[2:]), text)


def raise_for_error(reply: Reply) -> None:
    """Raise what an error or limit reply means; busy (``I``) is left to the caller."""
    if reply.id in GENERAL_ERRORS:
        error, meaning = GENERAL_ERRORS[reply.id]
        raise error(f"scale answered {reply.id}: {meaning}")
    if reply.status in ("+", "-"):
        over, under = LIMIT_MEANING.get(reply.id, ("upper limit", "lower limit"))
        raise DeviceReportedError(
            f"scale answered {reply.raw!r}: {over if reply.status == '+' else under}"
        )
    if reply.status == "L":
        raise DeviceReportedError(f"scale answered {reply.raw!r}: parameter not allowed")


def parse_weight(reply: Reply) -> Weight:
    """The weight in a ``S S``/``S D``/``T S`` reply, in grams or carats (exact)."""
    if reply.status not in ("S", "D") or len(reply.fields) != 2:
        raise DeviceProtocolError(f"not a weight reply: {reply.raw!r}")
    number, unit = reply.fields
    if not NUMBER.fullmatch(number):
        raise DeviceProtocolError(f"weight {number!r} is not a number in {reply.raw!r}")
    value = Decimal(number)
    stable = reply.status == "S"
    if unit == Unit.CARAT.value:
        return Weight(value, Unit.CARAT, stable, reply.raw)
    if unit not in UNIT_TO_GRAMS:
        raise DeviceProtocolError(f"unit {unit!r} not supported (set the balance to g or ct)")
    return Weight(value * UNIT_TO_GRAMS[unit], Unit.GRAM, stable, reply.raw)


def format_weight(reply_id: str, weight: Weight, decimals: int) -> str:
    """A weight reply as a balance sends it: ``S S     100.00 g`` (value right-aligned)."""
    number = f"{weight.value:.{decimals}f}"
    return f"{reply_id} {'S' if weight.stable else 'D'} {number:>10} {weight.unit.value}"


class MtSicsScale(SerialScale):
    """A Mettler Toledo balance speaking MT-SICS (see :mod:`drivers.scale.serial_scale` for
    the line options)."""

    backend: ClassVar[str] = "mtsics"

    async def _identify(self) -> ScaleIdentity:
        reset = await self._exchange("@", self.reply_within_s)  # clears a half-done command
        serial = self._single_field(reset)
        type_reply = await self._exchange("I2", self.reply_within_s, tolerate_errors=True)
        model = " ".join(type_reply.fields) if type_reply.status == "A" else ""
        return ScaleIdentity(serial_number=serial, model=model)

    async def _read_stable(self, within: float) -> Weight:
        reply = await self._until_executed("S", within)
        return parse_weight(reply)

    async def _read_now(self) -> Weight:
        reply = await self._exchange("SI", self.reply_within_s)
        if reply.status == "I":
            raise DeviceTimeoutError(f"scale {self.name!r} is busy (SI answered 'S I')")
        return parse_weight(reply)

    async def _zero(self, within: float) -> None:
        reply = await self._until_executed("Z", within)
        if reply.status != "A":
            raise DeviceProtocolError(f"unexpected answer to Z: {reply.raw!r}")

    async def _tare(self, within: float) -> Weight:
        return parse_weight(await self._until_executed("T", within))

    # ---- exchanges --------------------------------------------------------------------------

    async def _until_executed(self, command: str, within: float) -> Reply:
        """Send ``command`` until it is not answered ``I`` (busy/unstable) or time runs out."""
        deadline = time.monotonic() + within
        last = "no answer"
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                reply = await self._exchange(command, remaining)
            except DeviceTimeoutError:
                break
            if reply.status != "I":
                return reply
            last = reply.raw
            await asyncio.sleep(min(BUSY_RETRY_S, max(deadline - time.monotonic(), 0)))
        await self._recover()
        raise DeviceTimeoutError(
            f"scale {self.name!r} never settled: {command} not done within {within:.1f} s "
            f"(last answer: {last})"
        )

    async def _exchange(
        self, command: str, within: float, *, tolerate_errors: bool = False
    ) -> Reply:
        """Send one command and return its reply; unreadable replies reset the balance."""
        await self._send(command)
        try:
            reply = await self._reply_to(command, within)
        except DeviceProtocolError:
            await self._recover()
            raise
        if not tolerate_errors:
            raise_for_error(reply)
        return reply

    async def _reply_to(self, command: str, within: float) -> Reply:
        """Read until the reply to ``command`` (or a general error); skip stale replies."""
        deadline = time.monotonic() + within
        while True:
            remaining = max(deadline - time.monotonic(), 0.0)
            reply = parse_reply(await self.line.readline(remaining))
            if reply.id == REPLY_ID.get(command, command) or reply.id in GENERAL_ERRORS:
                return reply
            log.debug("scale %s: skipping stale reply %r", self.name, reply.raw)

    async def _recover(self) -> None:
        """Cancel whatever the balance is doing (``@``) and drain up to its answer."""
        try:
            await self._send("@")
            deadline = time.monotonic() + RECOVER_WITHIN_S
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    if parse_reply(await self.line.readline(remaining)).id == "I4":
                        return
                except DeviceProtocolError:
                    continue  # more garbage before the reset answer
        except DeviceError as err:
            # The caller raises the original error; a failed reset must not hide it.
            log.warning("scale %s: reset after error failed: %s", self.name, err)

    def _single_field(self, reply: Reply) -> str:
        if reply.status != "A" or len(reply.fields) != 1 or not reply.fields[0]:
            raise DeviceProtocolError(f"expected 'I4 A \"<serial>\"', got {reply.raw!r}")
        return reply.fields[0]
