"""InfluxDB v2 export sink: walks ``telemetry_points`` by id past a cursor, writes line protocol.

The SQL table is the disk buffer: the cursor (``telemetry_sink_cursors``) advances only after
InfluxDB accepted a batch, so an unreachable InfluxDB only makes the lag grow, and retention
keeps every point above the cursor. Delivery is at least once; a re-sent line carries the same
series and timestamp, which InfluxDB overwrites rather than duplicates. A line InfluxDB refuses
is found by bisecting the batch and kept as a dead letter with the reason; the rest goes on.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub import metrics
from hub.settings import HubSettings
from hub.store.models import DeadLetter, TelemetryPointRecord
from hub.store.telemetry_tables import TelemetrySinkCursor
from hub.telemetry.influx_writer import (
    FatalWrite,
    InfluxTarget,
    InfluxWriter,
    RejectedLines,
    RetryableWrite,
    retry_delay,
)
from hub.telemetry.line_protocol import ExportPoint, UnencodablePoint, encode
from protocol.aio import stop_task, wait_event
from protocol.models import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

SINK_NAME = "influx"
POINT_COLUMNS = (
    TelemetryPointRecord.id,
    TelemetryPointRecord.station_id,
    TelemetryPointRecord.device,
    TelemetryPointRecord.metric,
    TelemetryPointRecord.ts,
    TelemetryPointRecord.value_num,
    TelemetryPointRecord.value_text,
)


class Serialiser(Protocol):
    """Runs database work as the process's one writer (``HubLink.serialised``)."""

    def __call__(self, work: Callable[[], Awaitable[T]]) -> Awaitable[T]: ...


async def _unserialised(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


class Stopping(Exception):
    """The hub is stopping while a batch waits for a retry: the cursor stays put."""


@dataclass(frozen=True)
class ExportConfig:
    """Timings and sizes of the export loop (seconds)."""

    batch_lines: int = 5000
    flush_s: float = 5.0
    retry_base_s: float = 1.0
    retry_cap_s: float = 60.0
    # An id missing below committed ids is a transaction still in flight (PostgreSQL hands
    # out ids before commit) until it has been missing this long; then it rolled back.
    gap_grace_s: float = 30.0
    name: str = SINK_NAME


class HoleWatch:
    """Keeps the cursor from jumping over ids whose transaction has not committed yet."""

    def __init__(self, grace_s: float) -> None:
        self._grace_s = grace_s
        self._first_seen: dict[int, float] = {}

    def settled(self, rows: Sequence[ExportPoint], after_id: int) -> list[ExportPoint]:
        """The rows up to the first hole younger than the grace period."""
        now = time.monotonic()
        self._first_seen = {hole: t for hole, t in self._first_seen.items() if hole > after_id}
        expected, ready = after_id + 1, []
        for row in rows:
            if row.id != expected:
                first = self._first_seen.setdefault(expected, now)
                if now - first < self._grace_s:
                    break
            ready.append(row)
            expected = row.id + 1
        return ready


class InfluxExporter:
    """The export loop; ``run`` until ``stop``. ``export_once`` is one batch (tests)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        writer: InfluxWriter,
        config: ExportConfig | None = None,
        serialised: Serialiser = _unserialised,
    ) -> None:
        self.sessions = sessions
        self.writer = writer
        self.config = config or ExportConfig()
        self._serialised = serialised
        self._holes = HoleWatch(self.config.gap_grace_s)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.fatal: str | None = None  # why the sink stopped for good, if it did

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name=f"sink-{self.config.name}")
        return self._task

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Stop after the current write; a batch not yet accepted is simply sent again."""
        self._stop.set()
        if self._task is not None:
            await stop_task(self._task, timeout_s)  # protocol/aio.py: never asyncio.wait_for here
        await asyncio.to_thread(self.writer.close)

    async def run(self) -> None:
        metrics.INFLUX_SINK_UP.set(1)
        await self._serialised(self._ensure_cursor)
        while not self._stop.is_set():
            try:
                exported = await self.export_once()
            except Stopping:
                break
            except FatalWrite as err:
                self.fatal = str(err)
                metrics.INFLUX_SINK_UP.set(0)
                log.critical("InfluxDB export stopped, points stay buffered in SQL: %s", err)
                return
            except Exception:
                log.exception("InfluxDB export cycle failed; trying again")
                exported = 0
            if exported < self.config.batch_lines and await self._stopped_within(
                self.config.flush_s
            ):
                break

    async def drain(self) -> int:
        """Export until nothing is ready (tests, a final flush); the points taken."""
        await self._serialised(self._ensure_cursor)
        total = 0
        while taken := await self.export_once():
            total += taken
        return total

    async def export_once(self) -> int:
        """Export the next batch; the number of points taken off the buffer (sent or rejected)."""
        cursor, max_id = await self._positions()
        rows = self._holes.settled(await self._fetch(cursor), cursor)
        if not rows:
            metrics.INFLUX_LAG.set(max(0, (max_id or 0) - cursor))
            return 0
        lines, unencodable = _encode_all(rows)
        refused = await self._deliver(lines)
        rejected = unencodable + refused
        await self._serialised(lambda: self._commit(rows[-1].id, rejected))
        metrics.INFLUX_EXPORTED.inc(len(lines) - len(refused))
        metrics.INFLUX_REJECTED.inc(len(rejected))
        metrics.INFLUX_LAG.set(max(0, (max_id or 0) - rows[-1].id))
        return len(rows)

    # ---- delivery ----------------------------------------------------------------------------

    async def _deliver(self, items: list[tuple[ExportPoint, str]]) -> list[tuple[ExportPoint, str]]:
        """Write ``items``; the ones InfluxDB refuses, found by bisection, with the reason."""
        if not items:
            return []
        try:
            await self._write_with_retry([line for _, line in items])
        except RejectedLines as err:
            if len(items) == 1:
                log.warning("InfluxDB refused telemetry point %d: %s", items[0][0].id, err)
                return [(items[0][0], str(err))]
            middle = len(items) // 2
            return await self._deliver(items[:middle]) + await self._deliver(items[middle:])
        return []

    async def _write_with_retry(self, lines: list[str]) -> None:
        attempt = 0
        while True:
            try:
                await asyncio.to_thread(self.writer.write, lines)
            except RetryableWrite as err:
                delay = retry_delay(
                    attempt,
                    base_s=self.config.retry_base_s,
                    cap_s=self.config.retry_cap_s,
                    retry_after_s=err.retry_after_s,
                )
                metrics.INFLUX_RETRIES.inc()
                log.warning("InfluxDB write of %d lines failed (%s); retry in %.2fs",
                            len(lines), err, delay)  # fmt: skip
                attempt += 1
                if await self._stopped_within(delay):
                    raise Stopping from err
            else:
                metrics.INFLUX_BATCHES.inc()
                return

    async def _stopped_within(self, seconds: float) -> bool:
        await wait_event(self._stop, seconds)
        return self._stop.is_set()

    # ---- database ----------------------------------------------------------------------------

    @property
    def _mine(self) -> ColumnElement[bool]:
        return TelemetrySinkCursor.name == self.config.name

    async def _ensure_cursor(self) -> None:
        """Create the cursor at 0, or mark an existing one enabled again: retention keeps
        only what every enabled cursor has, so a disabled one would let unsent points go."""
        async with self.sessions() as session:
            found = await session.scalar(select(TelemetrySinkCursor.last_id).where(self._mine))
            if found is not None:
                await session.execute(
                    update(TelemetrySinkCursor).where(self._mine).values(enabled=True)
                )
                await session.commit()
                return
            try:
                await session.execute(
                    insert(TelemetrySinkCursor).values(
                        name=self.config.name, last_id=0, enabled=True, updated_at=utcnow()
                    )
                )
                await session.commit()
            except IntegrityError:  # another hub on the same database created it first
                await session.rollback()

    async def _positions(self) -> tuple[int, int | None]:
        """The cursor and the highest stored id."""
        async with self.sessions() as session:
            cursor = await session.scalar(select(TelemetrySinkCursor.last_id).where(self._mine))
            max_id = await session.scalar(select(func.max(TelemetryPointRecord.id)))
        cursor = int(cursor or 0)
        if max_id is not None and max_id < cursor:
            # Ids below the cursor were handed out again (SQLite reuses the highest rowid once
            # the table is empty): export them again rather than skip them.
            log.error("telemetry ids restarted below the %s cursor %d; rewinding", self.config.name,
                      cursor)  # fmt: skip
            await self._serialised(functools.partial(self._rewind, cursor))
            cursor = 0
        return cursor, max_id

    async def _fetch(self, cursor: int) -> list[ExportPoint]:
        async with self.sessions() as session:
            result = await session.execute(
                select(*POINT_COLUMNS)
                .where(TelemetryPointRecord.id > cursor)
                .order_by(TelemetryPointRecord.id)
                .limit(self.config.batch_lines)
            )
            return [ExportPoint(*row) for row in result]

    async def _commit(self, last_id: int, rejected: list[tuple[ExportPoint, str]]) -> None:
        """Record the refused points and move the cursor forward, in one transaction."""
        now = utcnow()
        async with self.sessions.begin() as session:
            for point, reason in rejected:
                session.add(_dead_letter(self.config.name, point, reason, now))
            # Only forward: another hub on the same PostgreSQL may have gone further.
            await session.execute(
                update(TelemetrySinkCursor)
                .where(
                    self._mine,
                    TelemetrySinkCursor.last_id < last_id,
                )
                .values(last_id=last_id, updated_at=now)
            )

    async def _rewind(self, cursor: int) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(TelemetrySinkCursor)
                .where(
                    self._mine,
                    TelemetrySinkCursor.last_id == cursor,
                )
                .values(last_id=0, updated_at=utcnow())
            )


def _encode_all(
    rows: Sequence[ExportPoint],
) -> tuple[list[tuple[ExportPoint, str]], list[tuple[ExportPoint, str]]]:
    """Lines to send, and points line protocol cannot carry (with the reason)."""
    lines, rejected = [], []
    for row in rows:
        try:
            lines.append((row, encode(row)))
        except UnencodablePoint as err:
            rejected.append((row, f"not encodable: {err}"))
    return lines, rejected


def _dead_letter(sink: str, point: ExportPoint, reason: str, now: datetime) -> DeadLetter:
    line = _safe_line(point)
    return DeadLetter(
        topic=f"sink/{sink}",
        station_id=point.station_id,
        payload=line.encode(),
        reason=f"{reason} (telemetry point {point.id})",
        received_at=now,
    )


def _safe_line(point: ExportPoint) -> str:
    try:
        return encode(point)
    except UnencodablePoint:
        return f"{point.station_id} {point.device} {point.metric} {point.ts.isoformat()}"


def build_influx_exporter(
    settings: HubSettings,
    sessions: async_sessionmaker[AsyncSession],
    serialised: Serialiser = _unserialised,
) -> InfluxExporter | None:
    """The exporter the settings ask for, or None when ``influx_url`` is not set."""
    if not settings.influx_url:
        return None
    target = InfluxTarget(
        url=settings.influx_url,
        token=settings.influx_token.get_secret_value(),
        org=settings.influx_org,
        bucket=settings.influx_bucket,
        timeout_s=settings.influx_timeout_s,
    )
    config = ExportConfig(batch_lines=settings.influx_batch_lines, flush_s=settings.influx_flush_s)
    log.info("InfluxDB export to %s (org %s, bucket %s)", target.url, target.org, target.bucket)
    return InfluxExporter(sessions, InfluxWriter(target), config, serialised)
