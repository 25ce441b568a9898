"""Two hubs on one PostgreSQL: never the same job assigned twice, one intact audit chain.

Each "hub" is its own engine (its own connection pool, as in a separate process) running the
scheduler concurrently with the other on the real PostgreSQL at 127.0.0.1:5432.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from hub import dispatch
from hub.audit import verify_database
from hub.store import create_hub_engine, session_factory, upgrade_to_head
from hub.store.models import Job, JobTransition
from protocol.models import utcnow

pytestmark = pytest.mark.postgres
JOBS, STATIONS = 120, 8


async def _hub_loop(url: str, rounds: int) -> int:
    engine = create_hub_engine(url)
    sessions = session_factory(engine)
    sent = 0
    try:
        for _ in range(rounds):
            async with sessions.begin() as session:
                out = await dispatch.assign_now(session, now=utcnow(), max_open=1000)
            sent += len(out)
            await asyncio.sleep(0)
    finally:
        await engine.dispose()
    return sent


@pytest.mark.asyncio
async def test_two_hubs_never_assign_a_job_twice(pg_database: Callable[[], str], h: Any) -> None:
    url = pg_database()
    upgrade_to_head(url)
    engine = create_hub_engine(url)
    sessions = session_factory(engine)
    async with sessions.begin() as session:
        session.add_all([h.station(f"st-{i:02d}") for i in range(STATIONS)])

    # Orders keep arriving while both hubs assign.
    async def orders() -> None:
        for i in range(JOBS):
            async with sessions.begin() as session:
                await h.new_order(session, f"o-{i}")
            if i % 10 == 0:
                await asyncio.sleep(0.01)

    sent_a, sent_b, _ = await asyncio.gather(_hub_loop(url, 60), _hub_loop(url, 60), orders())
    sent_a += await _hub_loop(url, 3)  # drain what arrived after the last round
    async with sessions() as session:
        assigned = (
            await session.scalars(
                select(JobTransition.job_id).where(JobTransition.to_status == "assigned")
            )
        ).all()
        jobs = (await session.scalars(select(Job))).all()
    await engine.dispose()
    assert len(jobs) == JOBS
    assert Counter(assigned).most_common(1)[0][1] == 1  # no job assigned twice
    assert len(assigned) == JOBS == sent_a + sent_b  # every assignment message sent once
    assert all(job.status == "assigned" and job.version == 2 for job in jobs)
    verdict = verify_database(url)
    assert verdict.ok, verdict.problem
    assert verdict.entries == 3 * JOBS  # per order: received, job created, assigned
