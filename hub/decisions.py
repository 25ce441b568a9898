"""What people decide: cancel, requeue unstarted work, and the review of irreversible work.

Once irreversible work started, nothing here moves the job back to the queue: a person chooses
``scrap`` (the piece is written off), ``rework`` (hands fix it; a follow-up job carries the
remaining steps behind a signed-off rework step) or ``reengrave`` (a follow-up job engraves
again; only with an approval reference from an engineer or admin). Each decision is a versioned,
audited transition; the caller's ``request_id`` makes a repeat return the first answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.dispatch import Outgoing
from hub.orders import add_job
from hub.plan import estimate_seconds
from hub.store.models import Job, JobTransition, Order
from hub.transitions import job_state, move_job, plan_of
from protocol import topics
from protocol.models import Command, JobState, JobStatus, StepKind, StepSpec

Decision = Literal["cancel", "requeue", "scrap", "rework", "reengrave"]
J = JobStatus
CANCELLABLE = {J.QUEUED, J.ASSIGNED, J.ACKNOWLEDGED, J.BLOCKED, J.FAILED, J.TIMED_OUT}
REQUEUEABLE = {J.BLOCKED, J.FAILED, J.TIMED_OUT}
REVIEWABLE = {J.NEEDS_REVIEW, J.TIMED_OUT, J.FAILED}


class DecisionError(Exception):
    """The decision cannot apply; ``state`` is the job as it is now (HTTP 409)."""

    def __init__(self, message: str, state: JobState) -> None:
        super().__init__(message)
        self.state = state


@dataclass(frozen=True, slots=True)
class DecisionResult:
    state: JobState
    follow_up_job_id: str | None = None
    replayed: bool = False
    outgoing: list[Outgoing] = field(default_factory=list)


def _check(job: Job, decision: Decision, *, approval: str | None) -> str | None:
    """Why ``decision`` is not allowed on ``job`` now, or None."""
    if decision in ("cancel", "requeue"):
        return _check_unstarted(job, decision)
    return _check_review(job, decision, approval=approval)


def _check_unstarted(job: Job, decision: Decision) -> str | None:
    status = JobStatus(job.status)
    if decision == "cancel":
        if job.started:
            return "irreversible work started: decide scrap, rework or reengrave instead"
        return None if status in CANCELLABLE else f"a {status} job cannot be cancelled"
    if job.started:
        return "irreversible work started: it is never retried; decide rework or reengrave"
    return None if status in REQUEUEABLE else f"a {status} job cannot be requeued"


def _check_review(job: Job, decision: Decision, *, approval: str | None) -> str | None:
    status = JobStatus(job.status)
    if status not in REVIEWABLE:
        return (
            f"{decision} applies to jobs in review (needs_review, timed_out, failed), not {status}"
        )
    if decision == "reengrave":
        if not any(s.kind is StepKind.ENGRAVE for s in plan_of(job)):
            return "the job has no engraving to redo"
        if not approval:
            return "reengrave needs an approval reference"
    return None


async def decide(
    session: AsyncSession,
    *,
    job: Job,
    decision: Decision,
    expected_version: int,
    actor: str,
    reason: str,
    now: datetime,
    request_id: str | None = None,
    approval: str | None = None,
) -> DecisionResult:
    """Apply one person's decision to ``job`` (the caller commits)."""
    if request_id is not None and (replay := await _replay(session, job, decision, request_id)):
        return replay
    if expected_version != job.version:
        raise DecisionError(
            f"version mismatch: expected {expected_version}, current {job.version}", job_state(job)
        )
    if (why := _check(job, decision, approval=approval)) is not None:
        raise DecisionError(why, job_state(job))
    station = job.station_id
    to_status = J.QUEUED if decision == "requeue" else J.CANCELLED
    columns: dict[str, object] = {}
    if decision == "requeue":
        columns = {"station_id": None, "assigned_at": None, "last_sent_at": None, "progress": {}}
    moved = await move_job(
        session,
        job=job,
        to_status=to_status,
        actor=actor,
        reason=f"{decision}: {reason}",
        now=now,
        request_id=request_id,
        audit_data={"decision": decision, "approval": approval},
        **columns,
    )
    if not moved:
        raise DecisionError("job changed concurrently; reload and decide again", job_state(job))
    follow_up = await _follow_up(session, job, decision, actor=actor, approval=approval, now=now)
    outgoing = []
    if decision == "cancel" and station is not None:
        command = Command(kind="cancel_job", job_id=job.id)
        outgoing.append(Outgoing(topics.down(station, topics.Down.CMD), command))
    return DecisionResult(job_state(job), str(follow_up.id) if follow_up else None, False, outgoing)


async def _replay(
    session: AsyncSession, job: Job, decision: Decision, request_id: str
) -> DecisionResult | None:
    done = (
        await session.scalars(
            select(JobTransition).where(
                JobTransition.job_id == job.id, JobTransition.request_id == request_id
            )
        )
    ).first()
    if done is None:
        return None
    follow = (
        await session.scalars(select(Job.id).where(Job.origin == f"{decision}:{job.id}"))
    ).first()
    return DecisionResult(job_state(job), str(follow) if follow else None, replayed=True)


async def _follow_up(
    session: AsyncSession,
    job: Job,
    decision: Decision,
    *,
    actor: str,
    approval: str | None,
    now: datetime,
) -> Job | None:
    if decision not in ("rework", "reengrave"):
        return None
    order = await session.get_one(Order, job.order_id)
    steps = _rework_steps(job) if decision == "rework" else plan_of(job)
    text = (order.request["lines"][job.line_index].get("engraving") or {}).get("text", "")
    approved_by = f"{actor} ({approval})"[:64] if approval else None
    return await add_job(
        session,
        order=order,
        line_index=job.line_index,
        line_id=job.line_id,
        steps=steps,
        estimate_s=estimate_seconds(steps, len(text)),
        now=now,
        actor=actor,
        reason=f"{decision} of job {job.id}",
        origin=f"{decision}:{job.id}",
        approved_by=approved_by,
    )


def _rework_steps(job: Job) -> list[StepSpec]:
    """A signed-off rework step, then what was not done yet (never the irreversible steps)."""
    rework = StepSpec(
        name="rework", kind=StepKind.MANUAL, evidence=["photo"], signoff_required=True
    )
    remaining = [
        step
        for step in plan_of(job)
        if not step.irreversible and job.progress.get(step.name, {}).get("state") != "done"
    ]
    return [rework, *remaining]
