"""The scale family's public face: stable readings, zero, tare, identity, grams and carats.

Behaviour lives here (python-can's ``BusABC`` idea); backends implement small hooks:
:meth:`Scale._connect`, :meth:`Scale._disconnect`, :meth:`Scale._identify`,
:meth:`Scale._read_stable`, :meth:`Scale._read_now`, :meth:`Scale._zero`, :meth:`Scale._tare`.

A weight delta before and after a service is the evidence that a stone was lost, so only
readings the balance flags as stable count (:meth:`Scale.read_stable`), values are
:class:`~decimal.Decimal` (never floats), and a scale that comes back after an unplug must
prove it is the same balance (same serial number) before its readings are trusted again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import abstractmethod
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

from drivers.base import Device
from drivers.errors import DeviceError, DeviceProtocolError, DeviceUnavailableError
from drivers.telemetry import MetricSpec, Scalar

log = logging.getLogger(__name__)

GRAMS_PER_CARAT = Decimal("0.2")  # the metric carat, exact by definition (1907)
DEFAULT_COMMAND_WITHIN_S = 10.0


class Unit(StrEnum):
    """The units a jewelry scale reports in; others are converted by the parsers or refused."""

    GRAM = "g"
    CARAT = "ct"


@dataclass(frozen=True, slots=True)
class Weight:
    """One reading. ``raw`` keeps the line the balance sent (evidence, not compared)."""

    value: Decimal
    unit: Unit
    stable: bool
    raw: str = field(default="", compare=False)

    @property
    def grams(self) -> Decimal:
        return self.value * GRAMS_PER_CARAT if self.unit is Unit.CARAT else self.value

    @property
    def carats(self) -> Decimal:
        return self.value if self.unit is Unit.CARAT else self.value / GRAMS_PER_CARAT

    def to(self, unit: Unit) -> Weight:
        """The same reading in ``unit`` (exact: 1 ct = 0.2 g)."""
        if unit is self.unit:
            return self
        value = self.grams if unit is Unit.GRAM else self.carats
        return Weight(value, unit, self.stable, self.raw)

    def __str__(self) -> str:
        return f"{self.value} {self.unit.value}{'' if self.stable else ' (dynamic)'}"


@dataclass(frozen=True, slots=True)
class ScaleIdentity:
    """Who the balance says it is; the serial number is what re-identification compares."""

    serial_number: str
    model: str


class ScaleState(StrEnum):
    CLOSED = "closed"
    READY = "ready"
    DISCONNECTED = "disconnected"  # unplugged or failed; the next call tries to reconnect
    WRONG_DEVICE = "wrong_device"  # a different balance answered on our port


class WrongScaleError(DeviceUnavailableError):
    """A balance answered, but not ours (another serial number): never trust its readings.

    Not retryable: waiting will not turn it into our scale; a person has to look.
    """

    retryable = False


class Scale(Device):
    """A precision balance. Options every backend understands:

    ``unit`` (``"g"`` or ``"ct"``, default ``"g"``): the unit readings are returned in;
    ``serial_number``: the balance that must answer (else the first one seen is pinned).
    """

    family: ClassVar[str] = "scale"
    METRICS: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("weight", "", "gauge", "the current reading, in the unit metric `unit` names"),
        MetricSpec("stable", "", "flag", "the balance flags the reading as stable"),
        MetricSpec("unit", "", "state", "g or ct"),
    )

    def __init__(self, name: str, url: str | None, options: Mapping[str, Any]) -> None:
        super().__init__(name, url, options)
        self.unit = Unit(self.options.get("unit", Unit.GRAM.value))
        pinned = self.options.get("serial_number")
        self.expected_serial: str | None = str(pinned) if pinned is not None else None
        self.identity: ScaleIdentity | None = None
        self.state = ScaleState.CLOSED
        self.last_weight: Weight | None = None
        # One exchange on the line at a time: telemetry's reading waits for a job's, never
        # interleaves with it.
        self._line_lock = asyncio.Lock()

    @property
    def model(self) -> str:
        return self.identity.model if self.identity else ""

    # ---- public behaviour -------------------------------------------------------------------

    async def open(self) -> None:
        await self._connect_and_identify()

    async def close(self) -> None:
        await self._disconnect()
        self.state = ScaleState.CLOSED

    async def read_stable(self, within: float) -> Weight:
        """A reading the balance flags as stable; :class:`DeviceTimeoutError` if none comes
        ``within`` seconds (the scale never settled)."""
        async with self._session("read_stable"):
            weight = await self._read_stable(within)
        self.last_weight = weight
        if not weight.stable:
            raise DeviceProtocolError(f"scale {self.name!r}: backend returned a dynamic reading")
        log.debug("scale %s: stable %s", self.name, weight)
        return weight.to(self.unit)

    async def read_now(self) -> Weight:
        """The current reading, stable or not (check :attr:`Weight.stable`)."""
        async with self._session("read_now"):
            weight = await self._read_now()
        self.last_weight = weight
        return weight.to(self.unit)

    async def sample(self) -> dict[str, Scalar]:
        """Telemetry (``METRICS``): a fresh reading when the line is free, else the last one
        (a job that is weighing is never made to wait for telemetry)."""
        weight = self.last_weight
        if not self._line_lock.locked():
            weight = await self.read_now()
        if weight is None:
            return {}
        weight = weight.to(self.unit)
        return {"weight": float(weight.value), "stable": weight.stable, "unit": weight.unit.value}

    async def zero(self, within: float = DEFAULT_COMMAND_WITHIN_S) -> None:
        """Set zero (the balance waits for stability; it also clears the tare)."""
        async with self._session("zero"):
            await self._zero(within)
        log.info("scale %s: zeroed", self.name)

    async def tare(self, within: float = DEFAULT_COMMAND_WITHIN_S) -> Weight:
        """Tare what is on the pan; returns the tare weight."""
        async with self._session("tare"):
            tare = await self._tare(within)
        log.info("scale %s: tared %s", self.name, tare)
        return tare.to(self.unit)

    async def config_drift(self) -> list[str]:
        """Model, capacity and calibration date against ``firmware_configs/scale/<config>``
        (option ``config``); a scale's settings are set on the balance, never written by us."""
        from drivers.scale.config import load_scale_config  # the config imports this module

        name = self.options.get("config")
        if not name or self.identity is None:
            return []
        return load_scale_config(str(name)).drift(self.identity, date.today())

    async def identify(self) -> ScaleIdentity:
        """Ask the balance who it is, again (refused if it is not the scale we opened)."""
        async with self._session("identify"):
            identity = await self._identify()
        self._check_same_scale(identity)
        return identity

    async def reconnect(self, within: float) -> ScaleIdentity:
        """Reopen the port (the same URL, e.g. a by-id symlink) with backoff until ``within``
        runs out, and re-identify; :class:`WrongScaleError` if another balance answers."""
        deadline = time.monotonic() + within
        delay = 0.05
        while True:
            try:
                await self._disconnect()
                await self._connect_and_identify()
            except WrongScaleError:
                raise
            except DeviceError:
                if time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
            else:
                assert self.identity is not None  # set by _connect_and_identify
                return self.identity

    # ---- plumbing ---------------------------------------------------------------------------

    @asynccontextmanager
    async def _session(self, action: str) -> AsyncIterator[None]:
        """Reconnect once if needed, run one action, and translate every failure."""
        if self.state is ScaleState.WRONG_DEVICE:
            raise WrongScaleError(f"scale {self.name!r}: refused, a different balance answered")
        async with self._line_lock, self._one_action(action):
            yield

    @asynccontextmanager
    async def _one_action(self, action: str) -> AsyncIterator[None]:
        if self.state is not ScaleState.READY:
            await self._connect_and_identify()
        try:
            yield
        except DeviceUnavailableError:
            log.warning("scale %s: lost during %s", self.name, action)
            await self._disconnect()
            self.state = ScaleState.DISCONNECTED
            raise
        except DeviceError:
            raise
        except Exception as err:
            # A backend bug must reach the job as a device failure, not as a crash.
            raise DeviceError(f"scale {self.name!r}: unexpected {type(err).__name__}") from err

    async def _connect_and_identify(self) -> None:
        try:
            await self._connect()
            identity = await self._identify()
        except DeviceError:
            await self._disconnect()
            self.state = ScaleState.DISCONNECTED
            raise
        try:
            self._check_same_scale(identity)
        except WrongScaleError:
            await self._disconnect()
            raise
        self.identity = identity
        self.state = ScaleState.READY
        log.info("scale %s: %s serial %s ready", self.name, identity.model, identity.serial_number)

    def _check_same_scale(self, identity: ScaleIdentity) -> None:
        expected = self.expected_serial or (self.identity and self.identity.serial_number)
        if expected and identity.serial_number != expected:
            self.state = ScaleState.WRONG_DEVICE
            raise WrongScaleError(
                f"scale {self.name!r} at {self.url}: serial number {identity.serial_number!r} "
                f"answered, expected {expected!r}; not the same scale, refusing its readings"
            )

    # ---- hooks ------------------------------------------------------------------------------

    async def _connect(self) -> None:
        """Open the transport."""

    async def _disconnect(self) -> None:
        """Close the transport; safe to call when already closed."""

    @abstractmethod
    async def _identify(self) -> ScaleIdentity:
        """Handshake: prove the device speaks our protocol and say who it is."""

    @abstractmethod
    async def _read_stable(self, within: float) -> Weight:
        """A stable reading within ``within`` seconds, else :class:`DeviceTimeoutError`."""

    @abstractmethod
    async def _read_now(self) -> Weight:
        """The current reading, stable or dynamic."""

    @abstractmethod
    async def _zero(self, within: float) -> None:
        """Zero the balance."""

    @abstractmethod
    async def _tare(self, within: float) -> Weight:
        """Tare the balance and return the tare weight."""
