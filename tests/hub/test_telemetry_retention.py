"""The embedded sink over time: exact 1-minute rollups (late points too), raw retention that
never deletes what a sink has not exported, and a ledger that counts what expired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.settings import HubSettings
from hub.store.models import TelemetryPointRecord
from hub.store.telemetry_tables import TelemetryRollup, TelemetrySinkCursor
from hub.telemetry.ingest import store_batch
from hub.telemetry.ledger import ledger_view
from hub.telemetry.retention import (
    bucket_of,
    expire,
    register_sink,
    retention_guard,
    roll_up,
    sink_cursor,
)
from protocol.models import TelemetryBatch, TelemetryPoint

pytestmark = pytest.mark.asyncio
Sessions = async_sessionmaker[AsyncSession]
NOW = datetime.now(UTC).replace(second=30, microsecond=0)
SETTINGS = HubSettings(_env_file=None, telemetry_raw_retention_h=48)


def _batch(seq: int, samples: list[tuple[datetime, float | str]]) -> TelemetryBatch:
    points = [
        TelemetryPoint(device="cleaner", metric="temp_c", ts=ts, value=v) for ts, v in samples
    ]
    return TelemetryBatch(station_id="st-a", epoch=1, seq=seq, points=points)


async def _store(sessions: Sessions, *batches: TelemetryBatch) -> None:
    async with sessions.begin() as session:
        for batch in batches:
            await store_batch(session, batch, NOW)


async def _raw_count(sessions: Sessions) -> int:
    async with sessions() as session:
        return int(
            await session.scalar(select(func.count()).select_from(TelemetryPointRecord)) or 0
        )


async def test_rollups_merge_chunks_and_late_points_exactly(sessions: Sessions) -> None:
    minute = bucket_of(NOW - timedelta(minutes=5))
    at = [minute + timedelta(seconds=s) for s in (10, 20, 30, 40)]
    # The newest sample arrives first; a late one (backfill) comes after the first roll-up.
    await _store(sessions, _batch(1, [(at[3], 30.0), (at[0], 20.0)]))
    async with sessions.begin() as session:
        assert await roll_up(session, now=NOW, limit=1) == 1  # chunks of one: merging matters
        assert await roll_up(session, now=NOW, limit=1) == 1
    await _store(sessions, _batch(2, [(at[1], 25.0), (at[2], "heating")]))
    async with sessions.begin() as session:
        assert await roll_up(session, now=NOW, limit=100) == 2
        assert await roll_up(session, now=NOW, limit=100) == 0
    async with sessions() as session:
        (row,) = (await session.scalars(select(TelemetryRollup))).all()
    assert bucket_of(row.bucket) == minute
    assert (row.count, row.num_count) == (4, 3)
    assert (row.value_min, row.value_max, row.value_sum) == (20.0, 30.0, 75.0)
    assert (row.last_num, row.last_text) == (30.0, None)  # last by timestamp, not by arrival


async def test_retention_waits_for_every_enabled_sink_and_counts_expired(
    sessions: Sessions,
) -> None:
    old = NOW - timedelta(hours=50)
    await _store(sessions, _batch(1, [(old, 1.0), (old, 2.0)]))
    await _store(sessions, _batch(2, [(old, 3.0), (NOW - timedelta(hours=1), 4.0)]))
    async with sessions.begin() as session:
        await register_sink(session, "influx", enabled=True, now=NOW)  # exported nothing yet
        await roll_up(session, now=NOW, limit=100)
    async with sessions.begin() as session:
        assert await expire(session, now=NOW, settings=SETTINGS) == 0
        assert await retention_guard(session) == 0
    async with sessions.begin() as session:
        cursor = await sink_cursor(session, "influx", now=NOW)
        first_batch_ids = await session.scalars(
            select(TelemetryPointRecord.id).where(TelemetryPointRecord.seq == 1)
        )
        cursor.last_id = max(first_batch_ids)  # the exporter wrote batch 1
    async with sessions.begin() as session:
        assert await expire(session, now=NOW, settings=SETTINGS) == 2
    assert await _raw_count(sessions) == 2
    async with sessions.begin() as session:
        await register_sink(session, "influx", enabled=False, now=NOW)  # sink switched off
    async with sessions.begin() as session:
        assert await expire(session, now=NOW, settings=SETTINGS) == 1  # the recent one stays
    assert await _raw_count(sessions) == 1
    async with sessions() as session:
        (ledger,) = await ledger_view(session)
        rollups = (await session.scalars(select(TelemetryRollup))).all()
    assert (ledger.points_stored, ledger.points_expired) == (4, 3)
    assert sum(r.count for r in rollups) == 4  # what expired is still summarised


async def test_old_rollups_expire_with_the_rollup_retention(sessions: Sessions) -> None:
    await _store(sessions, _batch(1, [(NOW - timedelta(days=80), 1.0), (NOW, 2.0)]))
    async with sessions.begin() as session:
        await roll_up(session, now=NOW, limit=100)
    short = SETTINGS.model_copy(update={"telemetry_rollup_retention_d": 30})
    async with sessions.begin() as session:
        await expire(session, now=NOW, settings=short)
    async with sessions() as session:
        rollups = (await session.scalars(select(TelemetryRollup))).all()
        cursor = await session.get_one(TelemetrySinkCursor, "rollup")
    assert [r.last_num for r in rollups] == [2.0]
    assert cursor.last_id > 0
