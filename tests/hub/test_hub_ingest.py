"""Ingest: dead letters instead of crashes, deduplication, presence with the bd_seq rule."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.dispatch import Outgoing
from hub.ingest import handle_message
from hub.store.models import (
    DeadLetter,
    EventRecord,
    JobTransition,
    Station,
    TelemetryPointRecord,
)
from protocol import topics
from protocol.codec import encode
from protocol.models import (
    Ack,
    AckOutcome,
    Birth,
    Death,
    DeviceInfo,
    Event,
    JobAssignment,
    JobStatus,
    JobUpdate,
    Message,
    StationJobStatus,
    TelemetryBatch,
    TelemetryPoint,
)

Sessions = async_sessionmaker[AsyncSession]
SECRET_TEXT = "For Marie-Claire 1987"


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _send(sessions: Sessions, kind: topics.Up, message: Message) -> list[Outgoing]:
    station = getattr(message, "station_id", "st-a")
    return await handle_message(sessions, topic=topics.up(station, kind), payload=encode(message))


DEVICES = [
    DeviceInfo(name="laser", family="laser", field_mm=110, fonts=["futural"]),
    DeviceInfo(name="camera", family="camera"),
]


async def _birth(sessions: Sessions, station: str = "st-a", bd_seq: int = 1) -> list[Outgoing]:
    birth = Birth(station_id=station, bd_seq=bd_seq, epoch=1, agent_version="t", devices=DEVICES)
    return await _send(sessions, topics.Up.BIRTH, birth)


@pytest.fixture
def make_order(h: Any) -> Callable[..., Awaitable[None]]:
    async def make(sessions: Sessions, external_id: str = "o-1") -> None:
        async with sessions.begin() as session:
            await h.new_order(session, external_id, SECRET_TEXT)

    return make


def _update(job_id: object, status: StationJobStatus, version: int, seq: int) -> JobUpdate:
    return JobUpdate.model_validate(
        {
            "station_id": "st-a",
            "epoch": 1,
            "seq": seq,
            "job_id": job_id,
            "expected_version": version,
            "status": status,
        }
    )


def _only(out: list[Outgoing], kind: type[Message]) -> list[Message]:
    return [item.message for item in out if isinstance(item.message, kind)]


@pytest.mark.parametrize(
    ("topic", "payload", "reason_kind"),
    [
        ("bf/v1/st/st-a/up/job", b"{not json", "malformed_json"),
        (
            "bf/v1/st/st-a/up/death",
            b'{"v":2,"station_id":"st-a","bd_seq":1,"epoch":1}',
            "schema_version",
        ),
        ("bf/v1/st/st-a/up/nonsense", b"{}", "topic"),
        (
            "bf/v1/st/st-a/up/death",
            b'{"v":1,"station_id":"st-b","bd_seq":1,"epoch":1}',
            "station_mismatch",
        ),
        ("bf/v1/st/st-a/down/ack", b"{}", "wrong_direction"),
    ],
)
@pytest.mark.asyncio
async def test_unusable_payload_becomes_dead_letter(
    sessions: Sessions, topic: str, payload: bytes, reason_kind: str
) -> None:
    before = _metric("benchfleet_hub_rejected_messages_total", reason_kind=reason_kind)
    assert await handle_message(sessions, topic=topic, payload=payload) == []
    after = _metric("benchfleet_hub_rejected_messages_total", reason_kind=reason_kind)
    assert after == before + 1
    async with sessions() as session:
        (letter,) = (await session.scalars(select(DeadLetter))).all()
    assert (letter.topic, letter.payload) == (topic, payload)
    assert letter.reason


@pytest.mark.asyncio
async def test_birth_assigns_and_duplicate_update_applies_once(
    sessions: Sessions, make_order: Callable[..., Awaitable[None]]
) -> None:
    await make_order(sessions)
    out = await _birth(sessions)
    (assignment,) = _only(out, JobAssignment)
    assert isinstance(assignment, JobAssignment)
    assert out[0].topic == "bf/v1/st/st-a/down/job"
    assert assignment.engraving is not None
    assert assignment.engraving.text == SECRET_TEXT
    update = _update(assignment.job_id, StationJobStatus.ACKNOWLEDGED, assignment.version, seq=1)
    first = await _send(sessions, topics.Up.JOB, update)
    again = await _send(sessions, topics.Up.JOB, update)
    (ack1,), (ack2,) = _only(first, Ack), _only(again, Ack)
    assert isinstance(ack1, Ack)
    assert isinstance(ack2, Ack)
    assert (ack1.outcome, ack1.duplicate) == (AckOutcome.ACCEPTED, False)
    assert (ack2.outcome, ack2.duplicate, ack2.job) == (AckOutcome.ACCEPTED, True, ack1.job)
    assert ack1.job is not None
    assert (ack1.job.status, ack1.job.version) == (JobStatus.ACKNOWLEDGED, 3)
    async with sessions() as session:
        acks = await session.scalar(
            select(func.count()).where(JobTransition.to_status == "acknowledged")
        )
    assert acks == 1


@pytest.mark.asyncio
async def test_rejected_update_is_answered_the_same_when_repeated(
    sessions: Sessions, make_order: Callable[..., Awaitable[None]]
) -> None:
    await make_order(sessions)
    (assignment,) = _only(await _birth(sessions), JobAssignment)
    assert isinstance(assignment, JobAssignment)
    stale = _update(assignment.job_id, StationJobStatus.ACKNOWLEDGED, 1, seq=7)
    (ack1,) = _only(await _send(sessions, topics.Up.JOB, stale), Ack)
    (ack2,) = _only(await _send(sessions, topics.Up.JOB, stale), Ack)
    assert isinstance(ack1, Ack)
    assert isinstance(ack2, Ack)
    assert ack1.outcome is AckOutcome.REJECTED
    assert ack1.reason == "version mismatch: expected 1, current 2"
    assert (ack2.outcome, ack2.reason, ack2.duplicate) == (ack1.outcome, ack1.reason, True)


@pytest.mark.asyncio
async def test_stale_death_is_ignored(sessions: Sessions) -> None:
    await _birth(sessions, bd_seq=1)
    await _birth(sessions, bd_seq=2)  # reconnected before the broker sent the old Will
    before = _metric("benchfleet_hub_stale_deaths_ignored_total")
    await _send(sessions, topics.Up.DEATH, Death(station_id="st-a", bd_seq=1, epoch=1))
    assert _metric("benchfleet_hub_stale_deaths_ignored_total") == before + 1
    async with sessions() as session:
        assert (await session.get_one(Station, "st-a")).online
    await _send(sessions, topics.Up.DEATH, Death(station_id="st-a", bd_seq=2, epoch=1))
    async with sessions() as session:
        station = await session.get_one(Station, "st-a")
    assert not station.online
    assert station.offline_since is not None


@pytest.mark.asyncio
async def test_birth_resends_open_jobs_with_current_version(
    sessions: Sessions, make_order: Callable[..., Awaitable[None]]
) -> None:
    await make_order(sessions)
    (assignment,) = _only(await _birth(sessions, bd_seq=1), JobAssignment)
    assert isinstance(assignment, JobAssignment)
    update = _update(assignment.job_id, StationJobStatus.ACKNOWLEDGED, 2, seq=1)
    await _send(sessions, topics.Up.JOB, update)
    (resent,) = _only(await _birth(sessions, bd_seq=2), JobAssignment)
    assert isinstance(resent, JobAssignment)
    assert (resent.job_id, resent.status, resent.version) == (
        assignment.job_id,
        JobStatus.ACKNOWLEDGED,
        3,
    )


@pytest.mark.asyncio
async def test_events_and_telemetry_are_stored_and_acked(sessions: Sessions) -> None:
    # Recent: points older than the retention window are refused (hub.telemetry.ingest).
    ts = datetime.now(UTC).replace(microsecond=0)
    points = [
        TelemetryPoint(device="laser", metric="temp_c", ts=ts, value=41.5),
        TelemetryPoint(device="laser", metric="state", ts=ts, value="idle"),
    ]
    batch = TelemetryBatch(station_id="st-a", epoch=1, seq=1, points=points, historical=True)
    event = Event(station_id="st-a", epoch=1, seq=2, kind="door_open", data={"n": 1})
    out = [*await _send(sessions, topics.Up.TELEMETRY, batch)]
    out += await _send(sessions, topics.Up.EVENT, event)
    assert [m.outcome for m in _only(out, Ack) if isinstance(m, Ack)] == ["accepted"] * 2
    async with sessions() as session:
        stored = (await session.scalars(select(TelemetryPointRecord))).all()
        events = (await session.scalars(select(EventRecord))).all()
        station = await session.get_one(Station, "st-a")
    assert {(p.value_num, p.value_text, p.historical) for p in stored} == {
        (41.5, None, True),
        (None, "idle", True),
    }
    assert stored[0].ts == ts
    assert [e.data for e in events] == [{"n": 1}]
    assert not station.online  # heard of, never born: known but offline


@pytest.mark.asyncio
async def test_logs_never_carry_engraving_text(
    sessions: Sessions, caplog: pytest.LogCaptureFixture, make_order: Callable[..., Awaitable[None]]
) -> None:
    caplog.set_level(logging.DEBUG)
    await make_order(sessions)
    (assignment,) = _only(await _birth(sessions), JobAssignment)
    assert isinstance(assignment, JobAssignment)
    bad = json.dumps({"v": 1, "engraving": SECRET_TEXT}).encode()
    await handle_message(sessions, topic="bf/v1/st/st-a/up/job", payload=bad)
    await _send(sessions, topics.Up.JOB, _update(assignment.job_id, StationJobStatus.FAILED, 2, 1))
    assert SECRET_TEXT not in caplog.text
