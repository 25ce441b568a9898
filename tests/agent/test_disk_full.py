"""Evidence on a full data disk: the runner holds a job update in memory, keeps running, starts
no other job, and delivers the update once space returns (agent.persist).

The disk is full for real as far as SQLite is concerned: ``PRAGMA max_page_count`` at the
database's size gives the same SQLITE_FULL a full filesystem gives (per connection: a restarted
agent's connection has space again). The outbox's own bookkeeping on a real full tmpfs is in
tests/faults/test_outbox_disk_budget.py, the whole agent on one in the disk_full_job_update
fault scenario. A photo file on a full disk is written to /dev/full, which the kernel answers
with ENOSPC.
"""

from __future__ import annotations

import asyncio
import errno
import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from support.polling import until

from agent.context import AgentContext
from agent.jobs import JobRunner
from agent.jobstore import JobStore, Phase
from agent.outbox import OutboxFullError
from agent.persist import Persister
from protocol import topics
from protocol.models import Event, JobStatus, StationJobStatus

S = StationJobStatus
WALK = [S.ACKNOWLEDGED, S.RUNNING, S.RUNNING, S.RUNNING, S.RUNNING, S.RUNNING, S.DONE]


def fill_database(ctx: AgentContext) -> None:
    """Make the database full: no new page, and no room left in the outbox's last page for a
    job update (filled with the smallest events until SQLite refuses one)."""
    db, outbox = ctx.db, ctx.outbox
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")

    def tiny(epoch: int, seq: int) -> Event:
        return Event(station_id="st-01", epoch=epoch, seq=seq, kind="x")

    for _ in range(10_000):
        try:
            outbox.enqueue(topics.Up.EVENT, tiny)
        except OutboxFullError:
            break
    assert ctx.outbox.disk.full
    assert not row_fits(db, 240), "the outbox still takes a job update: not full"


def row_fits(db: sqlite3.Connection, payload_bytes: int) -> bool:
    """Whether an outbox row of ``payload_bytes`` still fits (tried, then rolled back)."""
    try:
        db.execute(  # in the transaction sqlite3 opens for it, rolled back below
            "INSERT INTO outbox (epoch, seq, priority, kind, topic, payload, created_at) "
            "VALUES (0, 0, 0, 'job', 'probe', ?, 0)",
            (b"x" * payload_bytes,),
        )
    except sqlite3.OperationalError:
        return False
    finally:
        db.rollback()
    return True


def space_returns(ctx: AgentContext) -> None:
    ctx.db.execute("PRAGMA max_page_count = 1073741823")


def event_kinds(hub: Any) -> list[str]:
    return [event.kind for event in hub.events if event.kind != "x"]


@asynccontextmanager
async def serving(
    ctx: AgentContext, hub: Any, runner: JobRunner
) -> AsyncIterator[asyncio.Task[None]]:
    """The runner and the hub pump; the runner's task is yielded (it must stay alive)."""
    tasks = [asyncio.create_task(runner.run()), asyncio.create_task(hub.serve())]
    try:
        yield tasks[0]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.asyncio
async def test_a_job_update_waits_in_memory_until_the_disk_has_space(
    make_context: Any, hub_factory: Any
) -> None:
    ctx = await make_context(resend_after_s=0.2)
    hub = hub_factory(ctx.outbox)
    runner = JobRunner(ctx)
    first, second = hub.new_job("Anna & Ben"), hub.new_job("Carl")
    runner.on_assignment(first)
    runner.on_assignment(second)  # stored and queued: it must wait for the first
    hub.online = False  # nothing is acknowledged (and so deleted) while the disk is full
    fill_database(ctx)
    async with serving(ctx, hub, runner) as runner_task:
        await until(lambda: ctx.outbox.disk.retries >= 2)  # the first update, refused again
        assert ctx.outbox.disk.held == 1
        assert not runner_task.done()  # the agent runs on
        assert ctx.outbox.depth()[0] == 0  # no job update half-written
        assert JobStore(ctx.db).get(first.job_id).pending is None  # type: ignore[union-attr]
        assert ctx.devices.laser.engrave_count == 0  # type: ignore[union-attr]
        space_returns(ctx)
        hub.online = True
        await until(lambda: hub.status(second.job_id) is JobStatus.DONE, seconds=30)
    for job in (first, second):  # each transition once, in order: nothing lost or doubled
        assert hub.statuses_sent(job.job_id) == WALK
    assert [u.job_id for u in hub.updates if u.status is S.ACKNOWLEDGED] == [
        first.job_id,
        second.job_id,
    ]
    assert event_kinds(hub) == ["disk_full", "disk_writable"]
    held = next(e for e in hub.events if e.kind == "disk_full")
    assert f"job {first.job_id} update acknowledged" in held.message
    assert (ctx.outbox.disk.held, ctx.outbox.disk.episodes) == (0, 1)
    assert ctx.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.asyncio
async def test_a_stop_does_not_wait_for_space_and_a_restart_runs_the_job(
    make_context: Any, hub_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = await make_context(resend_after_s=0.2)
    hub = hub_factory(ctx.outbox)
    runner = JobRunner(ctx)
    job = hub.new_job("Anna & Ben")
    runner.on_assignment(job)
    fill_database(ctx)
    async with serving(ctx, hub, runner) as runner_task:
        await until(lambda: ctx.outbox.disk.held)
        async with asyncio.timeout(10):  # no device moves: the stop need not wait for space
            await runner.stop()
            await asyncio.gather(runner_task, return_exceptions=True)
    assert runner_task.cancelled()
    assert "is lost" in caplog.text  # said, not silent
    assert phase_of(ctx, job) is Phase.QUEUED  # nothing of the held update was stored
    again = await make_context(resend_after_s=0.2)  # a new connection: space is back
    hub.outbox = again.outbox
    async with serving(again, hub, JobRunner(again)):
        await until(lambda: hub.status(job.job_id) is JobStatus.DONE, seconds=30)
    assert hub.statuses_sent(job.job_id) == WALK


def phase_of(ctx: AgentContext, job: Any) -> Phase | None:
    local = JobStore(ctx.db).get(job.job_id)
    return local.phase if local else None


@pytest.mark.asyncio
async def test_a_proof_photo_is_held_on_enospc_and_kept_when_space_returns(
    tmp_path: Path, make_context: Any
) -> None:
    ctx = await make_context()
    persister = Persister(ctx.outbox, station_id="st-01", backoff=(0.01, 0.05))
    target = [Path("/dev/full")]  # the kernel's full disk: every write fails with ENOSPC

    def keep() -> Path:
        target[0].write_bytes(b"\x89PNG proof")
        return target[0]

    task = asyncio.create_task(persister.write("proof photo of step pack", keep))
    await until(lambda: ctx.outbox.disk.retries >= 3)
    assert persister.holding
    assert not task.done()
    target[0] = tmp_path / "proof.png"  # space returns
    assert await task == tmp_path / "proof.png"
    assert not persister.holding
    kinds = [json.loads(e.payload)["kind"] for e in ctx.outbox.due(0, 100)]
    assert kinds == ["disk_full", "disk_writable"]  # the outbox had room for both at once


@pytest.mark.asyncio
async def test_other_write_errors_are_not_held(make_context: Any) -> None:
    ctx = await make_context()
    persister = Persister(ctx.outbox, station_id="st-01")

    def read_only() -> None:
        raise PermissionError(errno.EACCES, "read-only proofs directory")

    def over_budget() -> None:
        raise OutboxFullError(topics.Up.EVENT, "over the budget")  # the budget, not the disk

    with pytest.raises(PermissionError):
        await persister.write("proof photo", read_only)
    with pytest.raises(OutboxFullError):
        await persister.write("event", over_budget)
    assert (ctx.outbox.disk.episodes, ctx.outbox.disk.held) == (0, 0)
