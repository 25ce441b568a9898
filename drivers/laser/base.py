"""The laser family's public face: text or a program in, an :class:`EngraveReport` out.

The base owns what every laser shares, whatever its controller: text becomes a toolpath
(single-stroke Hershey fonts fitted to an item template) and a program with a hash; a
:class:`LaserJob` state machine records the last line the controller acknowledged and ends
FAILED on any fault, never to be resumed. Backends implement one hook, :meth:`Laser._run`
(GRBL streams G-code; a galvo backend would override :meth:`Laser.compile` too and send list
packets instead).

The text to engrave is personal data: nothing here logs it, only its length and the hash of the
program that came out of it.
"""

from __future__ import annotations

import enum
import logging
import time
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from drivers.base import Device
from drivers.errors import DeviceError
from drivers.laser.gcode import frame_gcode, to_gcode
from drivers.laser.templates import load_templates
from drivers.laser.toolpath import Toolpath, render_text
from drivers.telemetry import MetricSpec, Scalar

log = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "ring_band"
DEFAULT_POWER_S = 600
DEFAULT_FEED_MM_MIN = 1200.0
FRAME_POWER = 0.01  # of full power: visible on the piece, marks nothing at travel speed
FRAME_MAX_POWER = 0.05


class Program(Protocol):
    """What a backend runs: lines, the hash that is the job's evidence, a time estimate."""

    @property
    def lines(self) -> Sequence[str]: ...
    @property
    def sha256(self) -> str: ...
    @property
    def estimated_seconds(self) -> float: ...


@dataclass(frozen=True, slots=True)
class EngraveReport:
    """What an engraving produced: the program's hash (the job's evidence) and its duration."""

    gcode_sha256: str
    duration_s: float
    lines: int = 0


class JobState(enum.StrEnum):
    PENDING = "pending"
    PREFLIGHT = "preflight"  # checked without firing ($C on GRBL)
    RUNNING = "running"  # the beam may fire from here on
    DONE = "done"
    FAILED = "failed"  # final: a failed job is never resumed, only re-run from scratch


class LaserJob:
    """One program's run; ``acknowledged`` is how many lines the controller accepted."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.state = JobState.PENDING
        self.acknowledged = 0
        self.failure: str | None = None

    @property
    def total(self) -> int:
        return len(self.program.lines)

    def advance(self, state: JobState) -> None:
        """PENDING -> PREFLIGHT -> RUNNING -> DONE; anything else is a bug in the backend."""
        allowed = {
            JobState.PENDING: {JobState.PREFLIGHT, JobState.RUNNING},
            JobState.PREFLIGHT: {JobState.RUNNING},
            JobState.RUNNING: {JobState.DONE},
        }
        if state not in allowed.get(self.state, set()):
            raise RuntimeError(f"laser job cannot go from {self.state} to {state}")
        self.state = state

    def acknowledge(self, count: int) -> None:
        self.acknowledged = max(self.acknowledged, count)

    def fail(self, reason: str) -> str:
        """End the job FAILED; the message says how far it got (it never names the text)."""
        if self.state is JobState.FAILED:
            return self.failure or reason
        fired = self.state is JobState.RUNNING
        where = (
            f"failed at line {self.acknowledged} of {self.total}, position unknown"
            if fired
            else f"failed before firing (0 of {self.total} lines run)"
        )
        self.state = JobState.FAILED
        self.failure = f"{reason}: {where}"
        return self.failure


class Laser(Device):
    """A laser engraver. Call :meth:`engrave` (or :meth:`engrave_program`); backends override
    :meth:`_run`.

    Options: ``template`` (item template name, default ``ring_band``), ``font``, ``power_s``,
    ``feed_mm_min``, ``travel_mm_min``, ``max_s`` (the controller's full-power S).
    """

    family: ClassVar[str] = "laser"
    METRICS: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("job_state", "", "state", "the last job: none, pending ... done, failed"),
        MetricSpec("job_lines_done", "lines", "gauge", "lines of the last job acknowledged"),
        MetricSpec("state", "", "state", "controller state (Idle, Run, Hold, Alarm, ...)"),
        MetricSpec("x_mm", "mm", "gauge", "work position X"),
        MetricSpec("y_mm", "mm", "gauge", "work position Y"),
        MetricSpec("z_mm", "mm", "gauge", "work position Z"),
        MetricSpec("feed_mm_min", "mm/min", "gauge", "current feed rate"),
        MetricSpec("power_s", "S", "gauge", "laser power in effect (S, 0 when not firing)"),
        MetricSpec("feed_override_pct", "%", "gauge", "feed override"),
        MetricSpec("rapid_override_pct", "%", "gauge", "rapid override"),
        MetricSpec("spindle_override_pct", "%", "gauge", "spindle (power) override"),
        MetricSpec("alarm_code", "", "gauge", "controller alarm code while in Alarm, else 0"),
    )

    def __init__(self, name: str, url: str | None, options: Mapping[str, Any]) -> None:
        super().__init__(name, url, options)
        self.last_job: LaserJob | None = None

    @property
    def job_active(self) -> bool:
        """True while a job is being checked or run (the beam may fire)."""
        job = self.last_job
        return job is not None and job.state in (JobState.PREFLIGHT, JobState.RUNNING)

    async def sample(self) -> dict[str, Scalar]:
        """Telemetry (``METRICS``): the last job's progress plus what the controller reports."""
        job = self.last_job
        values: dict[str, Scalar] = {
            "job_state": job.state.value if job else "none",
            "job_lines_done": job.acknowledged if job else 0,
        }
        values.update(await self._sample_controller())
        return values

    async def _sample_controller(self) -> dict[str, Scalar]:
        """The controller's state, position, power, overrides and alarm, from what the backend
        caches or may ask without disturbing a job; the base knows none."""
        return {}

    async def engrave(
        self, text: str, *, template: str | None = None, font: str | None = None
    ) -> EngraveReport:
        """Engrave ``text`` on the item ``template``; every failure is a :class:`DeviceError`."""
        log.info("laser %s: engraving %d characters", self.name, len(text))
        try:
            program = self.compile(self.layout(text, template=template, font=font))
        except (ValueError, KeyError) as err:  # KeyError: no such item template
            reason = getattr(err, "reason", type(err).__name__)  # never the text itself
            raise DeviceError(f"laser {self.name!r}: text not engravable: {reason}") from err
        return await self.engrave_program(program)

    def layout(self, text: str, *, template: str | None, font: str | None) -> Toolpath:
        """Text as strokes fitted to the template's area (refuses what it cannot draw whole)."""
        item = load_templates()[template or self.options.get("template", DEFAULT_TEMPLATE)]
        return render_text(text, font=font or self.options.get("font"), template=item)

    def compile(self, toolpath: Toolpath) -> Program:
        """The toolpath as this laser's program (GRBL laser-mode G-code by default)."""
        return to_gcode(
            toolpath,
            power_s=int(self.options.get("power_s", DEFAULT_POWER_S)),
            feed_mm_min=float(self.options.get("feed_mm_min", DEFAULT_FEED_MM_MIN)),
            travel_mm_min=float(self.options.get("travel_mm_min", 3000.0)),
            max_s=int(self.options.get("max_s", 1000)),
        )

    async def frame(
        self,
        text: str,
        *,
        template: str | None = None,
        font: str | None = None,
        power: float = FRAME_POWER,
    ) -> EngraveReport:
        """The frame pass: trace the bounding box of ``text``'s toolpath, never the text, at
        ``power`` (a fraction of full power, at most :data:`FRAME_MAX_POWER`; 0 traces with
        the beam off for machines with a red-dot pointer) and the travel speed.

        GRBL: ``M4 S<tiny>``, not ``M5``: with ``M5`` a diode laser shows nothing to align by;
        ``M4`` at 1 % and a fast feed shows the spot without marking metal, and dynamic power
        switches it off whenever the axes stop (LaserGRBL's frame button does the same).
        """
        if not 0 <= power <= FRAME_MAX_POWER:
            raise ValueError(f"frame power must be 0..{FRAME_MAX_POWER} of full power")
        try:
            toolpath = self.layout(text, template=template, font=font)
        except (ValueError, KeyError) as err:
            reason = getattr(err, "reason", type(err).__name__)  # never the text itself
            raise DeviceError(f"laser {self.name!r}: text not engravable: {reason}") from err
        max_s = int(self.options.get("max_s", 1000))
        travel = float(self.options.get("travel_mm_min", 3000.0))
        program = frame_gcode(
            toolpath, power_s=round(power * max_s), feed_mm_min=travel, travel_mm_min=travel,
            max_s=max_s,
        )  # fmt: skip
        log.info("laser %s: frame pass at %.1f %% power", self.name, power * 100)
        return await self.engrave_program(program)

    async def engrave_program(self, program: Program) -> EngraveReport:
        """Run ``program`` as a new :class:`LaserJob` (see :attr:`last_job`)."""
        started = time.monotonic()
        job = self.last_job = LaserJob(program)
        try:
            await self._run(job)
        except DeviceError as err:
            job.fail(type(err).__name__)
            log.warning("laser %s: engraving failed: %s", self.name, err)
            raise
        except Exception as err:
            # A backend bug must still reach the job runner as a device failure, not a crash.
            detail = job.fail(f"unexpected {type(err).__name__}")
            raise DeviceError(f"laser {self.name!r}: {detail}") from err
        except BaseException:
            job.fail("cancelled")  # the agent stopped mid-job: still never resumed
            raise
        if job.state is not JobState.DONE:
            raise DeviceError(f"laser {self.name!r}: backend returned without finishing the job")
        report = EngraveReport(program.sha256, time.monotonic() - started, job.total)
        log.info("laser %s: engraved %d lines in %.2f s", self.name, job.total, report.duration_s)
        return report

    @abstractmethod
    async def _run(self, job: LaserJob) -> None:
        """Run ``job.program``: advance the job to DONE, or raise a :class:`DeviceError`
        whose message comes from :meth:`LaserJob.fail` (it carries the line count)."""
