"""What the proof-flow tests share (tests/hub/test_proofs_flow.py, test_proof_timeout.py):
the fixture photo, a station's job update, a job walked through its steps, a proof upload
through the real ingest path, a VerificationRunner over a thread pool."""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.ingest import handle_message
from hub.jobs import apply_station_update, assign_queued
from hub.settings import HubSettings
from hub.store.models import Job
from hub.verification_runner import VerificationRunner
from protocol import encode, topics
from protocol.models import Evidence, JobUpdate, ProofChunk, StationJobStatus, utcnow

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


async def walk_job(sessions: Sessions, h: Any, text: str | None, shas: Mapping[str, str]) -> Job:
    """A new order for ``text`` (None: no engraving) walked by station st-a through the
    steps ``shas`` names, in order, each done with its evidence hash (G-code for "engrave", a
    photo otherwise)."""
    async with sessions.begin() as session:
        session.add(h.station("st-a"))
        job: Job = await h.new_order(session, f"o-{next(sequence)}", text)
        await assign_queued(session, now=utcnow())
        await send(session, job, StationJobStatus.ACKNOWLEDGED)
        await send(session, job, StationJobStatus.RUNNING)
        for step, sha in shas.items():
            if step == "engrave":
                await send(session, job, StationJobStatus.RUNNING, step=step, step_phase="start")
            kind = "gcode" if step == "engrave" else "photo"
            evidence = [Evidence(step=step, kind=kind, sha256=sha)]
            await send(
                session, job, StationJobStatus.RUNNING, step=step, step_phase="done",
                evidence=evidence,
            )  # fmt: skip
        await send(session, job, StationJobStatus.DONE)
    return job


async def upload(sessions: Sessions, image: bytes, job: Job, step: str = "engraving_photo") -> None:
    """The proof through the hub's real ingest path, as one chunk."""
    chunk = ProofChunk(
        station_id="st-a",
        epoch=1,
        seq=next(sequence),
        proof_sha256=hashlib.sha256(image).hexdigest(),
        index=0,
        count=1,
        total_bytes=len(image),
        job_id=job.id,
        step=step,
        data=base64.b64encode(image).decode(),
    )
    await handle_message(sessions, topic=topics.up("st-a", topics.Up.PROOF), payload=encode(chunk))


async def status_of(sessions: Sessions, job: Job) -> str:
    async with sessions() as session:
        return (await session.get_one(Job, job.id)).status
