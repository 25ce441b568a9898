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
from agent.outbox import PRIORITY, MessageId, Outbox
from drivers.errors import DeviceError
from drivers.telemetry import BadSampleError, Scalar, check_sample
from protocol import topics
from protocol.models import TelemetryBatch, TelemetryPoint, utcnow

log = logging.getLogger(__name__)

STATION_DEVICE = "station"
DEVICE_SAMPLE_TIMEOUT_S = 2.0  # a device slower than this is skipped for the round

SCHEMA = """
CREATE TABLE IF NOT EXISTS telemetry_produced (
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
    db.execute(SCHEMA)
    query = "SELECT coalesce(sum(points), 0) FROM telemetry_produced"
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
        ctx.db.execute(SCHEMA)

    async def run(self) -> None:
        config = self._ctx.config
        flush_at = time.monotonic() + config.telemetry_batch_s
        while not self._stopping.is_set():
            await self.sample_once()
            if time.monotonic() >= flush_at:
                self.flush()
                flush_at = time.monotonic() + config.telemetry_batch_s
            try:
                await asyncio.wait_for(self._stopping.wait(), config.telemetry_sample_s)
            except TimeoutError:
                continue
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
        return [
            self.enqueue_batch(pending[start : start + size], historical=historical)
            for start in range(0, len(pending), size)
        ]

    def enqueue_batch(self, points: Sequence[TelemetryPoint], *, historical: bool) -> MessageId:
        """Put one batch in the outbox and count its points in the same transaction."""
        station_id, batch = self._ctx.config.station_id, list(points)

        def build(epoch: int, seq: int) -> TelemetryBatch:
            return TelemetryBatch(
                station_id=station_id, epoch=epoch, seq=seq, points=batch, historical=historical
            )

        def count(db: sqlite3.Connection, epoch: int, _seq: int) -> None:
            db.execute(
                "INSERT INTO telemetry_produced (epoch, points, batches) VALUES (?, ?, 1) "
                "ON CONFLICT (epoch) DO UPDATE SET points = points + excluded.points, "
                "batches = batches + 1",
                (epoch, len(batch)),
            )

        message_id = self._ctx.outbox.enqueue(topics.Up.TELEMETRY, build, also=count)
        self.stats.points_produced += len(batch)
        self.stats.batches_enqueued += 1
        self.stats.historical_batches += historical
        return message_id


def create(ctx: AgentContext) -> TelemetrySampler:
    """Component factory."""
    return TelemetrySampler(ctx)
