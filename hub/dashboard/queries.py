"""What the dashboards show, read straight from the hub's tables (no dependency on the
telemetry API: ``telemetry_points`` rows are read with an id cursor, so a live chart gets
every point stored after its last look, late or not)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub import alarms
from hub.store.alarms_tables import AlarmRecord
from hub.store.models import Job, JobTransition, Station, TelemetryPointRecord

IN_FLIGHT = ("assigned", "acknowledged", "running", "verifying")
MAX_POINTS_PER_SERIES = 300


def alarm_json(alarm: AlarmRecord) -> dict[str, Any]:
    return {
        "id": str(alarm.id),
        "station_id": alarm.station_id,
        "device": alarm.device,
        "kind": alarm.kind,
        "severity": alarm.severity,
        "state": alarm.state,
        "message": alarm.message,
        "since": alarm.since.isoformat(),
        "count": alarm.count,
        "acknowledged_by": alarm.acknowledged_by,
    }


async def overview(session: AsyncSession, *, now: datetime) -> dict[str, Any]:
    """Stations with presence, jobs in flight and open alarms; fleet throughput."""
    stations = (await session.scalars(select(Station).order_by(Station.id))).all()
    in_flight = dict(
        (
            await session.execute(
                select(Job.station_id, func.count())
                .where(Job.status.in_(IN_FLIGHT), Job.station_id.is_not(None))
                .group_by(Job.station_id)
            )
        ).all()
    )
    open_alarms = await alarms.list_alarms(session, state="open", limit=500)
    per_station: dict[str, int] = defaultdict(int)
    for alarm in open_alarms:
        per_station[alarm.station_id] += 1
    done_last_hour = await session.scalar(
        select(func.count())
        .select_from(JobTransition)
        .where(JobTransition.to_status == "done", JobTransition.at >= now - timedelta(hours=1))
    )
    return {
        "at": now.isoformat(),
        "stations": [
            {
                "id": s.id,
                "online": s.online,
                "blocked": s.alarm is not None,
                "last_seen_at": s.last_seen_at.isoformat() if s.last_seen_at else None,
                "jobs_in_flight": int(in_flight.get(s.id, 0)),
                "open_alarms": per_station.get(s.id, 0),
                "devices": [str(d.get("name")) for d in s.devices if isinstance(d, dict)],
            }
            for s in stations
        ],
        "online": sum(1 for s in stations if s.online),
        "offline": sum(1 for s in stations if not s.online),
        "jobs_in_flight": int(sum(in_flight.values())),
        "jobs_done_last_hour": int(done_last_hour or 0),
        "alarms": [alarm_json(a) for a in open_alarms[:50]],
        "points_cursor": await last_point_id(session),
    }


async def last_point_id(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.max(TelemetryPointRecord.id))) or 0)


async def alarm_list(session: AsyncSession, *, station_id: str | None = None) -> dict[str, Any]:
    """Open alarms and the most recent cleared ones."""
    open_alarms = await alarms.list_alarms(session, state="open", station_id=station_id)
    cleared = await alarms.list_alarms(session, state="cleared", station_id=station_id, limit=50)
    return {
        "open": [alarm_json(a) for a in open_alarms],
        "cleared": [alarm_json(a) for a in cleared],
    }


async def station_points(
    session: AsyncSession, station_id: str, *, after_id: int, since: datetime
) -> tuple[list[dict[str, Any]], int]:
    """Points of ``station_id`` stored after row ``after_id`` with ``ts >= since``, grouped
    by series (numeric ones thinned to at most MAX_POINTS_PER_SERIES); and the new cursor."""
    rows = (
        await session.execute(
            select(
                TelemetryPointRecord.id,
                TelemetryPointRecord.device,
                TelemetryPointRecord.metric,
                TelemetryPointRecord.ts,
                TelemetryPointRecord.value_num,
                TelemetryPointRecord.value_text,
            )
            .where(
                TelemetryPointRecord.station_id == station_id,
                TelemetryPointRecord.id > after_id,
                TelemetryPointRecord.ts >= since,
            )
            .order_by(TelemetryPointRecord.id)
        )
    ).all()
    series: dict[tuple[str, str], list[list[Any]]] = defaultdict(list)
    cursor = after_id
    for row_id, device, metric, ts, number, text in rows:
        cursor = max(cursor, row_id)
        value: Any = number if number is not None else text
        series[(device, metric)].append([ts.timestamp(), value])
    return [
        {"device": device, "metric": metric, "points": _thin(sorted(points))}
        for (device, metric), points in sorted(series.items())
    ], cursor


def _thin(points: list[list[Any]]) -> list[list[Any]]:
    step = max(1, -(-len(points) // MAX_POINTS_PER_SERIES))
    thinned = points[::step]
    if thinned and thinned[-1] is not points[-1]:
        thinned.append(points[-1])  # always keep the newest value
    return thinned


async def station_detail(session: AsyncSession, station_id: str) -> dict[str, Any] | None:
    station = await session.get(Station, station_id)
    if station is None:
        return None
    return {
        "id": station.id,
        "online": station.online,
        "blocked_by": station.alarm,
        "agent_version": station.agent_version,
        "devices": [
            {"name": str(d.get("name")), "family": str(d.get("family")), "model": d.get("model")}
            for d in station.devices
            if isinstance(d, dict)
        ],
        "last_seen_at": station.last_seen_at.isoformat() if station.last_seen_at else None,
    }
