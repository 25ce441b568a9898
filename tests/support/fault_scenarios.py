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
from dataclasses import dataclass, field
from pathlib import Path

from support.fault_checks import (
    assert_applied_once,
    hub_duplicates,
    job_end_states,
    message_counts,
    wait_settled,
)
from support.fault_parts import Unsupported, external_laser, fill_disk, tmpfs
from support.floor import TERMINAL, Floor, wait_until

STATION = "st-fault"
# A loaded station: every device and the station sampled 5x a second, a batch every 0.5 s.
LOADED = "telemetry_sample_s = 0.2\ntelemetry_batch_s = 0.5\n"
# Debian puts it under the multiarch directory (x86_64-linux-gnu, aarch64-linux-gnu, ...).
LIBFAKETIME = next(
    iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))),
    Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
)


@dataclass
class Result:
    """What one scenario measured."""

    name: str
    fault: str
    sent: int = 0  # station messages enqueued (job updates, events, proofs, telemetry)
    stored: int = 0  # ... applied by the hub, once each
    duplicated: int = 0  # re-deliveries the hub answered from its inbox (applied 0 times)
    lost: int = 0
    pending: int = 0  # enqueued after the ledger settled, still in the outbox (not lost)
    points_produced: int = 0
    points_stored: int = 0
    points_rejected: dict[str, int] = field(default_factory=dict)
    points_shed: int = 0
    jobs: dict[str, int] = field(default_factory=dict)  # end state -> how many
    recovery_s: float | None = 0.0  # None: nothing to recover from
    notes: list[str] = field(default_factory=list)

    @property
    def recovery_text(self) -> str:
        return "n/a" if self.recovery_s is None else f"{self.recovery_s:.1f} s"

    def summary(self) -> str:
        jobs = ", ".join(f"{n} {state}" for state, n in sorted(self.jobs.items()))
        return (
            f"{self.name}: messages sent={self.sent} stored={self.stored} "
            f"duplicated={self.duplicated} lost={self.lost} pending={self.pending}; "
            "telemetry points "
            f"produced={self.points_produced} stored={self.points_stored} "
            f"rejected={self.points_rejected} shed={self.points_shed}; jobs: {jobs}; "
            f"recovery {self.recovery_text}" + "".join(f"\n  - {n}" for n in self.notes)
        )


def _burn(floor: Floor) -> Path:
    """Where the laser's burn goes: the sim camera of Floor's agents photographs it."""
    return floor.root / "stations" / f"{STATION}-burn.png"


def finish(floor: Floor, result: Result, jobs: list[str], *, timeout: float = 90) -> Result:
    """Wait until the station's outbox drained and the ledger adds up; fill ``result``."""
    settled = wait_settled(floor, STATION, timeout=timeout)
    counts = message_counts(floor, STATION)
    result.sent, result.stored, result.lost = counts.sent, counts.stored, counts.lost
    result.pending = counts.pending
    result.duplicated = hub_duplicates(floor)
    produced, row = settled.produced, settled.ledger
    result.points_produced, result.points_shed = produced, settled.shed
    result.points_stored = int(row.get("points_stored", 0))
    result.points_rejected = dict(row.get("points_rejected", {}))
    result.jobs = job_end_states(floor, jobs)
    for job_id in jobs:
        assert_applied_once(floor.job(job_id))
    assert result.lost == 0, f"{result.lost} messages lost: {counts}"
    assert result.stored + counts.pending == result.sent, counts  # pending: enqueued just now
    accounted = result.points_stored + sum(result.points_rejected.values())
    assert produced == accounted, f"produced {produced} != stored+rejected {accounted}"
    assert row.get("points_unaccounted", 0) == 0, row
    return result


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
    with external_laser(floor.root, _burn(floor), speedup=3) as laser:
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
    with external_laser(floor.root, _burn(floor), speedup=3) as laser:
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
            lambda: _events(floor, "device_ready"), timeout=30, what="laser reopened"
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


def _events(floor: Floor, kind: str) -> list[dict[str, object]]:
    events = floor.api.get(f"/stations/{STATION}/events").json()
    return [e for e in events if e["kind"] == kind]


def _story(kinds: list[str]) -> list[str]:
    wanted = {"device_unavailable", "device_failed", "device_ready", "job_inconsistent"}
    return [k for k in kinds if k in wanted]


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
        wait_until(lambda: _events(floor, "telemetry_shed"), timeout=20, what="telemetry_shed")
        piece = floor.post_order("e-1", text="Disk full")  # job evidence still goes through
        assert floor.wait_status(piece, *TERMINAL, timeout=60)["status"] == "done"
        time.sleep(1)
        ballast.unlink()
        freed = time.monotonic()
        resumed = wait_until(
            lambda: _events(floor, "telemetry_resumed"), timeout=20, what="telemetry_resumed"
        )
        result.recovery_s = time.monotonic() - freed
        finish(floor, result, [piece])
        shed_events = len(_events(floor, "telemetry_shed"))
        assert shed_events == 1, f"{shed_events} telemetry_shed events for one episode"
        assert result.points_shed > 0
        result.notes.append(
            f"tmpfs {TMPFS_BYTES >> 20} MiB, floor {FLOOR_BYTES >> 20} MiB; one telemetry_shed "
            f"event; {resumed[0]['message']}; the job's updates and proof photo went through"
        )
    return result


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
    wait_until(lambda: _events(floor, "telemetry_resumed"), timeout=30, what="telemetry_resumed")
    result.recovery_s = time.monotonic() - back
    assert len(_events(floor, "telemetry_shed")) == 1  # once per episode, not per batch
    piece = floor.post_order("e-2", text="After outage")
    assert floor.wait_status(piece, *TERMINAL, timeout=60)["status"] == "done"
    finish(floor, result, [piece])
    assert result.points_shed > 0
    result.notes.append(
        "recovery: broker back -> outbox drained under its budget and took telemetry again; "
        "shed points are counted on the station, produced = stored at the hub"
    )
    return result


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
    "outbox_budget": outbox_budget,
    "clock_jump": clock_jump,
}
