"""Station telemetry: a small batch of station metrics every ``telemetry_interval_s``.

Per-device telemetry (laser state, scale readings, ...) is a later issue; this samples the
station PC itself and the outbox, which is what an engineer looks at first when a station lags.
"""

from __future__ import annotations

import asyncio
import logging

import psutil

from agent.context import AgentContext
from agent.outbox import PRIORITY, Outbox
from protocol import topics
from protocol.models import TelemetryBatch, TelemetryPoint, utcnow

log = logging.getLogger(__name__)

STATION_DEVICE = "station"


def sample_station(outbox: Outbox, disk_path: str) -> dict[str, float]:
    """One sample of the station's own metrics."""
    depth = outbox.depth()
    return {
        "cpu_percent": float(psutil.cpu_percent(interval=None)),
        "disk_used_percent": float(psutil.disk_usage(disk_path).percent),
        "outbox_jobs": float(depth[PRIORITY[topics.Up.JOB]]),
        "outbox_events": float(depth[PRIORITY[topics.Up.EVENT]]),
        "outbox_telemetry": float(depth[PRIORITY[topics.Up.TELEMETRY]]),
    }


class TelemetrySampler:
    """Enqueues one :class:`TelemetryBatch` per interval."""

    def __init__(self, ctx: AgentContext) -> None:
        self._ctx = ctx
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        interval = self._ctx.config.telemetry_interval_s
        while not self._stopping.is_set():
            self.sample_once()
            try:
                await asyncio.wait_for(self._stopping.wait(), interval)
            except TimeoutError:
                continue

    async def stop(self) -> None:
        self._stopping.set()

    def sample_once(self) -> None:
        """Take one sample and put it in the outbox."""
        ts = utcnow()
        values = sample_station(self._ctx.outbox, str(self._ctx.config.data_dir))
        points = [
            TelemetryPoint(device=STATION_DEVICE, metric=metric, ts=ts, value=value)
            for metric, value in values.items()
        ]
        station_id = self._ctx.config.station_id

        def build(epoch: int, seq: int) -> TelemetryBatch:
            return TelemetryBatch(station_id=station_id, epoch=epoch, seq=seq, points=points)

        self._ctx.outbox.enqueue(topics.Up.TELEMETRY, build)


def create(ctx: AgentContext) -> TelemetrySampler:
    """Component factory."""
    return TelemetrySampler(ctx)
