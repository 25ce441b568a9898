"""One order travels hub -> station -> hub over a real mosquitto, and survives what breaks.

Real parts only: mosquitto, the hub (`benchfleet hub`, SQLite) and agents (`benchfleet agent`,
simulated devices) as subprocesses. The ways things break are real too: SIGKILL, broker restart.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from collections import Counter
from typing import Any

import pytest
from support.auth import raw_client, signed_properties
from support.floor import TERMINAL, Floor, wait_until

from protocol import encode, topics
from protocol.models import Death

pytestmark = [pytest.mark.broker, pytest.mark.slow]

HAPPY_PATH = ["assigned", "acknowledged", "running", "verifying", "done"]


def statuses(job: dict[str, Any]) -> list[str]:
    """The job's status history with step progress (running -> running) folded."""
    folded: list[str] = []
    for step in job["history"]:
        if not (folded and folded[-1] == "running" == step["to_status"]):
            folded.append(step["to_status"])
    return folded


def assert_applied_once(job: dict[str, Any]) -> None:
    """Each accepted transition appears once (since the job's last assignment: unstarted work
    the hub took back is done again) and versions climb by exactly one."""
    versions = [step["version"] for step in job["history"]]
    assert versions == sorted(set(versions)), versions
    assert versions == list(range(versions[0], versions[0] + len(versions))), versions
    last = max(i for i, s in enumerate(job["history"]) if s["to_status"] == "assigned")
    station_steps = [
        (s["actor"], s["to_status"], s["reason"])
        for s in job["history"][last:]
        if s["actor"].startswith("station")
    ]
    assert max(Counter(station_steps).values(), default=1) == 1, station_steps


def test_order_travels_to_a_station_and_back(floor_on: Floor) -> None:
    floor = floor_on
    floor.start_hub()
    floor.start_agent("st-01")
    floor.wait_online("st-01")

    job_id = floor.post_order("o-1")
    job = floor.wait_status(job_id, *TERMINAL)

    assert job["status"] == "done"
    assert statuses(job)[-5:] == HAPPY_PATH
    assert job["station_id"] == "st-01"
    assert_applied_once(job)
    photo = next(e for e in job["evidence"] if e["kind"] == "photo")
    proof = floor.root / "stations" / "st-01" / "proofs" / f"{photo['sha256']}.png"
    assert hashlib.sha256(proof.read_bytes()).hexdigest() == photo["sha256"]
    assert any(e["kind"] == "gcode" and e["sha256"] for e in job["evidence"])


def test_killed_station_goes_offline_and_only_unstarted_work_moves(floor: Floor) -> None:
    floor.start_hub()
    floor.start_agent("st-01", seconds_per_char=0.5)  # slow laser: the job is mid-engrave
    floor.wait_online("st-01")
    started_job = floor.post_order("o-started", text="LONG ENGRAVING TEXT")
    floor.wait_status(started_job, "running")
    waiting_job = floor.post_order("o-waiting")  # queued behind the first on the same station
    assert floor.wait_status(waiting_job, "assigned", "acknowledged")["station_id"] == "st-01"
    floor.start_agent("st-02")
    floor.wait_online("st-02")

    floor.agents["st-01"].kill()
    took = floor.wait_online("st-01", online=False, timeout=15)
    print(f"st-01 marked offline {took:.2f}s after SIGKILL")

    moved = floor.wait_status(waiting_job, "done")
    assert moved["station_id"] == "st-02"
    assert_applied_once(moved)
    # The started job is never handed to another station, whatever happens to st-01.
    assert floor.job(started_job)["status"] == "running"

    floor.start_agent("st-01")  # comes back: the interrupted engraving goes to a person
    interrupted = floor.wait_status(started_job, "needs_review")
    assert [s for s in statuses(interrupted) if s == "running"] == ["running"]
    assert interrupted["station_id"] == "st-01"
    assert_applied_once(interrupted)


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_broker_restart_mid_flow_loses_and_repeats_nothing(floor: Floor, kill: bool) -> None:
    floor.start_hub()
    floor.start_agent("st-01", seconds_per_char=0.05)
    floor.wait_online("st-01")
    jobs = [floor.post_order(f"o-{i}", text=f"Name {i}") for i in range(6)]
    floor.wait_status(jobs[0], "running", "done")

    floor.broker.restart(kill=kill, down_for=2)

    for job_id in jobs:
        job = floor.wait_status(job_id, *TERMINAL, timeout=60)
        assert job["status"] == "done", job
        assert statuses(job)[-5:] == HAPPY_PATH
        assert_applied_once(job)


def test_hub_killed_mid_flow_resumes_from_the_database(floor: Floor) -> None:
    floor.start_hub()
    floor.start_agent("st-01", seconds_per_char=0.05)
    floor.wait_online("st-01")
    jobs = [floor.post_order(f"o-{i}", text=f"Name {i}") for i in range(6)]
    floor.wait_status(jobs[0], "running", "done")

    assert floor.hub is not None
    floor.hub.kill()
    time.sleep(2)  # the station keeps working and buffers its updates
    floor.start_hub()

    for job_id in jobs:
        job = floor.wait_status(job_id, *TERMINAL, timeout=60)
        assert job["status"] == "done", job
        assert_applied_once(job)
    floor.wait_online("st-01")


def test_agent_sigterm_is_a_clean_death(floor: Floor) -> None:
    floor.start_hub()
    agent = floor.start_agent("st-01")
    floor.wait_online("st-01")
    agent.stop(timeout=10)  # SIGTERM: the agent announces its own death
    assert agent.returncode == 0, agent.tail(20)
    floor.wait_online("st-01", online=False, timeout=10)


def test_malformed_payloads_are_rejected_counted_and_kept(floor: Floor) -> None:
    floor.start_hub()
    garbage = {
        "bf/v1/st/st-09/up/job": b"{not json",
        "bf/v1/st/st-09/up/telemetry": b'{"v": 99}',
        "bf/v1/st/st-09/up/event": b'{"v":1,"station_id":"st-01","epoch":1,"seq":1,"kind":"x"}',
        "bf/v1/st/st-09/up/whatever": b"{}",
    }
    # Published as st-09 with its broker credentials and signed with its key: the payloads,
    # not the identity, are what is wrong (an unsigned one is refused for that alone).
    client = raw_client(floor.broker, "st-09", "raw-st-09")
    for topic, payload in garbage.items():
        props = signed_properties("st-09", topic, payload)
        client.publish(topic, payload, qos=1, properties=props).wait_for_publish(5)
    unsigned = "bf/v1/st/st-09/up/birth"
    client.publish(unsigned, b"{}", qos=1).wait_for_publish(5)
    garbage[unsigned] = b"{}"
    client.loop_stop()
    client.disconnect()

    def letters() -> list[dict[str, Any]] | None:
        found = floor.api.get("/dead-letters", params={"limit": 50}).json()
        return found if len(found) >= len(garbage) else None

    rows = wait_until(letters, timeout=10, what="dead letters")
    assert {row["topic"] for row in rows} == set(garbage)
    assert all(row["reason"] for row in rows)
    reasons = {row["topic"]: row["reason"] for row in rows}
    assert reasons[unsigned].startswith("bad or missing signature for station st-09")
    assert not any("signature" in reasons[topic] for topic in garbage if topic != unsigned)
    metrics = floor.api.get("/metrics").text
    assert "benchfleet_hub_rejected_messages_total" in metrics
    assert floor.api.get("/health").status_code == 200  # still alive and well
    floor.start_agent("st-01")
    floor.wait_online("st-01")
    assert floor.wait_status(floor.post_order("o-after"), "done")["status"] == "done"


def test_hub_sigterm_leaves_a_retained_offline_state(floor: Floor) -> None:
    hub = floor.start_hub()
    hub.stop(timeout=15)
    assert hub.returncode == 0, hub.tail(20)

    states: list[bytes] = []
    client = raw_client(floor.broker, "st-01", "raw-st-01")  # stations may read the hub state
    client.on_message = lambda _c, _u, message: states.append(message.payload)
    client.subscribe("bf/v1/hub/state", qos=1)
    try:
        wait_until(lambda: states, timeout=5, what="the retained hub state")
    finally:
        client.loop_stop()
        client.disconnect()
    assert json.loads(states[0])["online"] is False


def test_frozen_station_is_dropped_by_keepalive_and_a_stale_will_is_ignored(floor: Floor) -> None:
    floor.start_hub()
    agent = floor.start_agent("st-01")
    floor.wait_online("st-01")
    assert agent.pid is not None

    os.kill(agent.pid, signal.SIGSTOP)  # alive but silent: only keep-alive can tell
    try:
        took = floor.wait_online("st-01", online=False, timeout=20)
        print(f"frozen st-01 marked offline {took:.2f}s after SIGSTOP (keepalive 3 s)")
    finally:
        os.kill(agent.pid, signal.SIGCONT)
    floor.wait_online("st-01", online=True)

    # The Will of a connection that is already gone arrives late: the live station stays online.
    station = floor.stations()["st-01"]
    stale = Death(station_id="st-01", bd_seq=station["bd_seq"] - 1, epoch=station["epoch"])
    client = raw_client(floor.broker, "st-01", "raw-st-01")  # signed: as the broker delivers it
    topic, payload = topics.up("st-01", topics.Up.DEATH), encode(stale)
    props = signed_properties("st-01", topic, payload)
    client.publish(topic, payload, qos=1, properties=props).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()
    time.sleep(1.5)
    assert floor.stations()["st-01"]["online"] is True


def test_engineer_applies_a_device_config_and_reads_the_outcome(floor: Floor) -> None:
    floor.start_hub()
    floor.start_agent("st-01")
    floor.wait_online("st-01")
    for device in ("laser", "camera", "nonexistent"):
        response = floor.api.post(f"/stations/st-01/devices/{device}/apply-config")
        assert response.status_code == 202, response.text

    def outcomes() -> dict[str, dict[str, Any]] | None:
        events = floor.api.get("/stations/st-01/events").json()
        outcome_kinds = ("config_applied", "config_apply_failed")
        found = {e["device"]: e for e in events if e["kind"] in outcome_kinds}
        return found if len(found) == 3 else None

    found = wait_until(outcomes, timeout=20, what="three config outcomes")
    assert found["laser"]["kind"] == "config_applied"  # the simulator starts on-profile
    assert found["laser"]["message"] == "nothing to change"
    assert found["camera"]["kind"] == "config_apply_failed"
    assert "no writable configuration" in found["camera"]["message"]
    assert found["nonexistent"]["message"] == "no such device"
    assert floor.api.post("/stations/st-99/devices/laser/apply-config").status_code == 404
