"""Agent telemetry: typed device metrics in durable batches, historical backfill, the paced
drain, resync, the produced counter and the agent's /metrics (shed points too).

Sampling and batching run on a real agent context (SQLite outbox, simulated devices on their
real drivers). Pacing and resync run the real StationLink against a private mosquitto, with a
plain aiomqtt client standing in for the hub. /metrics is fetched over real HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
import pytest_asyncio

from agent.config import DeviceConfig
from agent.context import AgentContext
from agent.link import Pace, StationLink
from agent.metrics import AgentMetrics
from agent.outbox import DiskBudget
from agent.telemetry import TelemetrySampler, produced_points
from benchfleet.broker import PrivateBroker
from drivers.errors import DeviceUnavailableError
from protocol import codec, encode, topics
from protocol.models import Command, Event, TelemetryBatch

STATION = "st-01"
ALL_FAMILIES = [
    DeviceConfig(name="laser-1", family="laser", options={"seconds_per_char": 0.001}),
    DeviceConfig(name="cleaner-1", family="cleaner"),
    DeviceConfig(name="scale-1", family="scale", options={"settle_s": 0.01}),
    DeviceConfig(name="camera-1", family="camera"),
]


def batches(ctx: AgentContext) -> list[TelemetryBatch]:
    return [
        TelemetryBatch.model_validate_json(entry.payload)
        for entry in ctx.outbox.due(now=0, window=10_000)
        if entry.kind == "telemetry"
    ]


def go_live(ctx: AgentContext, live: bool = True) -> None:
    ctx.link.connected, ctx.link.hub_online = live, True


# ---- sampling and batching ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_batch_carries_typed_metrics_of_every_family(make_context: Any) -> None:
    ctx = await make_context(devices=ALL_FAMILIES)
    go_live(ctx)
    sampler = TelemetrySampler(ctx)
    await sampler.sample_once()
    (message_id,) = sampler.flush()
    (batch,) = batches(ctx)
    assert (batch.epoch, batch.seq) == message_id
    assert batch.historical is False
    values = {(p.device, p.metric): p.value for p in batch.points}
    assert values[("laser-1", "state")] == "Idle"
    assert isinstance(values[("laser-1", "x_mm")], float)
    assert isinstance(values[("cleaner-1", "temperature_c")], float)
    assert values[("cleaner-1", "state")] == "idle"
    assert values[("scale-1", "unit")] == "g"
    assert isinstance(values[("scale-1", "stable")], bool)
    assert values[("camera-1", "frames")] == 0
    assert 0 <= float(values[("station", "disk_used_percent")]) <= 100
    assert sampler.stats.devices_sampled == 4
    assert len({p.ts for p in batch.points}) == 1  # one round, one timestamp


@pytest.mark.asyncio
async def test_unavailable_device_is_skipped_and_counted(make_context: Any) -> None:
    ctx = await make_context()
    laser = ctx.devices.laser
    ctx.devices.mark_unavailable(laser, DeviceUnavailableError("cable pulled"))
    sampler = TelemetrySampler(ctx)
    await sampler.sample_once()
    sampler.flush()
    devices = {p.device for p in batches(ctx)[0].points}
    assert devices == {"station", "camera-1"}
    assert (sampler.stats.devices_sampled, sampler.stats.devices_skipped) == (1, 1)


@pytest.mark.asyncio
async def test_batches_sampled_offline_are_historical(make_context: Any) -> None:
    ctx = await make_context()
    sampler = TelemetrySampler(ctx)
    await sampler.sample_once()  # link down
    go_live(ctx)
    await sampler.sample_once()
    sampler.flush()  # flushed online, but half of it was sampled offline: backfill
    await sampler.sample_once()
    sampler.flush()
    ctx.link.hub_online = False  # broker up, hub gone: also late
    await sampler.sample_once()
    sampler.flush()
    assert [b.historical for b in batches(ctx)] == [True, False, True]
    assert sampler.stats.historical_batches == 2


@pytest.mark.asyncio
async def test_batch_size_is_capped(make_context: Any) -> None:
    ctx = await make_context(telemetry_batch_points=7)
    sampler = TelemetrySampler(ctx)
    for _ in range(3):
        await sampler.sample_once()  # a full batch leaves at once
    sampler.flush()
    sizes = [len(b.points) for b in batches(ctx)]
    assert max(sizes) <= 7
    assert len(sizes) >= 3


@pytest.mark.asyncio
async def test_produced_counter_matches_the_outbox_and_survives_restart(
    make_context: Any,
) -> None:
    first = await make_context()
    sampler = TelemetrySampler(first)
    for _ in range(3):
        await sampler.sample_once()
        sampler.flush()
    in_outbox = sum(len(b.points) for b in batches(first))
    assert (
        produced_points(first.db, first.outbox.epoch) == in_outbox == sampler.stats.points_produced
    )
    second = await make_context()  # an agent restart: a new epoch on the same SQLite file
    again = TelemetrySampler(second)
    await again.sample_once()
    again.flush()
    assert produced_points(second.db, first.outbox.epoch) == in_outbox
    assert produced_points(second.db) == in_outbox + again.stats.points_produced


@pytest.mark.asyncio
async def test_run_flushes_per_batch_period_and_on_stop(make_context: Any) -> None:
    ctx = await make_context(telemetry_sample_s=0.02, telemetry_batch_s=0.1)
    sampler = TelemetrySampler(ctx)
    task = asyncio.create_task(sampler.run())
    await asyncio.sleep(0.35)
    await sampler.stop()
    await task
    found = batches(ctx)
    assert len(found) >= 3
    assert sum(len(b.points) for b in found) == sampler.stats.points_produced
    assert all(len({p.ts for p in b.points}) > 1 for b in found[:-1])  # several rounds each


# ---- pacing ---------------------------------------------------------------------------------


def test_pace_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    pace = Pace(10.0, clock=lambda: now[0])
    assert sum(pace.take() for _ in range(50)) == 10  # one second's worth at once
    now[0] += 0.5
    assert sum(pace.take() for _ in range(50)) == 5
    assert pace.wait_s() == pytest.approx(0.1)


# ---- the link: paced backfill, resync (real mosquitto) ----------------------------------------


class _NoDown:
    def on_assignment(self, assignment: Any) -> None:
        raise AssertionError("no jobs here")

    def on_command(self, command: Any) -> None:
        raise AssertionError(f"unexpected command {command.kind}")

    def on_alarm(self, notice: Any) -> None:
        raise AssertionError("no alarms here")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    with PrivateBroker(tmp_path / "broker") as running:
        yield running


@pytest_asyncio.fixture
async def hub_client(broker: PrivateBroker) -> AsyncIterator[tuple[aiomqtt.Client, list[Any]]]:
    """A bare subscriber that records (kind, message) in arrival order; it never acks."""
    seen: list[Any] = []
    async with aiomqtt.Client(broker.host, broker.port, identifier="test-hub") as client:
        await client.subscribe(topics.up_filter(STATION), qos=1)

        async def listen() -> None:
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                decoded = codec.decode(message.topic.value, message.payload)
                assert not isinstance(decoded, codec.Rejection), decoded.reason
                seen.append((decoded.topic.kind, decoded.message))

        task = asyncio.create_task(listen())
        yield client, seen
        task.cancel()


@contextlib.asynccontextmanager
async def running_link(ctx: AgentContext) -> AsyncIterator[StationLink]:
    link = StationLink(ctx, _NoDown())
    task = asyncio.create_task(link.run())
    try:
        yield link
    finally:
        await link.stop()
        await asyncio.wait_for(task, 10)


async def until(probe: Any, seconds: float = 10.0) -> Any:
    async with asyncio.timeout(seconds):
        while not (result := probe()):  # noqa: ASYNC110 - polling what a test observes
            await asyncio.sleep(0.01)
    return result


def kinds(seen: list[Any], kind: str) -> list[Any]:
    return [message for seen_kind, message in seen if seen_kind == kind]


@pytest.mark.broker
@pytest.mark.asyncio
async def test_backlog_drains_paced_behind_events(
    make_context: Any, broker: PrivateBroker, hub_client: Any
) -> None:
    _, seen = hub_client
    ctx = await make_context(
        mqtt_url=broker.url, backfill_batches_per_s=5, inflight_window=1000, devices=[]
    )
    sampler = TelemetrySampler(ctx)
    for _ in range(25):  # an outage's worth of telemetry, sampled while the link was down
        await sampler.sample_once()
        sampler.flush()
    ctx.outbox.enqueue(
        topics.Up.EVENT, lambda e, s: Event(station_id=STATION, epoch=e, seq=s, kind="late")
    )
    async with running_link(ctx) as link:
        await until(lambda: kinds(seen, "telemetry"))
        early = len(kinds(seen, "telemetry"))
        assert early <= 5 + 2  # the burst (one second at 5/s), not the whole backlog
        arrived = await until(lambda: len(kinds(seen, "telemetry")) == 25 and seen)
        assert link.connected
    order = [kind for kind, _ in arrived if kind in ("event", "telemetry")]
    assert order[0] == "event"  # enqueued last, sent first
    assert all(batch.historical for batch in kinds(seen, "telemetry"))
    assert ctx.link.paced > 0
    assert ctx.link.published == 26


@pytest.mark.broker
@pytest.mark.asyncio
async def test_resync_resends_the_outbox_and_a_birth(
    make_context: Any, broker: PrivateBroker, hub_client: Any
) -> None:
    client, seen = hub_client
    ctx = await make_context(mqtt_url=broker.url, resend_after_s=3600, devices=[])
    go_live(ctx)
    sampler = TelemetrySampler(ctx)
    for _ in range(3):
        await sampler.sample_once()
        sampler.flush()
    async with running_link(ctx):
        await until(lambda: len(kinds(seen, "telemetry")) == 3)
        assert len(kinds(seen, "birth")) == 1
        command = Command(kind="resync")
        await client.publish(topics.down(STATION, topics.Down.CMD), encode(command), qos=1)
        await until(lambda: len(kinds(seen, "birth")) == 2)
        resent = await until(
            lambda: len(kinds(seen, "telemetry")) == 6 and kinds(seen, "telemetry")
        )
    ids = [(batch.epoch, batch.seq) for batch in resent]
    assert sorted(ids[3:]) == sorted(ids[:3])  # the same messages, same (epoch, seq)


# ---- /metrics -------------------------------------------------------------------------------


async def scrape(ctx: AgentContext, sampler: TelemetrySampler) -> list[str]:
    """The agent's /metrics over real HTTP, as lines."""
    metrics = AgentMetrics(ctx, sampler)
    task = asyncio.create_task(metrics.run())
    try:
        port = await until(lambda: metrics.port)
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{port}/metrics")
    finally:
        await metrics.stop()
        await task
    assert response.status_code == 200
    return response.text.splitlines()


@pytest.mark.asyncio
async def test_metrics_endpoint_answers_over_http(make_context: Any) -> None:
    ctx = await make_context(metrics_port=0)
    sampler = TelemetrySampler(ctx)
    await sampler.sample_once()
    sampler.flush()
    lines = await scrape(ctx, sampler)
    produced = sampler.stats.points_produced
    assert f"benchfleet_agent_telemetry_points_produced_total {float(produced)}" in lines
    assert 'benchfleet_agent_outbox_depth{priority="2"} 1.0' in lines
    assert "benchfleet_agent_link_connected 0.0" in lines
    assert "benchfleet_agent_devices_sampled_total 2.0" in lines
    assert "benchfleet_agent_telemetry_points_shed_total 0.0" in lines
    assert "benchfleet_agent_evidence_held 0.0" in lines


@pytest.mark.asyncio
async def test_shed_telemetry_is_on_metrics(make_context: Any) -> None:
    ctx = await make_context(metrics_port=0)
    # A free-space floor above what the disk has: the budget refuses telemetry, then events.
    ctx.outbox.budget = DiskBudget(min_free_bytes=1 << 60, path=ctx.config.data_dir)
    sampler = TelemetrySampler(ctx)
    for _ in range(2):
        await sampler.sample_once()
        assert sampler.flush() == []  # refused: shed, not produced
    shed = sampler.stats.points_shed
    assert shed > 0
    assert produced_points(ctx.db) == 0
    lines = await scrape(ctx, sampler)
    assert f"benchfleet_agent_telemetry_points_shed_total {float(shed)}" in lines
    assert "benchfleet_agent_telemetry_batches_shed_total 2.0" in lines
    assert "benchfleet_agent_telemetry_shed_episodes_total 1.0" in lines  # one episode, 2 batches
    assert "benchfleet_agent_telemetry_points_produced_total 0.0" in lines
    assert 'benchfleet_agent_outbox_refused_total{kind="telemetry"} 2.0' in lines
    assert 'benchfleet_agent_outbox_refused_total{kind="event"} 1.0' in lines  # telemetry_shed
    assert "benchfleet_agent_disk_full 0.0" in lines  # the budget said no, not the disk
