"""The disk fault scenarios (see fault_scenarios.py): the station's data disk, a small tmpfs,
fills below the outbox's free-space floor (telemetry and events are shed, evidence goes through)
or to the last byte while a job update is written (the update waits in memory, the agent and its
delivery go on, no other job starts); the outbox's byte budget during an outage.
"""

from __future__ import annotations

import re
import sqlite3
import time

import httpx

from benchfleet.broker import free_port
from support.fault_checks import (
    LOADED,
    STATION,
    Result,
    agent_db,
    burn_path,
    finish,
    station_events,
)
from support.fault_parts import external_laser, fill_disk, tmpfs
from support.floor import TERMINAL, Floor, wait_until

# ---- (e) agent disk full ------------------------------------------------------------------------

TMPFS_BYTES = 24 * 1024 * 1024
FLOOR_BYTES = 6 * 1024 * 1024


def disk_full(floor: Floor) -> Result:
    result = Result("disk_full", "the station's data disk fills (tmpfs), then space returns")
    data_dir = floor.root / "stations" / STATION
    budget = f"min_free_bytes = {FLOOR_BYTES}\n"
    with tmpfs(data_dir, TMPFS_BYTES):
        floor.start_hub()
        floor.start_agent(STATION, seconds_per_char=0.02, extra_toml=LOADED + budget)
        floor.wait_online(STATION)
        ballast = fill_disk(data_dir, leave=FLOOR_BYTES // 2)  # under the floor, not at zero
        wait_until(
            lambda: station_events(floor, "telemetry_shed"), timeout=20, what="telemetry_shed"
        )
        piece = floor.post_order("e-1", text="Disk full")  # job evidence still goes through
        assert floor.wait_status(piece, *TERMINAL, timeout=60)["status"] == "done"
        time.sleep(1)
        ballast.unlink()
        freed = time.monotonic()
        resumed = wait_until(
            lambda: station_events(floor, "telemetry_resumed"), timeout=20, what="telemetry_resumed"
        )
        result.recovery_s = time.monotonic() - freed
        finish(floor, result, [piece])
        shed_events = len(station_events(floor, "telemetry_shed"))
        assert shed_events == 1, f"{shed_events} telemetry_shed events for one episode"
        assert result.points_shed > 0
        result.notes.append(
            f"tmpfs {TMPFS_BYTES >> 20} MiB, floor {FLOOR_BYTES >> 20} MiB; one telemetry_shed "
            f"event; {resumed[0]['message']}; the job's updates and proof photo went through"
        )
    return result


HELD_S = 5  # how long the disk stays full once the agent holds the update


def disk_full_job_update(floor: Floor) -> Result:
    """The disk fills to the last byte while the laser burns, so the job update that reports
    the engraving cannot be written (the agent's database is young: every commit needs new
    space). The agent must hold it in memory, live on, start no other job, and deliver it once
    space returns; its outbox must come through whole."""
    result = Result(
        "disk_full_job_update",
        f"the data disk fills to the last byte mid-engrave (tmpfs): the job update after it "
        f"cannot be written; space returns {HELD_S} s after the agent holds it",
    )
    data_dir, metrics_port = floor.root / "stations" / STATION, free_port()
    config = LOADED + f"min_free_bytes = {FLOOR_BYTES}\nmetrics_port = {metrics_port}\n"
    with tmpfs(data_dir, TMPFS_BYTES), external_laser(floor.root, burn_path(floor), 1) as laser:
        floor.start_hub()
        agent = floor.start_agent(STATION, laser_url=laser.port, extra_toml=config)
        floor.wait_online(STATION)
        piece = floor.post_order("g-1", text="LONG ENGRAVING TEXT")
        wait_until(lambda: laser.programs == 1, timeout=30, what="the engraving started")
        ballast = fill_disk(data_dir, leave=0)  # to the last byte, while the laser burns

        def held() -> float | None:  # job updates and proofs waiting in the agent's memory
            return _metric(metrics_port, "evidence_held")

        wait_until(lambda: held() == 1, timeout=30, what="the agent to hold the update")
        later = floor.post_order("g-2", text="Next piece")  # must wait: nothing can be stored
        time.sleep(HELD_S)  # the disk stays full; the agent must live through it
        assert agent.alive, agent.tail(40)
        retries = int(_metric(metrics_port, "evidence_write_retries_total") or 0)
        assert (held(), laser.programs) == (1, 1), "the next job started on a full disk"
        assert [floor.job(j)["status"] for j in (piece, later)] == ["running", "assigned"]
        ballast.unlink()
        freed = time.monotonic()
        assert floor.wait_status(piece, *TERMINAL, timeout=60)["status"] == "done"
        result.recovery_s = time.monotonic() - freed
        assert floor.wait_status(later, *TERMINAL, timeout=60)["status"] == "done"
        wait_until(lambda: station_events(floor, "disk_writable"), timeout=30, what="disk_writable")
        finish(floor, result, [piece, later])
        assert agent.alive, agent.tail(40)
        assert laser.programs == 2, laser.programs
        assert _integrity(floor) == "ok"
        (reported,) = station_events(floor, "disk_full")
        assert f"job {piece} update running (engrave done)" in str(reported["message"]), reported
        alarms = floor.api.get("/alarms", params={"station": STATION}).json()
        disk_alarms = [a["state"] for a in alarms if a["kind"] == "disk_full"]
        assert disk_alarms == ["cleared"], alarms  # raised while full, cleared by disk_writable
        result.notes.append(
            f"held in memory: the job update after the engraving ({retries} retries while "
            f"full, delivered after space returned); the agent lived on, the next job waited "
            f"(laser programs {laser.programs}); outbox integrity ok; events disk_full (an alarm "
            "at the hub), disk_writable (clears it)"
        )
    return result


def _metric(port: int, name: str) -> float | None:
    """One value of the agent's /metrics (None while it does not answer)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.TransportError:
        return None
    found = re.search(rf"^benchfleet_agent_{name} (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


def _integrity(floor: Floor) -> str:
    path = agent_db(floor, STATION)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def outbox_budget(floor: Floor) -> Result:
    """The same shedding without a mount: a small byte budget and the broker down."""
    result = Result("outbox_budget", "outbox byte budget (256 KiB) reached during a 15 s outage")
    floor.start_hub()
    budget = f"outbox_max_bytes = {256 * 1024}\n"
    floor.start_agent(STATION, extra_toml="telemetry_sample_s = 0.05\n" + budget)
    floor.wait_online(STATION)
    floor.broker.stop()
    time.sleep(15)  # nothing is acknowledged: the outbox grows to its telemetry share
    floor.broker.start()
    back = time.monotonic()
    wait_until(
        lambda: station_events(floor, "telemetry_resumed"), timeout=30, what="telemetry_resumed"
    )
    result.recovery_s = time.monotonic() - back
    assert len(station_events(floor, "telemetry_shed")) == 1  # once per episode, not per batch
    piece = floor.post_order("e-2", text="After outage")
    assert floor.wait_status(piece, *TERMINAL, timeout=60)["status"] == "done"
    finish(floor, result, [piece])
    assert result.points_shed > 0
    result.notes.append(
        "recovery: broker back -> outbox drained under its budget and took telemetry again; "
        "shed points are counted on the station, produced = stored at the hub"
    )
    return result
