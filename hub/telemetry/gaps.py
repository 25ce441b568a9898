"""Seq gaps per station connection, and the resync request that closes them.

The outbox numbers every message of a station (job updates, events, proofs, telemetry) 1, 2,
3 ... per epoch, and the hub's inbox keeps each one it applied. A seq that is missing while
later ones arrived is a gap. Gaps are normal for a moment (priorities reorder the outbox, a
paced backfill takes a while), so a gap counts as stuck only when the station's contiguous
watermark has not moved for ``telemetry_gap_after_s``. Then the hub sends ``Command(resync)``
(Sparkplug's rebirth request) at most every ``telemetry_resync_interval_s``, and closes the gap
when its seqs arrive.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.dispatch import Outgoing
from hub.metrics import TELEMETRY_GAPS, TELEMETRY_RESYNCS
from hub.settings import HubSettings
from hub.store.models import InboxEntry, Station
from hub.store.telemetry_tables import TelemetryGap, TelemetrySeqMark
from protocol import topics
from protocol.models import Command

SCAN_LIMIT = 10_000  # seqs above the watermark looked at per round (the agent's window is far less)
PENDING, OPEN, CLOSED = "pending", "open", "closed"

SeqRange = tuple[int, int]


def missing_ranges(watermark: int, seen: Sequence[int]) -> tuple[int, list[SeqRange]]:
    """The new watermark (every seq up to it seen) and the missing ranges below ``max(seen)``.

    ``seen`` are the seqs above ``watermark``, ascending.
    """
    ranges: list[SeqRange] = []
    expected = watermark + 1
    for seq in seen:
        if seq > expected:
            ranges.append((expected, seq - 1))
        expected = max(expected, seq + 1)
    new_mark = ranges[0][0] - 1 if ranges else expected - 1
    return new_mark, ranges


async def sweep_gaps(
    session: AsyncSession, *, now: datetime, settings: HubSettings
) -> list[Outgoing]:
    """One round over every station's current epoch; returns the resyncs to send."""
    out: list[Outgoing] = []
    stations = await session.execute(select(Station.id, Station.epoch).where(Station.epoch > 0))
    for station_id, epoch in stations.all():
        await _close_filled(session, station_id=station_id, now=now)
        if await _scan(session, station_id=station_id, epoch=epoch, now=now, settings=settings):
            command = Command(kind="resync")
            out.append(Outgoing(topics.down(station_id, topics.Down.CMD), command))
    return out


async def _mark(
    session: AsyncSession, station_id: str, epoch: int, now: datetime
) -> TelemetrySeqMark:
    mark = await session.get(TelemetrySeqMark, (station_id, epoch), with_for_update=True)
    if mark is None:
        mark = TelemetrySeqMark(station_id=station_id, epoch=epoch, watermark=0, progress_at=now)
        session.add(mark)
    return mark


async def _scan(
    session: AsyncSession, *, station_id: str, epoch: int, now: datetime, settings: HubSettings
) -> bool:
    """Advance the watermark, record new gaps, open stuck ones; True: send a resync now."""
    mark = await _mark(session, station_id, epoch, now)
    seen = await session.scalars(
        select(InboxEntry.seq)
        .where(InboxEntry.station_id == station_id, InboxEntry.epoch == epoch)
        .where(InboxEntry.seq > mark.watermark)
        .order_by(InboxEntry.seq)
        .limit(SCAN_LIMIT)
    )
    new_mark, ranges = missing_ranges(mark.watermark, list(seen))
    if new_mark > mark.watermark:
        mark.watermark, mark.progress_at = new_mark, now
    live = await _live_gaps(session, station_id, epoch)
    _record_new(session, station_id=station_id, epoch=epoch, ranges=ranges, live=live, now=now)
    stuck = now - mark.progress_at >= timedelta(seconds=settings.telemetry_gap_after_s)
    stuck_gaps = [
        gap
        for gap in live
        if now - gap.detected_at >= timedelta(seconds=settings.telemetry_gap_after_s)
    ]
    if not (stuck and stuck_gaps):
        return False
    for gap in stuck_gaps:
        if gap.state == PENDING:
            gap.state, gap.opened_at = OPEN, now
            TELEMETRY_GAPS.labels(event="opened").inc()
    interval = timedelta(seconds=settings.telemetry_resync_interval_s)
    if mark.last_resync_at is not None and now - mark.last_resync_at < interval:
        return False
    mark.last_resync_at = now
    for gap in stuck_gaps:
        gap.resyncs += 1
    TELEMETRY_RESYNCS.inc()
    return True


async def _live_gaps(session: AsyncSession, station_id: str, epoch: int) -> list[TelemetryGap]:
    rows = await session.scalars(
        select(TelemetryGap)
        .where(TelemetryGap.station_id == station_id, TelemetryGap.epoch == epoch)
        .where(TelemetryGap.state != CLOSED)
    )
    return list(rows)


def _record_new(
    session: AsyncSession,
    *,
    station_id: str,
    epoch: int,
    ranges: Iterable[SeqRange],
    live: list[TelemetryGap],
    now: datetime,
) -> None:
    """A range not inside a gap we know of is a new (pending) gap."""
    for first, last in ranges:
        if any(gap.first_seq <= first and last <= gap.last_seq for gap in live):
            continue
        gap = TelemetryGap(
            station_id=station_id,
            epoch=epoch,
            first_seq=first,
            last_seq=last,
            state=PENDING,
            detected_at=now,
            resyncs=0,
        )
        session.add(gap)
        live.append(gap)
        TELEMETRY_GAPS.labels(event="detected").inc()


async def _close_filled(session: AsyncSession, *, station_id: str, now: datetime) -> None:
    """Close every gap of the station (any epoch) whose seqs have all arrived."""
    gaps = await session.scalars(
        select(TelemetryGap).where(
            TelemetryGap.station_id == station_id, TelemetryGap.state != CLOSED
        )
    )
    for gap in list(gaps):
        arrived = await session.scalar(
            select(func.count())
            .select_from(InboxEntry)
            .where(InboxEntry.station_id == station_id, InboxEntry.epoch == gap.epoch)
            .where(InboxEntry.seq.between(gap.first_seq, gap.last_seq))
        )
        if arrived == gap.last_seq - gap.first_seq + 1:
            gap.state, gap.closed_at = CLOSED, now
            TELEMETRY_GAPS.labels(event="closed").inc()
