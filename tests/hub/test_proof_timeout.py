"""The proof time-out, on SQLite and PostgreSQL, with the real OCR pipeline (in a thread pool, as
in test_proofs_flow.py): a job waiting in verifying for its engraving proof longer than
``proof_timeout_s`` goes to needs_review (reason proof_timeout), audited; the clock is the
persisted entry into verifying, so a new engine (a restarted hub) sees it too; a proof arriving
after the time-out is still stored, read and recorded, and the job stays where it is.

The clock is driven by moving the job's transition into verifying into the past: no sleeping.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from PIL import Image
from prometheus_client import REGISTRY
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from support.proof_flow import (
    ENGRAVED,
    PHOTO,
    status_of,
    thread_pool_runner,
    upload,
    walk_job,
)

from hub import proofs
from hub.audit import verify_database
from hub.decisions import decide
from hub.jobs import time_out_proofs
from hub.mqtt import HubLink
from hub.proofs import ProofConfig, proof_path
from hub.settings import HubSettings
from hub.store import create_hub_engine, session_factory
from hub.store.models import AuditEntry, Job, JobTransition
from hub.store.proofs_tables import ProofRecord, VerificationRecord
from hub.verification_runner import VerificationRunner
from protocol.models import StationJobStatus, utcnow

Sessions = async_sessionmaker[AsyncSession]
S = StationJobStatus
TIMEOUT_S = 900.0

pytestmark = pytest.mark.asyncio


def other_photo(colour: int) -> bytes:
    """A small real PNG for the photo steps that are not read (distinct per colour)."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (colour, colour, colour)).save(buffer, format="PNG")
    return buffer.getvalue()


INSPECT_OUT = other_photo(200)


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


@pytest.fixture(scope="module")
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(1) as executor:  # one OCR engine for the module
        yield executor


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[HubSettings]:
    """Hub settings whose proof store the ingest path uses (restored afterwards)."""
    saved = list(proofs._current)
    made = HubSettings(_env_file=None, data_dir=tmp_path / "hub", proof_timeout_s=TIMEOUT_S)  # type: ignore[call-arg]
    proofs.configure(ProofConfig.from_settings(made))
    yield made
    proofs._current[:] = saved


@pytest_asyncio.fixture
async def runner(
    sessions: Sessions, settings: HubSettings, pool: ThreadPoolExecutor
) -> AsyncIterator[VerificationRunner]:
    yield thread_pool_runner(sessions, settings, pool)


async def verifying_job(sessions: Sessions, h: Any, text: str = ENGRAVED) -> Job:
    """A job walked through every step as a station would, now in verifying for its proof."""
    shas = {
        "inspect_in_photo": hashlib.sha256(other_photo(100)).hexdigest(),
        "engrave": "cd" * 32,
        "engraving_photo": hashlib.sha256(PHOTO.read_bytes()).hexdigest(),
        "inspect_out_photo": hashlib.sha256(INSPECT_OUT).hexdigest(),
    }
    job = await walk_job(sessions, h, text, shas)
    assert job.status == "verifying"
    return job


async def entered_verifying_ago(sessions: Sessions, job: Job, seconds: float) -> None:
    """Move the persisted entry into verifying ``seconds`` into the past."""
    async with sessions.begin() as session:
        await session.execute(
            update(JobTransition)
            .where(JobTransition.job_id == job.id, JobTransition.to_status == "verifying")
            .values(at=utcnow() - timedelta(seconds=seconds))
        )


async def time_out(sessions: Sessions) -> list[Job]:
    async with sessions.begin() as session:
        return await time_out_proofs(session, now=utcnow(), timeout_s=TIMEOUT_S)


async def job_audit(sessions: Sessions, job: Job) -> list[AuditEntry]:
    async with sessions() as session:
        query = select(AuditEntry).where(AuditEntry.job_id == job.id).order_by(AuditEntry.seq)
        return list((await session.scalars(query)).all())


async def test_a_missing_proof_times_out_to_review_audited_and_a_restart_keeps_the_clock(
    sessions: Sessions, migrated_url: str, h: Any
) -> None:
    job = await verifying_job(sessions, h)
    await entered_verifying_ago(sessions, job, TIMEOUT_S - 60)
    assert await time_out(sessions) == []  # a minute to go: the job waits
    await entered_verifying_ago(sessions, job, TIMEOUT_S + 60)
    before = counter("benchfleet_hub_proof_timeouts_total")
    # A fresh engine, as after a hub restart: the clock is in the database, not in memory.
    engine = create_hub_engine(migrated_url)
    try:
        moved = await time_out(session_factory(engine))
    finally:
        await engine.dispose()
    assert [j.id for j in moved] == [job.id]
    assert await status_of(sessions, job) == "needs_review"
    assert await time_out(sessions) == []  # moved once
    async with sessions() as session:
        last = (
            await session.scalars(
                select(JobTransition)
                .where(JobTransition.job_id == job.id)
                .order_by(JobTransition.id.desc())
            )
        ).first()
    assert last is not None
    assert (last.from_status, last.to_status, last.actor) == ("verifying", "needs_review", "hub")
    assert last.reason.startswith("proof_timeout: ")
    assert "engraving_photo" in last.reason
    entry = (await job_audit(sessions, job))[-1]
    assert (entry.action, entry.data["to"]) == ("transition", "needs_review")
    assert entry.data["proof_timeout"]["steps"] == ["engraving_photo"]
    assert entry.data["proof_timeout"]["timeout_s"] == TIMEOUT_S
    assert counter("benchfleet_hub_proof_timeouts_total") == before + 1
    assert verify_database(migrated_url).ok


async def test_a_job_whose_proof_is_in_waits_for_its_verdict_not_the_clock(
    sessions: Sessions, h: Any, runner: VerificationRunner
) -> None:
    job = await verifying_job(sessions, h)
    await upload(sessions, PHOTO.read_bytes(), job, "engraving_photo")
    await entered_verifying_ago(sessions, job, TIMEOUT_S * 10)
    assert await time_out(sessions) == []  # not waiting for a proof: OCR decides
    assert await status_of(sessions, job) == "verifying"
    assert await runner.run_once() == 1
    assert await status_of(sessions, job) == "done"


async def test_a_late_proof_is_stored_read_and_recorded_and_the_job_stays(
    sessions: Sessions, migrated_url: str, h: Any, runner: VerificationRunner, settings: HubSettings
) -> None:
    job = await verifying_job(sessions, h)
    await entered_verifying_ago(sessions, job, TIMEOUT_S + 1)
    assert len(await time_out(sessions)) == 1
    assert await runner.run_once() == 0  # still nothing to read
    image = PHOTO.read_bytes()
    sha = hashlib.sha256(image).hexdigest()
    await upload(sessions, image, job, "engraving_photo")
    await upload(sessions, INSPECT_OUT, job, "inspect_out_photo")  # late too, but not read
    async with sessions() as session:
        assert await session.get(ProofRecord, sha) is not None  # stored
    assert proof_path(ProofConfig.from_settings(settings).proofs_dir, sha).read_bytes() == image
    assert await runner.run_once() == 1
    assert await runner.run_once() == 0  # read once only
    assert await status_of(sessions, job) == "needs_review"  # where the time-out put it
    async with sessions() as session:
        [record] = (await session.scalars(select(VerificationRecord))).all()
    assert (record.job_id, record.step, record.proof_sha256) == (job.id, "engraving_photo", sha)
    assert (record.verdict, record.read_text) == ("PASS", ENGRAVED)
    entry = (await job_audit(sessions, job))[-1]
    assert entry.action == "verification_recorded"
    assert entry.data["status"] == "needs_review"
    assert (entry.data["verification"]["verdict"], entry.data["verification"]["proof_sha256"]) == (
        "PASS",
        sha,
    )
    assert ENGRAVED not in str(entry.data)  # hashes only, never the text
    assert verify_database(migrated_url).ok


async def test_a_late_proof_after_a_persons_decision_leaves_the_decision(
    sessions: Sessions, h: Any, runner: VerificationRunner
) -> None:
    job = await verifying_job(sessions, h, text="Anna & Ben 2025")  # the photo shows 2026
    await entered_verifying_ago(sessions, job, TIMEOUT_S + 1)
    assert len(await time_out(sessions)) == 1
    async with sessions.begin() as session:
        current = await session.get_one(Job, job.id)
        result = await decide(
            session,
            job=current,
            decision="scrap",
            expected_version=current.version,
            actor="technician:t1",
            reason="no proof photo, scrapped",
            now=utcnow(),
        )
    assert result.state.status == "cancelled"
    await upload(sessions, PHOTO.read_bytes(), job, "engraving_photo")
    # As after a hub restart: the in-memory hint of new proofs is gone; the runner's first
    # round looks at every timed-out job.
    proofs.forget_completed(proofs.completed_proofs())
    assert await runner.run_once() == 1
    assert await status_of(sessions, job) == "cancelled"  # the person's decision stands
    async with sessions() as session:
        record = await session.scalar(select(VerificationRecord))
    assert record is not None
    assert record.verdict == "FAIL"  # the evidence: the wrong year, recorded all the same


async def test_the_sweeper_times_out_and_its_verifier_reads_the_late_proof(
    sessions: Sessions, h: Any, settings: HubSettings, pool: ThreadPoolExecutor
) -> None:
    """The wiring in hub/mqtt.py: one sweeper round times the job out (no broker needed for
    the round itself), the verifier the sweeper kicks reads the proof that came later."""
    link = HubLink(settings=settings, sessions=sessions, started_at=utcnow())
    link.verifier = VerificationRunner(
        settings=settings, sessions=sessions, serialised=link.serialised, executor=pool
    )
    job = await verifying_job(sessions, h)
    await link.serialised(link._sweep_once)
    assert await status_of(sessions, job) == "verifying"  # fresh: not timed out
    await entered_verifying_ago(sessions, job, TIMEOUT_S + 1)
    await link.serialised(link._sweep_once)
    assert await status_of(sessions, job) == "needs_review"
    await upload(sessions, PHOTO.read_bytes(), job, "engraving_photo")
    task = link.verifier.kick()
    assert task is not None
    assert await task == 1
    assert await status_of(sessions, job) == "needs_review"


@pytest.mark.parametrize("field", ["proof_timeout_s", "proof_stage_max_age_s"])
@pytest.mark.parametrize("value", [0, -1])
async def test_the_proof_settings_must_be_positive(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        HubSettings(_env_file=None, **{field: value})  # type: ignore[call-arg, arg-type]
    defaults = HubSettings(_env_file=None)  # type: ignore[call-arg]
    assert (defaults.proof_timeout_s, defaults.proof_stage_max_age_s) == (900, 86_400)
