"""Telemetry benchmark: sustained points/s into the hub's embedded sink with 0 loss, hub CPU,
and the time to drain the backlog after a broker outage.

``python -m bench.telemetry [--stations 4] [--seconds 20] [--outage-s 60]``

What runs:

- a private mosquitto (:class:`benchfleet.broker.PrivateBroker`) and the real hub
  (``benchfleet hub`` subprocess, SQLite, embedded sink);
- N stations **in this process**, each the real agent code path: its own SQLite file, the
  durable :class:`~agent.outbox.Outbox`, the real :class:`~agent.link.StationLink` (window,
  Acks, reconnect, paced backfill) and :meth:`TelemetrySampler.enqueue_batch` (the produced
  counter). Devices are replaced by a synthetic producer, so the station side costs what the
  agent's own machinery costs and nothing else.

Phases: (1) the **ceiling**: N bare aiomqtt publishers blast the same batch payloads at QoS 1
through the same broker and a bare aiomqtt subscriber counts points/s (no hub, no outbox);
(2) **sustained**: stations keep at most ``2 x window`` batches waiting and the hub's stored
points are counted over ``--seconds``; hub CPU comes from psutil on the hub process; then
every station's produced count must equal what the hub stored (0 loss); (3) **outage**:
stations produce ``--rate`` points/s each, the broker is stopped for ``--outage-s`` and
started again; measured: reconnect time and the time until the hub stored everything.

Progress lines go to stderr; the last stdout line is the JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import psutil

from agent.config import StationConfig
from agent.context import AgentContext
from agent.db import open_db
from agent.devices import DeviceManager
from agent.link import StationLink
from agent.outbox import Outbox
from agent.telemetry import TelemetrySampler, produced_points
from benchfleet.broker import PrivateBroker, free_port
from benchfleet.processes import ManagedProcess
from hub.settings import DEV_STATION_KEY_SECRET
from protocol import auth, encode
from protocol.models import TelemetryBatch, TelemetryPoint, utcnow

METRICS_PER_ROUND = 20  # a laser, a cleaner, a scale, a camera and the station, roughly


def log(message: str) -> None:
    print(f"[bench.telemetry] {message}", file=sys.stderr, flush=True)


def synthetic_points(count: int, tick: int) -> list[TelemetryPoint]:
    """``count`` points of one station: rounds of METRICS_PER_ROUND metrics sharing a ts."""
    ts = utcnow()
    return [
        TelemetryPoint(
            device=f"dev{i % 4}", metric=f"m{i % METRICS_PER_ROUND}", ts=ts, value=float(tick + i)
        )
        for i in range(count)
    ]


def station_key_file(path: Path, station_id: str) -> Path:
    """The station's message key, derived from the hub's development secret (the benchmark hub
    runs with it), so stations sign like real agents and the hub verifies every message."""
    key = auth.station_key(DEV_STATION_KEY_SECRET.encode(), station_id, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(auth.key_to_hex(key, 1))
    path.chmod(0o600)
    return path


class _Silent:
    """The down handler: these stations get no jobs, commands or alarms worth acting on."""

    def on_assignment(self, assignment: Any) -> None: ...
    def on_command(self, command: Any) -> None: ...
    def on_alarm(self, notice: Any) -> None: ...
    def on_verification(self, notice: Any) -> None: ...


class Station:
    """One station's real agent plumbing, fed by a synthetic producer."""

    def __init__(self, station_id: str, root: Path, broker: PrivateBroker, args: Any) -> None:
        self.config = StationConfig(
            station_id=station_id,
            mqtt_url=broker.url,
            data_dir=root / station_id,
            key_file=station_key_file(root / "keys" / station_id, station_id),
            inflight_window=args.window,
            resend_after_s=30,
            backfill_batches_per_s=args.pace,
            telemetry_batch_points=args.points_per_batch,
        )
        db = open_db(self.config.data_dir)
        outbox = Outbox(db, station_id, resend_after_s=self.config.resend_after_s)
        self.ctx = AgentContext(self.config, db, outbox, DeviceManager([]))
        self.sampler = TelemetrySampler(self.ctx)
        self.link = StationLink(self.ctx, _Silent())
        self.tick = 0

    def produce_one(self) -> None:
        self.tick += 1
        points = synthetic_points(self.config.telemetry_batch_points, self.tick)
        self.sampler.enqueue_batch(points, historical=not self.ctx.link.live)

    def waiting(self) -> int:
        return sum(self.ctx.outbox.depth().values())

    @property
    def produced(self) -> int:
        return produced_points(self.ctx.db, self.ctx.outbox.epoch)


async def closed_loop(station: Station, stop: asyncio.Event, limit: int) -> None:
    """Keep the station's outbox at most ``limit`` deep: the most the pipeline takes."""
    while not stop.is_set():
        if station.waiting() < limit:
            station.produce_one()
        await asyncio.sleep(0.002)


async def open_loop(station: Station, stop: asyncio.Event, points_per_s: float) -> None:
    """Produce at a fixed rate, whatever the link does (as sampling does)."""
    period = station.config.telemetry_batch_points / points_per_s
    while not stop.is_set():
        station.produce_one()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), period)


# ---- the hub's side -----------------------------------------------------------------------


def stored_per_station(db_path: Path) -> dict[str, int]:
    """Points the hub stored, per station: its ledger totals, else a count of the raw points."""
    if not db_path.exists():
        return {}
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        try:
            rows = db.execute("SELECT station_id, points_stored FROM telemetry_station_totals")
            return {str(s): int(n) for s, n in rows}
        except sqlite3.OperationalError:
            rows = db.execute("SELECT station_id, count(*) FROM telemetry_points GROUP BY 1")
            return {str(s): int(n) for s, n in rows}
    finally:
        db.close()


def start_hub(root: Path, broker: PrivateBroker) -> ManagedProcess:
    port = free_port()
    env = {
        "BENCHFLEET_MQTT_URL": broker.url,
        "BENCHFLEET_DATA_DIR": str(root / "hub"),
        "BENCHFLEET_HTTP_PORT": str(port),
        "BENCHFLEET_HUB_ID": "bench-hub",
    }
    hub = ManagedProcess(
        name="hub",
        argv=[sys.executable, "-m", "benchfleet", "hub"],
        env=env,
        log_path=root / "logs" / "hub.log",
    )
    hub.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return hub
        time.sleep(0.2)
    raise RuntimeError(f"hub did not become healthy:\n{hub.tail(30)}")


def hub_cpu_s(hub: ManagedProcess) -> float:
    assert hub.pid is not None
    times = psutil.Process(hub.pid).cpu_times()
    return float(times.user + times.system)


async def until_stored(stations: list[Station], db_path: Path, within: float) -> float:
    """Seconds until the hub stored every produced point (raises after ``within``)."""
    started = time.monotonic()
    while True:
        stored = stored_per_station(db_path)
        if all(stored.get(s.config.station_id, 0) >= s.produced for s in stations):
            return time.monotonic() - started
        if time.monotonic() - started > within:
            missing = {
                s.config.station_id: s.produced - stored.get(s.config.station_id, 0)
                for s in stations
            }
            raise RuntimeError(f"not stored within {within} s: {missing}")
        await asyncio.sleep(0.2)


# ---- phases ----------------------------------------------------------------------------------


async def ceiling(broker: PrivateBroker, args: Any) -> float:
    """Points/s a bare subscriber receives from N bare QoS 1 publishers (same payloads)."""
    payload = encode(
        TelemetryBatch(
            station_id="ceiling", epoch=1, seq=1, points=synthetic_points(args.points_per_batch, 0)
        )
    )
    received = 0
    async with aiomqtt.Client(broker.host, broker.port, identifier="bench-sub") as sub:
        await sub.subscribe("bench/ceiling/#", qos=1)

        async def count() -> None:
            nonlocal received
            async for _ in sub.messages:
                received += 1

        counter = asyncio.create_task(count())

        async def publish(i: int, until: float) -> None:
            async with aiomqtt.Client(broker.host, broker.port, identifier=f"bench-pub-{i}") as c:
                while time.monotonic() < until:
                    await c.publish(f"bench/ceiling/{i}", payload, qos=1)

        await asyncio.sleep(0.2)
        started, until = time.monotonic(), time.monotonic() + args.ceiling_s
        before = received
        await asyncio.gather(*(publish(i, until) for i in range(args.stations)))
        await asyncio.sleep(0.5)  # the last messages in transit
        counter.cancel()
    return float((received - before) * args.points_per_batch / (time.monotonic() - started - 0.5))


async def sustained(
    stations: list[Station], hub: ManagedProcess, db: Path, args: Any
) -> dict[str, Any]:
    stop = asyncio.Event()
    producers = [asyncio.create_task(closed_loop(s, stop, 2 * args.window)) for s in stations]
    await asyncio.sleep(args.warmup_s)
    stored0, cpu0, t0 = sum(stored_per_station(db).values()), hub_cpu_s(hub), time.monotonic()
    await asyncio.sleep(args.seconds)
    stored1, cpu1, t1 = sum(stored_per_station(db).values()), hub_cpu_s(hub), time.monotonic()
    stop.set()
    await asyncio.gather(*producers)
    rate = (stored1 - stored0) / (t1 - t0)
    cpu_per_s = (cpu1 - cpu0) / (t1 - t0)
    drain = await until_stored(stations, db, within=120)
    stored = stored_per_station(db)
    lost = sum(s.produced - stored.get(s.config.station_id, 0) for s in stations)
    return {
        "points_per_s": round(rate, 1),
        "hub_cpu_s_per_s": round(cpu_per_s, 3),
        "hub_cpu_s_per_1k_points_per_s": round(cpu_per_s / (rate / 1000), 4) if rate else None,
        "produced": sum(s.produced for s in stations),
        "lost": lost,
        "tail_drain_s": round(drain, 2),
    }


async def outage(
    stations: list[Station], broker: PrivateBroker, db: Path, args: Any
) -> dict[str, Any]:
    stop = asyncio.Event()
    producers = [asyncio.create_task(open_loop(s, stop, args.rate)) for s in stations]
    await asyncio.sleep(3)
    log(f"broker down for {args.outage_s} s")
    broker.stop()
    await asyncio.sleep(args.outage_s)
    backlog = sum(s.waiting() for s in stations)
    broker.start()
    back = time.monotonic()
    log(f"broker back; backlog {backlog} batches")
    while not all(s.ctx.link.connected for s in stations):  # noqa: ASYNC110 - polling others
        await asyncio.sleep(0.05)
    reconnect = time.monotonic() - back
    drain = await until_stored(stations, db, within=600) + reconnect
    stop.set()
    await asyncio.gather(*producers)
    await until_stored(stations, db, within=60)
    stored = stored_per_station(db)
    return {
        "outage_s": args.outage_s,
        "backlog_batches": backlog,
        "reconnect_s": round(reconnect, 2),
        "drain_s": round(drain, 2),
        "historical_batches": sum(s.sampler.stats.historical_batches for s in stations),
        "lost": sum(s.produced - stored.get(s.config.station_id, 0) for s in stations),
    }


async def main(args: Any) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="bench-telemetry-"))
    broker = PrivateBroker(root / "broker")
    broker.start()
    try:
        log(f"ceiling: {args.stations} bare publishers for {args.ceiling_s} s")
        bare = await ceiling(broker, args)
        log(f"ceiling {bare:.0f} points/s; starting the hub")
        hub = start_hub(root, broker)
        db = root / "hub" / "hub.db"
        stations = [
            Station(f"bench-{i:03d}", root / "stations", broker, args) for i in range(args.stations)
        ]
        links = [asyncio.create_task(s.link.run()) for s in stations]
        try:
            log(f"sustained: {args.stations} stations for {args.seconds} s")
            steady = await sustained(stations, hub, db, args)
            log(f"sustained {steady}")
            gap = await outage(stations, broker, db, args) if args.outage_s > 0 else None
            log(f"outage {gap}")
        finally:
            for station in stations:
                await station.link.stop()
            await asyncio.wait_for(asyncio.gather(*links, return_exceptions=True), 20)
            hub.stop(timeout=20)
    finally:
        broker.stop()
    ratio = steady["points_per_s"] / bare if bare else None
    return {
        "bench": "telemetry",
        "machine": f"{platform.machine()}, {os.cpu_count()} cpu, {platform.python_version()}",
        "stations": args.stations,
        "points_per_batch": args.points_per_batch,
        "window": args.window,
        "bare_subscriber_points_per_s": round(bare, 1),
        "sustained": steady,
        "ratio_to_bare": round(ratio, 3) if ratio else None,
        "outage": gap,
    }


def parse_args(argv: list[str] | None = None) -> Any:
    parser = argparse.ArgumentParser(prog="python -m bench.telemetry", description=__doc__)
    parser.add_argument("--stations", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0, help="sustained window")
    parser.add_argument("--warmup-s", type=float, default=3.0)
    parser.add_argument("--ceiling-s", type=float, default=5.0)
    parser.add_argument("--outage-s", type=float, default=60.0, help="0 skips the outage phase")
    parser.add_argument("--points-per-batch", type=int, default=200)
    parser.add_argument("--window", type=int, default=100, help="inflight_window")
    parser.add_argument("--pace", type=float, default=20.0, help="backfill_batches_per_s")
    parser.add_argument("--rate", type=float, default=100.0, help="points/s per station (outage)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    summary = asyncio.run(main(parse_args()))
    print(json.dumps(summary))
