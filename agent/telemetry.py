"""Station telemetry: sample every device and the station, batch the points, enqueue durably.

Every ``telemetry_sample_s`` each ready device that declares ``METRICS`` (:mod:`drivers.telemetry`)
is sampled, beside the station PC itself (CPU, disk, outbox depth). Drivers sample from what
they cache or may ask without disturbing a job; a device that is not ready, too slow or returns
a bad sample is skipped and counted, never waited for. Points collect in memory and go to the
durable outbox as one :class:`TelemetryBatch` every ``telemetry_batch_s`` (or at
``telemetry_batch_points``), where they get their ``(epoch, seq)``.

A batch sampled while the link was down (or the hub offline) is flagged ``historical``: it is
backfill, and the link paces it. The points of every enqueued batch are counted in the agent's
SQLite, per epoch, in the same transaction as the enqueue, so "produced" is exactly what the
outbox holds or delivered: the number to compare with what the hub stored.

When the outbox's disk budget refuses a batch (:class:`~agent.outbox.OutboxFullError`), its
points are *shed*: counted (``telemetry_shed``, per epoch, written with the next batch that is
stored: the disk is full now), logged once and reported once per episode (Event
``telemetry_shed``, then ``telemetry_resumed`` with the episode's count). So every sampled point
is either produced or shed, and produced is what the hub must have stored.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psutil

from agent.context import AgentContext
from agent.devices import DeviceState, ManagedDevice
from agent.events import emit_event
from agent.outbox import PRIORITY, MessageId, Outbox, OutboxFullError
from drivers.errors import DeviceError
from drivers.telemetry import BadSampleError, Scalar, check_sample
from protocol import topics
from protocol.aio import wait_event
from protocol.models import Severity, TelemetryBatch, TelemetryPoint, utcnow

log = logging.getLogger(__name__)

STATION_DEVICE = "station"
DEVICE_SAMPLE_TIMEOUT_S = 2.0  # a device slower than this is skipped for the round

SCHEMA = """
CREATE TABLE IF NOT EXISTS telemetry_produced (
    epoch INTEGER PRIMARY KEY,
    points INTEGER NOT NULL,
    batches INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS telemetry_shed (
    epoch INTEGER PRIMARY KEY,
    points INTEGER NOT NULL,
    batches INTEGER NOT NULL
);
"""


@dataclass(slots=True)
class TelemetryStats:
    """Counts of this process (the /metrics endpoint exports them)."""

    rounds: int = 0
    devices_sampled: int = 0
    devices_skipped: int = 0
    points_produced: int = 0
    batches_enqueued: int = 0
    historical_batches: int = 0
    points_shed: int = 0
    batches_shed: int = 0
    shed_episodes: int = 0


@dataclass(slots=True)
class ShedEpisode:
    """Batches refused since the outbox last took one; ``unsaved`` still to be counted."""

    points: int = 0
    batches: int = 0
    unsaved_points: int = 0
    unsaved_batches: int = 0
    active: bool = False


def sample_station(outbox: Outbox, disk_path: str) -> dict[str, Scalar]:
    """One sample of the station's own metrics."""
    depth = outbox.depth()
    return {
        "cpu_percent": float(psutil.cpu_percent(interval=None)),
        "disk_used_percent": float(psutil.disk_usage(disk_path).percent),
        "outbox_jobs": depth[PRIORITY[topics.Up.JOB]],
        "outbox_events": depth[PRIORITY[topics.Up.EVENT]],
        "outbox_telemetry": depth[PRIORITY[topics.Up.TELEMETRY]],
    }


def produced_points(db: sqlite3.Connection, epoch: int | None = None) -> int:
    """Telemetry points enqueued in ``epoch`` (every epoch when None), durable across restarts."""
    return _count(db, "telemetry_produced", epoch)


def shed_points(db: sqlite3.Connection, epoch: int | None = None) -> int:
    """Telemetry points the outbox refused (counted once a later batch was stored)."""
    return _count(db, "telemetry_shed", epoch)


def _count(db: sqlite3.Connection, table: str, epoch: int | None) -> int:
    db.executescript(SCHEMA)
    query = f"SELECT coalesce(sum(points), 0) FROM {table}"  # noqa: S608 - our own two names
    args: tuple[int, ...] = ()
    if epoch is not None:
        query, args = query + " WHERE epoch = ?", (epoch,)
    return int(db.execute(query, args).fetchone()[0])


class TelemetrySampler:
    """Component: samples, batches and enqueues; see the module docstring."""

    def __init__(self, ctx: AgentContext) -> None:
        self._ctx = ctx
        self._stopping = asyncio.Event()
        self._pending: list[TelemetryPoint] = []
        self._offline_in_batch = False
        self.stats = TelemetryStats()
        self._shed = ShedEpisode()
        ctx.db.executescript(SCHEMA)

    async def run(self) -> None:
        config = self._ctx.config
        flush_at = time.monotonic() + config.telemetry_batch_s
        while not self._stopping.is_set():
            await self.sample_once()
            if time.monotonic() >= flush_at:
                self.flush()
                flush_at = time.monotonic() + config.telemetry_batch_s
            await wait_event(self._stopping, config.telemetry_sample_s)
        self.flush()  # what was sampled before the stop is kept, not dropped

    async def stop(self) -> None:
        self._stopping.set()

    # ---- sampling -----------------------------------------------------------------------------

    async def sample_once(self) -> None:
        """Sample the station and every ready device once; full batches go out at once."""
        ts = utcnow()
        self._offline_in_batch |= not self._ctx.link.live
        station = sample_station(self._ctx.outbox, str(self._ctx.config.data_dir))
        self.add(STATION_DEVICE, station, ts)
        entries = self._ctx.devices.managed
        samples = await asyncio.gather(*(self._sample_device(entry) for entry in entries))
        for entry, values in zip(entries, samples, strict=True):
            if values is None:
                self.stats.devices_skipped += 1
            else:
                self.stats.devices_sampled += 1
                self.add(entry.config.name, values, ts)
        self.stats.rounds += 1
        if len(self._pending) >= self._ctx.config.telemetry_batch_points:
            self.flush()

    async def _sample_device(self, entry: ManagedDevice) -> dict[str, Scalar] | None:
        """One device's sample, or None to skip it (not ready, no METRICS, slow, failing)."""
        device = entry.device
        specs = getattr(device, "METRICS", None)
        if entry.state is not DeviceState.READY or specs is None:
            return None
        try:
            values: dict[str, Scalar] = await asyncio.wait_for(
                device.sample(),  # type: ignore[attr-defined]
                DEVICE_SAMPLE_TIMEOUT_S,
            )
            check_sample(specs, values)
        except (DeviceError, OSError, TimeoutError, BadSampleError) as err:
            # Debug only: a device that is down is reported by the supervisor, once, as an event.
            log.debug("telemetry: %s skipped: %s", entry.config.name, err)
            return None
        return values

    def add(self, device: str, values: dict[str, Scalar], ts: datetime) -> None:
        """Queue ``values`` of ``device`` taken at ``ts`` for the next batch."""
        self._pending.extend(
            TelemetryPoint(device=device, metric=metric, ts=ts, value=value)
            for metric, value in values.items()
        )

    # ---- batching -----------------------------------------------------------------------------

    def flush(self) -> list[MessageId]:
        """Enqueue the pending points as batches of at most ``telemetry_batch_points``."""
        size = self._ctx.config.telemetry_batch_points
        historical = self._offline_in_batch or not self._ctx.link.live
        pending, self._pending, self._offline_in_batch = self._pending, [], False
        stored = (
            self.enqueue_batch(pending[start : start + size], historical=historical)
            for start in range(0, len(pending), size)
        )
        return [message_id for message_id in stored if message_id is not None]

    def enqueue_batch(
        self, points: Sequence[TelemetryPoint], *, historical: bool
    ) -> MessageId | None:
        """Put one batch in the outbox and count its points in the same transaction; None
        when the outbox refused it (the points are shed, and counted as such)."""
        station_id, batch = self._ctx.config.station_id, list(points)

        def build(epoch: int, seq: int) -> TelemetryBatch:
            return TelemetryBatch(
                station_id=station_id, epoch=epoch, seq=seq, points=batch, historical=historical
            )

        shed = self._shed

        def count(db: sqlite3.Connection, epoch: int, _seq: int) -> None:
            _add(db, "telemetry_produced", epoch, len(batch), 1)
            if shed.unsaved_batches:
                _add(db, "telemetry_shed", epoch, shed.unsaved_points, shed.unsaved_batches)

        try:
            message_id = self._ctx.outbox.enqueue(topics.Up.TELEMETRY, build, also=count)
        except OutboxFullError as err:
            self._on_refused(len(batch), err.reason)
            return None
        shed.unsaved_points = shed.unsaved_batches = 0
        self.stats.points_produced += len(batch)
        self.stats.batches_enqueued += 1
        self.stats.historical_batches += historical
        if shed.active:
            self._on_resumed()
        return message_id

    # ---- shedding ------------------------------------------------------------------------------

    def _on_refused(self, points: int, reason: str) -> None:
        shed = self._shed
        shed.points += points
        shed.batches += 1
        shed.unsaved_points += points
        shed.unsaved_batches += 1
        self.stats.points_shed += points
        self.stats.batches_shed += 1
        if shed.active:
            return
        shed.active = True  # a new episode: said once, not once per batch
        self.stats.shed_episodes += 1
        log.warning("telemetry: shedding new batches: %s", reason)
        self._event("telemetry_shed", Severity.MAJOR, f"telemetry shed: {reason}")

    def _on_resumed(self) -> None:
        shed = self._shed
        what = f"{shed.points} points in {shed.batches} batches"
        log.info("telemetry: outbox takes batches again; shed %s", what)
        self._event("telemetry_resumed", Severity.INFO, f"telemetry resumed; shed {what}")
        self._shed = ShedEpisode()

    def _event(self, kind: str, severity: Severity, message: str) -> None:
        station_id = self._ctx.config.station_id
        emit_event(
            self._ctx.outbox, station_id=station_id, kind=kind, severity=severity, message=message
        )


def _add(db: sqlite3.Connection, table: str, epoch: int, points: int, batches: int) -> None:
    db.execute(
        f"INSERT INTO {table} (epoch, points, batches) VALUES (?, ?, ?) "  # noqa: S608 - ours
        "ON CONFLICT (epoch) DO UPDATE SET points = points + excluded.points, "
        "batches = batches + excluded.batches",
        (epoch, points, batches),
    )


def create(ctx: AgentContext) -> TelemetrySampler:
    """Component factory."""
    return TelemetrySampler(ctx)
