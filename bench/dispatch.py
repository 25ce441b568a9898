"""Dispatch benchmark: order accepted -> assignment persisted on the station, and jobs/s.

``python -m bench.dispatch [--stations 50 200] [--rate 10] [--seconds 20]``

What runs:

- a private mosquitto and the real hub (``benchfleet hub`` subprocess, SQLite by default or
  ``--database-url``), in development mode with the documented integrator key;
- N **simulated stations in this process**: lightweight aiomqtt clients speaking the real
  protocol (Birth with laser + camera, JobAssignment, JobUpdate with epoch/seq and expected
  version, Acks). A station persists each new assignment in its own SQLite file (WAL,
  committed) like the agent's job store, then walks the job's steps with zero device time,
  waiting for the hub's Ack after each update like the real agent;
- an open-loop order stream (POST /orders at a fixed rate).

Per station count it measures (1) latency from POST /orders sent to the assignment committed
on the station at a steady rate, p50/p99; (2) jobs/s the engine sustains: completed jobs
(``done``, each one order, 2 + steps + 1 station updates, all acknowledged) per second with a
closed loop keeping ``min(2 x stations, --window)`` jobs in the system; (3) the baseline in the
same run: raw QoS 1 publish -> receive through the same broker at the same rate.

The last line of stdout is a JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from benchfleet.broker import PrivateBroker, free_port
from benchfleet.processes import ManagedProcess
from hub.settings import DEV_STATION_KEY_SECRET
from protocol import auth, topics
from protocol.codec import decode, decode_hub_state, encode
from protocol.models import (
    Ack,
    Birth,
    DeviceInfo,
    Evidence,
    HubState,
    JobAssignment,
    JobStatus,
    JobUpdate,
    StationJobStatus,
)

INTEGRATOR = {"X-API-Key": "dev-integrator-key"}
SHA = "ab" * 32
DEVICES = [
    DeviceInfo(name="laser", family="laser", field_mm=110.0),
    DeviceInfo(name="camera", family="camera"),
]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


@dataclass
class Results:
    persisted_at: dict[str, float] = field(default_factory=dict)  # job id -> monotonic time
    done_at: list[float] = field(default_factory=list)


def signed(station_id: str, topic: str, payload: bytes) -> Properties:
    """MQTT 5 properties carrying the station's MAC, keyed from the hub's development secret
    (the benchmark hub runs with it), so the bench pays the same signing cost as an agent."""
    key = auth.station_key(DEV_STATION_KEY_SECRET.encode(), station_id, 1)
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.UserProperty = auth.user_properties(key, 1, topic, payload)
    return props


class SimStation:
    """One station: persists assignments, walks jobs step by step through the real protocol."""

    def __init__(self, station_id: str, broker: PrivateBroker, folder: Path, results: Results):
        self.id = station_id
        self.broker = broker
        self.results = results
        self.db = sqlite3.connect(folder / f"{station_id}.db", isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE jobs (job_id TEXT PRIMARY KEY, version INT, body TEXT)")
        self.seq = 0
        self.acks: dict[int, asyncio.Future[Ack]] = {}
        self.client: aiomqtt.Client | None = None
        self.ready = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        async with aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            identifier=f"bench-{self.id}",
            protocol=aiomqtt.ProtocolVersion.V5,
            max_queued_outgoing_messages=1000,
        ) as client:
            self.client = client
            await client.subscribe(topics.down_filter(self.id), qos=1)
            # Like the agent: (re)announce whenever the hub's retained state says it is online.
            await client.subscribe(topics.HUB_STATE, qos=1)
            self.ready.set()
            async for message in client.messages:
                if message.topic.value == topics.HUB_STATE:
                    await self._birth(client, bytes(message.payload))  # type: ignore[arg-type]
                    continue
                self._on_message(message.topic.value, bytes(message.payload))  # type: ignore[arg-type]

    async def _birth(self, client: aiomqtt.Client, payload: bytes) -> None:
        state = decode_hub_state(payload)
        if isinstance(state, HubState) and state.online:
            birth = Birth(
                station_id=self.id, bd_seq=1, epoch=1, agent_version="bench", devices=DEVICES
            )
            await self._publish(client, topics.up(self.id, topics.Up.BIRTH), encode(birth))

    async def _publish(self, client: aiomqtt.Client, topic: str, payload: bytes) -> None:
        """QoS 1, signed with the station's key like a real agent (the hub verifies it)."""
        await client.publish(topic, payload, qos=1, properties=signed(self.id, topic, payload))

    def _on_message(self, topic: str, payload: bytes) -> None:
        decoded = decode(topic, payload)
        if not hasattr(decoded, "message"):
            return
        message = decoded.message  # type: ignore[union-attr]
        if isinstance(message, Ack):
            future = self.acks.pop(message.seq, None)
            if future is not None and not future.done():
                future.set_result(message)
        elif isinstance(message, JobAssignment) and message.status is JobStatus.ASSIGNED:
            inserted = self.db.execute(
                "INSERT OR IGNORE INTO jobs VALUES (?, ?, ?)",
                (str(message.job_id), message.version, message.model_dump_json()),
            ).rowcount
            if inserted:
                self.results.persisted_at[str(message.job_id)] = time.monotonic()
                task = asyncio.create_task(self._walk(message))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def _send(
        self, assignment: JobAssignment, version: int, status: StationJobStatus, **fields: Any
    ) -> Ack:
        assert self.client is not None
        self.seq += 1
        update = JobUpdate(
            station_id=self.id,
            epoch=1,
            seq=self.seq,
            job_id=assignment.job_id,
            expected_version=version,
            status=status,
            **fields,
        )
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self.acks[self.seq] = future
        await self._publish(self.client, topics.up(self.id, topics.Up.JOB), encode(update))
        return await asyncio.wait_for(future, 60)

    async def _walk(self, assignment: JobAssignment) -> None:
        version = assignment.version
        plan: list[tuple[StationJobStatus, dict[str, Any]]] = [
            (StationJobStatus.ACKNOWLEDGED, {}),
            (StationJobStatus.RUNNING, {}),
        ]
        for step in assignment.steps:
            if step.irreversible:
                plan.append((StationJobStatus.RUNNING, {"step": step.name, "step_phase": "start"}))
            evidence = [Evidence(step=step.name, kind=kind, sha256=SHA) for kind in step.evidence]
            plan.append(
                (
                    StationJobStatus.RUNNING,
                    {"step": step.name, "step_phase": "done", "evidence": evidence},
                )
            )
        plan.append((StationJobStatus.DONE, {}))
        try:
            for status, fields in plan:
                ack = await self._send(assignment, version, status, **fields)
                if ack.outcome != "accepted" or ack.job is None:
                    return
                version = ack.job.version
        except TimeoutError:
            return
        self.results.done_at.append(time.monotonic())


async def baseline_qos1(broker: PrivateBroker, rate: float, seconds: float) -> list[float]:
    """Raw broker QoS 1 publish -> receive latency (seconds) at ``rate`` msgs/s."""
    sent: dict[str, float] = {}
    got: list[float] = []
    topic = f"bench/baseline/{uuid.uuid4().hex}"
    async with (
        aiomqtt.Client(
            broker.host, broker.port, identifier="bench-sub", protocol=aiomqtt.ProtocolVersion.V5
        ) as sub,
        aiomqtt.Client(
            broker.host, broker.port, identifier="bench-pub", protocol=aiomqtt.ProtocolVersion.V5
        ) as pub,
    ):
        await sub.subscribe(topic, qos=1)

        async def receive() -> None:
            async for message in sub.messages:
                key = bytes(message.payload).decode()  # type: ignore[arg-type]
                if key in sent:
                    got.append(time.monotonic() - sent[key])

        receiver = asyncio.create_task(receive())
        start = time.monotonic()
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            key = str(i)
            sent[key] = time.monotonic()
            await pub.publish(topic, key.encode(), qos=1)
        await asyncio.sleep(1.0)
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiver
    return got


def order_body(i: int, run: str) -> dict[str, Any]:
    return {
        "external_id": f"bench-{run}-{i}",
        "lines": [
            {
                "piece": {
                    "sku": "RING-14K-6",
                    "serial": f"SN-{run}-{i}",
                    "metal": "gold",
                    "stones": [{"type": "diamond", "treatment": "none"}],
                    "declared_value": {"amount": 1000},
                },
                "engraving": {"text": f"Bench {i % 1000}", "template": "ring_band"},
            }
        ],
    }


async def order_stream(
    api: httpx.AsyncClient, *, rate: float, seconds: float, run: str
) -> dict[str, float]:
    """POST orders open-loop at ``rate``/s; returns job id -> monotonic time the POST was sent."""
    sent: dict[str, float] = {}
    errors = 0

    async def post(i: int) -> None:
        nonlocal errors
        t0 = time.monotonic()
        try:
            response = await api.post("/orders", json=order_body(i, run), headers=INTEGRATOR)
            response.raise_for_status()
        except httpx.HTTPError:
            errors += 1
            return
        sent[response.json()["jobs"][0]["job_id"]] = t0

    tasks = []
    start = time.monotonic()
    for i in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        tasks.append(asyncio.create_task(post(i)))
    await asyncio.gather(*tasks)
    if errors:
        print(f"  {errors} order POSTs failed", file=sys.stderr)
    return sent


async def closed_loop(
    api: httpx.AsyncClient, results: Results, *, window: int, seconds: float, run: str
) -> tuple[float, int]:
    """Keep ``window`` orders in the system (posted, not done) for ``seconds``; return the
    done/s measured after a warm-up third, and how many orders were posted."""
    posted = 0
    done_before = len(results.done_at)
    start = time.monotonic()
    end = start + seconds
    while time.monotonic() < end:
        in_system = posted - (len(results.done_at) - done_before)
        if in_system >= window:
            await asyncio.sleep(0.01)
            continue
        response = await api.post("/orders", json=order_body(posted, run), headers=INTEGRATOR)
        response.raise_for_status()
        posted += 1
    warm = start + seconds / 3
    done = [t for t in results.done_at if warm <= t <= end]
    return len(done) / (end - warm), posted


async def wait_online(api: httpx.AsyncClient, count: int, within_s: float = 60) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        stations = (await api.get("/stations", headers={"X-API-Key": "dev-admin-key"})).json()
        if sum(1 for s in stations if s["online"]) >= count:
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"fewer than {count} stations online after {within_s}s")


def start_hub(
    root: Path, broker: PrivateBroker, port: int, database_url: str | None
) -> ManagedProcess:
    env = {
        "BENCHFLEET_MQTT_URL": broker.url,
        "BENCHFLEET_DATA_DIR": str(root / "hub"),
        "BENCHFLEET_HTTP_PORT": str(port),
        "BENCHFLEET_HUB_ID": "bench-hub",
        "BENCHFLEET_ASSIGNMENT_RESEND_S": "30",
        "BENCHFLEET_SWEEP_INTERVAL_S": "1",
    }
    if database_url:
        env["BENCHFLEET_DATABASE_URL"] = database_url
    hub = ManagedProcess(
        name="hub",
        argv=[sys.executable, "-m", "benchfleet", "hub", "--log-level", "warning"],
        env=env,
        log_path=root / "logs" / "hub.log",
    )
    hub.start()
    return hub


async def run_floor(stations: int, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    broker = PrivateBroker(root / "broker")
    broker.start()
    port = free_port()
    hub = start_hub(root, broker, port, args.database_url)
    results = Results()
    sims = [SimStation(f"st-{i:03d}", broker, root, results) for i in range(stations)]
    tasks = [asyncio.create_task(s.run()) for s in sims]
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            timeout=60,
            limits=httpx.Limits(max_connections=200),
        ) as api:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if (await api.get("/health")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            await asyncio.gather(*(s.ready.wait() for s in sims))
            await wait_online(api, stations)
            base = await baseline_qos1(broker, args.rate, min(args.seconds, 10))
            run = uuid.uuid4().hex[:8]  # order ids unique even on a reused --database-url
            sent = await order_stream(api, rate=args.rate, seconds=args.seconds, run=f"s{run}")
            await asyncio.sleep(3)
            latencies = [
                results.persisted_at[j] - t for j, t in sent.items() if j in results.persisted_at
            ]
            window = min(2 * stations, args.window)
            jobs_per_s, saturate_orders = await closed_loop(
                api, results, window=window, seconds=args.seconds, run=f"x{run}"
            )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        hub.stop(timeout=15)
        broker.stop()
    return {
        "stations": stations,
        "orders": len(sent),
        "assigned_and_persisted": len(latencies),
        "order_to_persisted_ms": {
            "p50": pct(latencies, 0.5),
            "p99": pct(latencies, 0.99),
            "mean": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
        },
        "baseline_qos1_ms": {"p50": pct(base, 0.5), "p99": pct(base, 0.99), "n": len(base)},
        "sustained_jobs_per_s": round(jobs_per_s, 1),
        "saturation_jobs_in_system": window,
        "saturation_orders": saturate_orders,
    }


def machine() -> dict[str, Any]:
    lscpu = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in lscpu.splitlines()
            if line.startswith("Model name")
        ),
        platform.processor(),
    )
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--rate", type=float, default=10.0, help="steady orders/s")
    parser.add_argument(
        "--window", type=int, default=100, help="jobs kept in the system to measure jobs/s"
    )
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--database-url", default=None, help="hub database (default SQLite)")
    args = parser.parse_args()
    runs = []
    for count in args.stations:
        with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as tmp:
            print(f"{count} simulated stations ...", file=sys.stderr)
            result = asyncio.run(run_floor(count, args, Path(tmp)))
            print(f"  {json.dumps(result)}", file=sys.stderr)
            runs.append(result)
    summary = {
        "benchmark": "dispatch",
        "database": "postgresql" if args.database_url else "sqlite",
        "steady_rate_per_s": args.rate,
        "seconds": args.seconds,
        "machine": machine(),
        "runs": runs,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
