"""Routing by capability and health, earliest deadline first with rush priority, a bounded
station backlog, and promises from the real queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.jobs import assign_queued
from hub.plan import build_steps, estimate_seconds
from hub.promise import quote
from hub.settings import HubSettings
from protocol.models import utcnow

Sessions = async_sessionmaker[AsyncSession]
CAMERA = {"name": "cam", "family": "camera"}


def laser(**caps: Any) -> dict[str, Any]:
    return {"name": "laser", "family": "laser", **caps}


@pytest.mark.parametrize(
    ("devices", "line", "routable"),
    [
        ([laser(), CAMERA], {}, True),
        ([laser()], {}, False),  # no camera for the photo steps
        ([CAMERA], {}, False),  # no laser
        ([laser(field_mm=30), CAMERA], {}, False),  # ring_band needs 40 mm
        ([laser(field_mm=110), CAMERA], {}, True),
        ([laser(fonts=["timesr"]), CAMERA], {}, False),  # futural not announced
        ([laser(), CAMERA], {"cleaning": {"method": "ultrasonic"}}, False),  # no cleaner
        (
            [laser(), CAMERA, {"name": "bath", "family": "cleaner", "cleaning": ["steam"]}],
            {"cleaning": {"method": "ultrasonic"}},
            False,
        ),
        (
            [laser(), CAMERA, {"name": "bath", "family": "cleaner", "cleaning": ["ultrasonic"]}],
            {"cleaning": {"method": "ultrasonic"}},
            True,
        ),
        ([laser(), CAMERA], {"certificate": {"kind": "coa", "number": "COA-1"}}, False),
    ],
)
@pytest.mark.asyncio
async def test_capability_routing(
    sessions: Sessions, h: Any, devices: list[dict[str, Any]], line: dict[str, Any], routable: bool
) -> None:
    async with sessions.begin() as session:
        session.add(h.station("st-a", devices=devices))
        await h.new_order(session, **line)
        assigned = await assign_queued(session, now=utcnow())
    assert bool(assigned) is routable


@pytest.mark.asyncio
async def test_overdue_scale_calibration_is_not_routed(sessions: Sessions, h: Any) -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    scale = {"name": "scale", "family": "scale", "calibration_due": "2026-05-31"}
    fresh = {**scale, "calibration_due": "2026-06-30"}
    steps = build_steps(h.order_request().lines[0], weigh=True)
    assert "inspect_in_weight" in [s.name for s in steps]
    async with sessions.begin() as session:
        session.add(h.station("st-old", devices=[laser(), CAMERA, scale]))
        session.add(h.station("st-new", devices=[laser(), CAMERA, fresh]))
        await session.flush()
        job = await h.new_order(session, now=now)
        job.steps = [s.model_dump(mode="json") for s in steps]
        (assigned,) = await assign_queued(session, now=now)
    assert assigned.station_id == "st-new"


@pytest.mark.asyncio
async def test_alarm_keeps_work_away(sessions: Sessions, h: Any) -> None:
    async with sessions.begin() as session:
        session.add(h.station("st-a", alarm="device_failed (laser): door open"))
        session.add(h.station("st-b"))
        await h.new_order(session)
        (job,) = await assign_queued(session, now=utcnow())
    assert job.station_id == "st-b"


@pytest.mark.asyncio
async def test_rush_then_earliest_deadline_and_bounded_backlog(sessions: Sessions, h: Any) -> None:
    now = utcnow()
    async with sessions.begin() as session:
        session.add(h.station("st-a"))
        late = await h.new_order(session, "late", due_in=timedelta(days=3), now=now)
        soon = await h.new_order(session, "soon", due_in=timedelta(hours=5), now=now)
        rush = await h.new_order(session, "rush", due_in=timedelta(days=5), now=now, rush=True)
        first = await assign_queued(session, now=now, max_open=2)
        assert [j.id for j in first] == [rush.id, soon.id]
        assert late.status == "queued"  # waits at the hub: a later rush order may overtake it
        urgent = await h.new_order(session, "urgent", due_in=timedelta(hours=1), now=now)
        assert await assign_queued(session, now=now, max_open=2) == []
        assert [j.id for j in await assign_queued(session, now=now, max_open=3)] == [urgent.id]


@pytest.mark.asyncio
async def test_promise_grows_with_the_queue_and_respects_cutoff(sessions: Sessions, h: Any) -> None:
    settings = HubSettings(_env_file=None, timezone="UTC")  # type: ignore[call-arg]
    monday_morning = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)  # a Monday
    steps = build_steps(h.order_request().lines[0], weigh=False)
    own = estimate_seconds(steps, 10)
    async with sessions.begin() as session:
        none = await quote(
            session, steps=steps, own_s=own, rush=False, now=monday_morning, settings=settings
        )
        assert not none.feasible
        assert none.reason is not None
        session.add(h.station("st-a"))
        await session.flush()
        empty = await quote(
            session, steps=steps, own_s=own, rush=False, now=monday_morning, settings=settings
        )
        for i in range(20):
            await h.new_order(session, f"q-{i}", now=monday_morning)
        busy = await quote(
            session, steps=steps, own_s=own, rush=False, now=monday_morning, settings=settings
        )
        rush = await quote(
            session, steps=steps, own_s=own, rush=True, now=monday_morning, settings=settings
        )
        evening = monday_morning.replace(hour=15)
        late = await quote(
            session, steps=steps, own_s=own, rush=False, now=evening, settings=settings
        )
    assert empty.promised_by is not None
    assert busy.promised_by is not None
    assert empty.promised_by == monday_morning + timedelta(seconds=own * 1.2)
    assert busy.promised_by > empty.promised_by
    assert busy.basis["jobs_ahead"] == 20
    assert rush.promised_by == empty.promised_by  # no rush work ahead of it
    assert late.basis["cutoff_missed"] is True
    assert late.promised_by is not None
    assert late.promised_by.date() == datetime(2026, 6, 2).date()


@pytest.mark.asyncio
async def test_promise_and_cutoff_endpoints(api: httpx.AsyncClient) -> None:
    offer = (
        await api.get("/promise", params={"sku": "RING-14K-6", "template": "ring_band"})
    ).json()
    assert offer["feasible"] is False  # no station online yet
    assert "no online station" in offer["reason"]
    bad = await api.get("/promise", params={"sku": "RING-14K-6", "template": "pendant_disc"})
    assert bad.status_code == 422
    cutoffs = (await api.get("/cutoffs")).json()
    assert cutoffs["standard_cutoff"] == "14:00"
    catalogue = (await api.get("/catalogue")).json()
    assert catalogue["templates"]["ring_band"]["max_chars"] == 24
