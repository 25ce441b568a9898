"""Dashboard sign-in and data over the real app (in-process), and the station's alarm store."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agent.alarms import StationAlarms
from hub import alarms
from hub.dashboard import queries
from hub.store.models import Station, TelemetryPointRecord
from protocol.models import AlarmNotice, Event, Severity, utcnow

pytestmark = pytest.mark.asyncio


async def test_dashboard_needs_an_engineer_sign_in(hub_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=hub_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as browser:
        first = await browser.get("/dashboard")
        assert first.status_code == 303
        assert first.headers["location"] == "/dashboard/login"
        stream = await browser.get("/dashboard/stream/overview")
        assert stream.status_code == 401
        refused = await browser.post("/dashboard/login", data={"api_key": "dev-technician-key"})
        assert refused.status_code == 401
        signed_in = await browser.post("/dashboard/login", data={"api_key": "dev-engineer-key"})
        assert signed_in.status_code == 303
        page = await browser.get("/dashboard")
        assert page.status_code == 200
        assert "engineer:dev-engineer" in page.text
        assert "/dashboard/static/dashboard.js" in page.text
        assert (await browser.get("/dashboard/static/dashboard.js")).status_code == 200
        assert (await browser.get("/dashboard/static/../app.py")).status_code == 404
        # the cookie alone cannot act: a cross-site form cannot send X-Dashboard
        missing = f"/dashboard/alarms/{uuid.uuid4()}/acknowledge"
        assert (await browser.post(missing)).status_code == 403
        assert (await browser.post(missing, headers={"X-Dashboard": "1"})).status_code == 404


async def test_forged_session_cookie_is_refused(hub_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=hub_app)
    forged = {"benchfleet_dashboard": "dev-admin|admin|9999999999|" + "0" * 64}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://hub", cookies=forged
    ) as browser:
        assert (await browser.get("/dashboard")).status_code == 303


def notice(alarm_id: uuid.UUID, state: str, seconds: int) -> AlarmNotice:
    now = utcnow()
    return AlarmNotice.model_validate(
        {
            "alarm_id": alarm_id,
            "station_id": "st-1",
            "device": "cleaner",
            "kind": "cleaner_overtemp",
            "severity": Severity.MAJOR,
            "state": state,
            "since": now,
            "updated_at": now.replace(microsecond=0).timestamp() + seconds,
        }
    )


async def test_station_keeps_the_newest_notice_across_restarts(tmp_path: Path) -> None:
    alarm_id = uuid.uuid4()
    db = sqlite3.connect(tmp_path / "agent.sqlite3")
    store = StationAlarms(db)
    assert store.on_alarm(notice(alarm_id, "active", 0))
    assert store.on_alarm(notice(alarm_id, "acknowledged", 2))
    assert not store.on_alarm(notice(alarm_id, "active", 1))  # late resend of an older one
    assert [a.state for a in store.open_alarms()] == ["acknowledged"]
    db.close()
    reopened = StationAlarms(sqlite3.connect(tmp_path / "agent.sqlite3"))
    assert [a.state for a in reopened.open_alarms()] == ["acknowledged"]
    assert reopened.on_alarm(notice(alarm_id, "cleared", 3))
    assert reopened.open_alarms() == []


async def test_dashboard_queries_on_both_databases(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = utcnow()
    async with sessions.begin() as session:
        session.add(Station(id="st-1", online=True, epoch=1, bd_seq=0, devices=[], alarm=None))
        for i in range(5):
            ts = now - timedelta(seconds=5 - i)
            for metric, value in (("cpu_percent", 10.0 + i), ("state", None)):
                session.add(
                    TelemetryPointRecord(
                        station_id="st-1",
                        device="station",
                        metric=metric,
                        ts=ts,
                        value_num=value,
                        value_text=None if value is not None else "Idle",
                        historical=False,
                    )
                )
        event = Event(station_id="st-1", epoch=1, seq=1, kind="alarm", severity=Severity.MAJOR)
        await alarms.on_event(session, event, now)
    async with sessions() as session:
        overview = await queries.overview(session, now=now)
        series, cursor = await queries.station_points(
            session, "st-1", after_id=0, since=now - timedelta(minutes=10)
        )
        newer, same_cursor = await queries.station_points(
            session, "st-1", after_id=cursor, since=now - timedelta(minutes=10)
        )
    assert (overview["online"], overview["offline"]) == (1, 0)
    assert [a["kind"] for a in overview["alarms"]] == ["alarm"]
    assert overview["stations"][0]["open_alarms"] == 1
    cpu = next(s for s in series if s["metric"] == "cpu_percent")
    assert [p[1] for p in cpu["points"]] == [10.0, 11.0, 12.0, 13.0, 14.0]
    state = next(s for s in series if s["metric"] == "state")
    assert state["points"][-1][1] == "Idle"
    assert newer == []  # the cursor moved past every row
    assert same_cursor == cursor
