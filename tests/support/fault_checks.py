"""Ledger and job-store checks of the fault suite: what the station enqueued against what the
hub applied, read from both databases (the agent's SQLite, the hub's SQLite) and the hub's API;
what a scenario measured (:class:`Result`) and the check every scenario ends with
(:func:`finish`).
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from support.floor import Floor, wait_until

MessageKey = tuple[int, int]  # (epoch, seq)
DUPLICATES_METRIC = re.compile(r"^benchfleet_hub_duplicate_messages_total\{[^}]*\} (\S+)$", re.M)


@dataclass(frozen=True)
class MessageCounts:
    """Station messages by (epoch, seq): sent (enqueued), stored (in the hub's inbox, each
    once by its primary key), pending (still in the station's outbox), lost (none of those)."""

    sent: int
    stored: int
    pending: int
    lost: int


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)


def agent_db(floor: Floor, station: str) -> Path:
    return floor.root / "stations" / station / "agent.sqlite3"


def hub_db(floor: Floor) -> Path:
    return floor.root / "hub" / "hub.db"


def message_counts(floor: Floor, station: str) -> MessageCounts:
    """Count by key. The order of the reads makes it race-free while the agent runs: a message
    enqueued before the first read is in the outbox at the second, or acknowledged, and so in
    the hub's inbox at the third (the hub commits before it acknowledges)."""
    with _read_only(agent_db(floor, station)) as db:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        pending = set(db.execute("SELECT epoch, seq FROM outbox").fetchall())
    with _read_only(hub_db(floor)) as db:
        stored = set(
            db.execute("SELECT epoch, seq FROM inbox WHERE station_id = ?", (station,)).fetchall()
        )
    top: dict[int, int] = {}
    for epoch, seq in stored | pending:
        top[epoch] = max(top.get(epoch, 0), seq)
    current = int(meta["epoch"])
    top[current] = max(top.get(current, 0), int(meta["next_seq"]) - 1)
    sent = {(epoch, seq) for epoch, last in top.items() for seq in range(1, last + 1)}
    lost = sent - stored - pending
    return MessageCounts(len(sent), len(stored & sent), len(pending - stored), len(lost))


def hub_duplicates(floor: Floor) -> int:
    """Re-deliveries the running hub process answered from its inbox (its /metrics counter)."""
    text = floor.api.get("/metrics").text
    return int(sum(float(value) for value in DUPLICATES_METRIC.findall(text)))


def produced_and_shed(floor: Floor, station: str) -> tuple[int, int]:
    """Telemetry points the station enqueued and shed, over all its epochs."""
    with _read_only(agent_db(floor, station)) as db:
        produced = db.execute("SELECT coalesce(sum(points), 0) FROM telemetry_produced")
        produced_points = int(produced.fetchone()[0])
        try:
            shed_row = db.execute("SELECT coalesce(sum(points), 0) FROM telemetry_shed")
            shed = int(shed_row.fetchone()[0])
        except sqlite3.OperationalError:  # no batch shed, ever: no table yet
            shed = 0
    return produced_points, shed


def telemetry_row(floor: Floor, station: str) -> dict[str, Any]:
    """The station's row of ``GET /telemetry/ledger`` ({} while the hub restarts)."""
    try:
        rows = floor.api.get("/telemetry/ledger").json()
    except (httpx.TransportError, ValueError):
        return {}
    return next((row for row in rows if row["station_id"] == station), {})


def _pending_evidence(floor: Floor, station: str) -> int:
    with _read_only(agent_db(floor, station)) as db:
        return int(db.execute("SELECT count(*) FROM outbox WHERE priority < 2").fetchone()[0])


@dataclass(frozen=True)
class Settled:
    """The station's telemetry counters and the hub's ledger row at one consistent instant."""

    produced: int
    shed: int
    ledger: dict[str, Any]


def wait_settled(floor: Floor, station: str, *, timeout: float) -> Settled:
    """Wait for an instant where every telemetry point produced is stored or rejected at the
    hub, and no job update, event or proof waits in the station's outbox (the agent keeps
    producing: the counters are read on both sides of the ledger)."""

    def probe() -> Settled | None:
        before, _ = produced_and_shed(floor, station)
        row = telemetry_row(floor, station)
        accounted = int(row.get("points_stored", -1)) + sum(row.get("points_rejected", {}).values())
        after, shed = produced_and_shed(floor, station)
        if before == accounted == after and _pending_evidence(floor, station) == 0:
            return Settled(after, shed, row)
        return None

    return wait_until(probe, timeout=timeout, what=f"{station}'s ledger to add up", interval=0.1)


def job_end_states(floor: Floor, jobs: list[str]) -> dict[str, int]:
    return dict(Counter(str(floor.job(job_id)["status"]) for job_id in jobs))


def assert_applied_once(job: dict[str, Any]) -> None:
    """Each accepted transition appears once (since the job's last assignment) and versions
    climb by exactly one."""
    versions = [step["version"] for step in job["history"]]
    assert versions == list(range(versions[0], versions[0] + len(versions))), versions
    last = max(i for i, s in enumerate(job["history"]) if s["to_status"] == "assigned")
    station_steps = [
        (s["actor"], s["to_status"], s["reason"])
        for s in job["history"][last:]
        if s["actor"].startswith("station")
    ]
    assert max(Counter(station_steps).values(), default=1) == 1, station_steps


# ---- what a scenario measured, and its last check -----------------------------------------------

STATION = "st-fault"
# A loaded station: every device and the station sampled 5x a second, a batch every 0.5 s.
LOADED = "telemetry_sample_s = 0.2\ntelemetry_batch_s = 0.5\n"


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


def burn_path(floor: Floor) -> Path:
    """Where the laser's burn goes: the sim camera of Floor's agents photographs it."""
    return floor.root / "stations" / f"{STATION}-burn.png"


def station_events(floor: Floor, kind: str) -> list[dict[str, object]]:
    """The station's events of ``kind`` the hub stored, newest first."""
    events = floor.api.get(f"/stations/{STATION}/events").json()
    return [e for e in events if e["kind"] == kind]


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
