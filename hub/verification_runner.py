"""Engraving verification in the job flow: OCR in a process pool, never on the event loop.

A job whose plan has a step with ``params["verify"] == "engraving"`` stays in ``verifying``
(:func:`hub.jobs._verify`) until that step's proof photo is complete at the hub (its photo
evidence's SHA-256 is a ``proofs`` row, :mod:`hub.proofs`). :meth:`VerificationRunner.kick`
(the sweeper calls it every round, so also right after a restart) finds such jobs without a
verification, reads the proof in a worker process against the ordered text, and records the
result in ``verifications`` (read text and diff: personal data, kept for review) and the audit
log (hashes and the verdict only); then PASS -> done, FAIL or REVIEW -> needs_review. A proof
arriving after its job timed out (:func:`hub.jobs.time_out_proofs`) is read all the same
(:func:`find_late`), its verdict stored and audited; the job stays where people put it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import multiprocessing
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub import audit
from hub.catalogue import catalogue
from hub.dispatch import Outgoing
from hub.proofs import ProofConfig, completed_proofs, forget_completed, read_proof
from hub.settings import HubSettings
from hub.store.models import EvidenceRecord, Job, JobTransition, Order
from hub.store.proofs_tables import ProofRecord, VerificationRecord
from hub.transitions import HUB_ACTOR, move_job, plan_of
from hub.verify_worker import verify_in_worker
from protocol import topics
from protocol.models import DiffItem, JobStatus, StepSpec, VerificationNotice, utcnow

if TYPE_CHECKING:
    from hub.verification import VerificationResult

log = logging.getLogger(__name__)
T = TypeVar("T")
VERIFY_PARAM = "verify"
PROOF_TIMEOUT = "proof_timeout"  # the reason code of a job whose proof did not arrive in time
LATE_VERIFICATION = "verification_recorded"  # audit action: a verdict that moved no job
Serialised = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]


def verify_steps(plan: list[StepSpec]) -> list[StepSpec]:
    """The steps whose proof photo the hub reads against the ordered engraving."""
    return [step for step in plan if step.params.get(VERIFY_PARAM) == "engraving"]


def default_font(template: str | None) -> str | None:
    """The template's first offered font (the order form's default)."""
    item = catalogue().templates.get(template or "")
    return item.fonts[0] if item and item.fonts else None


async def run_verification(
    executor: Executor, image: bytes, *, text: str, font: str | None, template: str | None
) -> VerificationResult:
    """Read ``image`` against the expected text in ``executor``; the event loop only waits."""
    from hub.verification import VerificationResult

    call = functools.partial(verify_in_worker, image, text, font, template)
    raw = await asyncio.get_running_loop().run_in_executor(executor, call)
    return VerificationResult.model_validate(raw)


def process_pool(workers: int) -> ProcessPoolExecutor:
    """Workers started by ``spawn``: forking a process with running threads (aiosqlite,
    paho) can deadlock the child."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


@dataclass(frozen=True, slots=True)
class Due:
    """One job step whose proof is complete and not yet read."""

    job_id: uuid.UUID
    step: str
    proof: ProofRecord
    text: str
    font: str | None
    template: str | None


async def find_due(session: AsyncSession) -> list[Due]:
    """Verifying jobs whose verify step has a complete proof and no verification yet."""
    due: list[Due] = []
    jobs = await session.scalars(select(Job).where(Job.status == JobStatus.VERIFYING.value))
    for job in jobs:
        for step in verify_steps(plan_of(job)):
            proof = await step_proof(session, job.id, step.name)
            if proof is None or await verification_of(session, job.id, step.name, proof.sha256):
                continue
            if (item := await _due(session, job, step.name, proof)) is not None:
                due.append(item)
    return due


async def find_late(session: AsyncSession, shas: set[str] | None = None) -> list[Due]:
    """Proofs completed after their job timed out waiting for them, not read yet: all (a scan
    of every job: once per start) or those of ``shas`` (indexed: the jobs their chunks named)."""
    timed_out = exists().where(
        JobTransition.job_id == Job.id,
        JobTransition.from_status == JobStatus.VERIFYING.value,
        JobTransition.reason.startswith(f"{PROOF_TIMEOUT}:"),
    )
    verified = exists().where(
        VerificationRecord.job_id == Job.id,
        VerificationRecord.step == EvidenceRecord.step,
        VerificationRecord.proof_sha256 == ProofRecord.sha256,
    )
    query = (
        select(Job, EvidenceRecord.step, ProofRecord)
        .join(EvidenceRecord, EvidenceRecord.job_id == Job.id)
        .join(ProofRecord, ProofRecord.sha256 == EvidenceRecord.sha256)
        .where(Job.status != JobStatus.VERIFYING.value, EvidenceRecord.kind == "photo")
        .where(timed_out, ~verified)
    )
    if shas is not None:  # proofs by primary key, their jobs by the id their chunks named
        query = query.where(ProofRecord.sha256.in_(shas), ProofRecord.job_id == Job.id)
    rows = await session.execute(query)
    due: dict[tuple[uuid.UUID, str], Due] = {}
    for job, step, proof in rows.all():
        latest = await step_proof(session, job.id, step)  # a re-taken photo replaces the proof
        ours = step in {s.name for s in verify_steps(plan_of(job))}
        if ours and latest is not None and latest.sha256 == proof.sha256:
            item = await _due(session, job, step, proof)
            if item is not None:
                due[(job.id, step)] = item
    return list(due.values())


async def _due(session: AsyncSession, job: Job, step: str, proof: ProofRecord) -> Due | None:
    order = await session.get(Order, job.order_id)
    engraving = _engraving(order, job.line_index)
    if engraving is None:
        return None
    text, font, template = engraving
    return Due(job.id, step, proof, text, font, template)


async def step_proof(session: AsyncSession, job_id: uuid.UUID, step: str) -> ProofRecord | None:
    """The complete proof named by the step's (latest) photo evidence, if it arrived."""
    sha = await session.scalar(
        select(EvidenceRecord.sha256)
        .where(
            EvidenceRecord.job_id == job_id,
            EvidenceRecord.step == step,
            EvidenceRecord.kind == "photo",
        )
        .order_by(EvidenceRecord.id.desc())
    )
    return await session.get(ProofRecord, sha) if sha else None


async def verification_of(
    session: AsyncSession, job_id: uuid.UUID, step: str, sha: str
) -> VerificationRecord | None:
    return await session.scalar(
        select(VerificationRecord).where(
            VerificationRecord.job_id == job_id,
            VerificationRecord.step == step,
            VerificationRecord.proof_sha256 == sha,
        )
    )


def _engraving(order: Order | None, line_index: int) -> tuple[str, str | None, str | None] | None:
    lines = (order.request.get("lines") if order else None) or [{}]
    engraving = lines[min(line_index, len(lines) - 1)].get("engraving")
    if not engraving or not engraving.get("text"):
        return None
    template = engraving.get("template")
    return engraving["text"], engraving.get("font") or default_font(template), template


async def record_result(
    session: AsyncSession, due: Due, result: VerificationResult, *, now: datetime
) -> JobStatus | None:
    """Store the verification and audit it; move a job still in ``verifying`` on: the status
    it moved to. A job that left it (its proof timed out, a person decided, another hub) keeps
    its status (None)."""
    job = await session.get_one(Job, due.job_id, populate_existing=True)
    session.add(_record_row(due, result, now))
    view = {"verification": _audit_view(due, result)}
    if job.status == JobStatus.VERIFYING.value:
        target = JobStatus.DONE if result.verdict == "PASS" else JobStatus.NEEDS_REVIEW
        why = "" if target is JobStatus.DONE else f": {'; '.join(result.reasons) or 'see the diff'}"
        reason = f"engraving verification {result.verdict}{why}"
        if await move_job(
            session,
            job=job,
            to_status=target,
            actor=HUB_ACTOR,
            reason=reason[:1000],
            now=now,
            audit_data=view,
        ):
            return target
    # Evidence is never dropped: the verdict is in the chain even though no job moved.
    await audit.append(
        session,
        actor=HUB_ACTOR,
        action=LATE_VERIFICATION,
        at=now,
        data={"status": job.status, **view},
        order_id=job.order_id,
        job_id=job.id,
        station_id=job.station_id,
    )
    return None


def _record_row(due: Due, result: VerificationResult, now: datetime) -> VerificationRecord:
    return VerificationRecord(
        job_id=due.job_id,
        step=due.step,
        proof_sha256=due.proof.sha256,
        verdict=str(result.verdict),
        read_text=result.read_text,
        diff=[item.model_dump(mode="json") for item in result.diff],
        reasons=list(result.reasons),
        engine=result.engine[:80],
        elapsed_ms=result.elapsed_ms,
        at=now,
    )


def _audit_view(due: Due, result: VerificationResult) -> dict[str, Any]:
    """What the chain of custody keeps: hashes and the verdict, never the text itself."""
    return {
        "step": due.step,
        "proof_sha256": due.proof.sha256,
        "expected_sha256": hashlib.sha256(due.text.encode()).hexdigest(),
        "read_sha256": hashlib.sha256(result.read_text.encode()).hexdigest(),
        "verdict": str(result.verdict),
        "engine": result.engine,
        "differences": sum(1 for item in result.diff if item.op != "equal"),
    }


def verification_notice(station_id: str, due: Due, result: VerificationResult) -> Outgoing:
    """The verdict for the station's screen (down/verification), with the diff."""
    diff = [
        DiffItem(op=d.op, position=max(0, d.position), expected=d.expected[:8], read=d.read[:8])
        for d in result.diff[:400]
    ]
    notice = VerificationNotice(
        job_id=due.job_id,
        step=due.step,
        proof_sha256=due.proof.sha256,
        verdict=result.verdict.value,
        read_text=result.read_text[:400],
        diff=diff,
        reasons=[reason[:1024] for reason in result.reasons[:16]],
    )
    return Outgoing(topics.down(station_id, topics.Down.VERIFICATION), notice)


def unusable(due: Due, reason: str) -> VerificationResult:
    """A REVIEW for a proof the pipeline could not read at all."""
    from hub.verification import Verdict, VerificationResult

    return VerificationResult(
        verdict=Verdict.REVIEW,
        read_text="",
        expected_text=due.text,
        confidence=0.0,
        diff=[],
        reasons=[reason[:500]],
        checks={},
        engine="none",
        elapsed_ms=0.0,
    )


class VerificationRunner:
    """Owns the worker pool; :meth:`kick` verifies whatever is due, one round at a time."""

    def __init__(
        self,
        *,
        settings: HubSettings,
        sessions: async_sessionmaker[AsyncSession],
        serialised: Serialised,
        executor: Executor | None = None,
        publish: Callable[[list[Outgoing]], None] | None = None,
    ) -> None:
        self._workers = settings.verify_workers
        self._proofs = ProofConfig.from_settings(settings)
        self._sessions = sessions
        self._serialised = serialised
        self._executor = executor
        self._publish = publish  # the verdict to the station's screen, after the commit
        self._round: asyncio.Task[int] | None = None
        self._scan_all_late = True  # the first round looks for late proofs of every job

    @property
    def executor(self) -> Executor:
        """The pool (started on first use: a hub that never verifies spawns no workers)."""
        if self._executor is None:
            self._executor = process_pool(self._workers)
        return self._executor

    def kick(self) -> asyncio.Task[int] | None:
        """Start a round in the background unless one is running; the round's task."""
        if self._round is None or self._round.done():
            self._round = asyncio.create_task(self.run_once(), name="hub-verify")
            return self._round
        return None

    async def run_once(self) -> int:
        """Verify every due job step; how many results were recorded."""
        due: list[Due] = await self._serialised(self._find_due)
        recorded = 0
        for item in due:
            try:
                recorded += await self._verify_one(item)
            except Exception:  # one bad proof must not stop the others; logged with ids only
                log.exception("verifying job %s step %s failed", item.job_id, item.step)
        return recorded

    async def _find_due(self) -> list[Due]:
        new, scan_all = completed_proofs(), self._scan_all_late
        async with self._sessions() as session:
            due = await find_due(session)
            if scan_all or new:
                due += await find_late(session, None if scan_all else new)
        forget_completed(new)
        self._scan_all_late = False
        return due

    async def _verify_one(self, due: Due) -> int:
        result = await self._read(due)

        async def store() -> JobStatus | None:
            async with self._sessions.begin() as session:
                return await record_result(session, due, result, now=utcnow())

        try:
            status = await self._serialised(store)  # stored in any case
        except IntegrityError:
            return 0  # another hub process recorded this proof's verification first
        # The station hears the verdict only when it moved the job (a late one changes nothing).
        if status is not None and self._publish is not None:
            self._publish(await self._serialised(lambda: self._notice(due, result)))
        log.info(
            "job %s step %s: verification %s in %.0f ms -> %s",
            due.job_id,
            due.step,
            result.verdict,
            result.elapsed_ms,
            status,
        )
        return 1

    async def _notice(self, due: Due, result: VerificationResult) -> list[Outgoing]:
        async with self._sessions() as session:
            job = await session.get(Job, due.job_id)
            station = job.station_id if job is not None else None
        return [verification_notice(station, due, result)] if station else []

    async def _read(self, due: Due) -> VerificationResult:
        """The pipeline's result, or REVIEW when the proof or the text cannot be used (a person
        looks; retrying every sweep would change nothing)."""
        from hub.verification import BadImageError, LayoutError

        try:
            image = await asyncio.to_thread(read_proof, self._proofs, due.proof)
            return await run_verification(
                self.executor, image, text=due.text, font=due.font, template=due.template
            )
        except BrokenProcessPool:
            self._executor = None  # a worker died (OOM?): a new pool next round
            raise
        except (OSError, ValueError, BadImageError, LayoutError) as err:
            return unusable(due, f"proof cannot be verified: {type(err).__name__}: {err}")

    async def close(self) -> None:
        """Stop the round in progress and the workers."""
        if self._round is not None and not self._round.done():
            self._round.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
