"""The fault scenarios of the reliability suite, shared by ``pytest -m fault`` (tests/faults) and
``python -m bench.faults`` (which writes docs/reliability.md).

Every scenario runs real parts on a :class:`Floor` whose broker is started: mosquitto, the hub
and agents as subprocesses, simulated devices on real ptys. It breaks one thing for real
(SIGKILL, a closed pty, a full tmpfs, a station clock hours off), then checks that the ledger
and the job store agree (:func:`settle`): every message the station enqueued is in the hub's
inbox once, every telemetry point produced is stored or rejected with a reason, every job's
transitions are applied once. It returns its measured numbers as a :class:`Result`; a broken
promise raises ``AssertionError``; a missing capability (no root for ``mount``, no libfaketime)
raises :class:`Unsupported`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from support.fault_checks import (
    LOADED,
    STATION,
    Result,
    burn_path,
    finish,
    hub_duplicates,
    station_events,
    wait_settled,
)
from support.fault_disk import disk_full, disk_full_job_update, outbox_budget
from support.fault_parts import Unsupported, external_laser
from support.floor import TERMINAL, Floor, wait_until

# Debian puts it under the multiarch directory (x86_64-linux-gnu, aarch64-linux-gnu, ...).
LIBFAKETIME = next(
    iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))),
    Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
)


# ---- (a) broker killed under load ---------------------------------------------------------------


def broker_kill(floor: Floor) -> Result:
    result = Result("broker_kill", "mosquitto SIGKILLed for 3 s under load (jobs + telemetry)")
    floor.start_hub()
    floor.start_agent(STATION, seconds_per_char=0.05, extra_toml=LOADED)
    floor.wait_online(STATION)
    jobs = [floor.post_order(f"a-{i}", text=f"Name {i}") for i in range(6)]
    floor.wait_status(jobs[0], "running", "done")
    floor.broker.restart(kill=True, down_for=3)
    result.recovery_s = caught_up(floor)
    for job_id in jobs:
        assert floor.wait_status(job_id, *TERMINAL, timeout=90)["status"] == "done"
    return finish(floor, result, jobs)


def caught_up(floor: Floor) -> float:
    """Seconds until the station is online and the hub has everything it enqueued."""
    back = time.monotonic()
    floor.wait_online(STATION, timeout=60)
    wait_settled(floor, STATION, timeout=90)
    return time.monotonic() - back


# ---- (b) hub killed mid-job ---------------------------------------------------------------------


def hub_kill(floor: Floor) -> Result:
    result = Result("hub_kill", "hub SIGKILLed mid-job, down 2 s, restarted on its database")
    floor.start_hub()
    floor.start_agent(STATION, seconds_per_char=0.05, extra_toml=LOADED)
    floor.wait_online(STATION)
    jobs = [floor.post_order(f"b-{i}", text=f"Name {i}") for i in range(6)]
    floor.wait_status(jobs[0], "running")
    assert floor.hub is not None
    duplicates_before = hub_duplicates(floor)
    floor.hub.kill()
    time.sleep(2)  # the station keeps working and buffers its updates
    restarted = time.monotonic()
    floor.start_hub()
    result.recovery_s = caught_up(floor) + (time.monotonic() - restarted)
    for job_id in jobs:
        assert floor.wait_status(job_id, *TERMINAL, timeout=90)["status"] == "done"
    finish(floor, result, jobs)
    result.duplicated += duplicates_before  # the killed hub's counter died with it
    return result


# ---- (c) agent killed mid-engrave ---------------------------------------------------------------


def agent_kill_mid_engrave(floor: Floor) -> Result:
    result = Result("agent_kill_mid_engrave", "agent SIGKILLed while the laser streams G-code")
    floor.start_hub()
    with external_laser(floor.root, burn_path(floor), speedup=3) as laser:
        agent = floor.start_agent(STATION, laser_url=laser.port, extra_toml=LOADED)
        floor.wait_online(STATION)
        piece = floor.post_order("c-1", text="LONG ENGRAVING TEXT")
        wait_until(lambda: laser.programs == 1, timeout=30, what="the engraving started")
        time.sleep(0.5)  # mid-program
        agent.kill()
        killed = time.monotonic()
        floor.start_agent(STATION, laser_url=laser.port, extra_toml=LOADED)
        job = floor.wait_status(piece, "needs_review", "done", "failed", timeout=60)
        result.recovery_s = time.monotonic() - killed
        assert job["status"] == "needs_review", job["status"]
        time.sleep(2)  # time enough for a wrong automatic retry to start
        assert laser.programs == 1, f"the piece was engraved {laser.programs} times"
        after = floor.post_order("c-2", text="Next piece")  # the station works on
        assert floor.wait_status(after, *TERMINAL, timeout=60)["status"] == "done"
        assert laser.programs == 2, laser.programs
        finish(floor, result, [piece, after])
        result.notes.append(
            f"laser G-code programs executed: {laser.programs} (1 interrupted + 1 next piece); "
            "the interrupted piece went to needs_review and was not re-engraved"
        )
    return result


# ---- (d) serial device unplugged mid-job --------------------------------------------------------


def serial_unplug(floor: Floor) -> Result:
    result = Result("serial_unplug", "the laser's serial port vanishes mid-engrave, back 1 s later")
    floor.start_hub()
    with external_laser(floor.root, burn_path(floor), speedup=3) as laser:
        floor.start_agent(STATION, laser_url=laser.port, extra_toml=LOADED)
        floor.wait_online(STATION)
        piece = floor.post_order("d-1", text="LONG ENGRAVING TEXT")
        wait_until(lambda: laser.programs == 1, timeout=30, what="the engraving started")
        time.sleep(0.5)
        laser.unplug()
        job = floor.wait_status(piece, *TERMINAL, timeout=30)
        assert job["status"] == "needs_review", job["status"]  # irreversible work had started
        time.sleep(1)
        laser.replug()
        plugged = time.monotonic()
        ready = wait_until(
            lambda: station_events(floor, "device_ready"), timeout=30, what="laser reopened"
        )
        result.recovery_s = time.monotonic() - plugged
        newest_first = floor.api.get(f"/stations/{STATION}/events").json()
        story = [e["kind"] for e in reversed(newest_first)]
        assert "device_unavailable" in story, story
        assert "device_failed" in story, story
        cleared = clear_alarms(floor)  # an engineer reviewed the piece and the cable
        after = floor.post_order("d-2", text="Next piece")
        assert floor.wait_status(after, *TERMINAL, timeout=60)["status"] == "done"
        finish(floor, result, [piece, after])
        result.notes.append(
            f"events: {', '.join(_story(story))}; reopened {len(ready)}x; the station took "
            f"no work until an engineer cleared its {cleared} alarm(s); "
            f"G-code programs {laser.programs}"
        )
    return result


def clear_alarms(floor: Floor) -> int:
    """Clear the station's open alarms as an engineer does (a device_failed one keeps work
    away from the station until then); how many were cleared."""
    params = {"state": "open", "station": STATION}
    open_alarms = floor.api.get("/alarms", params=params).json()
    for alarm in open_alarms:
        response = floor.api.post(f"/alarms/{alarm['id']}/clear")
        assert response.status_code == 200, response.text
    return len(open_alarms)


def _story(kinds: list[str]) -> list[str]:
    wanted = {"device_unavailable", "device_failed", "device_ready", "job_inconsistent"}
    return [k for k in kinds if k in wanted]


# ---- (f) clock jump on a station ----------------------------------------------------------------


def clock_jump(floor: Floor) -> Result:
    """The agent runs under libfaketime (its whole process clock is off), 3 h ahead, then 3 h
    behind; the hub orders by (epoch, seq) and judges timestamps by its own clock."""
    if not LIBFAKETIME.exists():
        raise Unsupported(f"libfaketime not installed ({LIBFAKETIME}; apt install faketime)")
    result = Result("clock_jump", "station clock 3 h ahead, then 3 h behind (libfaketime)")
    floor.start_hub()
    jobs: list[str] = []
    for offset in ("+3h", "-3h"):
        env = {
            "LD_PRELOAD": str(LIBFAKETIME),
            "FAKETIME": offset,
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }
        agent = floor.start_agent(STATION, extra_toml=LOADED, env=env)
        floor.wait_online(STATION)
        jobs.append(floor.post_order(f"f{offset}", text="Clock jump"))
        assert floor.wait_status(jobs[-1], *TERMINAL, timeout=60)["status"] == "done"
        time.sleep(2)
        agent.stop(timeout=10)
    result.recovery_s = None  # nothing to recover from: the point is that nothing breaks
    finish(floor, result, jobs)
    assert result.points_rejected.get("future_ts", 0) > 0, result.points_rejected
    assert result.points_stored > 0  # 3 h behind is late, not wrong: stored
    result.notes.append(
        "both jobs done (transitions ordered by (epoch, seq)); points 3 h in the future "
        f"rejected as future_ts ({result.points_rejected.get('future_ts', 0)}), points 3 h late "
        "stored"
    )
    return result


SCENARIOS: dict[str, Callable[[Floor], Result]] = {
    "broker_kill": broker_kill,
    "hub_kill": hub_kill,
    "agent_kill_mid_engrave": agent_kill_mid_engrave,
    "serial_unplug": serial_unplug,
    "disk_full": disk_full,
    "disk_full_job_update": disk_full_job_update,
    "outbox_budget": outbox_budget,
    "clock_jump": clock_jump,
}
