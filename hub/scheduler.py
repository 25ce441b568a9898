"""Who does which job: assignment to the least-loaded online station, reassignment of
unstarted work, and the queries for re-sending assignments. Pure DB logic, no MQTT."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.settings import HubSettings
from hub.store.models import Job, Station
from hub.transitions import HUB_ACTOR, OPEN_STATUSES, UNSTARTED_STATUSES, move_job
from protocol.models import JobStatus


async def _station_loads(session: AsyncSession) -> dict[str, int]:
    """Open jobs per online station (0 for idle ones)."""
    online = await session.scalars(select(Station.id).where(Station.online.is_(True)))
    loads = dict.fromkeys(online, 0)
    if not loads:
        return loads
    counts = await session.execute(
        select(Job.station_id, func.count())
        .where(Job.status.in_(OPEN_STATUSES), Job.station_id.in_(loads))
        .group_by(Job.station_id)
    )
    for station_id, count in counts:
        if station_id is not None:
            loads[station_id] = count
    return loads


async def assign_queued(session: AsyncSession, *, now: datetime) -> list[Job]:
    """Give each queued job (oldest first) to the online station with the fewest open jobs.

    Returns the jobs this call assigned; a job another hub process took first is skipped.
    """
    queued = (
        await session.scalars(
            select(Job).where(Job.status == JobStatus.QUEUED).order_by(Job.created_at, Job.id)
        )
    ).all()
    if not queued:
        return []
    loads = await _station_loads(session)
    assigned: list[Job] = []
    for job in queued:
        if not loads:
            break
        # Ties go to the lowest station id, so the choice is reproducible.
        station_id = min(loads, key=lambda sid: (loads[sid], sid))
        moved = await move_job(
            session,
            job=job,
            to_status=JobStatus.ASSIGNED,
            actor=HUB_ACTOR,
            reason=f"assigned to {station_id}",
            now=now,
            station_id=station_id,
            assigned_at=now,
            last_sent_at=None,
        )
        if moved:
            loads[station_id] += 1
            assigned.append(job)
    return assigned


def _stale_reason(
    job: Job, station: Station | None, *, now: datetime, settings: HubSettings, uptime_s: float
) -> str | None:
    """Why an unstarted job should go back to the queue, or None to leave it."""
    # Right after a hub start every station looks offline until it re-announces itself.
    if uptime_s > settings.startup_grace_s and (station is None or not station.online):
        since = station.offline_since if station else None
        offline_s = (now - since).total_seconds() if since else float("inf")
        if offline_s > settings.reassign_after_offline_s:
            return f"station {job.station_id} offline for {min(offline_s, 1e9):.0f}s"
    if job.status == JobStatus.ASSIGNED and job.assigned_at is not None:
        waited_s = (now - job.assigned_at).total_seconds()
        if waited_s > settings.ack_timeout_s:
            return f"station {job.station_id} did not acknowledge within {waited_s:.0f}s"
    return None


async def reassign_stale(
    session: AsyncSession, *, now: datetime, settings: HubSettings, hub_started_at: datetime
) -> list[Job]:
    """Move unstarted jobs of offline or silent stations back to ``queued``.

    Started jobs are never touched: irreversible work is not retried automatically.
    Call :func:`assign_queued` afterwards to place them elsewhere.
    """
    rows = await session.execute(
        select(Job, Station)
        .outerjoin(Station, Station.id == Job.station_id)
        .where(Job.status.in_(UNSTARTED_STATUSES), Job.started.is_(False))
        .order_by(Job.created_at, Job.id)
    )
    uptime_s = (now - hub_started_at).total_seconds()
    requeued: list[Job] = []
    for job, station in rows:
        reason = _stale_reason(job, station, now=now, settings=settings, uptime_s=uptime_s)
        if reason is None:
            continue
        moved = await move_job(
            session,
            job=job,
            to_status=JobStatus.QUEUED,
            actor=HUB_ACTOR,
            reason=reason,
            now=now,
            station_id=None,
            assigned_at=None,
            last_sent_at=None,
        )
        if moved:
            requeued.append(job)
    return requeued


async def open_jobs_for_station(session: AsyncSession, *, station_id: str) -> Sequence[Job]:
    """The station's jobs in assigned, acknowledged or running (re-sent after its birth)."""
    result = await session.scalars(
        select(Job)
        .where(Job.station_id == station_id, Job.status.in_(OPEN_STATUSES))
        .order_by(Job.created_at, Job.id)
    )
    return result.all()


async def jobs_to_resend(
    session: AsyncSession, *, now: datetime, settings: HubSettings
) -> Sequence[Job]:
    """Assigned, unacknowledged jobs of online stations not sent for ``assignment_resend_s``."""
    cutoff = now - timedelta(seconds=settings.assignment_resend_s)
    result = await session.scalars(
        select(Job)
        .join(Station, Station.id == Job.station_id)
        .where(
            Job.status == JobStatus.ASSIGNED,
            Station.online.is_(True),
            or_(Job.last_sent_at.is_(None), Job.last_sent_at < cutoff),
        )
        .order_by(Job.created_at, Job.id)
    )
    return result.all()
