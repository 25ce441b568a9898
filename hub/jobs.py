"""The job engine: orders become jobs, stations move them through one state machine.

Pure DB logic, no MQTT. The caller owns the transaction (commit/rollback); every function
only adds to the given session. Scheduling lives in :mod:`hub.scheduler` and is re-exported.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.metrics import JOB_UPDATES_REJECTED
from hub.scheduler import assign_queued, jobs_to_resend, open_jobs_for_station, reassign_stale
from hub.store.models import EvidenceRecord, Job, JobTransition, Order
from hub.transitions import HUB_ACTOR, job_state, move_job, station_actor
from protocol.models import JobState, JobStatus, JobUpdate, StationJobStatus, utcnow

__all__ = [
    "DEFAULT_STEPS",
    "OrderConflictError",
    "UpdateResult",
    "apply_station_update",
    "assign_queued",
    "create_order",
    "jobs_to_resend",
    "open_jobs_for_station",
    "reassign_stale",
]

# Until the VAS-options issue lets an order choose its steps, every order is one engraving.
DEFAULT_STEPS: tuple[str, ...] = ("engrave",)

# (current status, what the station asks for) -> the status the job gets.
ALLOWED: dict[tuple[JobStatus, StationJobStatus], JobStatus] = {
    (JobStatus.ASSIGNED, StationJobStatus.ACKNOWLEDGED): JobStatus.ACKNOWLEDGED,
    (JobStatus.ACKNOWLEDGED, StationJobStatus.RUNNING): JobStatus.RUNNING,  # the start gate
    (JobStatus.RUNNING, StationJobStatus.DONE): JobStatus.DONE,
    (JobStatus.ASSIGNED, StationJobStatus.FAILED): JobStatus.FAILED,
    (JobStatus.ASSIGNED, StationJobStatus.BLOCKED): JobStatus.BLOCKED,
    (JobStatus.ACKNOWLEDGED, StationJobStatus.FAILED): JobStatus.FAILED,
    (JobStatus.ACKNOWLEDGED, StationJobStatus.BLOCKED): JobStatus.BLOCKED,
    # Work that started is irreversible: a person decides, nothing retries it.
    (JobStatus.RUNNING, StationJobStatus.FAILED): JobStatus.NEEDS_REVIEW,
}


class OrderConflictError(Exception):
    """The external id exists with different content (HTTP 409)."""


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """The hub's answer to one job update."""

    accepted: bool
    reason: str | None
    state: JobState | None


async def create_order(
    session: AsyncSession,
    *,
    external_id: str,
    sku: str,
    serial: str,
    engraving_text: str | None,
    now: datetime | None = None,
) -> tuple[Order, Job, bool]:
    """Create an order and its queued job; idempotent by ``external_id``.

    Returns ``(order, job, created)``. The same external id with other content raises
    :class:`OrderConflictError`.
    """
    now = now or utcnow()
    found = await _existing_order(session, external_id=external_id)
    if found is None:
        try:
            # A savepoint, so a concurrent insert of the same external id is a lookup, not a crash.
            async with session.begin_nested():
                return await _insert_order(
                    session, external_id, sku, serial, engraving_text, now=now
                )
        except IntegrityError:
            found = await _existing_order(session, external_id=external_id)
            if found is None:
                raise
    order, job = found
    if (order.sku, order.serial, order.engraving_text) != (sku, serial, engraving_text):
        raise OrderConflictError(
            f"order {external_id!r} already exists with different content (job {job.id})"
        )
    return order, job, False


async def _existing_order(session: AsyncSession, *, external_id: str) -> tuple[Order, Job] | None:
    row = (
        await session.execute(
            select(Order, Job)
            .join(Job, Job.order_id == Order.id)
            .where(Order.external_id == external_id)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def _insert_order(
    session: AsyncSession,
    external_id: str,
    sku: str,
    serial: str,
    engraving_text: str | None,
    *,
    now: datetime,
) -> tuple[Order, Job, bool]:
    order = Order(
        id=uuid.uuid4(),
        external_id=external_id,
        created_at=now,
        sku=sku,
        serial=serial,
        engraving_text=engraving_text,
    )
    job = Job(
        id=uuid.uuid4(),
        order_id=order.id,
        status=JobStatus.QUEUED.value,
        version=1,
        steps=list(DEFAULT_STEPS),
        created_at=now,
        updated_at=now,
        started=False,
        detail="",
    )
    # No relationship() between them, so flush the order first for the foreign key.
    session.add(order)
    await session.flush()
    session.add(job)
    await session.flush()
    session.add(
        JobTransition(
            job_id=job.id,
            from_status="new",
            to_status=JobStatus.QUEUED.value,
            version=1,
            actor=HUB_ACTOR,
            reason="order received",
            at=now,
        )
    )
    await session.flush()
    return order, job, True


def _refusal(job: Job | None, station_id: str, update: JobUpdate) -> str | None:
    """Why ``update`` cannot apply to ``job``, or None when it can."""
    if job is None:
        return f"unknown job {update.job_id}"
    if job.station_id != station_id:
        return f"job {job.id} is not assigned to station {station_id}"
    if update.expected_version != job.version:
        return f"version mismatch: expected {update.expected_version}, current {job.version}"
    if (JobStatus(job.status), update.status) not in ALLOWED:
        return f"transition {job.status} -> {update.status} is not allowed"
    return None


async def apply_station_update(
    session: AsyncSession, *, station_id: str, update: JobUpdate, now: datetime | None = None
) -> UpdateResult:
    """Apply a station's job update, or refuse it with a reason and the current state."""
    now = now or utcnow()
    job = await session.get(Job, update.job_id, populate_existing=True)
    reason = _refusal(job, station_id, update)
    if reason is not None or job is None:
        JOB_UPDATES_REJECTED.inc()
        return UpdateResult(False, reason, job_state(job) if job else None)
    to_status = ALLOWED[(JobStatus(job.status), update.status)]
    extra: dict[str, object] = {"detail": update.detail}
    if to_status is JobStatus.RUNNING:
        extra["started"] = True
    moved = await move_job(
        session,
        job=job,
        to_status=to_status,
        actor=station_actor(station_id),
        reason=update.detail or f"station reported {update.status}",
        now=now,
        **extra,
    )
    if not moved:
        JOB_UPDATES_REJECTED.inc()
        return UpdateResult(False, "job changed concurrently; retry", job_state(job))
    _add_evidence(session, job_id=job.id, station_id=station_id, update=update, now=now)
    return UpdateResult(True, None, job_state(job))


def _add_evidence(
    session: AsyncSession, *, job_id: uuid.UUID, station_id: str, update: JobUpdate, now: datetime
) -> None:
    for item in update.evidence:
        session.add(
            EvidenceRecord(
                job_id=job_id,
                step=item.step,
                kind=item.kind,
                sha256=item.sha256,
                value=item.value,
                unit=item.unit,
                station_id=station_id,
                at=now,
            )
        )
