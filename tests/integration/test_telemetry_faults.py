"""Lossless telemetry with real parts: a private mosquitto, the hub and an agent (simulated
devices, a short telemetry interval) as subprocesses. The broker is stopped for 30 s, the agent
and the hub are SIGKILLed and restarted; at the end every point the agent produced (its durable
counter) is stored exactly once, and malformed telemetry is rejected and counted.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from typing import Any

import httpx
import pytest
import support.floor as floor_module
from support.auth import raw_client, signed_properties
from support.floor import Floor, wait_until

from benchfleet.processes import ManagedProcess
from protocol import topics

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(420)]

STATION = "st-tel"
RAW_STATION = "st-raw"
OUTAGE_S = 30.0


@pytest.fixture
def telemetry_floor(floor: Floor, monkeypatch: pytest.MonkeyPatch) -> Floor:
    # Gaps count as stuck after 3 s without progress (3x the agent's resend_after_s).
    monkeypatch.setitem(floor_module.HUB_TEST_ENV, "BENCHFLEET_TELEMETRY_GAP_AFTER_S", "3")
    monkeypatch.setitem(floor_module.HUB_TEST_ENV, "BENCHFLEET_TELEMETRY_RESYNC_INTERVAL_S", "10")
    return floor


def start_loaded_agent(floor: Floor) -> ManagedProcess:
    """An agent sampling every device 10x a second, one batch every 0.5 s."""
    data_dir = floor.root / "stations" / STATION
    config = floor.root / "stations" / f"{STATION}.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'station_id = "{STATION}"\n{floor.identity_toml(STATION)}data_dir = "{data_dir}"\n'
        "resend_after_s = 1\ntelemetry_sample_s = 0.1\ntelemetry_batch_s = 0.5\n"
        '[[devices]]\nname = "laser"\nfamily = "laser"\nbackend = "sim"\n'
        '[[devices]]\nname = "camera"\nfamily = "camera"\nbackend = "sim"\n'
    )
    starts = len(list((floor.root / "logs").glob(f"{STATION}-*.log")))
    process = ManagedProcess(
        name=STATION,
        argv=[sys.executable, "-m", "benchfleet", "agent", "-c", str(config)],
        env={},
        log_path=floor.root / "logs" / f"{STATION}-{starts + 1}.log",
    )
    process.start()
    floor.agents[STATION] = process
    return process


def produced(floor: Floor) -> int:
    """Points the agent enqueued, over all its epochs (its durable counter, agent.telemetry)."""
    path = floor.root / "stations" / STATION / "agent.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
        row = db.execute("SELECT coalesce(sum(points), 0) FROM telemetry_produced").fetchone()
    return int(row[0])


def ledger(floor: Floor, station: str = STATION) -> dict[str, Any]:
    try:
        rows = floor.api.get("/telemetry/ledger").json()
    except (httpx.TransportError, ValueError):  # the hub may be restarting
        return {}
    return next((row for row in rows if row["station_id"] == station), {})


def wait_caught_up(floor: Floor, what: str, timeout: float = 90) -> float:
    """Wait for an instant where the hub stored exactly what the agent produced."""
    started = time.monotonic()

    def probe() -> bool:
        before = produced(floor)
        stored = int(ledger(floor).get("points_stored", -1))
        return before == stored == produced(floor)

    wait_until(probe, timeout=timeout, what=f"hub caught up after {what}", interval=0.1)
    return time.monotonic() - started


def publish_malformed(floor: Floor) -> None:
    # As RAW_STATION with its credentials and key: the payloads are what is wrong.
    client = raw_client(floor.broker, RAW_STATION, "raw-publisher")
    topic = topics.up(RAW_STATION, topics.Up.TELEMETRY)
    nan_batch = (
        '{"v":1,"station_id":"st-raw","epoch":1,"seq":1,"points":'
        '[{"device":"scale","metric":"weight_g","ts":"2026-01-01T00:00:00Z","value":NaN}]}'
    ).replace("2026-01-01T00:00:00Z", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    for payload in (b"{not json", nan_batch.encode()):
        props = signed_properties(RAW_STATION, topic, payload)
        client.publish(topic, payload, qos=1, properties=props).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


def hub_point_keys(floor: Floor) -> tuple[int, int]:
    """Rows and distinct point keys of the station in the hub's SQLite."""
    with sqlite3.connect(f"file:{floor.root / 'hub' / 'hub.db'}?mode=ro", uri=True) as db:
        rows, keys = db.execute(
            "SELECT count(*), count(DISTINCT epoch || ':' || seq || ':' || idx) "
            "FROM telemetry_points WHERE station_id = ?",
            (STATION,),
        ).fetchone()
    return int(rows), int(keys)


def test_no_point_lost_or_duplicated_through_broker_agent_and_hub_failures(
    telemetry_floor: Floor,
) -> None:
    floor = telemetry_floor
    floor.start_hub()
    agent = start_loaded_agent(floor)
    floor.wait_online(STATION)
    time.sleep(3)
    recovery: dict[str, float] = {}

    floor.broker.stop()  # (a) broker down 30 s under load
    time.sleep(OUTAGE_S)
    floor.broker.start()
    recovery["broker 30 s outage"] = wait_caught_up(floor, "broker outage", timeout=120)

    agent.kill()  # (b) agent SIGKILLed, restarted (new epoch, its outbox re-sent)
    time.sleep(1)
    start_loaded_agent(floor)
    recovery["agent SIGKILL"] = wait_caught_up(floor, "agent restart")

    assert floor.hub is not None
    floor.hub.kill()  # (c) hub SIGKILLed while batches arrive; restarted
    time.sleep(2)
    floor.start_hub()
    recovery["hub SIGKILL"] = wait_caught_up(floor, "hub restart")

    publish_malformed(floor)
    raw = wait_until(
        lambda: (
            (row := ledger(floor, RAW_STATION)).get("unparseable_batches") == 1
            and row.get("points_rejected") == {"non_finite": 1}
            and row
        ),
        timeout=15,
        what="malformed telemetry counted",
    )
    final = ledger(floor)
    rows, keys = hub_point_keys(floor)
    print(
        f"\nbatches={final['batches']} points produced=stored={final['points_stored']} "
        f"duplicate batches={final['duplicate_batches']} (points {final['duplicate_points']}) "
        f"gaps open/closed={final['gaps_open']}/{final['gaps_closed']}"
    )
    for what, seconds in recovery.items():
        print(f"caught up after {what}: {seconds:.1f} s")
    print(f"malformed: {raw['unparseable_batches']} unparseable, {raw['points_rejected']}")
    assert final["points_unaccounted"] == 0
    assert final["points_rejected"] == {}
    assert rows == keys == final["points_stored"]  # stored once each, none twice
    assert final["points_stored"] > 1000  # it was under load
