"""Builds :class:`~agent.workbench_view.StationView` from the agent's parts (pure reads)."""

from __future__ import annotations

import time

from agent.alarms import StationAlarms
from agent.context import AgentContext
from agent.devices import DeviceState
from agent.jobstore import JobStore
from agent.operator import Activity, Request, StepActivity, needs_fire_confirmation, queue_key
from agent.technicians import Technician
from agent.verdicts import Verdicts
from agent.workbench_view import (
    FIRE_INSTRUCTIONS,
    HUB_UNREACHABLE,
    INSTRUCTIONS,
    SIGNOFF_INSTRUCTIONS,
    AlarmView,
    DeviceView,
    JobView,
    MustDo,
    ProgressView,
    QueueItem,
    StationView,
    StepView,
    TechnicianView,
    VerificationView,
)
from drivers.cleaner.base import UltrasonicCleaner
from protocol.models import JobAssignment, StepKind, StepSpec, utcnow

MUST_DO: dict[str, MustDo] = {
    "acknowledge": "acknowledge",
    "ready": "ready",
    "confirm_fire": "frame_and_confirm",
    "signoff": "signoff",
}


def build_view(
    ctx: AgentContext,
    *,
    activity: Activity,
    request: Request | None,
    screen: bool,
    technician: Technician | None,
    alarms: StationAlarms,
    verdicts: Verdicts,
    framing: bool,
) -> StationView:
    """Everything the screen shows, as of now."""
    job = activity.job
    return StationView(
        station_id=ctx.config.station_id,
        hub_online=ctx.link.live,
        operator="screen" if screen else "auto",
        technician=_technician(technician),
        devices=_devices(ctx),
        alarms=[_alarm(a) for a in alarms.open_alarms()],
        queue=_queue(ctx, activity),
        job=_job(ctx, job, activity, request, verdicts) if job is not None else None,
        messages=_messages(ctx, screen, framing),
        framing=framing,
        at=utcnow(),
    )


def _technician(person: Technician | None) -> TechnicianView | None:
    if person is None:
        return None
    return TechnicianView(badge=person.badge, name=person.name, roles=person.roles)


def _devices(ctx: AgentContext) -> list[DeviceView]:
    return [
        DeviceView(
            name=entry.config.name,
            family=entry.config.family,
            state="ready" if entry.state is DeviceState.READY else "unavailable",
            detail=entry.last_error,
        )
        for entry in ctx.devices.managed
    ]


def _alarm(notice: object) -> AlarmView:
    return AlarmView.model_validate(notice, from_attributes=True)


def _queue(ctx: AgentContext, activity: Activity) -> list[QueueItem]:
    in_hand = activity.job.job_id if activity.job is not None and activity.active else None
    jobs = JobStore(ctx.db).unfinished()  # in order of arrival: the sort keeps it for ties
    jobs.sort(key=lambda job: queue_key(job.assignment))
    return [
        QueueItem(
            job_id=job.job_id,
            order_ref=job.assignment.order_ref,
            sku=job.assignment.piece.sku,
            serial=job.assignment.piece.serial,
            rush=job.assignment.rush,
            due_at=job.assignment.due_at,
            hub_status=job.hub_status.value,
            in_hand=job.job_id == in_hand,
        )
        for job in jobs
    ]


def _job(
    ctx: AgentContext,
    job: JobAssignment,
    activity: Activity,
    request: Request | None,
    verdicts: Verdicts,
) -> JobView:
    waiting = request if request is not None and request.job_id == job.job_id else None
    engraving = job.engraving
    return JobView(
        job_id=job.job_id,
        order_ref=job.order_ref,
        sku=job.piece.sku,
        serial=job.piece.serial,
        engraving_text=engraving.text if engraving else None,
        template=engraving.template if engraving else None,
        font=engraving.font if engraving else None,
        rush=job.rush,
        due_at=job.due_at,
        active=activity.active,
        outcome=activity.outcome,
        must_do=MUST_DO[waiting.action] if waiting else "none",
        must_do_step=waiting.step if waiting else None,
        steps=[_step(ctx, spec, activity.steps.get(spec.name), waiting) for spec in job.steps],
        verifications=[
            VerificationView.model_validate(n, from_attributes=True)
            for n in verdicts.for_job(job.job_id)
        ],
    )


def _step(
    ctx: AgentContext, spec: StepSpec, done: StepActivity | None, waiting: Request | None
) -> StepView:
    done = done or StepActivity()
    here = waiting is not None and waiting.step == spec.name
    instructions = INSTRUCTIONS[spec.kind]
    if here and waiting is not None and waiting.action == "confirm_fire":
        instructions = FIRE_INSTRUCTIONS
    elif here and waiting is not None and waiting.action == "signoff":
        instructions = SIGNOFF_INSTRUCTIONS
    return StepView(
        name=spec.name,
        kind=spec.kind,
        state=done.state,
        instructions=instructions,
        signoff_required=spec.signoff_required,
        irreversible=spec.irreversible,
        evidence=done.evidence,
        detail=done.detail,
        progress=_progress(ctx, spec, done) if done.state == "running" else None,
    )


def _progress(ctx: AgentContext, spec: StepSpec, done: StepActivity) -> ProgressView | None:
    if needs_fire_confirmation(spec):
        return _laser_progress(ctx, done)
    if spec.kind is StepKind.CLEAN:
        return _cleaner_progress(ctx)
    return None


def _laser_progress(ctx: AgentContext, done: StepActivity) -> ProgressView | None:
    laser = ctx.devices.laser
    job = laser.last_job if laser is not None else None
    if job is None or job.total == 0:
        return None
    fraction = min(1.0, job.acknowledged / job.total)
    elapsed = time.monotonic() - done.started_at if done.started_at is not None else 0.0
    if fraction > 0 and elapsed > 0:
        remaining: float | None = elapsed * (1 - fraction) / fraction
    else:
        remaining = job.program.estimated_seconds
    detail = f"{job.acknowledged} of {job.total} lines"
    return ProgressView(fraction=fraction, remaining_s=remaining, detail=detail)


def _cleaner_progress(ctx: AgentContext) -> ProgressView | None:
    cleaner = ctx.devices.get(UltrasonicCleaner)
    now = cleaner.progress_now if cleaner is not None else None
    if now is None:
        return None
    total = now.elapsed_s + now.phase_remaining_s
    fraction = min(1.0, now.elapsed_s / total) if total > 0 else 0.0
    phase = getattr(now.phase, "value", str(now.phase))
    detail = f"{phase}: {now.phase_remaining_s:.0f} s left, {now.temperature_c:.1f} °C"
    return ProgressView(
        fraction=fraction,
        remaining_s=now.phase_remaining_s,
        detail=detail,
        temperature_c=now.temperature_c,
    )


def _messages(ctx: AgentContext, screen: bool, framing: bool) -> list[str]:
    messages = []
    if not ctx.link.live:
        messages.append(HUB_UNREACHABLE)
    for entry in ctx.devices.managed:
        if entry.state is not DeviceState.READY:
            why = f" ({entry.last_error})" if entry.last_error else ""
            family = entry.config.family.capitalize()
            messages.append(f"{family} {entry.config.name} missing{why}: reconnect it")
    if framing:
        messages.append("Frame pass running (low power): the laser is moving")
    if not screen:
        messages.append("This station runs jobs by itself (operator = auto): the screen watches")
    return messages
