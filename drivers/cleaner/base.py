"""The cleaner family's public face: :class:`UltrasonicCleaner`.

A bench ultrasonic bath has no remote protocol, so a cleaner is relays (ultrasound, optional
heater and degas) plus a temperature probe. Everything that makes a run safe lives here, once,
for every backend: the gemstone gate, the phases, the thermostat, the over-temperature cutoff
and "every relay off" on the way out, whatever happened. Backends implement three hooks:
:meth:`_relay_names`, :meth:`_set_relay` (switch and verify) and :meth:`_read_temperature_c`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import abstractmethod
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from drivers.base import Device
from drivers.cleaner.gemstones import Stone, check_stones
from drivers.cleaner.program import (
    CleaningProgram,
    CleaningProgress,
    CleaningReport,
    Phase,
    ProgressCallback,
)
from drivers.errors import DeviceError, DeviceReportedError
from drivers.telemetry import MetricSpec, Scalar

log = logging.getLogger(__name__)

THERMOSTAT_HYSTERESIS_C = 1.0  # heater back on this far below target: no relay chatter
STOPPED = "stopped"
_T = TypeVar("_T")


class OverTemperatureError(DeviceReportedError):
    """The bath went above the program's ``max_temp_c``; every relay was switched off."""

    def __init__(self, message: str, report: CleaningReport) -> None:
        super().__init__(message)
        self.report = report


class _Stopped(Exception):
    """:meth:`UltrasonicCleaner.stop` was called during a run."""


@dataclass(slots=True)
class _Run:
    program: CleaningProgram
    progress: ProgressCallback | None
    start_temp_c: float
    started: float = field(default_factory=time.monotonic)
    last_temp_c: float = 0.0
    max_temp_c: float = -273.15
    ultrasound_s: float = 0.0
    target_reached: bool = False

    def report(self, aborted: str | None) -> CleaningReport:
        return CleaningReport(
            program=self.program.name,
            start_temp_c=self.start_temp_c,
            end_temp_c=self.last_temp_c,
            max_temp_c=self.max_temp_c,
            duration_s=round(time.monotonic() - self.started, 3),
            ultrasound_s=round(self.ultrasound_s, 3),
            target_reached=self.target_reached,
            aborted=aborted,
        )


class UltrasonicCleaner(Device):
    """An ultrasonic bath. Options: ``poll_s`` (temperature poll period, default 1.0 s)."""

    family: ClassVar[str] = "cleaner"
    METRICS: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("temperature_c", "°C", "gauge", "bath temperature"),
        MetricSpec("state", "", "state", "idle, or the running phase: degas, heat, clean"),
        MetricSpec("remaining_s", "s", "gauge", "time left in the running phase (0 when idle)"),
        MetricSpec("ultrasound", "", "flag", "ultrasound relay on"),
        MetricSpec("heater", "", "flag", "heater relay on"),
    )

    def __init__(self, name: str, url: str | None, options: Mapping[str, Any]) -> None:
        super().__init__(name, url, options)
        self.poll_s = float(self.options.get("poll_s", 1.0))
        self.progress_now: CleaningProgress | None = None  # the running program's last poll
        self._relay_on: dict[str, bool] = {}
        self._stop_requested = asyncio.Event()
        self._run_lock = asyncio.Lock()

    @property
    def has_heater(self) -> bool:
        return "heater" in self._relay_names()

    @property
    def running(self) -> bool:
        return self._run_lock.locked()

    def program(self, name: str) -> CleaningProgram:
        """The unit's named program (from its model config); ``KeyError`` lists the names.

        Backends with a program table override this; the base knows none.
        """
        raise KeyError(f"cleaner {self.name!r} has no program {name!r}")

    async def read_temperature(self) -> float:
        """The bath temperature in °C."""
        return await self._guarded("read temperature", self._read_temperature_c())

    async def sample(self) -> dict[str, Scalar]:
        """Telemetry (``METRICS``). During a run the program's own poll is reported, so
        sampling adds no request to the bus; between runs the probe is read."""
        progress = self.progress_now
        if progress is None:
            temperature, state, remaining = await self.read_temperature(), "idle", 0.0
        else:
            temperature = progress.temperature_c
            state, remaining = progress.phase, progress.phase_remaining_s
        return {
            "temperature_c": round(temperature, 2),
            "state": state,
            "remaining_s": round(remaining, 1),
            "ultrasound": self._relay_on.get("ultrasound", False),
            "heater": self._relay_on.get("heater", False),
        }

    async def stop(self) -> None:
        """Switch every relay off now; a running program ends with ``aborted="stopped"``."""
        self._stop_requested.set()
        await self._all_off()

    async def run_program(
        self,
        program: CleaningProgram,
        *,
        progress: ProgressCallback | None = None,
        stones: Iterable[Stone] = (),
    ) -> CleaningReport:
        """Degas, heat to target (with a heater), then ``duration_s`` of ultrasound.

        Raises :class:`~drivers.cleaner.gemstones.ContraindicatedError` before switching
        anything when a stone must not go in the bath, :class:`OverTemperatureError` (with the
        partial report) above ``max_temp_c``, and any :class:`DeviceError` the unit causes.
        Every relay is off when this returns or raises.
        """
        check_stones(stones)
        if self.running:
            raise DeviceReportedError(f"cleaner {self.name!r} is already running a program")
        async with self._run_lock:
            self._stop_requested.clear()
            run = _Run(program, progress, start_temp_c=await self.read_temperature())
            run.last_temp_c = run.max_temp_c = run.start_temp_c
            log.info("cleaner %s: program %s started", self.name, program.name)
            try:
                await self._run_phases(run)
            except _Stopped:
                await self._all_off()
                log.warning("cleaner %s: program %s stopped", self.name, program.name)
                return run.report(aborted=STOPPED)
            except BaseException:
                # Best effort: the error that ended the run is the news, not a second one.
                with contextlib.suppress(DeviceError):
                    await self._all_off()
                raise
            finally:
                self.progress_now = None
            await self._all_off()
            log.info("cleaner %s: program %s done", self.name, program.name)
            return run.report(aborted=None)

    # ---- phases ---------------------------------------------------------------------------

    async def _run_phases(self, run: _Run) -> None:
        program = run.program
        if program.degas_s > 0:
            degas = {"ultrasound", "degas"} & set(self._relay_names())
            await self._hold(run, "degas", program.degas_s, degas)
            await self._switch("degas", on=False)
        if program.target_temp_c is not None and self.has_heater:
            await self._heat(run, program.target_temp_c)
        run.target_reached = run.target_reached or self._at_target(run)
        await self._hold(run, "clean", program.duration_s, {"ultrasound"})

    async def _heat(self, run: _Run, target_c: float) -> None:
        await self._switch("ultrasound", on=False)
        deadline = time.monotonic() + run.program.heat_timeout_s
        while not self._at_target(run):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeviceReportedError(
                    f"cleaner {self.name!r}: bath at {run.last_temp_c:.1f} °C did not reach "
                    f"{target_c:.1f} °C within {run.program.heat_timeout_s:.0f} s (heater?)"
                )
            await self._switch("heater", on=True)
            await self._wait(min(self.poll_s, remaining))
            await self._poll(run, "heat", remaining)
        run.target_reached = True

    async def _hold(self, run: _Run, phase: Phase, seconds: float, relays: set[str]) -> None:
        """Keep ``relays`` on for ``seconds``, polling the temperature and the thermostat."""
        for relay in sorted(relays):
            await self._switch(relay, on=True)
        ends = time.monotonic() + seconds
        while (remaining := ends - time.monotonic()) > 0:
            slept = await self._wait(min(self.poll_s, remaining))
            run.ultrasound_s += slept
            await self._poll(run, phase, max(0.0, ends - time.monotonic()))
            await self._thermostat(run)

    async def _poll(self, run: _Run, phase: Phase, remaining_s: float) -> None:
        temp = await self.read_temperature()
        run.last_temp_c, run.max_temp_c = temp, max(run.max_temp_c, temp)
        if temp > run.program.max_temp_c:
            await self._all_off()
            message = (
                f"cleaner {self.name!r}: bath at {temp:.1f} °C is above the "
                f"{run.program.max_temp_c:.1f} °C cutoff; all relays switched off"
            )
            log.error("%s", message)
            raise OverTemperatureError(message, run.report(aborted="over-temperature"))
        elapsed = time.monotonic() - run.started
        self.progress_now = CleaningProgress(phase, round(elapsed, 3), remaining_s, temp)
        if run.progress is not None:
            run.progress(self.progress_now)

    async def _thermostat(self, run: _Run) -> None:
        target = run.program.target_temp_c
        if target is None or not self.has_heater:
            return
        if run.last_temp_c >= target:
            await self._switch("heater", on=False)
        elif run.last_temp_c < target - THERMOSTAT_HYSTERESIS_C:
            await self._switch("heater", on=True)

    def _at_target(self, run: _Run) -> bool:
        target = run.program.target_temp_c
        return target is None or run.last_temp_c >= target - THERMOSTAT_HYSTERESIS_C / 2

    # ---- relays ---------------------------------------------------------------------------

    async def _switch(self, relay: str, *, on: bool) -> None:
        if relay not in self._relay_names() or self._relay_on.get(relay) is on:
            return
        await self._guarded(f"switch {relay}", self._set_relay(relay, on))
        self._relay_on[relay] = on
        log.debug("cleaner %s: %s %s", self.name, relay, "on" if on else "off")

    async def _all_off(self) -> None:
        """Every relay off, each tried even when another fails; the first failure is raised."""
        first: DeviceError | None = None
        for relay in self._relay_names():
            try:
                await self._guarded(f"switch {relay} off", self._set_relay(relay, False))
                self._relay_on[relay] = False
            except DeviceError as err:
                log.error(  # noqa: TRY400 - the error is re-raised below with its traceback
                    "cleaner %s: could not switch %s off: %s", self.name, relay, err
                )
                first = first or err
        if first is not None:
            raise first

    async def _wait(self, seconds: float) -> float:
        """Sleep up to ``seconds``; :class:`_Stopped` when :meth:`stop` is called meanwhile."""
        started = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_requested.wait(), seconds)
        if self._stop_requested.is_set():
            raise _Stopped
        return time.monotonic() - started

    async def _guarded(self, what: str, operation: Awaitable[_T]) -> _T:
        try:
            result = await operation
        except DeviceError:
            raise
        except Exception as err:
            # A backend bug must reach the job runner as a device failure, not a crash.
            raise DeviceError(f"cleaner {self.name!r}: {what}: {type(err).__name__}") from err
        return result

    # ---- backend hooks --------------------------------------------------------------------

    @abstractmethod
    def _relay_names(self) -> tuple[str, ...]:
        """The relays this unit has, from ``ultrasound``, ``heater``, ``degas``."""

    @abstractmethod
    async def _set_relay(self, relay: str, on: bool) -> None:
        """Switch ``relay`` and verify it switched (a stuck relay is a DeviceReportedError)."""

    @abstractmethod
    async def _read_temperature_c(self) -> float:
        """The bath temperature in °C."""
