"""Who does which job: earliest deadline first (rush before everything) to the least-loaded
capable, healthy station; reassignment of unstarted work; time-outs of silent running jobs;
the queries for re-sending assignments. Pure DB logic, no MQTT."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.routing import StationView, job_gap
from hub.settings import HubSettings
from hub.store.models import Job, Station
from hub.transitions import HUB_ACTOR, OPEN_STATUSES, UNSTARTED_STATUSES, move_job, plan_of
from protocol.models import JobStatus

DEFAULT_MAX_OPEN = 2
ROUTING_PARAMS = frozenset({"field_mm", "font", "method"})
REASSIGNABLE = (*UNSTARTED_STATUSES, JobStatus.RUNNING)


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


def queue_order() -> tuple[Any, ...]:
    """Rush first, then earliest deadline, then first come (the ORDER BY of the queue)."""
    return (Job.rush.desc(), Job.due_at, Job.created_at, Job.id)


async def _routable_stations(session: AsyncSession) -> dict[str, StationView]:
    rows = await session.scalars(select(Station).where(Station.online.is_(True)))
    return {station.id: StationView.of(station) for station in rows}


async def assign_queued(
    session: AsyncSession, *, now: datetime, max_open: int = DEFAULT_MAX_OPEN, limit: int = 500
) -> list[Job]:
    """Give queued jobs, most urgent first, to capable healthy stations with the fewest open
    jobs (at most ``max_open`` each; the rest wait here, so later rush orders overtake them).

    Returns the jobs this call assigned; a job another hub process took first is skipped.
    """
    queued = (
        await session.scalars(
            select(Job).where(Job.status == JobStatus.QUEUED).order_by(*queue_order()).limit(limit)
        )
    ).all()
    if not queued:
        return []
    loads = await _station_loads(session)
    if not loads or min(loads.values()) >= max_open:
        return []
    stations = await _routable_stations(session)
    assigned: list[Job] = []
    capable: dict[str, list[str]] = {}  # routing key -> capable stations (same for same plans)
    for job in queued:
        station_id = _pick(job, stations, loads, capable, max_open=max_open, now=now)
        if station_id is None:
            continue
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
        if min(loads.values()) >= max_open:
            break
    return assigned


def _routing_key(job: Job) -> str:
    """What routing looks at in a job's plan (jobs with the same key fit the same stations)."""
    return json.dumps(
        [
            [
                s.get("kind"),
                s.get("evidence"),
                {k: v for k, v in s.get("params", {}).items() if k in ROUTING_PARAMS},
            ]
            if isinstance(s, dict)
            else s
            for s in job.steps
        ],
        sort_keys=True,
    )


def _pick(
    job: Job,
    stations: dict[str, StationView],
    loads: dict[str, int],
    capable_by_key: dict[str, list[str]],
    *,
    max_open: int,
    now: datetime,
) -> str | None:
    """The least-loaded capable station with room (ties: lowest id, reproducibly)."""
    key = _routing_key(job)
    capable = capable_by_key.get(key)
    if capable is None:
        steps, today = plan_of(job), now.date()
        capable = [sid for sid, view in stations.items() if job_gap(steps, view, today) is None]
        capable_by_key[key] = capable
    room = [sid for sid in capable if loads.get(sid, max_open) < max_open]
    return min(room, key=lambda sid: (loads[sid], sid)) if room else None


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

    A running job whose irreversible steps have not started yet is unstarted work too.
    Started jobs are never touched: irreversible work is not retried automatically.
    Call :func:`assign_queued` afterwards to place them elsewhere.
    """
    rows = await session.execute(
        select(Job, Station)
        .outerjoin(Station, Station.id == Job.station_id)
        .where(Job.status.in_(REASSIGNABLE), Job.started.is_(False))
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
            progress={},
        )
        if moved:
            requeued.append(job)
    return requeued


async def time_out_running(
    session: AsyncSession, *, now: datetime, settings: HubSettings
) -> list[Job]:
    """Running jobs silent for ``running_timeout_s`` become ``timed_out``: a person decides,
    nothing is retried (the piece may be half-done)."""
    cutoff = now - timedelta(seconds=settings.running_timeout_s)
    rows = await session.scalars(
        select(Job).where(Job.status == JobStatus.RUNNING, Job.updated_at < cutoff)
    )
    timed_out = []
    for job in rows.all():
        reason = f"no progress from {job.station_id} for {settings.running_timeout_s:.0f}s"
        if await move_job(
            session, job=job, to_status=JobStatus.TIMED_OUT, actor=HUB_ACTOR, reason=reason, now=now
        ):
            timed_out.append(job)
    return timed_out


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
