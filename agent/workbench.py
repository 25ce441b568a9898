"""The technician-facing model of a station: what the screen shows and what a person may do.

:meth:`Workbench.view` gathers the station (link, devices, alarms), the queue in the order the
runner works it, the job in hand with its steps, evidence, progress and verdicts, and the
message banners. Actions check who is signed in and what the runner waits for, refuse clearly
(:class:`ActionRefused`) otherwise, answer the :class:`~agent.operator.ScreenOperator`'s open
request, and leave an audit :class:`~protocol.models.Event` in the outbox for the hub. Logs and
events name badges and job ids, never engraving texts or technicians' names.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from uuid import UUID

from agent.alarms import StationAlarms
from agent.context import AgentContext
from agent.events import emit_event
from agent.jobs import JobRunner
from agent.jobstore import JobStore
from agent.operator import (
    Action,
    Activity,
    OperatorAbort,
    ScreenOperator,
    needs_fire_confirmation,
    queue_key,
)
from agent.technicians import AuthError, Technician, TechnicianBook
from agent.verdicts import Verdicts
from agent.workbench_build import build_view
from agent.workbench_view import StationView
from drivers.errors import DeviceError
from drivers.laser.preview import preview_png as draw_preview
from drivers.laser.templates import load_templates
from drivers.laser.toolpath import render_text
from protocol.aio import wait_event
from protocol.models import JobAssignment, Scalar, Severity, StationJobStatus
from protocol.models import VerificationNotice as Notice

log = logging.getLogger(__name__)

__all__ = ["ActionRefused", "AuthError", "NotFound", "StationView", "Workbench"]
ACTIVE_REFRESH_S = 0.5  # progress moves without events: look again this often during a job
IDLE_REFRESH_S = 2.0  # link and device state also change silently
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ActionRefused(Exception):
    """The action is not allowed now; the message says why, for the technician."""


class NotFound(Exception):
    """No such job, engraving or proof on this station."""


class Workbench:
    """See the module docstring. One per agent; every method runs on the agent's loop."""

    def __init__(
        self,
        ctx: AgentContext,
        runner: JobRunner,
        *,
        alarms: StationAlarms | None = None,
        technicians: TechnicianBook | None = None,
        verdicts: Verdicts | None = None,
    ) -> None:
        self._ctx, self._runner = ctx, runner
        self.alarms = alarms or StationAlarms(ctx.db)
        self._station = ctx.config.station_id
        self.technicians = technicians or TechnicianBook(ctx.config.technicians_path)
        self.verdicts = verdicts or Verdicts(ctx.db)
        self.changed = asyncio.Event()
        self._version = 0
        self._technician: Technician | None = None
        self._framing = False
        runner.activity.on_change = self.notify
        if isinstance(runner.operator, ScreenOperator):
            runner.operator.on_change = self.notify

    # ---- what the screen shows ----------------------------------------------------------------

    @property
    def activity(self) -> Activity:
        return self._runner.activity

    @property
    def technician(self) -> Technician | None:
        return self._technician

    def view(self) -> StationView:
        operator = self._runner.operator
        request = operator.request if isinstance(operator, ScreenOperator) else None
        return build_view(
            self._ctx,
            activity=self.activity,
            request=request,
            screen=isinstance(operator, ScreenOperator),
            technician=self._technician,
            alarms=self.alarms,
            verdicts=self.verdicts,
            framing=self._framing,
        )

    async def watch(self) -> AsyncIterator[StationView]:
        """The view now, then again whenever it changes (checked on every notification and
        every half second while a job is in hand, for progress)."""
        last: StationView | None = None
        while True:
            view = self.view()
            if last is None or view.model_dump(exclude={"at"}) != last.model_dump(exclude={"at"}):
                last = view
                yield view
            event = self.changed
            timeout = ACTIVE_REFRESH_S if self.activity.active else IDLE_REFRESH_S
            await wait_event(event, timeout)

    def notify(self) -> None:
        """Something changed: wake every watcher (each waits on the event of its round)."""
        self._version += 1
        event, self.changed = self.changed, asyncio.Event()
        event.set()

    def on_verification(self, notice: Notice) -> None:
        """The hub's verdict on a proof (from the link): kept for the screen."""
        self.verdicts.on_notice(notice)
        self.notify()

    # ---- who is at the bench ------------------------------------------------------------------

    def sign_in(self, badge: str, pin: str) -> Technician:
        """Sign a technician in (replacing whoever was); :class:`AuthError` says why not."""
        try:
            person = self.technicians.sign_in(badge, pin)
        except AuthError as err:
            self._audit("sign_in_refused", Severity.WARNING, str(err), badge=badge[:32])
            raise
        self._technician = person
        self._audit("technician_signed_in", Severity.INFO, "signed in", badge=person.badge)
        self.notify()
        return person

    def sign_out(self) -> None:
        if self._technician is not None:
            self._audit("technician_signed_out", Severity.INFO, "signed out")
        self._technician = None
        self.notify()

    # ---- the job ------------------------------------------------------------------------------

    async def acknowledge(self, job_id: UUID) -> None:
        self._answer(job_id, None, "acknowledge", "job_acknowledged")

    async def ready(self, job_id: UUID, step: str) -> None:
        self._answer(job_id, step, "ready", "step_ready")

    async def confirm_fire(self, job_id: UUID, step: str) -> None:
        if self._framing:
            raise ActionRefused("a frame pass is running: wait for it to end, then fire")
        self._answer(job_id, step, "confirm_fire", "fire_confirmed")

    async def sign_off(self, job_id: UUID, step: str) -> None:
        self._answer(job_id, step, "signoff", "step_signed_off")

    async def frame(self, job_id: UUID, step: str) -> None:
        """Trace the engraving's bounding box at low power (while the station waits for Ready
        or for the fire confirmation of that engraving step)."""
        person = self._require_technician()
        request = self._screen().request
        job = self.activity.job
        if request is None or request.job_id != job_id or request.step != step or job is None:
            raise ActionRefused("nothing to frame now: the station is not at an engraving step")
        spec = next((s for s in job.steps if s.name == step), None)
        if spec is None or not needs_fire_confirmation(spec) or request.action == "signoff":
            raise ActionRefused(f"step {step} is not an engraving waiting to fire")
        laser, engraving = self._ctx.devices.laser, job.engraving
        if laser is None or engraving is None:
            raise ActionRefused("no laser ready on this station" if engraving else "no engraving")
        if self._framing:
            raise ActionRefused("a frame pass is already running")
        self._framing = True
        self.notify()
        try:
            with self._ctx.devices.using(laser):
                await laser.frame(engraving.text, template=engraving.template, font=engraving.font)
        except DeviceError as err:
            raise ActionRefused(f"frame pass failed: {err}") from err
        finally:
            self._framing = False
            self.notify()
        self._audit(
            "frame_pass", Severity.INFO, "frame pass", job_id, badge=person.badge, step=step
        )

    async def block(self, job_id: UUID, reason: str) -> None:
        """Refuse the job before it runs (the hub shows it blocked, with the reason)."""
        person = self._require_technician()
        reason = _reason(reason)
        request = self._screen().request
        if request is None or request.job_id != job_id:
            raise ActionRefused(f"job {job_id} is not the job in hand: nothing to block")
        if request.action != "acknowledge":
            raise ActionRefused("the job is already running: scrap it instead of blocking")
        detail = f"blocked by {person.badge}: {reason}"
        self._abort(job_id, OperatorAbort(StationJobStatus.BLOCKED, detail))
        self._audit("job_blocked", Severity.INFO, detail, job_id, badge=person.badge)

    async def scrap(self, job_id: UUID, reason: str) -> None:
        """End the job in hand as failed, ``scrapped: <reason>`` (after irreversible work the
        hub puts it in needs_review)."""
        person = self._require_technician()
        detail = f"scrapped: {_reason(reason)}"
        request = self._screen().request
        if request is None or request.job_id != job_id:
            raise ActionRefused(f"job {job_id} is not waiting for you: it cannot be scrapped now")
        if self._framing:
            raise ActionRefused("a frame pass is running: wait for it to end")
        self._abort(job_id, OperatorAbort(StationJobStatus.FAILED, detail))
        self._audit("job_scrapped", Severity.INFO, detail, job_id, badge=person.badge)

    # ---- asking for help ----------------------------------------------------------------------

    async def report_problem(self, job_id: UUID | None, text: str) -> None:
        person = self._require_technician()
        self._audit("problem_reported", Severity.MINOR, _reason(text), job_id, badge=person.badge)

    async def request_maintenance(self, device: str, text: str) -> None:
        person = self._require_technician()
        names = [entry.config.name for entry in self._ctx.devices.managed]
        if device not in names:
            raise ActionRefused(f"no device {device!r} on this station ({', '.join(names)})")
        message = f"{person.badge}: {_reason(text)}"
        self._audit("maintenance_requested", Severity.MINOR, message, device=device,
                    badge=person.badge)  # fmt: skip

    # ---- pictures -----------------------------------------------------------------------------

    def preview_png(self, job_id: UUID) -> bytes:
        """The job's toolpath drawn over its item (raises :class:`NotFound`)."""
        engraving = self._assignment(job_id).engraving
        if engraving is None:
            raise NotFound(f"job {job_id} has no engraving")
        laser = self._ctx.devices.laser
        default = str(laser.options.get("template", "ring_band")) if laser else "ring_band"
        template = load_templates().get(engraving.template or default)
        if template is None:
            raise NotFound(f"no item template {engraving.template or default!r} on this station")
        try:
            path = render_text(engraving.text, font=engraving.font, template=template)
        except (ValueError, KeyError) as err:
            raise NotFound(
                f"job {job_id}: engraving cannot be laid out ({type(err).__name__})"
            ) from None
        return draw_preview(path, template=template)

    def proof_png(self, sha256: str) -> bytes:
        """A proof photo this station kept, by its SHA-256 (raises :class:`NotFound`)."""
        if not SHA256.match(sha256):
            raise NotFound("a proof is named by 64 lower-case hex digits")
        try:
            return (self._ctx.config.data_dir / "proofs" / f"{sha256}.png").read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no proof {sha256} on this station") from None

    # ---- helpers ------------------------------------------------------------------------------

    def _screen(self) -> ScreenOperator:
        operator = self._runner.operator
        if not isinstance(operator, ScreenOperator):
            raise ActionRefused("this station runs jobs by itself (operator = auto)")
        return operator

    def _require_technician(self) -> Technician:
        if self._technician is None:
            raise ActionRefused("sign in first")
        return self._technician

    def _answer(self, job_id: UUID, step: str | None, action: Action, kind: str) -> None:
        person = self._require_technician()
        if why := self._screen().resolve(job_id, step, action, person.badge):
            raise ActionRefused(why)
        self._audit(kind, Severity.INFO, kind.replace("_", " "), job_id, badge=person.badge,
                    step=step or "")  # fmt: skip

    def _abort(self, job_id: UUID, abort: OperatorAbort) -> None:
        if not self._screen().abort(job_id, abort):
            raise ActionRefused(f"job {job_id} is not waiting for you")

    def _assignment(self, job_id: UUID) -> JobAssignment:
        job = self.activity.job
        if job is not None and job.job_id == job_id:
            return job
        local = JobStore(self._ctx.db).get(job_id)
        if local is None:
            raise NotFound(f"no job {job_id} on this station")
        return local.assignment

    def _audit(
        self,
        kind: str,
        severity: Severity,
        message: str,
        job_id: UUID | None = None,
        *,
        device: str | None = None,
        **data: str,
    ) -> None:
        """An audit Event for the hub (the technician's action, by badge)."""
        if self._technician is not None:
            data.setdefault("badge", self._technician.badge)
        values: dict[str, Scalar] = {key: value for key, value in data.items() if value}
        emit_event(
            self._ctx.outbox,
            station_id=self._station,
            kind=kind,
            severity=severity,
            message=message,
            job_id=job_id,
            device=device,
            data=values,
        )
        self.notify()


def _reason(text: str) -> str:
    """A technician's reason: required, one line, at most 500 characters."""
    cleaned = " ".join(text.split())[:500]
    if not cleaned:
        raise ActionRefused("say why (a short reason is required)")
    return cleaned


def queue_order(jobs: list[JobAssignment]) -> list[JobAssignment]:
    """Rush first, then by due date, then by arrival (the order of ``jobs``)."""
    return [job for _, job in sorted(enumerate(jobs), key=lambda p: (queue_key(p[1]), p[0]))]
