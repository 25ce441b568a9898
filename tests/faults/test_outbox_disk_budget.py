"""The outbox's disk budget on a real SQLite file: telemetry goes first, events next, job
updates never; SQLite's own "database or disk is full" is refused cleanly, never a crash.

One full-disk case uses SQLite's ``max_page_count`` (the same SQLITE_FULL a full filesystem
gives), one a real full tmpfs (needs root; skipped, saying why, without); the scenarios in
test_fault_scenarios.py fill a real tmpfs under a running agent.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from uuid import uuid4

import pytest
from support.fault_parts import Unsupported, fill_disk, tmpfs

from agent.db import open_db
from agent.outbox import DiskBudget, MessageId, Outbox, OutboxFullError
from protocol import topics
from protocol.models import (
    Ack,
    AckOutcome,
    Event,
    JobUpdate,
    StationJobStatus,
    StationMessage,
    TelemetryBatch,
    TelemetryPoint,
    utcnow,
)

pytestmark = pytest.mark.fault

STATION = "st-01"


def telemetry(epoch: int, seq: int) -> StationMessage:
    points = [
        TelemetryPoint(device="station", metric=f"m{i}", ts=utcnow(), value=1.0) for i in range(20)
    ]
    return TelemetryBatch(station_id=STATION, epoch=epoch, seq=seq, points=points)


def event(epoch: int, seq: int) -> StationMessage:
    return Event(station_id=STATION, epoch=epoch, seq=seq, kind="test", message="x" * 400)


def job_update(epoch: int, seq: int) -> StationMessage:
    return JobUpdate(
        station_id=STATION,
        epoch=epoch,
        seq=seq,
        job_id=uuid4(),
        expected_version=1,
        status=StationJobStatus.RUNNING,
    )


def fill(outbox: Outbox, kind: topics.Up, build: object) -> int:
    """Enqueue ``kind`` until refused; how many were stored."""
    stored = 0
    while True:
        try:
            outbox.enqueue(kind, build)  # type: ignore[arg-type]
        except OutboxFullError:
            return stored
        stored += 1
        assert stored < 10_000, "never refused"


def test_budget_sheds_telemetry_first_then_events_and_never_job_updates(tmp_path: Path) -> None:
    budget = DiskBudget(max_bytes=64 * 1024)
    outbox = Outbox(open_db(tmp_path), STATION, resend_after_s=5, budget=budget)

    telemetry_stored = fill(outbox, topics.Up.TELEMETRY, telemetry)
    assert 0.55 * 64 * 1024 < outbox.stored_bytes <= 0.6 * 64 * 1024
    events_stored = fill(outbox, topics.Up.EVENT, event)  # events still fit past telemetry's cap
    assert events_stored > 0
    assert outbox.stored_bytes <= 0.9 * 64 * 1024
    for _ in range(50):  # job updates are evidence: the budget never refuses them
        outbox.enqueue(topics.Up.JOB, job_update)
    assert outbox.stored_bytes > 0.9 * 64 * 1024
    assert outbox.refused == {"telemetry": 1, "event": 1}
    depth = outbox.depth()
    assert (depth[0], depth[1], depth[2]) == (50, events_stored, telemetry_stored)
    print(f"\nstored telemetry={telemetry_stored} events={events_stored} job=50 "
          f"bytes={outbox.stored_bytes}")  # fmt: skip

    # Acks free the budget: telemetry is taken again (recovery).
    for seq in range(1, telemetry_stored + 1):
        outbox.ack(Ack(epoch=outbox.epoch, seq=seq, outcome=AckOutcome.ACCEPTED))
    assert isinstance(outbox.enqueue(topics.Up.TELEMETRY, telemetry), MessageId)


def test_free_space_floor_refuses_telemetry_on_a_nearly_full_disk(tmp_path: Path) -> None:
    # A floor above what the disk has free: this disk counts as "full" for telemetry.
    budget = DiskBudget(min_free_bytes=1 << 60, path=tmp_path)
    outbox = Outbox(open_db(tmp_path), STATION, resend_after_s=5, budget=budget)
    with pytest.raises(OutboxFullError, match="under the floor for telemetry"):
        outbox.enqueue(topics.Up.TELEMETRY, telemetry)
    with pytest.raises(OutboxFullError, match="under the floor for event"):
        outbox.enqueue(topics.Up.EVENT, event)
    assert isinstance(outbox.enqueue(topics.Up.JOB, job_update), MessageId)
    assert outbox.depth() == {0: 1, 1: 0, 2: 0}


def test_sqlite_disk_full_is_refused_cleanly_and_the_outbox_stays_usable(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    outbox = Outbox(db, STATION, resend_after_s=5)  # no budget: only SQLite says no
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages + 8}")
    stored = fill(outbox, topics.Up.TELEMETRY, telemetry)
    with pytest.raises(OutboxFullError, match="database or disk is full") as refused:
        outbox.enqueue(topics.Up.JOB, job_update)
    assert refused.value.kind is topics.Up.JOB
    assert outbox.refused == {"telemetry": 1, "job": 1}
    # Nothing half-written: the sequence did not move, every stored row is whole.
    assert outbox.depth()[2] == stored
    next_seq = db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()[0]
    assert next_seq == stored + 1
    db.execute("PRAGMA max_page_count = 1000000")  # space returns
    assert outbox.enqueue(topics.Up.JOB, job_update) == MessageId(outbox.epoch, stored + 1)
    with pytest.raises(sqlite3.OperationalError):  # other SQLite errors are not swallowed
        db.execute("SELECT * FROM no_such_table")


def test_delivery_goes_on_while_a_real_disk_is_full(tmp_path: Path) -> None:
    """On a full tmpfs every commit fails (the WAL must grow): publications, Acks and the
    connection counter wait in memory, nothing is half-written, and all of it is written with
    the first write after space returns."""
    try:
        with tmpfs(tmp_path / "disk", 4 << 20) as disk:
            check_bookkeeping_on_a_full_disk(disk)
    except Unsupported as why:
        pytest.skip(str(why))


def check_bookkeeping_on_a_full_disk(disk: Path) -> None:
    db = open_db(disk)
    outbox = Outbox(db, STATION, resend_after_s=5)
    ids = [outbox.enqueue(topics.Up.JOB, job_update) for _ in range(20)]
    ballast = fill_disk(disk, leave=0)
    bd_seq = outbox.next_bd_seq()
    for message_id in ids[:10]:
        outbox.mark_sent(message_id, now=100.0)
    for epoch, seq in ids[:5]:  # the hub answered these: their waiters learn it at once
        assert outbox.ack(Ack(epoch=epoch, seq=seq, outcome=AckOutcome.ACCEPTED))
    assert outbox.disk.full
    assert outbox.deferred_writes == 1 + 5 + 5  # bd_seq, Acks, sends not answered yet
    assert not outbox.contains(ids[0])
    assert outbox.can_await(ids[0])  # a waiter arriving now gets the Ack
    assert outbox.depth()[0] == 15
    due = {entry.id for entry in outbox.due(now=101.0, window=100)}
    assert due == set(ids[10:])  # sent a moment ago, or acknowledged: not due again
    with pytest.raises(OutboxFullError) as refused:
        outbox.enqueue(topics.Up.JOB, job_update)
    assert refused.value.disk_full
    ballast.unlink()  # space returns: the next write takes what memory kept along
    assert outbox.enqueue(topics.Up.JOB, job_update) == MessageId(outbox.epoch, 21)
    assert (outbox.deferred_writes, outbox.disk.full) == (0, False)
    sent = db.execute("SELECT count(*) FROM outbox WHERE last_sent_at = 100.0").fetchone()[0]
    assert (outbox.depth()[0], sent) == (16, 5)
    assert db.execute("SELECT value FROM meta WHERE key = 'bd_seq'").fetchone()[0] == bd_seq
    assert outbox.next_bd_seq() == bd_seq + 1
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
