"""Verification in the job flow, on SQLite and PostgreSQL, with the real OCR pipeline (in a
thread pool here; the hub uses a process pool, exercised by the API and integration tests):
a job waits in verifying for its proof, then PASS -> done, FAIL -> needs_review; the result
is stored for review and the audit log keeps hashes and the verdict, never the text."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select
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
from hub.proofs import ProofConfig
from hub.settings import HubSettings
from hub.store.models import AuditEntry, Job
from hub.store.proofs_tables import VerificationRecord
from hub.verification_runner import VerificationRunner
from protocol.models import StationJobStatus

Sessions = async_sessionmaker[AsyncSession]
S = StationJobStatus


@pytest.fixture(scope="module")
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(1) as executor:  # one OCR engine for the module
        yield executor


@pytest_asyncio.fixture
async def runner(
    sessions: Sessions, tmp_path: Path, pool: ThreadPoolExecutor
) -> AsyncIterator[VerificationRunner]:
    saved = list(proofs._current)
    settings = HubSettings(_env_file=None, data_dir=tmp_path / "hub")
    proofs.configure(ProofConfig.from_settings(settings))

    yield thread_pool_runner(sessions, settings, pool)
    proofs._current[:] = saved


async def finished_job(sessions: Sessions, h: Any, text: str, photo_sha: str) -> Job:
    """A job walked through every step as a station would; its engraving photo is
    ``photo_sha``."""
    other = hashlib.sha256(b"x").hexdigest()
    shas = {
        "inspect_in_photo": other,
        "engrave": "cd" * 32,
        "engraving_photo": photo_sha,
        "inspect_out_photo": other,
    }
    return await walk_job(sessions, h, text, shas)


@pytest.mark.asyncio
async def test_a_job_waits_for_its_proof_then_a_pass_finishes_it(
    sessions: Sessions, h: Any, runner: VerificationRunner
) -> None:
    image = PHOTO.read_bytes()
    sha = hashlib.sha256(image).hexdigest()
    job = await finished_job(sessions, h, ENGRAVED, sha)
    assert await status_of(sessions, job) == "verifying"
    assert await runner.run_once() == 0  # no proof yet: nothing to read, the job waits
    assert await status_of(sessions, job) == "verifying"
    await upload(sessions, image, job)
    # Nothing told the runner about the proof: it finds the job in the database (so also
    # after a hub restart, when the sweeper kicks it).
    assert await runner.run_once() == 1
    assert await status_of(sessions, job) == "done"
    assert await runner.run_once() == 0  # verified once only
    async with sessions() as session:
        [record] = (await session.scalars(select(VerificationRecord))).all()
        audit = (await session.scalars(select(AuditEntry).where(AuditEntry.job_id == job.id))).all()
    assert (record.job_id, record.step, record.proof_sha256) == (job.id, "engraving_photo", sha)
    assert (record.verdict, record.read_text, record.diff) == ("PASS", ENGRAVED, [])
    last = audit[-1].data
    assert (last["to"], last["verification"]["verdict"]) == ("done", "PASS")
    assert last["verification"]["proof_sha256"] == sha
    expected_hash = hashlib.sha256(ENGRAVED.encode()).hexdigest()
    assert last["verification"]["expected_sha256"] == expected_hash
    assert ENGRAVED not in json.dumps([entry.data for entry in audit])  # personal data


@pytest.mark.asyncio
async def test_a_wrong_engraving_goes_to_review_with_its_diff(
    sessions: Sessions, h: Any, runner: VerificationRunner
) -> None:
    image = PHOTO.read_bytes()
    ordered = "Anna & Ben 2025"  # the photo shows ...2026
    job = await finished_job(sessions, h, ordered, hashlib.sha256(image).hexdigest())
    await upload(sessions, image, job)
    assert await runner.run_once() == 1
    async with sessions() as session:
        current = await session.get_one(Job, job.id)
        record = await session.scalar(select(VerificationRecord))
    assert current.status == "needs_review"
    assert record is not None
    assert record.verdict == "FAIL"
    changed = [(d["op"], d["expected"], d["read"]) for d in record.diff if d["op"] != "equal"]
    assert changed == [("substitute", "5", "6")]


@pytest.mark.asyncio
async def test_jobs_without_an_engraving_check_finish_as_before(sessions: Sessions, h: Any) -> None:
    shas = {"inspect_in_photo": "ef" * 32, "inspect_out_photo": "ef" * 32}
    job = await walk_job(sessions, h, None, shas)  # no engraving: no verify step
    assert job.status == "done"


@pytest.mark.asyncio
async def test_a_proof_that_is_no_image_goes_to_review_once(
    sessions: Sessions, h: Any, runner: VerificationRunner
) -> None:
    image = b"\x89PNG but not really"
    job = await finished_job(sessions, h, ENGRAVED, hashlib.sha256(image).hexdigest())
    await upload(sessions, image, job)
    assert await runner.run_once() == 1
    assert await runner.run_once() == 0  # decided: not retried every sweep
    async with sessions() as session:
        current = await session.get_one(Job, job.id)
        record = await session.scalar(select(VerificationRecord))
    assert current.status == "needs_review"
    assert record is not None
    assert record.verdict == "REVIEW"
    assert record.reasons[0].startswith("proof cannot be verified: BadImageError")
