"""Telemetry batches into the embedded sink: every point is checked, the good ones go in with
one executemany, and one ledger row says what happened to all of them."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from hub.metrics import TELEMETRY_POINTS_REJECTED, TELEMETRY_POINTS_STORED
from hub.store.models import TelemetryPointRecord
from hub.telemetry.ledger import record_batch
from protocol.models import TelemetryBatch, TelemetryPoint

# Rejection reasons: a small fixed set (they label a Prometheus counter).
NON_FINITE = "non_finite"
OUT_OF_RANGE = "out_of_range"
FUTURE_TS = "future_ts"
TOO_OLD = "too_old"
TEXT_TOO_LONG = "text_too_long"


@dataclass(frozen=True, slots=True)
class PointLimits:
    """What a point must satisfy to be stored."""

    # A station clock running ahead by more than this is wrong, not early.
    future_tolerance: timedelta = timedelta(minutes=5)
    # Older than the default rollup retention: it would expire the moment it arrived.
    max_age: timedelta = timedelta(days=90)
    text_max: int = 256


DEFAULT_LIMITS = PointLimits()


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What became of one batch's points."""

    received: int
    stored: int
    rejected: dict[str, int] = field(default_factory=dict)
    accepted: tuple[TelemetryPoint, ...] = ()

    def ack_reason(self) -> str | None:
        """For the station's Ack: which points were refused and why (counts only)."""
        if not self.rejected:
            return None
        counts = ", ".join(f"{reason}={n}" for reason, n in sorted(self.rejected.items()))
        return f"{sum(self.rejected.values())} of {self.received} points rejected: {counts}"


def utc(ts: datetime) -> datetime:
    """A naive timestamp is taken as UTC, like the store does."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def check_point(point: TelemetryPoint, *, now: datetime, limits: PointLimits) -> str | None:
    """Why ``point`` cannot be stored, or None when it can."""
    ts = utc(point.ts)
    if ts > now + limits.future_tolerance:
        return FUTURE_TS
    if ts < now - limits.max_age:
        return TOO_OLD
    value = point.value
    if isinstance(value, str):
        return TEXT_TOO_LONG if len(value) > limits.text_max else None
    try:
        number = float(value)  # bool is an int: it stays numeric (0/1) like in every sink
    except OverflowError:
        return OUT_OF_RANGE  # an int past float range (JSON ints are unbounded)
    return None if math.isfinite(number) else NON_FINITE


def _row(batch: TelemetryBatch, idx: int, point: TelemetryPoint) -> dict[str, Any]:
    value = point.value
    return {
        "station_id": batch.station_id,
        "epoch": batch.epoch,
        "seq": batch.seq,
        "idx": idx,
        "device": point.device,
        "metric": point.metric,
        "ts": utc(point.ts),
        "value_num": None if isinstance(value, str) else float(value),
        "value_text": value if isinstance(value, str) else None,
        "historical": batch.historical,
    }


async def store_batch(
    session: AsyncSession,
    batch: TelemetryBatch,
    now: datetime,
    *,
    limits: PointLimits = DEFAULT_LIMITS,
) -> BatchOutcome:
    """Store the batch's acceptable points and its ledger row in the caller's transaction."""
    rows: list[dict[str, Any]] = []
    accepted: list[TelemetryPoint] = []
    rejected: Counter[str] = Counter()
    for idx, point in enumerate(batch.points):
        reason = check_point(point, now=now, limits=limits)
        if reason is None:
            rows.append(_row(batch, idx, point))
            accepted.append(point)
        else:
            rejected[reason] += 1
    if rows:
        await session.execute(insert(TelemetryPointRecord), rows)  # one executemany
    outcome = BatchOutcome(len(batch.points), len(rows), dict(rejected), tuple(accepted))
    await record_batch(
        session, batch=batch, stored=outcome.stored, rejected=outcome.rejected, now=now
    )
    TELEMETRY_POINTS_STORED.inc(outcome.stored)
    for reason, count in rejected.items():
        TELEMETRY_POINTS_REJECTED.labels(reason=reason).inc(count)
    return outcome
