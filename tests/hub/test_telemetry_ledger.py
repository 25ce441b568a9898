"""The telemetry ledger accounts for every point: stored, or rejected with a reason; a
re-delivered batch is counted and stored once; malformed payloads are counted per station."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.dispatch import Outgoing
from hub.ingest import handle_message
from hub.store.models import TelemetryPointRecord
from hub.store.telemetry_tables import TelemetryLedgerEntry
from hub.telemetry.ledger import StationLedger, ledger_view
from protocol import topics
from protocol.codec import encode
from protocol.models import Ack, TelemetryBatch, TelemetryPoint, utcnow

pytestmark = pytest.mark.asyncio
Sessions = async_sessionmaker[AsyncSession]


def _batch(
    seq: int, values: list[object], *, station: str = "st-a", age_s: float = 1
) -> TelemetryBatch:
    ts = utcnow() - timedelta(seconds=age_s)
    points = [
        TelemetryPoint(device="scale", metric=f"m{i}", ts=ts, value=value)
        for i, value in enumerate(values)
    ]
    return TelemetryBatch(station_id=station, epoch=1, seq=seq, points=points)


async def _send_raw(sessions: Sessions, station: str, payload: bytes) -> list[Outgoing]:
    topic = topics.up(station, topics.Up.TELEMETRY)
    return await handle_message(sessions, topic=topic, payload=payload)


async def _ledger(sessions: Sessions, station: str = "st-a") -> StationLedger:
    async with sessions() as session:
        return next(e for e in await ledger_view(session) if e.station_id == station)


async def _stored(sessions: Sessions) -> int:
    async with sessions() as session:
        return int(
            await session.scalar(select(func.count()).select_from(TelemetryPointRecord)) or 0
        )


def _rejected_metric(reason: str) -> float:
    sample = "benchfleet_hub_telemetry_points_rejected_total"
    return REGISTRY.get_sample_value(sample, {"reason": reason}) or 0.0


async def test_every_point_is_stored_or_rejected_with_a_reason(sessions: Sessions) -> None:
    before = _rejected_metric("non_finite")
    good = _batch(1, [1.5, 7, True, "idle"])
    await _send_raw(sessions, "st-a", encode(good))
    # Bad points inside a well-formed batch: NaN and Infinity (JSON extensions pydantic
    # accepts), an int past float range, text too long, a clock far ahead, ancient; one good.
    bad = json.loads(encode(_batch(2, ["nan", "inf", 0, "x" * 300, 1.0, 2.0, 3.0])))
    bad["points"][2]["value"] = 10**400
    bad["points"][4]["ts"] = (utcnow() + timedelta(hours=1)).isoformat()
    bad["points"][5]["ts"] = (utcnow() - timedelta(days=400)).isoformat()
    payload = json.dumps(bad).replace('"nan"', "NaN").replace('"inf"', "Infinity")
    out = await _send_raw(sessions, "st-a", payload.encode())

    (ack,) = [item.message for item in out if isinstance(item.message, Ack)]
    assert ack.outcome == "accepted"  # the batch is accounted for: the station must not re-send
    assert ack.reason is not None
    assert "6 of 7 points rejected" in ack.reason
    ledger = await _ledger(sessions)
    assert ledger.points_received == 11
    assert ledger.points_stored == 5 == await _stored(sessions)
    assert ledger.points_rejected == {
        "non_finite": 2,
        "out_of_range": 1,
        "text_too_long": 1,
        "future_ts": 1,
        "too_old": 1,
    }
    assert ledger.points_unaccounted == 0
    assert _rejected_metric("non_finite") - before == 2
    async with sessions() as session:
        rows = (
            await session.scalars(select(TelemetryLedgerEntry).order_by(TelemetryLedgerEntry.seq))
        ).all()
        values = (await session.scalars(select(TelemetryPointRecord.value_num))).all()
    assert [(r.seq, r.points_received, r.points_stored) for r in rows] == [(1, 4, 4), (2, 7, 1)]
    assert sorted(v for v in values if v is not None) == [1.0, 1.5, 3.0, 7.0]  # True -> 1.0


async def test_duplicate_batches_are_counted_not_stored_twice(sessions: Sessions) -> None:
    batch = _batch(1, [1.0, 2.0, 3.0])
    for _ in range(3):  # the broker and the outbox both re-deliver
        out = await _send_raw(sessions, "st-a", encode(batch))
    acks = [item.message for item in out if isinstance(item.message, Ack)]
    assert acks[0].duplicate
    ledger = await _ledger(sessions)
    assert (ledger.batches, ledger.points_stored, await _stored(sessions)) == (1, 3, 3)
    assert (ledger.duplicate_batches, ledger.duplicate_points) == (2, 6)


async def test_unparseable_telemetry_is_counted_per_station(sessions: Sessions) -> None:
    await _send_raw(sessions, "st-b", b"{not json")
    await _send_raw(sessions, "st-b", b'{"v":1,"station_id":"st-b","epoch":1,"seq":1,"points":[]}')
    await _send_raw(sessions, "st-b", encode(_batch(2, [1.0], station="st-b")))
    ledger = await _ledger(sessions, "st-b")
    assert ledger.unparseable_batches == 2
    assert (ledger.batches, ledger.points_stored) == (1, 1)
