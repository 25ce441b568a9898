"""The embedded sink over time: 1-minute rollups, then retention.

Rollups are built incrementally: the ``rollup`` cursor in ``telemetry_sink_cursors`` walks
``telemetry_points`` by id, and each chunk is merged into the rollup rows (min/max/sum/count
merge exactly, ``last`` by timestamp), so backfill that arrives hours late lands in the right
minute. Raw points older than ``telemetry_raw_retention_h`` are deleted only at or below the
lowest cursor of every enabled consumer (the rollup and export sinks such as InfluxDB): nothing
is deleted before it was summarised and exported. The ledger counts what expired.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from hub.settings import HubSettings
from hub.store.models import TelemetryPointRecord as Point
from hub.store.telemetry_tables import (
    TelemetryLedgerEntry,
    TelemetryRollup,
    TelemetrySinkCursor,
)
from hub.telemetry.ingest import utc
from hub.telemetry.ledger import count_expired

ROLLUP_CURSOR = "rollup"
EXPIRE_CHUNK = 10_000
KEYS_PER_QUERY = 300  # rollup keys per lookup: well under SQLite's bound-parameter limit

RollupKey = tuple[str, str, str, datetime]


def bucket_of(ts: datetime) -> datetime:
    """The minute ``ts`` falls in (UTC)."""
    return utc(ts).replace(second=0, microsecond=0)


async def sink_cursor(session: AsyncSession, name: str, *, now: datetime) -> TelemetrySinkCursor:
    """The consumer's cursor, locked for this transaction (created at 0, enabled)."""
    cursor = await session.get(TelemetrySinkCursor, name, with_for_update=True)
    if cursor is None:
        cursor = TelemetrySinkCursor(name=name, last_id=0, enabled=True, updated_at=now)
        session.add(cursor)
    return cursor


async def register_sink(session: AsyncSession, name: str, *, enabled: bool, now: datetime) -> None:
    """An export sink says whether it runs. A disabled sink no longer holds retention back."""
    cursor = await sink_cursor(session, name, now=now)
    cursor.enabled, cursor.updated_at = enabled, now


@dataclass
class _Minute:
    """One rollup row being merged in memory."""

    row: TelemetryRollup

    def add(self, ts: datetime, num: float | None, text: str | None) -> None:
        row = self.row
        row.count += 1
        if num is not None:
            row.num_count += 1
            row.value_min = num if row.value_min is None else min(row.value_min, num)
            row.value_max = num if row.value_max is None else max(row.value_max, num)
            row.value_sum = num + (row.value_sum or 0.0)
        if ts >= row.last_ts:
            row.last_ts, row.last_num, row.last_text = ts, num, text


def _empty(key: RollupKey, ts: datetime) -> TelemetryRollup:
    station_id, device, metric, bucket = key
    return TelemetryRollup(
        station_id=station_id,
        device=device,
        metric=metric,
        bucket=bucket,
        count=0,
        num_count=0,
        last_ts=ts,
    )


async def _existing(session: AsyncSession, keys: Sequence[RollupKey]) -> dict[RollupKey, _Minute]:
    found: dict[RollupKey, _Minute] = {}
    columns = tuple_(
        TelemetryRollup.station_id,
        TelemetryRollup.device,
        TelemetryRollup.metric,
        TelemetryRollup.bucket,
    )
    for start in range(0, len(keys), KEYS_PER_QUERY):
        chunk = keys[start : start + KEYS_PER_QUERY]
        for row in await session.scalars(select(TelemetryRollup).where(columns.in_(chunk))):
            found[(row.station_id, row.device, row.metric, bucket_of(row.bucket))] = _Minute(row)
    return found


async def roll_up(session: AsyncSession, *, now: datetime, limit: int) -> int:
    """Merge the next ``limit`` raw points into the 1-minute rollups; returns how many."""
    cursor = await sink_cursor(session, ROLLUP_CURSOR, now=now)
    points = (
        await session.execute(
            select(
                Point.id,
                Point.station_id,
                Point.device,
                Point.metric,
                Point.ts,
                Point.value_num,
                Point.value_text,
            )
            .where(Point.id > cursor.last_id)
            .order_by(Point.id)
            .limit(limit)
        )
    ).all()
    if not points:
        return 0
    keys = sorted({(p.station_id, p.device, p.metric, bucket_of(p.ts)) for p in points})
    minutes = await _existing(session, keys)
    for p in points:
        key = (p.station_id, p.device, p.metric, bucket_of(p.ts))
        if key not in minutes:
            minutes[key] = _Minute(_empty(key, utc(p.ts)))
            session.add(minutes[key].row)
        minutes[key].add(utc(p.ts), p.value_num, p.value_text)
    cursor.last_id, cursor.updated_at = points[-1].id, now
    return len(points)


async def retention_guard(session: AsyncSession) -> int:
    """The highest point id every enabled consumer has (0: nobody consumed anything yet)."""
    lowest = await session.scalar(
        select(func.min(TelemetrySinkCursor.last_id)).where(TelemetrySinkCursor.enabled)
    )
    return int(lowest or 0)


async def expire(session: AsyncSession, *, now: datetime, settings: HubSettings) -> int:
    """Delete raw points past retention (consumed by all), old rollups and ledger rows.

    Returns how many raw points expired; the ledger's totals count them per station.
    """
    guard = await retention_guard(session)
    cutoff = now - timedelta(hours=settings.telemetry_raw_retention_h)
    expired: Counter[str] = Counter()
    while True:
        rows = (
            await session.execute(
                select(Point.id, Point.station_id)
                .where(Point.ts < cutoff, Point.id <= guard)
                .limit(EXPIRE_CHUNK)
            )
        ).all()
        if not rows:
            break
        await session.execute(delete(Point).where(Point.id.in_([row.id for row in rows])))
        expired.update(row.station_id for row in rows)
    await count_expired(session, expired)
    keep_from = now - timedelta(days=settings.telemetry_rollup_retention_d)
    await session.execute(delete(TelemetryRollup).where(TelemetryRollup.bucket < keep_from))
    await session.execute(
        delete(TelemetryLedgerEntry).where(TelemetryLedgerEntry.received_at < keep_from)
    )
    return sum(expired.values())
