"""Station registry and presence: birth, death (with the bd_seq rule), hub-start reset."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub import audit
from hub.metrics import STALE_DEATHS, STATIONS_ONLINE
from hub.store.models import Station
from protocol.models import Birth, Death, Event, Severity

# Events that raise a station alarm (no new work until cleared) and the one that clears it.
ALARM_KINDS = frozenset({"alarm", "device_failed"})
ALARM_SEVERITIES = frozenset({Severity.MAJOR, Severity.CRITICAL})
CLEAR_KIND = "alarm_cleared"

log = logging.getLogger(__name__)


async def touch_station(session: AsyncSession, *, station_id: str, now: datetime) -> Station:
    """The station's row, created (offline) the first time we hear of it; marks it seen.

    A message from a station we never saw born is still accepted: its outbox may hold work
    from before a hub database reset, and refusing it would block that outbox forever.
    """
    station = await session.get(Station, station_id)
    if station is None:
        station = Station(
            id=station_id,
            online=False,
            epoch=0,
            bd_seq=0,
            agent_version="",
            devices=[],
            offline_since=now,
        )
        session.add(station)
        log.info("station %s first seen (not born yet: kept offline)", station_id)
    station.last_seen_at = now
    return station


async def record_birth(session: AsyncSession, *, birth: Birth, now: datetime) -> Station:
    """Mark the station online as the connection ``(epoch, bd_seq)`` announced in ``birth``."""
    station = await touch_station(session, station_id=birth.station_id, now=now)
    station.online = True
    station.epoch = birth.epoch
    station.bd_seq = birth.bd_seq
    station.agent_version = birth.agent_version
    station.devices = [device.model_dump(mode="json") for device in birth.devices]
    station.last_birth_at = now
    station.offline_since = None
    log.info("station %s online (epoch %d, bd_seq %d)", station.id, birth.epoch, birth.bd_seq)
    return station


async def record_death(session: AsyncSession, *, death: Death, now: datetime) -> bool:
    """Mark the station offline if ``death`` names its current connection.

    A Will the broker delivers late, after the station reconnected, names an older
    ``(epoch, bd_seq)``: it is ignored and counted, so a live station is never marked dead.
    """
    station = await session.get(Station, death.station_id)
    current = (station.epoch, station.bd_seq) if station else None
    if station is None or current != (death.epoch, death.bd_seq):
        STALE_DEATHS.inc()
        log.info(
            "ignored stale death of %s: (epoch %d, bd_seq %d), current %s",
            death.station_id,
            death.epoch,
            death.bd_seq,
            current,
        )
        return False
    station.last_seen_at = now
    if station.online:
        station.online = False
        station.offline_since = now
        log.info("station %s offline (epoch %d, bd_seq %d)", station.id, death.epoch, death.bd_seq)
    return True


async def mark_all_offline(session: AsyncSession, *, now: datetime) -> None:
    """At hub start nobody is known to be online until it re-announces (Sparkplug's rule)."""
    await session.execute(
        update(Station)
        .where(Station.online.is_(True))
        .values(online=False, offline_since=now)
        .execution_options(synchronize_session=False)
    )


async def list_stations(session: AsyncSession) -> Sequence[Station]:
    """All known stations by id."""
    return (await session.scalars(select(Station).order_by(Station.id))).all()


async def refresh_online_gauge(session: AsyncSession) -> None:
    """Set the stations-online gauge from the database (the truth across hub processes)."""
    count = await session.scalar(
        select(func.count()).select_from(Station).where(Station.online.is_(True))
    )
    STATIONS_ONLINE.set(count or 0)


async def apply_alarm_event(session: AsyncSession, event: Event, *, now: datetime) -> bool:
    """Raise or clear the station's alarm from an event; True when an alarm was cleared."""
    raises = event.kind in ALARM_KINDS and event.severity in ALARM_SEVERITIES
    if not raises and event.kind != CLEAR_KIND:
        return False
    station = await touch_station(session, station_id=event.station_id, now=now)
    text = f"{event.kind} ({event.device or 'station'}): {event.message}"[:1000]
    return await set_alarm(
        session,
        station=station,
        alarm=text if raises else None,
        actor=f"station:{event.station_id}",
        now=now,
    )


async def set_alarm(
    session: AsyncSession, *, station: Station, alarm: str | None, actor: str, now: datetime
) -> bool:
    """Set (or with None clear) the station's alarm, audited; True when one was cleared."""
    cleared = station.alarm is not None and alarm is None
    if station.alarm == alarm:
        return False
    station.alarm = alarm
    log.warning("station %s alarm %s by %s", station.id, "raised" if alarm else "cleared", actor)
    await audit.append(
        session,
        actor=actor,
        action="alarm_raised" if alarm else "alarm_cleared",
        at=now,
        data={"alarm": alarm},
        station_id=station.id,
    )
    return cleared
