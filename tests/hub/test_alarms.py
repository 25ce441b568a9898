"""Alarms: lifecycle from station events, threshold rules, AlarmNotices, the API, audit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub import alarms
from hub.alarm_rules import RulesError, RuleSet, load_rules
from hub.dispatch import Outgoing
from hub.store.alarms_tables import AlarmRecord
from hub.store.models import AuditEntry, Station
from protocol import topics
from protocol.models import AlarmNotice, Event, Severity, TelemetryPoint, utcnow

pytestmark = pytest.mark.asyncio
Sessions = async_sessionmaker[AsyncSession]
T0 = datetime(2026, 11, 29, 12, 0, tzinfo=utcnow().tzinfo)
RULES = RuleSet.model_validate(
    {
        "rule": [
            {
                "id": "cleaner_overtemp",
                "device": "cleaner",
                "metric": "temperature_c",
                "op": ">",
                "limit": 70,
                "for_s": 10,
                "severity": "major",
                "hysteresis": 5,
                "message": "bath too hot",
            },
            {
                "id": "laser_alarm_state",
                "device": "laser",
                "metric": "state",
                "op": "==",
                "limit": "Alarm",
                "severity": "critical",
            },
        ],
        "clears": {"device_ready": ["device_unavailable", "device_failed"]},
    }
)


@pytest.fixture(autouse=True)
def test_rules() -> Iterator[None]:
    alarms.use_rules(RULES)
    yield
    alarms.use_rules(None)  # the shipped rules again for whatever runs next


def event(kind: str, severity: Severity, seq: int, device: str | None = "scale") -> Event:
    return Event(station_id="st-1", epoch=1, seq=seq, kind=kind, severity=severity, device=device)


def notices(out: list[Outgoing]) -> list[AlarmNotice]:
    assert all(o.topic == topics.down("st-1", topics.Down.ALARM) for o in out)
    return [o.message for o in out if isinstance(o.message, AlarmNotice)]


async def test_event_alarm_lifecycle_counts_repeats_and_reopens_as_new(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        raised = notices(
            await alarms.on_event(session, event("device_unavailable", Severity.MAJOR, 1), T0)
        )
        again = await alarms.on_event(session, event("device_unavailable", Severity.MAJOR, 2), T0)
        info = await alarms.on_event(session, event("config_drift", Severity.WARNING, 3), T0)
    assert [(n.kind, n.state, n.severity) for n in raised] == [
        ("device_unavailable", "active", Severity.MAJOR)
    ]
    assert again == []
    assert info == []
    async with sessions.begin() as session:
        row = await session.get(AlarmRecord, raised[0].alarm_id)
        assert row is not None
        assert row.count == 2
        assert row.state == "active"
        cleared = notices(
            await alarms.on_event(session, event("device_ready", Severity.INFO, 4), T0)
        )
    assert [(n.alarm_id, n.state) for n in cleared] == [(raised[0].alarm_id, "cleared")]
    async with sessions.begin() as session:
        back = notices(
            await alarms.on_event(session, event("device_unavailable", Severity.MAJOR, 5), T0)
        )
        all_rows = (await session.scalars(select(AlarmRecord))).all()
    assert back[0].alarm_id != raised[0].alarm_id
    assert back[0].state == "active"
    assert sorted(r.state for r in all_rows) == ["active", "cleared"]


async def test_acknowledge_then_clear_is_audited_and_cleared_cannot_be_acknowledged(
    sessions: Sessions,
) -> None:
    async with sessions.begin() as session:
        (raised,) = notices(
            await alarms.on_event(session, event("alarm", Severity.CRITICAL, 1), T0)
        )
        alarm = await session.get(AlarmRecord, raised.alarm_id)
        assert alarm is not None
        (acked,) = notices(await alarms.acknowledge(session, alarm, actor="engineer:eve", now=T0))
        assert await alarms.acknowledge(session, alarm, actor="engineer:eve", now=T0) == []
        (cleared,) = notices(await alarms.clear(session, alarm, actor="engineer:eve", now=T0))
        with pytest.raises(alarms.AlarmStateError):
            await alarms.acknowledge(session, alarm, actor="engineer:eve", now=T0)
        audit = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "alarm_state"))
        ).all()
    assert (acked.state, acked.acknowledged_by) == ("acknowledged", "engineer:eve")
    assert cleared.state == "cleared"
    assert [(a.actor, a.data["state"]) for a in audit] == [
        ("event", "active"),
        ("engineer:eve", "acknowledged"),
        ("engineer:eve", "cleared"),
    ]


def temps(*values: float, start: datetime = T0) -> list[TelemetryPoint]:
    return [
        TelemetryPoint(
            device="bath", metric="temperature_c", ts=start + timedelta(seconds=5 * i), value=v
        )
        for i, v in enumerate(values)
    ]


async def test_threshold_needs_for_s_and_clears_only_past_hysteresis(sessions: Sessions) -> None:
    cleaner = {"name": "bath", "family": "cleaner", "model": "sim", "backend": "sim"}
    async with sessions.begin() as session:
        session.add(Station(id="st-1", online=True, epoch=1, bd_seq=0, devices=[cleaner]))
    async with sessions.begin() as session:
        # 71 at 0 s and 5 s: held 5 s < for_s 10 -> nothing yet
        assert await alarms.on_telemetry(session, "st-1", temps(71, 72), T0) == []
    async with sessions.begin() as session:
        later = T0 + timedelta(seconds=10)
        (raised,) = notices(await alarms.on_telemetry(session, "st-1", temps(73, start=later), T0))
    assert (raised.kind, raised.device, raised.severity) == (
        "cleaner_overtemp",
        "bath",
        Severity.MAJOR,
    )
    async with sessions.begin() as session:
        # 68 is below the limit but inside the 5-degree band: still open
        band = T0 + timedelta(seconds=15)
        assert await alarms.on_telemetry(session, "st-1", temps(68, start=band), T0) == []
        (cleared,) = notices(await alarms.on_telemetry(session, "st-1", temps(64, start=band), T0))
        row = await session.get(AlarmRecord, raised.alarm_id)
    assert cleared.state == "cleared"
    assert row is not None
    assert row.last_value == "64"


async def test_text_rule_on_laser_state_is_case_insensitive(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        session.add(
            Station(
                id="st-1",
                online=True,
                epoch=1,
                bd_seq=0,
                devices=[{"name": "laser", "family": "laser"}],
            )
        )
    point = TelemetryPoint(device="laser", metric="state", ts=T0, value="ALARM")
    async with sessions.begin() as session:
        (raised,) = notices(await alarms.on_telemetry(session, "st-1", [point], T0))
    assert raised.severity is Severity.CRITICAL
    idle = point.model_copy(update={"value": "Idle", "ts": T0 + timedelta(seconds=1)})
    async with sessions.begin() as session:
        (cleared,) = notices(await alarms.on_telemetry(session, "st-1", [idle], T0))
    assert cleared.alarm_id == raised.alarm_id
    assert cleared.state == "cleared"


async def test_rules_file_errors_name_the_file_and_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text('[[rule]]\nid = "x"\ndevice = "cleaner"\nmetric = "t"\nop = "=>"\nlimit = 1\n')
    with pytest.raises(RulesError, match=r"rules.toml: invalid alarm rules: rule.0.op"):
        load_rules(bad)
    bad.write_text('[[rule]]\nid = "x"\ndevice = "laser"\nmetric = "s"\nop = ">"\nlimit = "a"\n')
    with pytest.raises(RulesError, match="a text limit needs == or !="):
        load_rules(bad)
    assert len(load_rules().rules) >= 4  # the shipped file is valid


# ---- API ---------------------------------------------------------------------------------------


async def _raise_blocking(hub_app: FastAPI) -> str:
    sessions: Sessions = hub_app.state.runtime.sessions
    async with sessions.begin() as session:
        session.add(Station(id="st-1", online=True, epoch=1, bd_seq=0, devices=[], alarm="laser"))
        (raised,) = notices(
            await alarms.on_event(session, event("device_failed", Severity.MAJOR, 1, "laser"), T0)
        )
    return str(raised.alarm_id)


async def test_api_lists_acknowledges_and_clear_releases_the_station(
    hub_app: FastAPI, api: httpx.AsyncClient
) -> None:
    alarm_id = await _raise_blocking(hub_app)
    listed = (await api.get("/alarms", params={"state": "active", "station": "st-1"})).json()
    assert [a["id"] for a in listed] == [alarm_id]
    technician = {"X-API-Key": "dev-technician-key"}
    denied = await api.post(f"/alarms/{alarm_id}/acknowledge", headers=technician)
    assert denied.status_code == 403
    engineer = {"X-API-Key": "dev-engineer-key"}
    acked = await api.post(f"/alarms/{alarm_id}/acknowledge", headers=engineer)
    assert acked.json()["state"] == "acknowledged"
    assert acked.json()["acknowledged_by"] == "engineer:dev-engineer"
    assert (await api.get("/stations")).json()[0]["alarm"] == "laser"  # ack does not release
    cleared = await api.post(f"/alarms/{alarm_id}/clear", headers=engineer)
    assert cleared.json()["state"] == "cleared"
    assert (await api.get("/stations")).json()[0]["alarm"] is None
    again = await api.post(f"/alarms/{alarm_id}/acknowledge", headers=engineer)
    assert again.status_code == 409
    assert (await api.post("/alarms/00000000-0000-0000-0000-000000000000/clear")).status_code == 404
    metrics = (await api.get("/metrics")).text
    assert 'benchfleet_hub_alarms_open{severity="major",state="active"} 0.0' in metrics
