"""What the proof-flow tests share (tests/hub/test_proofs_flow.py, test_proof_timeout.py):
the fixture photo, a station's job update, a VerificationRunner over a thread pool."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.jobs import apply_station_update
from hub.settings import HubSettings
from hub.store.models import Job
from hub.verification_runner import VerificationRunner
from protocol.models import JobUpdate, StationJobStatus

Sessions = async_sessionmaker[AsyncSession]
T = TypeVar("T")
PHOTO = Path(__file__).parents[1] / "fixtures" / "proofs" / "anna_ben_2026_ring_band.png"
ENGRAVED = "Anna & Ben 2026"  # what the fixture photo shows
sequence = itertools.count(1)  # station message sequence numbers, unique per test process


async def send(session: AsyncSession, job: Job, status: StationJobStatus, **fields: Any) -> None:
    """Apply one job update from station st-a (epoch 1) and refresh ``job``."""
    update = JobUpdate.model_validate(
        {
            "station_id": "st-a",
            "epoch": 1,
            "seq": next(sequence),
            "job_id": job.id,
            "expected_version": job.version,
            "status": status,
            **fields,
        }
    )
    result = await apply_station_update(session, station_id="st-a", update=update)
    assert result.accepted, result.reason
    await session.refresh(job)


def thread_pool_runner(
    sessions: Sessions, settings: HubSettings, pool: ThreadPoolExecutor
) -> VerificationRunner:
    """A runner reading proofs in ``pool`` (the hub uses a process pool) with no lock."""

    async def serialised(work: Callable[[], Awaitable[T]]) -> T:
        return await work()

    return VerificationRunner(
        settings=settings, sessions=sessions, serialised=serialised, executor=pool
    )
