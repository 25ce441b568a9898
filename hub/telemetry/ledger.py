"""The telemetry ledger: one row per batch, running totals per station, and the view that puts
them together with gaps and unparseable batches.

Every point a station sent ends up in exactly one of: ``points_stored`` or
``points_rejected[reason]``; a re-delivered batch is counted in ``duplicate_*`` and stored
nothing. Retention later moves stored points to ``points_expired`` (summarised, not lost).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.metrics import TELEMETRY_DUPLICATE_POINTS, TELEMETRY_POINTS_EXPIRED
from hub.store.models import DeadLetter
from hub.store.telemetry_tables import (
    TelemetryGap,
    TelemetryLedgerEntry,
    TelemetryStationTotals,
)
from protocol import topics
from protocol.models import TelemetryBatch

TELEMETRY_TOPIC_SUFFIX = f"/up/{topics.Up.TELEMETRY.value}"


async def station_totals(session: AsyncSession, station_id: str) -> TelemetryStationTotals:
    """The station's totals row, locked for this transaction (created on first use)."""
    totals = await session.get(TelemetryStationTotals, station_id, with_for_update=True)
    if totals is None:
        totals = TelemetryStationTotals(
            station_id=station_id,
            batches=0,
            points_received=0,
            points_stored=0,
            points_rejected={},
            duplicate_batches=0,
            duplicate_points=0,
            points_expired=0,
        )
        session.add(totals)
    return totals


def _merged(counts: Mapping[str, int], more: Mapping[str, int]) -> dict[str, int]:
    total: Counter[str] = Counter(counts)
    total.update(more)
    return dict(total)


async def record_batch(
    session: AsyncSession,
    *,
    batch: TelemetryBatch,
    stored: int,
    rejected: Mapping[str, int],
    now: datetime,
) -> None:
    """The batch's ledger row and the station's totals, in the caller's transaction."""
    session.add(
        TelemetryLedgerEntry(
            station_id=batch.station_id,
            epoch=batch.epoch,
            seq=batch.seq,
            received_at=now,
            points_received=len(batch.points),
            points_stored=stored,
            rejected=dict(rejected),
            historical=batch.historical,
        )
    )
    totals = await station_totals(session, batch.station_id)
    totals.batches += 1
    totals.points_received += len(batch.points)
    totals.points_stored += stored
    if rejected:
        # A new dict: the JSON column only notices assignment, not in-place mutation.
        totals.points_rejected = _merged(totals.points_rejected, rejected)
    totals.last_seen_at = now


async def count_duplicate(session: AsyncSession, *, batch: TelemetryBatch, now: datetime) -> None:
    """A batch the inbox already had: counted, never stored again."""
    totals = await station_totals(session, batch.station_id)
    totals.duplicate_batches += 1
    totals.duplicate_points += len(batch.points)
    totals.last_seen_at = now
    TELEMETRY_DUPLICATE_POINTS.inc(len(batch.points))


async def count_expired(session: AsyncSession, expired: Mapping[str, int]) -> None:
    """Raw points retention removed (their rollups and exports remain)."""
    for station_id, count in expired.items():
        totals = await station_totals(session, station_id)
        totals.points_expired += count
        TELEMETRY_POINTS_EXPIRED.inc(count)


@dataclass
class StationLedger:
    """The ledger of one station, as ``GET /telemetry/ledger`` shows it."""

    station_id: str
    batches: int = 0
    points_received: int = 0
    points_stored: int = 0
    points_rejected: dict[str, int] = field(default_factory=dict)
    duplicate_batches: int = 0
    duplicate_points: int = 0
    points_expired: int = 0
    unparseable_batches: int = 0
    gaps_pending: int = 0
    gaps_open: int = 0
    gaps_closed: int = 0
    last_seen_at: datetime | None = None

    @property
    def points_unaccounted(self) -> int:
        """Received but neither stored nor rejected: always 0 unless something is broken."""
        return self.points_received - self.points_stored - sum(self.points_rejected.values())


async def ledger_view(session: AsyncSession) -> list[StationLedger]:
    """Every station the telemetry ledger knows of, by station id."""
    view: dict[str, StationLedger] = {}

    def of(station_id: str) -> StationLedger:
        return view.setdefault(station_id, StationLedger(station_id=station_id))

    for totals in await session.scalars(select(TelemetryStationTotals)):
        entry = of(totals.station_id)
        entry.batches, entry.points_received = totals.batches, totals.points_received
        entry.points_stored, entry.points_rejected = totals.points_stored, totals.points_rejected
        entry.duplicate_batches = totals.duplicate_batches
        entry.duplicate_points = totals.duplicate_points
        entry.points_expired, entry.last_seen_at = totals.points_expired, totals.last_seen_at
    gaps = select(TelemetryGap.station_id, TelemetryGap.state, func.count()).group_by(
        TelemetryGap.station_id, TelemetryGap.state
    )
    for station_id, state, count in await session.execute(gaps):
        setattr(of(station_id), f"gaps_{state}", count)
    # Malformed telemetry never reached the ledger: the codec made it a dead letter.
    unparseable = (
        select(DeadLetter.station_id, func.count())
        .where(DeadLetter.station_id.is_not(None))
        .where(DeadLetter.topic.endswith(TELEMETRY_TOPIC_SUFFIX))
        .group_by(DeadLetter.station_id)
    )
    for dead_station, count in await session.execute(unparseable):
        if dead_station is not None:  # filtered above; narrows the type
            of(dead_station).unparseable_batches = count
    return [view[key] for key in sorted(view)]
