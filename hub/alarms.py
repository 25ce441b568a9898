"""Station alarms with a lifecycle: active -> acknowledged -> cleared (or active -> cleared).

Sources: station events (:func:`on_event`: severity minor or worse raises, the ``[clears]`` of
the rules file clear) and telemetry thresholds (:func:`on_telemetry`, rules in
:mod:`hub.alarm_rules`). A repeated raise of an open alarm bumps its ``count``; an alarm that
comes back after it was cleared is a new alarm. Every change of state is audited and returns an
:class:`AlarmNotice` for the station, which the caller publishes after its commit.

The station's blocking ``alarm`` column (no new work, :mod:`hub.stations`) is kept as it was;
clearing the last blocking alarm here (POST /alarms/{id}/clear) releases the station too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub import audit
from hub.alarm_rules import DEFAULT_RULES_PATH, Decision, RuleSet, ThresholdTracker, load_rules
from hub.dispatch import Outgoing
from hub.metrics import ALARMS_OPEN
from hub.stations import ALARM_KINDS, ALARM_SEVERITIES, set_alarm
from hub.store.alarms_tables import AlarmRecord
from hub.store.models import Station
from protocol import topics
from protocol.models import AlarmNotice, Event, Severity, TelemetryPoint

log = logging.getLogger(__name__)

ACTIVE, ACKNOWLEDGED, CLEARED = "active", "acknowledged", "cleared"
OPEN_STATES = (ACTIVE, ACKNOWLEDGED)
SEVERITY_RANK = {s.value: rank for rank, s in enumerate(Severity)}
RAISES_FROM = SEVERITY_RANK[Severity.MINOR.value]


class AlarmStateError(ValueError):
    """The asked transition is not allowed from the alarm's state (the API answers 409)."""


@dataclass
class _Config:
    rules: RuleSet | None = None
    tracker: ThresholdTracker | None = None


_config = _Config()


def use_rules(rules: RuleSet | Path | None) -> RuleSet:
    """Use ``rules`` (a set, a file, or None for hub/data/alarm_rules.toml) from now on."""
    loaded = rules if isinstance(rules, RuleSet) else load_rules(rules or DEFAULT_RULES_PATH)
    _config.rules, _config.tracker = loaded, ThresholdTracker()
    return loaded


def current_rules() -> RuleSet:
    return _config.rules or use_rules(None)


def _tracker() -> ThresholdTracker:
    if _config.tracker is None:
        use_rules(_config.rules)
    assert _config.tracker is not None
    return _config.tracker


# ---- sources ---------------------------------------------------------------------------------


async def on_event(session: AsyncSession, event: Event, now: datetime) -> list[Outgoing]:
    """Raise or clear alarms from a station event (in the caller's transaction)."""
    cleared_kinds = current_rules().clears.get(event.kind)
    if cleared_kinds:
        out: list[Outgoing] = []
        for alarm in await _open_alarms(session, event.station_id, event.device, cleared_kinds):
            out += await clear(session, alarm, actor=f"station:{event.station_id}", now=now)
        return out
    if SEVERITY_RANK[event.severity.value] < RAISES_FROM:
        return []
    return await raise_alarm(
        session,
        station_id=event.station_id,
        device=event.device,
        kind=event.kind,
        severity=event.severity.value,
        message=event.message,
        source="event",
        now=now,
    )


async def on_telemetry(
    session: AsyncSession, station_id: str, points: Sequence[TelemetryPoint], now: datetime
) -> list[Outgoing]:
    """Evaluate the threshold rules on ``points`` of ``station_id``; raise or clear alarms."""
    rules = current_rules()
    if not rules.rules or not points:
        return []
    families = await _families(session, station_id)
    out: list[Outgoing] = []
    for decision in _tracker().evaluate(rules, station_id, points, families):
        out += await _apply_decision(session, station_id, decision, now)
    return out


async def _apply_decision(
    session: AsyncSession, station_id: str, decision: Decision, now: datetime
) -> list[Outgoing]:
    rule = decision.rule
    if decision.raise_alarm:
        return await raise_alarm(
            session,
            station_id=station_id,
            device=decision.device,
            kind=rule.id,
            severity=rule.severity,
            message=f"{rule.message or rule.id} (value {decision.value})",
            source=f"rule:{rule.id}",
            value=decision.value,
            now=now,
        )
    out: list[Outgoing] = []
    for alarm in await _open_alarms(session, station_id, decision.device, (rule.id,)):
        alarm.last_value = str(decision.value)[:200]
        out += await clear(session, alarm, actor=f"rule:{rule.id}", now=now)
    return out


async def _families(session: AsyncSession, station_id: str) -> dict[str, str]:
    """Device name -> family, from the station's last birth."""
    station = await session.get(Station, station_id)
    devices = station.devices if station is not None else []
    return {str(d.get("name")): str(d.get("family")) for d in devices if isinstance(d, dict)}


# ---- lifecycle -------------------------------------------------------------------------------


def open_key(station_id: str, device: str | None, kind: str) -> str:
    return f"{station_id}|{device or ''}|{kind}"


async def raise_alarm(
    session: AsyncSession,
    *,
    station_id: str,
    device: str | None,
    kind: str,
    severity: str,
    message: str,
    source: str,
    now: datetime,
    value: object = None,
) -> list[Outgoing]:
    """Open a new alarm, or bump the count of the open one with the same key."""
    key = open_key(station_id, device, kind)
    alarm = await session.scalar(select(AlarmRecord).where(AlarmRecord.open_key == key))
    last_value = None if value is None else str(value)[:200]
    if alarm is not None:
        alarm.count += 1
        alarm.updated_at, alarm.message = now, message[:1024]
        alarm.last_value = last_value or alarm.last_value
        if SEVERITY_RANK[severity] <= SEVERITY_RANK[alarm.severity]:
            return []  # the same alarm again: counted, nothing new to tell the station
        alarm.severity = severity  # it got worse: that is news
        return await _changed(session, alarm, actor=source, now=now)
    alarm = AlarmRecord(
        station_id=station_id,
        device=device,
        kind=kind,
        source=source,
        severity=severity,
        state=ACTIVE,
        message=message[:1024],
        open_key=key,
        since=now,
        updated_at=now,
        count=1,
        last_value=last_value,
    )
    session.add(alarm)
    await session.flush()  # the id, and the unique open key checked now
    return await _changed(session, alarm, actor=source, now=now)


async def acknowledge(
    session: AsyncSession, alarm: AlarmRecord, *, actor: str, now: datetime
) -> list[Outgoing]:
    """An engineer saw it. Only an active alarm can be acknowledged; twice is a no-op."""
    if alarm.state == ACKNOWLEDGED:
        return []
    if alarm.state != ACTIVE:
        raise AlarmStateError(f"alarm {alarm.id} is {alarm.state}: cannot acknowledge")
    alarm.state, alarm.acknowledged_at, alarm.acknowledged_by = ACKNOWLEDGED, now, actor[:80]
    alarm.updated_at = now
    return await _changed(session, alarm, actor=actor, now=now)


async def clear(
    session: AsyncSession, alarm: AlarmRecord, *, actor: str, now: datetime
) -> list[Outgoing]:
    """The condition is gone (or an engineer says so). Clearing twice is a no-op."""
    if alarm.state == CLEARED:
        return []
    alarm.state, alarm.open_key = CLEARED, None
    alarm.cleared_at, alarm.cleared_by, alarm.updated_at = now, actor[:80], now
    if alarm.source.startswith("rule:"):
        _tracker().forget((alarm.station_id, alarm.device or "", alarm.kind))
    return await _changed(session, alarm, actor=actor, now=now)


async def release_station_if_unblocked(
    session: AsyncSession, alarm: AlarmRecord, *, actor: str, now: datetime
) -> bool:
    """After ``alarm`` was cleared by hand: if it was the kind that keeps work away and no
    other such alarm is open on its station, clear the station's alarm. True if released."""
    if alarm.kind not in ALARM_KINDS or alarm.severity not in ALARM_SEVERITIES:
        return False
    still_blocking = await session.scalar(
        select(func.count())
        .select_from(AlarmRecord)
        .where(
            AlarmRecord.station_id == alarm.station_id,
            AlarmRecord.state.in_(OPEN_STATES),
            AlarmRecord.kind.in_(ALARM_KINDS),
            AlarmRecord.severity.in_(ALARM_SEVERITIES),
        )
    )
    station = await session.get(Station, alarm.station_id)
    if still_blocking or station is None:
        return False
    return await set_alarm(session, station=station, alarm=None, actor=actor, now=now)


async def _changed(
    session: AsyncSession, alarm: AlarmRecord, *, actor: str, now: datetime
) -> list[Outgoing]:
    """Audit a change of state, refresh the gauge, and tell the station."""
    log.warning(
        "alarm %s of %s (%s, %s, %s): %s by %s",
        alarm.id,
        alarm.station_id,
        alarm.device or "station",
        alarm.kind,
        alarm.severity,
        alarm.state,
        actor,
    )
    await audit.append(
        session,
        actor=actor[:80],
        action="alarm_state",
        at=now,
        station_id=alarm.station_id,
        data={
            "alarm_id": str(alarm.id),
            "state": alarm.state,
            "kind": alarm.kind,
            "device": alarm.device,
            "severity": alarm.severity,
            "count": alarm.count,
        },
    )
    await refresh_open_gauge(session)
    return [Outgoing(topics.down(alarm.station_id, topics.Down.ALARM), notice(alarm))]


def notice(alarm: AlarmRecord) -> AlarmNotice:
    """The wire form of ``alarm`` for its station."""
    return AlarmNotice(
        alarm_id=alarm.id,
        station_id=alarm.station_id,
        device=alarm.device,
        kind=alarm.kind,
        severity=Severity(alarm.severity),
        state=alarm.state,  # one of AlarmState by construction (validated by pydantic)
        message=alarm.message,
        since=alarm.since,
        updated_at=alarm.updated_at,
        acknowledged_by=alarm.acknowledged_by[:64] if alarm.acknowledged_by else None,
    )


# ---- queries ---------------------------------------------------------------------------------


async def _open_alarms(
    session: AsyncSession, station_id: str, device: str | None, kinds: Sequence[str]
) -> Sequence[AlarmRecord]:
    query = select(AlarmRecord).where(
        AlarmRecord.station_id == station_id,
        AlarmRecord.state.in_(OPEN_STATES),
        AlarmRecord.kind.in_(kinds),
    )
    if device is not None:
        query = query.where(AlarmRecord.device == device)
    return (await session.scalars(query.order_by(AlarmRecord.since))).all()


async def list_alarms(
    session: AsyncSession,
    *,
    state: str | None = None,
    station_id: str | None = None,
    limit: int = 200,
) -> Sequence[AlarmRecord]:
    """Alarms newest first; ``state="open"`` means active or acknowledged."""
    query = select(AlarmRecord)
    if state == "open":
        query = query.where(AlarmRecord.state.in_(OPEN_STATES))
    elif state:
        query = query.where(AlarmRecord.state == state)
    if station_id:
        query = query.where(AlarmRecord.station_id == station_id)
    rows = await session.scalars(query.order_by(AlarmRecord.since.desc()).limit(limit))
    return rows.all()


async def refresh_open_gauge(session: AsyncSession) -> None:
    """Set the open-alarms gauge (by severity and state) from the database."""
    counts = await session.execute(
        select(AlarmRecord.severity, AlarmRecord.state, func.count())
        .where(AlarmRecord.state.in_(OPEN_STATES))
        .group_by(AlarmRecord.severity, AlarmRecord.state)
    )
    found = {(severity, state): n for severity, state, n in counts}
    for severity in SEVERITY_RANK:
        for state in OPEN_STATES:
            ALARMS_OPEN.labels(severity=severity, state=state).set(found.get((severity, state), 0))
