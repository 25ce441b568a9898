"""The agent's Prometheus ``/metrics``: telemetry produced and shed, outbox depth and refusals,
the data disk (evidence held in memory while it is full), link, publish rate.

Off unless the station config sets ``metrics_port`` (0 picks a free port: tests). The HTTP
server is prometheus_client's, on its own thread with a registry of its own (several agents can
share a process in tests and the benchmark). The scrape thread never touches SQLite (a
connection belongs to the loop's thread): the loop refreshes the outbox depth and the publish
rate every ``REFRESH_S`` (with the outbox's refusals and its bookkeeping held in memory) and the
collector reads those numbers and plain counters.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.context import AgentContext
from agent.telemetry import TelemetrySampler
from protocol.aio import wait_event

log = logging.getLogger(__name__)

REFRESH_S = 1.0
PREFIX = "benchfleet_agent"


class _AgentCollector(Collector):
    """Reads the agent's counters at scrape time; see the module docstring."""

    def __init__(self, metrics: AgentMetrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        stats, link = self._m.sampler.stats, self._m.ctx.link
        yield _counter("telemetry_points_produced", "points enqueued (this process)",
                       stats.points_produced)  # fmt: skip
        yield _counter("telemetry_batches", "telemetry batches enqueued", stats.batches_enqueued)
        yield _counter("telemetry_historical_batches", "batches flagged historical (backfill)",
                       stats.historical_batches)  # fmt: skip
        yield _counter("telemetry_points_shed", "points the outbox refused (disk budget, full "
                       "disk): counted, not sent", stats.points_shed)  # fmt: skip
        yield _counter("telemetry_batches_shed", "batches the outbox refused", stats.batches_shed)
        yield _counter("telemetry_shed_episodes", "times shedding began (one telemetry_shed "
                       "event each)", stats.shed_episodes)  # fmt: skip
        yield from self._disk()
        yield _counter("devices_sampled", "device samples taken", stats.devices_sampled)
        yield _counter("devices_skipped", "device samples skipped (not ready, slow, bad)",
                       stats.devices_skipped)  # fmt: skip
        yield _counter("published", "outbox publications acknowledged by the broker",
                       link.published)  # fmt: skip
        yield _counter("backfill_paced", "times telemetry waited for the backfill pace",
                       link.paced)  # fmt: skip
        yield _counter("broker_denied", "publications the broker refused (PUBACK >= 0x80)",
                       link.broker_denied)  # fmt: skip
        yield _counter("broker_connect_refused", "connections the broker refused (CONNACK)",
                       link.connect_refused)  # fmt: skip
        yield _counter("hub_messages_refused", "hub messages refused: bad MAC or replayed",
                       link.assignments_refused)  # fmt: skip
        yield _gauge("link_connected", "1 while connected to the broker", int(link.connected))
        yield _gauge("publish_rate", "publications per second, last refresh", self._m.rate)
        depth = GaugeMetricFamily(
            f"{PREFIX}_outbox_depth", "unacknowledged outbox entries", labels=["priority"]
        )
        for priority, count in sorted(self._m.depth.items()):
            depth.add_metric([str(priority)], count)
        yield depth

    def _disk(self) -> Iterator[Metric]:
        disk = self._m.ctx.outbox.disk
        refused = CounterMetricFamily(
            f"{PREFIX}_outbox_refused",
            "messages the outbox did not store, by kind",
            labels=["kind"],
        )
        for kind, count in sorted(self._m.refused.items()):
            refused.add_metric([kind], count)
        yield refused
        yield _gauge("disk_full", "1 while the outbox's last write found the data disk full",
                     int(disk.full))  # fmt: skip
        yield _gauge("evidence_held", "job updates and proofs waiting in memory for disk space",
                     disk.held)  # fmt: skip
        yield _counter("evidence_held_episodes", "times evidence had to wait for disk space",
                       disk.episodes)  # fmt: skip
        yield _counter("evidence_write_retries", "attempts to store held evidence again",
                       disk.retries)  # fmt: skip
        yield _gauge("outbox_deferred_writes", "outbox bookkeeping (sends, Acks) held in "
                     "memory: the disk was full", self._m.deferred)  # fmt: skip


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value)


class AgentMetrics:
    """Component: serves ``/metrics`` while it runs; :attr:`port` is the bound port."""

    def __init__(self, ctx: AgentContext, sampler: TelemetrySampler) -> None:
        self.ctx, self.sampler = ctx, sampler
        self.depth: dict[int, int] = {}
        self.refused: dict[str, int] = {}
        self.deferred = 0
        self.rate = 0.0
        self.port: int | None = None
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_AgentCollector(self))
        self._last = (time.monotonic(), 0)  # (when, publications) of the last refresh
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        config = self.ctx.config
        if config.metrics_port is None:
            await self._stopping.wait()
            return
        self.refresh()
        self._server, self._thread = start_http_server(
            config.metrics_port, addr=config.metrics_host, registry=self.registry
        )
        self.port = self._server.server_port
        log.info("agent %s: /metrics on %s:%d", config.station_id, config.metrics_host, self.port)
        try:
            while not self._stopping.is_set():
                await wait_event(self._stopping, REFRESH_S)
                self.refresh()
        finally:
            self._server.shutdown()
            self._server.server_close()

    def refresh(self, now: float | None = None) -> None:
        """Read what only the loop's thread may read (the outbox), and the publish rate."""
        now = time.monotonic() if now is None else now
        last_at, last_count = self._last
        if now > last_at:
            self.rate = (self.ctx.link.published - last_count) / (now - last_at)
        self._last = (now, self.ctx.link.published)
        self.depth = self.ctx.outbox.depth()
        self.refused = dict(self.ctx.outbox.refused)  # a copy: the scrape thread iterates it
        self.deferred = self.ctx.outbox.deferred_writes

    async def stop(self) -> None:
        self._stopping.set()


def create(ctx: AgentContext, sampler: TelemetrySampler) -> AgentMetrics:
    """Component factory."""
    return AgentMetrics(ctx, sampler)
