"""The job engine: stations move jobs through one state machine (people: :mod:`hub.decisions`).

Pure DB logic, no MQTT. The caller owns the transaction (commit/rollback); every function only
adds to the given session. Orders are :mod:`hub.orders`, scheduling :mod:`hub.scheduler`.

Station transitions (``(current, requested) -> new``):

- ``assigned -> acknowledged``; ``acknowledged -> running`` is the job's start gate;
- ``running -> running`` with ``step`` reports step progress: ``step_phase="start"`` is the
  start gate of an irreversible step (after it, ``jobs.started`` is set and nothing retries the
  job automatically), ``"done"`` carries the step's evidence;
- ``running -> done`` passes through ``verifying``: the hub checks every step is done with its
  evidence and sign-off, then moves to ``done`` or, if something is missing, ``needs_review``;
- ``assigned|acknowledged -> failed|blocked``; ``running -> failed`` becomes ``needs_review``
  once irreversible work started, ``failed`` before.

The hub's own move: ``verifying -> needs_review`` (reason ``proof_timeout``) for a job whose
engraving proof photo did not arrive in time (:func:`time_out_proofs`, run by the sweeper).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.metrics import JOB_UPDATES_REJECTED, PROOF_TIMEOUTS
from hub.orders import OrderConflictError, create_order
from hub.scheduler import assign_queued, jobs_to_resend, open_jobs_for_station, reassign_stale
from hub.store.models import EvidenceRecord, Job, JobTransition
from hub.transitions import HUB_ACTOR, job_state, move_job, plan_of, station_actor
from hub.verification_runner import PROOF_TIMEOUT, step_proof, verification_of, verify_steps
from protocol.models import (
    Evidence,
    JobState,
    JobStatus,
    JobUpdate,
    StationJobStatus,
    StepKind,
    StepSpec,
    utcnow,
)

__all__ = [
    "OrderConflictError",
    "UpdateResult",
    "apply_station_update",
    "assign_queued",
    "create_order",
    "jobs_to_resend",
    "open_jobs_for_station",
    "plan_of",
    "reassign_stale",
    "time_out_proofs",
]

log = logging.getLogger(__name__)
S, J = StationJobStatus, JobStatus
# (current status, what the station asks for) -> the status the job gets.
ALLOWED: dict[tuple[JobStatus, StationJobStatus], JobStatus] = {
    (J.ASSIGNED, S.ACKNOWLEDGED): J.ACKNOWLEDGED,
    (J.ACKNOWLEDGED, S.RUNNING): J.RUNNING,  # the start gate
    (J.RUNNING, S.RUNNING): J.RUNNING,  # step progress
    (J.RUNNING, S.DONE): J.VERIFYING,
    (J.ASSIGNED, S.FAILED): J.FAILED,
    (J.ASSIGNED, S.BLOCKED): J.BLOCKED,
    (J.ACKNOWLEDGED, S.FAILED): J.FAILED,
    (J.ACKNOWLEDGED, S.BLOCKED): J.BLOCKED,
    (J.RUNNING, S.FAILED): J.FAILED,  # needs_review once irreversible work started
}


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """The hub's answer to one job update."""

    accepted: bool
    reason: str | None
    state: JobState | None


def _refusal(job: Job | None, station_id: str, update: JobUpdate) -> str | None:
    """Why ``update`` cannot apply to ``job``, or None when it can."""
    if job is None:
        return f"unknown job {update.job_id}"
    if job.station_id != station_id:
        return f"job {job.id} is not assigned to station {station_id}"
    if update.expected_version != job.version:
        return f"version mismatch: expected {update.expected_version}, current {job.version}"
    if (JobStatus(job.status), update.status) not in ALLOWED:
        return f"transition {job.status} -> {update.status} is not allowed"
    if JobStatus(job.status) is J.RUNNING and update.status is S.RUNNING:
        return _step_refusal(job, update)
    return None


def _step_refusal(job: Job, update: JobUpdate) -> str | None:
    steps = {step.name: step for step in plan_of(job)}
    step = steps.get(update.step or "")
    if step is None or update.step_phase is None:
        return f"step progress needs a step of the plan and a step_phase (got {update.step!r})"
    state = job.progress.get(step.name, {}).get("state")
    if state == "done":
        return f"step {step.name} is already done"
    if update.step_phase == "start" and state == "started":
        return f"step {step.name} has already started"
    if update.step_phase == "done" and step.irreversible and state != "started":
        return f"step {step.name} is irreversible: its start must be accepted first"
    return None


async def apply_station_update(
    session: AsyncSession, *, station_id: str, update: JobUpdate, now: datetime | None = None
) -> UpdateResult:
    """Apply a station's job update, or refuse it with a reason and the current state."""
    now = now or utcnow()
    job = await session.get(Job, update.job_id, populate_existing=True)
    reason = _refusal(job, station_id, update)
    if reason is not None or job is None:
        JOB_UPDATES_REJECTED.inc()
        return UpdateResult(False, reason, job_state(job) if job else None)
    to_status, extra = _target(job, update, now)
    moved = await move_job(
        session,
        job=job,
        to_status=to_status,
        actor=station_actor(station_id),
        reason=_reason(update),
        now=now,
        audit_data=_evidence_audit(update.evidence, update.step),
        **extra,
    )
    if not moved:
        JOB_UPDATES_REJECTED.inc()
        return UpdateResult(False, "job changed concurrently; retry", job_state(job))
    _add_evidence(session, job_id=job.id, station_id=station_id, update=update, now=now)
    if to_status is J.VERIFYING:
        await _verify(session, job=job, now=now)
    return UpdateResult(True, None, job_state(job))


def _reason(update: JobUpdate) -> str:
    if update.status is S.RUNNING and update.step:
        return f"step {update.step} {update.step_phase}"
    return update.detail or f"station reported {update.status}"


def _target(job: Job, update: JobUpdate, now: datetime) -> tuple[JobStatus, dict[str, Any]]:
    """The status the job moves to and the further columns to set."""
    current = JobStatus(job.status)
    to_status = ALLOWED[(current, update.status)]
    extra: dict[str, Any] = {"detail": update.detail}
    if current is J.RUNNING and update.status is S.RUNNING:
        extra["progress"] = _progress_after(job, update, now)
        if update.step_phase == "start":
            extra["started"] = True  # irreversible work begins: never retried automatically
    elif to_status is J.FAILED and job.started:
        to_status = J.NEEDS_REVIEW
    return to_status, extra


def _progress_after(job: Job, update: JobUpdate, now: datetime) -> dict[str, Any]:
    step = next(s for s in plan_of(job) if s.name == update.step)
    progress = {name: dict(value) for name, value in job.progress.items()}
    entry: dict[str, Any] = {"state": "started" if update.step_phase == "start" else "done"}
    entry["at"] = now.isoformat()
    if update.step_phase == "done":
        entry["missing"] = _missing_evidence(step, update)
    progress[step.name] = entry
    return progress


def _missing_evidence(step: StepSpec, update: JobUpdate) -> list[str]:
    """What the step's evidence lacks: kinds, the sign-off, a scan matching the certificate."""
    mine = [e for e in update.evidence if e.step == step.name]
    have = {e.kind for e in mine}
    missing: list[str] = [kind for kind in step.evidence if kind not in have]
    if step.signoff_required and "signoff" not in have:
        missing.append("signoff")
    expected = step.params.get("number")
    scanned = {e.code for e in mine if e.kind == "scan"}
    if (
        step.kind is StepKind.SCAN
        and expected is not None
        and "scan" in have
        and str(expected) not in scanned
    ):
        missing.append("scan matching the certificate number")
    return missing


async def _verify(session: AsyncSession, *, job: Job, now: datetime) -> None:
    """``verifying -> done`` when every step is done with its evidence, else needs_review;
    a job with an engraving check (``params["verify"]``) stays in verifying for it."""
    problems = []
    for step in plan_of(job):
        entry = job.progress.get(step.name, {})
        if entry.get("state") != "done":
            problems.append(f"{step.name} not done")
        elif entry.get("missing"):
            problems.append(f"{step.name} lacks {', '.join(entry['missing'])}")
    if not problems and verify_steps(plan_of(job)):
        # An engraving check waits for its proof photo: hub.verification_runner moves the job
        # on once the proof is complete and read (it stays in verifying until then).
        return
    target = J.NEEDS_REVIEW if problems else J.DONE
    reason = "verification: " + (
        "; ".join(problems) if problems else "all steps and evidence present"
    )
    await move_job(
        session,
        job=job,
        to_status=target,
        actor=HUB_ACTOR,
        reason=reason,
        now=now,
        audit_data={"verification": {"ok": not problems, "problems": problems}},
    )


async def time_out_proofs(session: AsyncSession, *, now: datetime, timeout_s: float) -> list[Job]:
    """Jobs in ``verifying`` longer than ``timeout_s`` with an engraving proof still missing ->
    ``needs_review`` (reason ``proof_timeout``); the jobs moved.

    The clock is the job's persisted transition into ``verifying``, so a hub restart does not
    reset it. A job whose proofs are all in waits for its verdict instead (the runner moves it).
    """
    entered = (
        select(func.max(JobTransition.at))
        .where(JobTransition.job_id == Job.id, JobTransition.to_status == J.VERIFYING.value)
        .scalar_subquery()
    )
    cutoff = now - timedelta(seconds=timeout_s)
    rows = await session.execute(
        select(Job, entered).where(Job.status == J.VERIFYING.value, entered < cutoff)
    )
    moved = []
    for job, since in rows.all():
        missing, unread = await _proofs_state(session, job)
        if not missing or unread:
            continue
        # hub.verification_runner.find_late knows timed-out jobs by this reason's prefix.
        reason = f"{PROOF_TIMEOUT}: no proof photo for {', '.join(missing)} in {timeout_s:.0f} s"
        data = {"steps": missing, "verifying_since": since.isoformat(), "timeout_s": timeout_s}
        if await move_job(
            session,
            job=job,
            to_status=J.NEEDS_REVIEW,
            actor=HUB_ACTOR,
            reason=reason,
            now=now,
            audit_data={PROOF_TIMEOUT: data},
        ):
            PROOF_TIMEOUTS.inc()
            log.warning(
                "job %s: no engraving proof for %s after %.0f s", job.id, missing, timeout_s
            )
            moved.append(job)
    return moved


async def _proofs_state(session: AsyncSession, job: Job) -> tuple[list[str], list[str]]:
    """The job's verify steps whose proof has not arrived, and those arrived but not read."""
    missing, unread = [], []
    for step in verify_steps(plan_of(job)):
        proof = await step_proof(session, job.id, step.name)
        if proof is None:
            missing.append(step.name)
        elif await verification_of(session, job.id, step.name, proof.sha256) is None:
            unread.append(step.name)
    return missing, unread


def _evidence_audit(evidence: list[Evidence], step: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if step:
        data["step"] = step
    if evidence:
        data["evidence"] = [
            {k: v for k, v in e.model_dump(mode="json").items() if v is not None and k != "v"}
            for e in evidence
        ]
    return data


def _add_evidence(
    session: AsyncSession, *, job_id: uuid.UUID, station_id: str, update: JobUpdate, now: datetime
) -> None:
    for item in update.evidence:
        session.add(
            EvidenceRecord(
                job_id=job_id,
                step=item.step,
                kind=item.kind,
                sha256=item.sha256,
                value=item.value,
                unit=item.unit,
                code=item.code,
                by=item.by,
                station_id=station_id,
                at=now,
            )
        )
