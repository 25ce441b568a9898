"""The job engine on SQLite and PostgreSQL: orders, assignment, the state machine with steps,
verification, reassignment, and the guard that never retries irreversible work."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from itertools import count
from typing import Any

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
from hub.store.models import EvidenceRecord, Job, JobTransition, Station
from hub.transitions import HUB_ACTOR, move_job
from protocol.models import Evidence, JobStatus, JobUpdate, StationJobStatus, utcnow

Sessions = async_sessionmaker[AsyncSession]
S = StationJobStatus
_seq = count(1)
SHA = "ab" * 32


def job_update(
    station_id: str,
    job_id: uuid.UUID,
    status: StationJobStatus,
    expected_version: int,
    *,
    step: str | None = None,
    phase: str | None = None,
    evidence: list[Evidence] | None = None,
    detail: str = "",
) -> JobUpdate:
    return JobUpdate.model_validate(
        {
            "station_id": station_id,
            "epoch": 1,
            "seq": next(_seq),
            "job_id": job_id,
            "expected_version": expected_version,
            "status": status,
            "step": step,
            "step_phase": phase,
            "detail": detail,
            "evidence": evidence or [],
        }
    )


def proof(step: str, kind: str = "photo") -> Evidence:
    return Evidence.model_validate({"step": step, "kind": kind, "sha256": SHA})


async def send(session: AsyncSession, job: Job, status: StationJobStatus, **kw: Any) -> Any:
    update = job_update(job.station_id or "st-a", job.id, status, job.version, **kw)
    result = await apply_station_update(session, station_id=update.station_id, update=update)
    await session.refresh(job)
    return result


async def walk_steps(session: AsyncSession, job: Job, *, skip_evidence: str = "") -> None:
    """Report every step of the engraving plan as a station would."""
    for step in ("inspect_in_photo", "engrave", "engraving_photo", "inspect_out_photo"):
        kind = "gcode" if step == "engrave" else "photo"
        if step == "engrave":
            assert (await send(session, job, S.RUNNING, step=step, phase="start")).accepted
        evidence = [] if step == skip_evidence else [proof(step, kind)]
        result = await send(session, job, S.RUNNING, step=step, phase="done", evidence=evidence)
        assert result.accepted, result.reason


@pytest.mark.asyncio
async def test_create_order_is_idempotent_and_detects_conflicts(sessions: Sessions, h: Any) -> None:
    now = utcnow()
    request = h.order_request("o-1", "Anna")
    async with sessions.begin() as session:
        order, jobs, created = await create_order(
            session, request=request, due_at=now + timedelta(days=1), now=now
        )
    assert created
    assert [(j.status, j.version) for j in jobs] == [("queued", 1)]
    assert [s["name"] for s in jobs[0].steps] == [
        "inspect_in_photo",
        "engrave",
        "engraving_photo",
        "inspect_out_photo",
    ]
    async with sessions.begin() as session:
        again, same, created = await create_order(session, request=request, due_at=now, now=now)
        assert not created
        assert (again.id, [j.id for j in same]) == (order.id, [j.id for j in jobs])
        changed = h.order_request("o-1", "Anne")
        with pytest.raises(OrderConflictError, match="different content"):
            await create_order(session, request=changed, due_at=now, now=now)


@pytest.mark.asyncio
async def test_assigns_to_least_loaded_online_station(sessions: Sessions, h: Any) -> None:
    now = utcnow()
    async with sessions.begin() as session:
        session.add_all([h.station("st-a"), h.station("st-b")])
        session.add(h.station("st-off", online=False, offline_since=now))
        jobs = [
            await h.new_order(session, f"o-{i}", now=now + timedelta(seconds=i)) for i in range(3)
        ]
        assigned = await assign_queued(session, now=now)
    assert [j.id for j in assigned] == [j.id for j in jobs]
    assert [j.station_id for j in assigned] == ["st-a", "st-b", "st-a"]
    assert all((j.status, j.version) == ("assigned", 2) for j in assigned)
    async with sessions.begin() as session:
        await h.new_order(session, "o-3")
        (fourth,) = await assign_queued(session, now=now)
        history = (await session.scalars(select(JobTransition.to_status))).all()
    assert fourth.station_id == "st-b"
    assert history.count("assigned") == 4


@pytest.mark.asyncio
async def test_no_online_station_leaves_job_queued(sessions: Sessions, h: Any) -> None:
    async with sessions.begin() as session:
        session.add(h.station("st-a", online=False))
        job = await h.new_order(session)
        assert await assign_queued(session, now=utcnow()) == []
    assert job.status == "queued"


async def _assigned_job(sessions: Sessions, h: Any, station: str = "st-a") -> Job:
    async with sessions.begin() as session:
        session.add(h.station(station))
        job = await h.new_order(session)
        await assign_queued(session, now=utcnow())
    return job


@pytest.mark.asyncio
async def test_happy_path_steps_verification_and_evidence(sessions: Sessions, h: Any) -> None:
    job = await _assigned_job(sessions, h)
    async with sessions.begin() as session:
        job = await session.get_one(Job, job.id)
        assert (await send(session, job, S.ACKNOWLEDGED)).accepted
        assert (await send(session, job, S.RUNNING)).accepted
        assert not job.started
        await walk_steps(session, job)
        assert job.started
        result = await send(session, job, S.DONE)
        evidence = (await session.scalars(select(EvidenceRecord.step))).all()
        history = (
            await session.scalars(
                select(JobTransition.to_status).where(JobTransition.job_id == job.id)
            )
        ).all()
    assert result.accepted
    # Every step and its evidence are in, but the engraving check waits for the proof photo
    # (tests/hub/test_proofs_flow.py sends it and sees the job through to done).
    assert result.state.status is JobStatus.VERIFYING
    assert (job.status, job.version) == ("verifying", 10)
    assert history[-1] == "verifying"
    assert sorted(evidence) == sorted(
        ["inspect_in_photo", "engrave", "engraving_photo", "inspect_out_photo"]
    )


@pytest.mark.asyncio
async def test_missing_evidence_fails_verification(sessions: Sessions, h: Any) -> None:
    job = await _assigned_job(sessions, h)
    async with sessions.begin() as session:
        job = await session.get_one(Job, job.id)
        await send(session, job, S.ACKNOWLEDGED)
        await send(session, job, S.RUNNING)
        await walk_steps(session, job, skip_evidence="engraving_photo")
        result = await send(session, job, S.DONE)
        last = (
            await session.scalars(select(JobTransition).order_by(JobTransition.id.desc()))
        ).first()
    assert result.state.status is JobStatus.NEEDS_REVIEW
    assert last is not None
    assert last.reason == "verification: engraving_photo lacks photo"


@pytest.mark.asyncio
async def test_step_progress_rules(sessions: Sessions, h: Any) -> None:
    job = await _assigned_job(sessions, h)
    async with sessions.begin() as session:
        job = await session.get_one(Job, job.id)
        await send(session, job, S.ACKNOWLEDGED)
        await send(session, job, S.RUNNING)
        unknown = await send(session, job, S.RUNNING, step="polish", phase="done")
        ungated = await send(session, job, S.RUNNING, step="engrave", phase="done")
        first = await send(session, job, S.RUNNING, step="inspect_in_photo", phase="done")
        twice = await send(session, job, S.RUNNING, step="inspect_in_photo", phase="done")
    assert not unknown.accepted
    assert "step of the plan" in (unknown.reason or "")
    assert not ungated.accepted
    assert "irreversible: its start must be accepted first" in (ungated.reason or "")
    assert first.accepted
    assert (twice.accepted, twice.reason) == (False, "step inspect_in_photo is already done")


@pytest.mark.asyncio
async def test_version_mismatch_is_rejected_with_current_state(sessions: Sessions, h: Any) -> None:
    job = await _assigned_job(sessions, h)
    async with sessions.begin() as session:
        result = await apply_station_update(
            session, station_id="st-a", update=job_update("st-a", job.id, S.ACKNOWLEDGED, 1)
        )
    assert not result.accepted
    assert result.reason == "version mismatch: expected 1, current 2"
    assert result.state is not None
    assert (result.state.status, result.state.version) == (JobStatus.ASSIGNED, 2)


@pytest.mark.asyncio
async def test_wrong_station_and_bad_transition_are_rejected(sessions: Sessions, h: Any) -> None:
    job = await _assigned_job(sessions, h)
    async with sessions.begin() as session:
        session.add(h.station("st-x"))
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


@pytest.mark.parametrize(
    ("before", "requested", "expected"),
    [
        ("assigned", S.FAILED, "failed"),
        ("assigned", S.BLOCKED, "blocked"),
        ("acknowledged", S.FAILED, "failed"),
        ("acknowledged", S.BLOCKED, "blocked"),
        ("running", S.FAILED, "failed"),  # nothing irreversible started yet
        ("engraving", S.FAILED, "needs_review"),  # the laser may have touched the piece
    ],
)
@pytest.mark.asyncio
async def test_failures_and_blocks(
    sessions: Sessions, h: Any, before: str, requested: StationJobStatus, expected: str
) -> None:
    job = await _assigned_job(sessions, h)
    async with sessions.begin() as session:
        job = await session.get_one(Job, job.id)
        if before != "assigned":
            await send(session, job, S.ACKNOWLEDGED)
        if before in ("running", "engraving"):
            await send(session, job, S.RUNNING)
        if before == "engraving":
            await send(session, job, S.RUNNING, step="inspect_in_photo", phase="done")
            await send(session, job, S.RUNNING, step="engrave", phase="start")
        result = await send(session, job, requested, detail="laser alarm 1")
        last = (
            await session.scalars(select(JobTransition).order_by(JobTransition.id.desc()))
        ).first()
    assert result.accepted
    assert job.status == expected
    assert last is not None
    assert (last.to_status, last.reason, last.actor) == (expected, "laser alarm 1", "station:st-a")


SETTINGS = HubSettings(
    reassign_after_offline_s=3, ack_timeout_s=60, startup_grace_s=5, _env_file=None
)


@pytest.mark.asyncio
async def test_offline_station_jobs_requeued_but_never_started_ones(
    sessions: Sessions, h: Any
) -> None:
    now = utcnow()
    async with sessions.begin() as session:
        session.add(h.station("st-a"))
        unstarted = await h.new_order(session, "o-1", now=now)
        reversible = await h.new_order(session, "o-2", now=now + timedelta(seconds=1))
        await assign_queued(session, now=now)  # both to st-a, the only station
        for job in (unstarted, reversible):
            await send(session, job, S.ACKNOWLEDGED)
        await send(session, reversible, S.RUNNING)
        await send(session, reversible, S.RUNNING, step="inspect_in_photo", phase="done")
        started = await h.new_order(session, "o-3", now=now + timedelta(seconds=2))
        await assign_queued(session, now=now, max_open=3)
        for status in (S.ACKNOWLEDGED, S.RUNNING):
            await send(session, started, status)
        await send(session, started, S.RUNNING, step="inspect_in_photo", phase="done")
        await send(session, started, S.RUNNING, step="engrave", phase="start")
        session.add(h.station("st-c"))
        station = await session.get_one(Station, "st-a")
        station.online, station.offline_since = False, now - timedelta(seconds=10)
        await session.flush()
        hub_start = now - timedelta(seconds=60)
        requeued = await reassign_stale(
            session, now=now, settings=SETTINGS, hub_started_at=hub_start
        )
        assert [j.id for j in requeued] == [unstarted.id, reversible.id]
        assert (reversible.status, reversible.station_id, reversible.progress) == (
            "queued",
            None,
            {},
        )
        moved = await assign_queued(session, now=now)
        assert {j.station_id for j in moved} == {"st-c"}
        await session.refresh(started)
        assert (started.status, started.station_id) == ("running", "st-a")


@pytest.mark.asyncio
async def test_startup_grace_delays_offline_reassignment(sessions: Sessions, h: Any) -> None:
    now = utcnow()
    job = await _assigned_job(sessions, h)
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
async def test_unacknowledged_assignment_times_out(sessions: Sessions, h: Any) -> None:
    job = await _assigned_job(sessions, h)
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
async def test_double_assign_race_has_one_winner(pg_sessions: Sessions, h: Any) -> None:
    sessions = pg_sessions
    async with sessions.begin() as session:
        job_id = (await h.new_order(session)).id
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
        # second blocks on the audit head lock until first commits, then finds version 2 != 1.
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
