"""The job engine on SQLite and PostgreSQL: orders, assignment, the state machine, reassignment."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from itertools import count

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.jobs import (
    OrderConflictError,
    apply_station_update,
    assign_queued,
    create_order,
    open_jobs_for_station,
    reassign_stale,
)
from hub.settings import HubSettings
from hub.store.models import Job, JobTransition, Station
from hub.transitions import HUB_ACTOR, move_job
from protocol.models import JobStatus, JobUpdate, StationJobStatus, utcnow

Sessions = async_sessionmaker[AsyncSession]
S = StationJobStatus
_seq = count(1)


def add_station(
    session: AsyncSession,
    station_id: str,
    *,
    online: bool = True,
    offline_since: datetime | None = None,
    epoch: int = 1,
    bd_seq: int = 0,
) -> Station:
    station = Station(
        id=station_id,
        online=online,
        epoch=epoch,
        bd_seq=bd_seq,
        agent_version="test",
        devices=[],
        offline_since=offline_since,
    )
    session.add(station)
    return station


def job_update(
    station_id: str,
    job_id: uuid.UUID,
    status: StationJobStatus,
    expected_version: int,
    *,
    epoch: int = 1,
    seq: int | None = None,
    detail: str = "",
) -> JobUpdate:
    return JobUpdate(
        station_id=station_id,
        epoch=epoch,
        seq=seq if seq is not None else next(_seq),
        job_id=job_id,
        expected_version=expected_version,
        status=status,
        detail=detail,
    )


async def _order(session: AsyncSession, external_id: str = "o-1", text: str = "Anna") -> Job:
    _, job, _ = await create_order(
        session, external_id=external_id, sku="RING-1", serial="SN1", engraving_text=text
    )
    return job


@pytest.mark.asyncio
async def test_create_order_is_idempotent_and_detects_conflicts(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        order, job, created = await create_order(
            session, external_id="o-1", sku="RING-1", serial="SN1", engraving_text="Anna"
        )
    assert created
    assert (job.status, job.version) == ("queued", 1)
    async with sessions.begin() as session:
        again, same_job, created = await create_order(
            session, external_id="o-1", sku="RING-1", serial="SN1", engraving_text="Anna"
        )
        assert not created
        assert (again.id, same_job.id) == (order.id, job.id)
        with pytest.raises(OrderConflictError, match="different content"):
            await create_order(
                session, external_id="o-1", sku="RING-1", serial="SN1", engraving_text="Anne"
            )


@pytest.mark.asyncio
async def test_assigns_to_least_loaded_online_station(sessions: Sessions) -> None:
    now = utcnow()
    async with sessions.begin() as session:
        add_station(session, "st-a")
        add_station(session, "st-b")
        add_station(session, "st-off", online=False, offline_since=now)
        jobs = [await _order(session, f"o-{i}") for i in range(3)]
        assigned = await assign_queued(session, now=now)
    assert [j.id for j in assigned] == [j.id for j in jobs]
    assert [j.station_id for j in assigned] == ["st-a", "st-b", "st-a"]
    assert all((j.status, j.version) == ("assigned", 2) for j in assigned)
    async with sessions.begin() as session:
        await _order(session, "o-3")
        (fourth,) = await assign_queued(session, now=now)
        history = (await session.scalars(select(JobTransition.to_status))).all()
    assert fourth.station_id == "st-b"
    assert history.count("assigned") == 4


@pytest.mark.asyncio
async def test_no_online_station_leaves_job_queued(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        add_station(session, "st-a", online=False)
        job = await _order(session)
        assert await assign_queued(session, now=utcnow()) == []
    assert job.status == "queued"


async def _assigned_job(sessions: Sessions, station: str = "st-a") -> Job:
    async with sessions.begin() as session:
        add_station(session, station)
        job = await _order(session)
        await assign_queued(session, now=utcnow())
    return job


@pytest.mark.asyncio
async def test_happy_path_and_start_gate(sessions: Sessions) -> None:
    job = await _assigned_job(sessions)
    async with sessions.begin() as session:
        for status, version in ((S.ACKNOWLEDGED, 2), (S.RUNNING, 3), (S.DONE, 4)):
            result = await apply_station_update(
                session, station_id="st-a", update=job_update("st-a", job.id, status, version)
            )
            assert result.accepted, result.reason
            assert result.state is not None
            assert result.state.version == version + 1
        final = await session.get(Job, job.id)
    assert final is not None
    assert (final.status, final.version, final.started) == ("done", 5, True)


@pytest.mark.asyncio
async def test_version_mismatch_is_rejected_with_current_state(sessions: Sessions) -> None:
    job = await _assigned_job(sessions)
    async with sessions.begin() as session:
        result = await apply_station_update(
            session, station_id="st-a", update=job_update("st-a", job.id, S.ACKNOWLEDGED, 1)
        )
    assert not result.accepted
    assert result.reason == "version mismatch: expected 1, current 2"
    assert result.state is not None
    assert (result.state.status, result.state.version) == (JobStatus.ASSIGNED, 2)


@pytest.mark.asyncio
async def test_wrong_station_and_bad_transition_are_rejected(sessions: Sessions) -> None:
    job = await _assigned_job(sessions)
    async with sessions.begin() as session:
        add_station(session, "st-x")
        other = await apply_station_update(
            session, station_id="st-x", update=job_update("st-x", job.id, S.ACKNOWLEDGED, 2)
        )
        jump = await apply_station_update(
            session, station_id="st-a", update=job_update("st-a", job.id, S.DONE, 2)
        )
    assert not other.accepted
    assert "not assigned to station st-x" in (other.reason or "")
    assert not jump.accepted
    assert "assigned -> done is not allowed" in (jump.reason or "")


@pytest.mark.asyncio
async def test_failure_after_start_goes_to_needs_review(sessions: Sessions) -> None:
    job = await _assigned_job(sessions)
    async with sessions.begin() as session:
        for status, version in ((S.ACKNOWLEDGED, 2), (S.RUNNING, 3)):
            await apply_station_update(
                session, station_id="st-a", update=job_update("st-a", job.id, status, version)
            )
        result = await apply_station_update(
            session,
            station_id="st-a",
            update=job_update("st-a", job.id, S.FAILED, 4, detail="laser alarm 1"),
        )
        last = (
            await session.scalars(select(JobTransition).order_by(JobTransition.id.desc()))
        ).first()
    assert result.accepted
    assert result.state is not None
    assert result.state.status is JobStatus.NEEDS_REVIEW
    assert last is not None
    assert (last.to_status, last.reason, last.actor) == (
        "needs_review",
        "laser alarm 1",
        "station:st-a",
    )


SETTINGS = HubSettings(
    reassign_after_offline_s=3, ack_timeout_s=60, startup_grace_s=5, _env_file=None
)


@pytest.mark.asyncio
async def test_offline_station_jobs_requeued_but_never_started_ones(sessions: Sessions) -> None:
    now = utcnow()
    async with sessions.begin() as session:
        add_station(session, "st-a")
        add_station(session, "st-b", online=False)
        unstarted = await _order(session, "o-1")
        started = await _order(session, "o-2")
        await assign_queued(session, now=now)  # both go to st-a, the only online station
        for status, version in ((S.ACKNOWLEDGED, 2), (S.RUNNING, 3)):
            await apply_station_update(
                session, station_id="st-a", update=job_update("st-a", started.id, status, version)
            )
        add_station(session, "st-c")
        station = await session.get_one(Station, "st-a")
        station.online, station.offline_since = False, now - timedelta(seconds=10)
        await session.flush()
        hub_start = now - timedelta(seconds=60)
        requeued = await reassign_stale(
            session, now=now, settings=SETTINGS, hub_started_at=hub_start
        )
        assert [j.id for j in requeued] == [unstarted.id]
        assert unstarted.status == "queued"
        assert unstarted.station_id is None
        (moved,) = await assign_queued(session, now=now)
        assert moved.station_id == "st-c"
        await session.refresh(started)
        assert (started.status, started.station_id) == ("running", "st-a")


@pytest.mark.asyncio
async def test_startup_grace_delays_offline_reassignment(sessions: Sessions) -> None:
    now = utcnow()
    job = await _assigned_job(sessions)
    async with sessions.begin() as session:
        station = await session.get_one(Station, "st-a")
        station.online, station.offline_since = False, now - timedelta(seconds=30)
        await session.flush()
        early = await reassign_stale(
            session, now=now, settings=SETTINGS, hub_started_at=now - timedelta(seconds=2)
        )
        later = await reassign_stale(
            session, now=now, settings=SETTINGS, hub_started_at=now - timedelta(seconds=6)
        )
    assert early == []
    assert [j.id for j in later] == [job.id]


@pytest.mark.asyncio
async def test_unacknowledged_assignment_times_out(sessions: Sessions) -> None:
    job = await _assigned_job(sessions)
    later = utcnow() + timedelta(seconds=61)
    async with sessions.begin() as session:
        requeued = await reassign_stale(
            session, now=later, settings=SETTINGS, hub_started_at=utcnow()
        )
        assert [j.id for j in requeued] == [job.id]
        history = (await session.scalars(select(JobTransition.reason))).all()
        assert any("did not acknowledge" in reason for reason in history)
        assert await open_jobs_for_station(session, station_id="st-a") == []


@pytest.mark.postgres
@pytest.mark.asyncio
async def test_double_assign_race_has_one_winner(pg_sessions: Sessions) -> None:
    sessions = pg_sessions
    async with sessions.begin() as session:
        job_id = (await _order(session)).id
    now = utcnow()
    async with sessions() as first, sessions() as second:
        job_a = await first.get_one(Job, job_id)
        job_b = await second.get_one(Job, job_id)
        won_a = await move_job(
            first,
            job=job_a,
            to_status=JobStatus.ASSIGNED,
            actor=HUB_ACTOR,
            reason="a",
            now=now,
            station_id="st-a",
        )
        # second blocks on the row lock until first commits, then finds version 2 != 1.
        racing = asyncio.create_task(
            move_job(
                second,
                job=job_b,
                to_status=JobStatus.ASSIGNED,
                actor=HUB_ACTOR,
                reason="b",
                now=now,
                station_id="st-b",
            )
        )
        await asyncio.sleep(0.2)
        assert not racing.done()
        await first.commit()
        won_b = await racing
        await second.commit()
    assert (won_a, won_b) == (True, False)
    async with sessions() as session:
        final = await session.get_one(Job, job_id)
        moves = (
            await session.scalars(select(JobTransition).where(JobTransition.version == 2))
        ).all()
    assert (final.station_id, final.version) == ("st-a", 2)
    assert len(moves) == 1
