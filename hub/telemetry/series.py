"""Series for charts: raw points for short recent ranges, 1-minute rollups for the rest."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.store.models import TelemetryPointRecord as Point
from hub.store.telemetry_tables import TelemetryRollup as Rollup
from hub.telemetry.ingest import utc

RAW_SPAN_MAX = timedelta(hours=6)
RAW_POINTS_MAX = 50_000  # per request; a longer range reads rollups
TARGET_BUCKETS = 500
MINUTE_S = 60


class SeriesPoint(BaseModel):
    """One point of a chart: a raw sample (``count`` 1) or a bucket's summary."""

    ts: datetime
    value: float | None  # the sample, or the bucket's average of numeric samples
    text: str | None = None  # text sample, or the bucket's last text
    min: float | None = None
    max: float | None = None
    count: int = 1


class Series(BaseModel):
    """One device metric over time."""

    device: str
    metric: str
    source: str  # "raw" or "rollup_1m"
    step_s: int | None  # None: raw samples, not bucketed
    points: list[SeriesPoint]


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    station_id: str
    device: str | None
    metric: str | None
    since: datetime
    until: datetime
    step_s: int | None


@dataclass
class _Bucket:
    count: int = 0
    num_count: int = 0
    total: float = 0.0
    low: float | None = None
    high: float | None = None
    text: str | None = None

    def add(
        self,
        *,
        count: int,
        num_count: int,
        total: float,
        low: float | None,
        high: float | None,
        text: str | None,
    ) -> None:
        self.count += count
        self.num_count += num_count
        self.total += total
        self.low = low if self.low is None or (low is not None and low < self.low) else self.low
        self.high = (
            high if self.high is None or (high is not None and high > self.high) else self.high
        )
        self.text = text if text is not None else self.text

    def point(self, ts: datetime) -> SeriesPoint:
        value = self.total / self.num_count if self.num_count else None
        return SeriesPoint(
            ts=ts, value=value, text=self.text, min=self.low, max=self.high, count=self.count
        )


def choose_step(query: SeriesQuery, *, raw_from: datetime) -> int | None:
    """None for raw points; otherwise the bucket width in seconds (a multiple of a minute)."""
    span = utc(query.until) - utc(query.since)
    short_and_recent = span <= RAW_SPAN_MAX and utc(query.since) >= raw_from
    if short_and_recent and (query.step_s is None or query.step_s < MINUTE_S):
        return query.step_s
    wanted = query.step_s or span.total_seconds() / TARGET_BUCKETS
    return max(MINUTE_S, math.ceil(wanted / MINUTE_S) * MINUTE_S)


async def read_series(
    session: AsyncSession, query: SeriesQuery, *, raw_from: datetime
) -> list[Series]:
    step = choose_step(query, raw_from=raw_from)
    if step is None or step < MINUTE_S:
        return await _raw(session, query, step)
    return await _rolled(session, query, step)


def _filtered(stmt: Select[Point], query: SeriesQuery) -> Select[Point]:
    stmt = stmt.where(Point.station_id == query.station_id)
    if query.device:
        stmt = stmt.where(Point.device == query.device)
    if query.metric:
        stmt = stmt.where(Point.metric == query.metric)
    return stmt.where(Point.ts >= utc(query.since), Point.ts < utc(query.until))


async def _raw(session: AsyncSession, query: SeriesQuery, step: int | None) -> list[Series]:
    stmt = _filtered(select(Point), query).order_by(Point.device, Point.metric, Point.ts)
    rows = await session.scalars(stmt.limit(RAW_POINTS_MAX))
    grouped: dict[tuple[str, str], list[Point]] = {}
    for row in rows:
        grouped.setdefault((row.device, row.metric), []).append(row)
    series = []
    for (device, metric), points in grouped.items():
        if step is None:
            out = [SeriesPoint(ts=p.ts, value=p.value_num, text=p.value_text) for p in points]
        else:
            out = _bucketed(
                ((p.ts, 1, p.value_num, p.value_num, p.value_num, p.value_text) for p in points),
                since=utc(query.since),
                step=step,
            )
        series.append(Series(device=device, metric=metric, source="raw", step_s=step, points=out))
    return series


async def _rolled(session: AsyncSession, query: SeriesQuery, step: int) -> list[Series]:
    stmt = select(Rollup).where(Rollup.station_id == query.station_id)
    if query.device:
        stmt = stmt.where(Rollup.device == query.device)
    if query.metric:
        stmt = stmt.where(Rollup.metric == query.metric)
    since = utc(query.since).replace(second=0, microsecond=0)
    stmt = stmt.where(Rollup.bucket >= since, Rollup.bucket < utc(query.until))
    rows = await session.scalars(stmt.order_by(Rollup.device, Rollup.metric, Rollup.bucket))
    grouped: dict[tuple[str, str], list[Rollup]] = {}
    for row in rows:
        grouped.setdefault((row.device, row.metric), []).append(row)
    return [
        Series(
            device=device,
            metric=metric,
            source="rollup_1m",
            step_s=step,
            points=_bucketed(_rollup_parts(minutes), since=since, step=step),
        )
        for (device, metric), minutes in grouped.items()
    ]


Part = tuple[datetime, int, float | None, float | None, float | None, str | None]


def _rollup_parts(minutes: Iterable[Rollup]) -> Iterable[Part]:
    for m in minutes:
        yield (m.bucket, m.count, m.value_sum, m.value_min, m.value_max, m.last_text)


def _bucketed(parts: Iterable[Part], *, since: datetime, step: int) -> list[SeriesPoint]:
    """Merge (ts, count, sum, min, max, text) parts into buckets of ``step`` seconds."""
    buckets: dict[int, _Bucket] = {}
    for ts, count, total, low, high, text in parts:
        index = int((utc(ts) - since).total_seconds() // step)
        num_count = count if total is not None else 0
        buckets.setdefault(index, _Bucket()).add(
            count=count, num_count=num_count, total=total or 0.0, low=low, high=high, text=text
        )
    return [
        bucket.point(since + timedelta(seconds=index * step))
        for index, bucket in sorted(buckets.items())
    ]
