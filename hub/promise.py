"""A realistic completion time for a prospective order, from the real queue and capacity.

The quote is: the work already ahead of the order (open jobs of the stations that can do it,
plus the queued jobs that would go first), shared by those stations, plus the order's own
standard time, times a margin; laid out on the floor's working hours, starting the next
working day when the order misses the published cut-off. Over-promising is the failure the
domain warns about, so every assumption shows in ``basis``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.routing import StationView, job_gap
from hub.settings import HubSettings
from hub.store.models import Job, Station
from hub.transitions import OPEN_STATUSES
from protocol.models import JobStatus, StepSpec

MARGIN = 1.2  # standard times are averages; promise a little later than the average
WORKDAYS = range(5)  # Monday .. Friday


@dataclass(frozen=True, slots=True)
class Quote:
    feasible: bool
    promised_by: datetime | None
    reason: str | None = None
    basis: dict[str, object] = field(default_factory=dict)


async def quote(
    session: AsyncSession,
    *,
    steps: list[StepSpec],
    own_s: float,
    rush: bool,
    now: datetime,
    settings: HubSettings,
) -> Quote:
    """When an order with ``steps`` (standard time ``own_s``) would be done if sent now."""
    stations = [StationView.of(s) for s in await session.scalars(select(Station))]
    gaps = {view.id: job_gap(steps, view, now.date()) for view in stations}
    capable = [sid for sid, gap in gaps.items() if gap is None]
    if not capable:
        reasons = sorted({gap for gap in gaps.values() if gap}) or ["no station known"]
        return Quote(False, None, "no online station can do it: " + "; ".join(reasons))
    ahead_s, ahead_n = await _work_ahead(session, capable=capable, rush=rush)
    work_s = (ahead_s / len(capable) + own_s) * MARGIN
    start, cutoff_missed = _start_of_work(now, rush=rush, settings=settings)
    promised = _add_working_time(start, work_s, settings)
    basis: dict[str, object] = {
        "capable_stations": len(capable),
        "jobs_ahead": ahead_n,
        "work_ahead_s": round(ahead_s, 1),
        "own_s": round(own_s, 1),
        "margin": MARGIN,
        "cutoff": (settings.rush_cutoff if rush else settings.standard_cutoff).isoformat(),
        "cutoff_missed": cutoff_missed,
        "timezone": settings.timezone,
    }
    return Quote(True, promised.astimezone(UTC), None, basis)


async def _work_ahead(
    session: AsyncSession, *, capable: list[str], rush: bool
) -> tuple[float, int]:
    """Standard seconds and number of jobs ahead (sums in SQL: the queue may be long)."""
    open_rows = await session.execute(
        select(Job.status, func.sum(Job.estimate_s), func.count())
        .where(Job.status.in_(OPEN_STATUSES), Job.station_id.in_(capable))
        .group_by(Job.status)
    )
    queued = select(Job.status, func.sum(Job.estimate_s), func.count()).where(
        Job.status == JobStatus.QUEUED
    )
    if rush:
        queued = queued.where(Job.rush.is_(True))
    rows = [*open_rows, *await session.execute(queued.group_by(Job.status))]
    total, count = 0.0, 0
    for status, estimate, n in rows:
        # a running job is on average half done
        total += (estimate or 0.0) / (2 if status == JobStatus.RUNNING else 1)
        count += n
    return total, count


def _start_of_work(now: datetime, *, rush: bool, settings: HubSettings) -> tuple[datetime, bool]:
    """When work on an order arriving ``now`` can begin, and whether it missed the cut-off."""
    local = now.astimezone(ZoneInfo(settings.timezone))
    cutoff = settings.rush_cutoff if rush else settings.standard_cutoff
    if local.weekday() in WORKDAYS and local.time() < cutoff:
        opening = local.replace(
            hour=settings.opening.hour, minute=settings.opening.minute, second=0, microsecond=0
        )
        return max(local, opening), False
    return _next_opening(local, settings), local.weekday() in WORKDAYS


def _next_opening(local: datetime, settings: HubSettings) -> datetime:
    day = local.date() + timedelta(days=1)
    while day.weekday() not in WORKDAYS:
        day += timedelta(days=1)
    return datetime.combine(day, settings.opening, tzinfo=local.tzinfo)


def _add_working_time(start: datetime, seconds: float, settings: HubSettings) -> datetime:
    """``start`` plus ``seconds`` of working time (opening..closing, Monday to Friday)."""
    current, left = start, seconds
    for _ in range(3660):  # ten years of days: a bound, never reached in practice
        closing = datetime.combine(current.date(), settings.closing, tzinfo=current.tzinfo)
        available = (closing - current).total_seconds()
        if current.weekday() in WORKDAYS and available > 0:
            if left <= available:
                return current + timedelta(seconds=left)
            left -= available
        current = _next_opening(current, settings)
    return current


def cutoffs(settings: HubSettings) -> dict[str, str | list[int]]:
    """The published cut-off times and working hours (GET /cutoffs)."""
    return {
        "timezone": settings.timezone,
        "standard_cutoff": _hm(settings.standard_cutoff),
        "rush_cutoff": _hm(settings.rush_cutoff),
        "opening": _hm(settings.opening),
        "closing": _hm(settings.closing),
        "workdays": list(WORKDAYS),
    }


def _hm(value: dtime) -> str:
    return value.strftime("%H:%M")
