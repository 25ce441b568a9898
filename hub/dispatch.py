"""What the hub sends: assignment messages built from jobs, and the periodic sweep.

Functions here add to the caller's transaction and return :class:`Outgoing` messages, which
the caller publishes only after the commit: a station never hears of a state the hub lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from hub.scheduler import (
    DEFAULT_MAX_OPEN,
    assign_queued,
    jobs_to_resend,
    reassign_stale,
    time_out_running,
)
from hub.settings import HubSettings
from hub.store.models import Job, Order
from hub.transitions import plan_of
from protocol import topics
from protocol.models import Engraving, JobAssignment, JobStatus, Message, Piece


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish (QoS 1) after the transaction that produced it committed."""

    topic: str
    message: Message


async def assignment_messages(
    session: AsyncSession, *, jobs: Iterable[Job], now: datetime
) -> list[Outgoing]:
    """A :class:`JobAssignment` for each job (current status and version); stamps last_sent_at."""
    out: list[Outgoing] = []
    for job in jobs:
        if job.station_id is None:
            continue
        order = await session.get(Order, job.order_id)
        if order is None:  # the foreign key makes this impossible; keep mypy and us honest
            continue
        job.last_sent_at = now
        out.append(
            Outgoing(topics.down(job.station_id, topics.Down.JOB), assignment(job, order, now))
        )
    return out


def assignment(job: Job, order: Order, now: datetime) -> JobAssignment:
    """The wire form of ``job``: its line's piece and engraving, its steps."""
    lines = order.request.get("lines") or [{}]
    line = lines[min(job.line_index, len(lines) - 1)]
    piece = line.get("piece", {})
    engraving = line.get("engraving") or None
    return JobAssignment(
        job_id=job.id,
        version=job.version,
        status=JobStatus(job.status),
        order_ref=order.external_id,
        piece=Piece(sku=piece.get("sku", "?"), serial=piece.get("serial", "?")),
        engraving=Engraving.model_validate(engraving) if engraving else None,
        steps=plan_of(job),
        issued_at=now,
        due_at=job.due_at,
        rush=job.rush,
    )


async def assign_now(
    session: AsyncSession, *, now: datetime, max_open: int = DEFAULT_MAX_OPEN
) -> list[Outgoing]:
    """Assign queued jobs and return their assignment messages."""
    assigned = await assign_queued(session, now=now, max_open=max_open)
    return await assignment_messages(session, jobs=assigned, now=now)


async def sweep(
    session: AsyncSession, *, now: datetime, settings: HubSettings, hub_started_at: datetime
) -> list[Outgoing]:
    """One sweeper round: requeue stale unstarted jobs, assign the queue, re-send due
    assignments (newly assigned ones are due at once: they were never sent)."""
    await reassign_stale(session, now=now, settings=settings, hub_started_at=hub_started_at)
    await time_out_running(session, now=now, settings=settings)
    await assign_queued(session, now=now, max_open=settings.max_open_jobs_per_station)
    due = await jobs_to_resend(session, now=now, settings=settings)
    return await assignment_messages(session, jobs=due, now=now)
