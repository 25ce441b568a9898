"""``GrblLaser``: a GRBL 1.1 laser over a serial port opened by URL.

Life of a job: re-identify if the port came back; refuse unless the controller is Idle with
``$32=1`` and the program is laser-safe; ``$C`` check-mode preflight of every line (leaving
check mode resets GRBL: expected, handled); stream with character counting while polling
``?`` at <=5 Hz; sync with ``G4 P0.01`` (its ``ok`` comes when the planner is empty). Any
error, alarm, reset, silence or unplug ends the job FAILED with "failed at line N of M, position
unknown"; on an ``error:N`` or silence the machine is stopped (feed hold, soft reset) because
lines already in GRBL's buffer would still run. Nothing is ever re-sent.

Options: ``reply_timeout_s`` (5), ``stall_timeout_s`` (no reply while lines are in flight, 30),
``poll_hz`` (status polling during jobs, at most 5), ``preflight`` (true), ``streaming``
(``"counting"`` or ``"send_response"``), plus the family's (:class:`~drivers.laser.base.Laser`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from drivers.errors import (
    DeviceError,
    DeviceProtocolError,
    DeviceReportedError,
    DeviceTimeoutError,
    DeviceUnavailableError,
)
from drivers.laser.base import JobState, Laser, LaserJob
from drivers.laser.grbl.codes import describe_error
from drivers.laser.grbl.profile import GrblProfile, load_profile
from drivers.laser.grbl.protocol import (
    Alarm,
    Banner,
    Error,
    Feedback,
    Message,
    Setting,
    StatusCache,
    StatusReport,
    parse_options,
)
from drivers.laser.grbl.safety import UnsafeProgram, check_program
from drivers.laser.grbl.streamer import GrblLink
from drivers.serial_link import SerialLine, SerialSettings
from drivers.telemetry import Scalar

log = logging.getLogger(__name__)

SOFT_RESET, FEED_HOLD, STATUS = 0x18, ord("!"), ord("?")
MAX_POLL_HZ = 5.0
SYNC_LINE = "G4 P0.01"
SAMPLE_WITHIN_S = 1.0  # telemetry asks for a fresh report at most this long, else uses the cache


class GrblLaser(Laser):
    """GRBL 1.1 (and grblHAL) laser engraver; ``url`` is anything ``serial_for_url`` opens."""

    backend: ClassVar[str] = "grbl"

    def __init__(self, name: str, url: str | None, options: Mapping[str, Any]) -> None:
        super().__init__(name, url, options)
        self.reply_timeout_s = float(self.options.get("reply_timeout_s", 5.0))
        self.stall_timeout_s = float(self.options.get("stall_timeout_s", 30.0))
        self.poll_hz = min(float(self.options.get("poll_hz", MAX_POLL_HZ)), MAX_POLL_HZ)
        self.preflight = bool(self.options.get("preflight", True))
        self.counting = self.options.get("streaming", "counting") != "send_response"
        self.link: GrblLink | None = None
        self.firmware = self.version = self.build = ""
        self.rx_size, self.planner_blocks = 128, 15
        self.settings: dict[int, float] = {}
        self.status_cache = StatusCache()
        self.alarm_code = 0  # the last ALARM:N (telemetry reports it while the state is Alarm)
        self._banners = 0
        self._changed = asyncio.Event()

    @property
    def model(self) -> str:
        return f"{self.firmware} {self.version}".strip()

    async def open(self) -> None:
        if not self.url:
            raise DeviceUnavailableError(f"laser {self.name!r}: no port URL configured")
        line = await SerialLine.open(self.url, SerialSettings(reset_on_open=False))
        self.link = GrblLink(line)
        self.link.listeners.append(self._on_message)
        self.link.failure_listeners.append(lambda _: self._changed.set())
        self.link.start()
        try:
            await self._identify()
        except BaseException:
            await self._close_link()
            raise

    async def close(self) -> None:
        await self._close_link()

    async def reconnect(self) -> None:
        """Open the port again and re-identify; a job that failed stays failed."""
        await self._close_link()
        await self.open()

    async def _close_link(self) -> None:
        if self.link is not None:
            await self.link.close()
            self.link = None

    # ---- identity, settings, status ----------------------------------------------------

    async def _identify(self) -> None:
        """Soft reset, wait for the banner, then ``$I`` (version, RX size) and ``$$``."""
        await self._reset_and_wait(reason="identify")
        reply = await self._link().request("$I", self.reply_timeout_s)
        for push in reply.pushes:
            if isinstance(push, Feedback) and push.kind == "VER":
                self.build = push.text.split(":")[0]
            elif isinstance(push, Feedback) and push.kind == "OPT":
                _, self.planner_blocks, self.rx_size = parse_options(push.text)
                self._link().rx_size = self.rx_size
        if not (self.version.startswith("1.1") and self.build.startswith(self.version)):
            raise DeviceProtocolError(f"not GRBL 1.1: banner {self.version!r}, $I {self.build!r}")
        await self.read_settings()
        log.info("laser %s: %s, RX %d bytes, %d blocks", self.name, self.model, self.rx_size,
                 self.planner_blocks)  # fmt: skip

    async def _reset_and_wait(self, *, reason: str) -> None:
        link, seen = self._link(), self._banners
        await link.realtime(SOFT_RESET)
        try:
            await self._wait_until(lambda: self._banners > seen, self.reply_timeout_s)
        except DeviceTimeoutError as err:
            raise DeviceProtocolError(f"no GRBL banner after a soft reset ({reason})") from err
        link.clear_interruption()  # we asked for this reset

    async def status(self) -> StatusReport:
        """A fresh status report, completed with cached ``WCO``/``Ov``/``A``."""
        before = self.status_cache.last
        await self._link().realtime(STATUS)
        await self._wait_until(lambda: self.status_cache.last is not before, self.reply_timeout_s)
        assert self.status_cache.last is not None
        return self.status_cache.last

    async def read_settings(self) -> dict[int, float]:
        """``$$`` as ``{number: value}`` (also kept in :attr:`settings`)."""
        reply = await self._link().request("$$", self.reply_timeout_s)
        self._check(reply.response, "$$")
        self.settings = {p.number: float(p.value) for p in reply.pushes if isinstance(p, Setting)}
        return dict(self.settings)

    async def write_setting(self, number: int, value: float) -> None:
        """``$N=value`` by send-response (an EEPROM write: nothing may be streamed meanwhile)."""
        text = f"${number}={value:g}"
        reply = await self._link().request(text, self.reply_timeout_s)
        self._check(reply.response, f"${number}")
        self.settings[number] = value
        log.info("laser %s: setting $%d written", self.name, number)

    async def apply_profile(self, profile: GrblProfile) -> dict[int, tuple[float, float | None]]:
        """Write every setting that drifted from ``profile``; returns what was changed."""
        drift = profile.drift(await self.read_settings())
        for number, (wanted, _) in drift.items():
            await self.write_setting(number, wanted)
        return drift

    def profile(self) -> GrblProfile:
        """The settings profile this controller must match (option ``profile_path``, else
        the reference diode laser in ``firmware_configs/grbl/``)."""
        path = self.options.get("profile_path")
        return load_profile(Path(path) if path else None)

    async def config_drift(self) -> list[str]:
        drift = self.profile().drift(await self.read_settings())
        return [_drift_line(n, wanted, actual) for n, (wanted, actual) in drift.items()]

    async def apply_config(self) -> list[str]:
        """Settings by send-response only (EEPROM writes must never be streamed)."""
        changed = await self.apply_profile(self.profile())
        return [_drift_line(n, wanted, actual) for n, (wanted, actual) in changed.items()]

    async def unlock(self) -> None:
        """``$X``: leave Alarm without homing. Position is NOT verified; logged as such."""
        log.warning("laser %s: alarm unlocked by host ($X); position not verified", self.name)
        self._link().clear_interruption()
        reply = await self._link().request("$X", self.reply_timeout_s)
        self._check(reply.response, "$X")

    # ---- the job -----------------------------------------------------------------------

    async def _run(self, job: LaserJob) -> None:
        link = await self._ready_link()
        try:
            check_program(job.program.lines)
        except UnsafeProgram as err:
            raise DeviceError(job.fail(f"unsafe program: {err}")) from err
        await self._check_machine(job)
        if self.preflight:
            job.advance(JobState.PREFLIGHT)
            await self._preflight(link, job)
        job.advance(JobState.RUNNING)
        poller = asyncio.create_task(self._poll(link), name=f"grbl-poll[{self.name}]")
        try:
            await self._stream(link, job)
        finally:
            poller.cancel()
        job.advance(JobState.DONE)

    async def _ready_link(self) -> GrblLink:
        if self.link is None or self.link.failure is not None:
            log.info("laser %s: port was lost; reconnecting (no job is resumed)", self.name)
            await self.reconnect()
        return self._link()

    async def _check_machine(self, job: LaserJob) -> None:
        report = await self.status()
        if report.state != "Idle":
            hint = ": home ($H) or unlock ($X) first" if report.state == "Alarm" else ""
            raise DeviceReportedError(job.fail(f"controller is {report.state}, not Idle{hint}"))
        self._link().clear_interruption()
        if (await self.read_settings()).get(32) != 1.0:
            raise DeviceReportedError(job.fail("$32=0: laser mode is off, G0 moves would fire"))

    async def _preflight(self, link: GrblLink, job: LaserJob) -> None:
        """Run every line in check mode; leaving check mode resets GRBL (expected)."""
        self._check((await link.request("$C", self.reply_timeout_s)).response, "$C")
        try:
            rejected = await link.stream(
                job.program.lines, stall_s=self.stall_timeout_s, stop_on_error=False
            )
        finally:
            if link.blocked is None:
                seen = self._banners
                await link.request("$C", self.reply_timeout_s)
                await self._wait_until(lambda: self._banners > seen, self.reply_timeout_s)
                link.clear_interruption()
        if rejected:
            number, code = rejected[0]
            why = f"preflight ($C) refused {len(rejected)} line(s), first line {number}"
            raise DeviceReportedError(job.fail(f"{why}: {describe_error(code)}"))

    async def _stream(self, link: GrblLink, job: LaserJob) -> None:
        try:
            await link.stream(
                job.program.lines,
                counting=self.counting,
                stall_s=self.stall_timeout_s,
                on_ack=job.acknowledge,
            )
            await self._sync(link)
        except (DeviceReportedError, DeviceTimeoutError, DeviceProtocolError) as err:
            if link.interruption is None:  # not an alarm/reset: buffered lines would still run
                await self._stop_machine(link)
            raise _same_kind(err, job.fail(str(err))) from err
        except DeviceUnavailableError as err:
            raise DeviceUnavailableError(job.fail(f"port lost ({err})")) from err
        except asyncio.CancelledError:
            await self._stop_machine(link)
            raise

    async def _sync(self, link: GrblLink) -> None:
        """Wait for the motion to end: ``G4``'s ``ok`` comes once the planner is empty."""
        future = await link.send(SYNC_LINE)
        while True:
            try:
                async with asyncio.timeout(self.stall_timeout_s):
                    reply = await asyncio.shield(future)
                break
            except TimeoutError:
                last = self.status_cache.last
                if last is None or last.state != "Run":
                    raise DeviceTimeoutError("motion did not finish") from None
        self._check(reply.response, SYNC_LINE)

    async def _stop_machine(self, link: GrblLink) -> None:
        """Feed hold, then soft reset: best effort, never raises."""
        with contextlib.suppress(DeviceError, OSError):
            await link.realtime(FEED_HOLD)
            await link.realtime(SOFT_RESET)
        log.warning("laser %s: stopped with feed hold + soft reset", self.name)

    async def _poll(self, link: GrblLink) -> None:
        with contextlib.suppress(DeviceError):
            while True:
                await link.realtime(STATUS)
                await asyncio.sleep(1 / self.poll_hz)

    # ---- telemetry ---------------------------------------------------------------------

    async def _sample_controller(self) -> dict[str, Scalar]:
        """The last status report; refreshed with ``?`` (a realtime byte GRBL answers at any
        time) only between jobs, because a job's own poller already refreshes it at 5 Hz."""
        if self.link is None or self.link.failure is not None:
            return {}
        if not self.job_active:
            with contextlib.suppress(DeviceError, TimeoutError):
                async with asyncio.timeout(SAMPLE_WITHIN_S):
                    await self.status()
        report = self.status_cache.last
        return {} if report is None else status_values(report, self.alarm_code)

    # ---- plumbing ----------------------------------------------------------------------

    def _on_message(self, message: Message) -> None:
        if isinstance(message, Banner):
            self._banners += 1
            self.firmware, self.version = message.firmware, message.version
        elif isinstance(message, StatusReport):
            self.status_cache.update(message)
        elif isinstance(message, Alarm):
            self.alarm_code = message.code
        elif isinstance(message, Feedback) and message.kind == "MSG":
            log.info("laser %s: controller says %s", self.name, message.text)
        self._changed.set()

    async def _wait_until(self, probe: Any, within: float) -> None:
        try:
            async with asyncio.timeout(within):
                while not probe():
                    self._link().raise_if_failed_permanently()
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError as err:
            raise DeviceTimeoutError(f"laser {self.name!r}: no answer within {within} s") from err

    def _link(self) -> GrblLink:
        if self.link is None:
            raise DeviceUnavailableError(f"laser {self.name!r} is not open")
        return self.link

    @staticmethod
    def _check(response: Any, what: str) -> None:
        if isinstance(response, Error):
            raise DeviceReportedError(f"{what} refused: {describe_error(response.code)}")


def status_values(report: StatusReport, alarm_code: int) -> dict[str, Scalar]:
    """A completed status report as the laser family's telemetry values."""
    values: dict[str, Scalar] = {
        "state": report.state,
        "alarm_code": alarm_code if report.state == "Alarm" else 0,
    }
    if report.wpos is not None:
        values.update(zip(("x_mm", "y_mm", "z_mm"), report.wpos, strict=False))
    if report.feed is not None:
        values["feed_mm_min"] = report.feed
    if report.speed is not None:
        values["power_s"] = report.speed
    if report.overrides is not None:
        names = ("feed_override_pct", "rapid_override_pct", "spindle_override_pct")
        values.update(zip(names, report.overrides, strict=True))
    return values


def _same_kind(err: DeviceError, message: str) -> DeviceError:
    """A plain error of ``err``'s family with ``message`` (subclasses take other arguments)."""
    for kind in (DeviceReportedError, DeviceTimeoutError, DeviceProtocolError):
        if isinstance(err, kind):
            return kind(message)
    return DeviceError(message)


def _drift_line(number: int, wanted: float, actual: float | None) -> str:
    found = "missing" if actual is None else f"{actual:g}"
    return f"${number}: profile {wanted:g}, controller {found}"
