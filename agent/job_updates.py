"""A job's transitions to the hub, as the runner sends them.

Each is a :class:`JobUpdate` stored in the durable outbox together with the job's own record
(pending update, phase) in one transaction, then answered by the hub's Ack, whose answer is
recorded in the job store. Every one of those writes goes through the runner's
:class:`~agent.persist.Persister`: on a full data disk the update is held in memory and written
again until space returns, never dropped, and the job waits for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Literal, TypeVar
from uuid import UUID

from agent.events import emit_event
from agent.jobstore import JobStore, LocalJob, Phase
from agent.outbox import MessageId, Outbox
from agent.persist import Persister
from protocol import topics
from protocol.models import (
    Ack,
    AckOutcome,
    Evidence,
    JobStatus,
    JobUpdate,
    Severity,
    StationJobStatus,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
Progress = tuple[str, Literal["start", "done"]]  # (step, phase) of a step update


class JobUpdates:
    """Sends the runner's transitions and records the hub's answers; see the module docstring."""

    def __init__(
        self, outbox: Outbox, store: JobStore, *, station_id: str, persist: Persister
    ) -> None:
        self._outbox, self._store, self._station = outbox, store, station_id
        self.persist = persist

    async def durable(self, what: str, write: Callable[[], T]) -> T:
        """``write()`` stored, however long a full disk takes (:class:`Persister`)."""
        return await self.persist.write(what, write)

    async def send(
        self,
        job: LocalJob,
        status: StationJobStatus,
        *,
        detail: str = "",
        evidence: Sequence[Evidence] = (),
        phase: Phase | None = None,
        progress: Progress | None = None,
    ) -> tuple[LocalJob | None, Ack]:
        """Store one transition, wait for the hub's answer and record it: the job as it is
        now (None if the hub rejected the update: the job is dropped here) and the Ack."""
        what = f"job {job.job_id} update {status}" + (f" ({progress[0]} {progress[1]})"
                                                      if progress else "")  # fmt: skip
        message_id = await self.durable(
            what,
            lambda: self.enqueue(
                job, status, detail=detail, evidence=evidence, phase=phase, progress=progress
            ),
        )
        ack = await self._outbox.wait_for_ack(message_id)
        return await self.apply(job, ack, JobStatus(status.value)), ack

    async def finish(
        self,
        job: LocalJob,
        status: StationJobStatus,
        detail: str = "",
        evidence: Sequence[Evidence] = (),
    ) -> None:
        """Send the last update of a job; it and ``phase='finished'`` commit together."""
        now, ack = await self.send(
            job, status, detail=detail, evidence=evidence, phase=Phase.FINISHED
        )
        if now is not None:
            log.info("job %s: %s (hub v%d)", job.job_id, status, ack.job.version if ack.job else 0)

    def enqueue(
        self,
        job: LocalJob,
        status: StationJobStatus,
        *,
        detail: str,
        evidence: Sequence[Evidence] = (),
        phase: Phase | None = None,
        progress: Progress | None = None,
    ) -> MessageId:
        """Put the update in the outbox, and record it as the job's pending one (and its
        ``phase``) in the same transaction; the outbox's errors are raised."""

        def build(epoch: int, seq: int) -> JobUpdate:
            return JobUpdate(
                station_id=self._station,
                epoch=epoch,
                seq=seq,
                job_id=job.job_id,
                expected_version=job.version,
                status=status,
                step=progress[0] if progress else None,
                step_phase=progress[1] if progress else None,
                detail=detail,
                evidence=list(evidence),
            )

        hook = self._store.pending_hook(job.job_id, phase)
        return self._outbox.enqueue(topics.Up.JOB, build, also=hook)

    async def apply(self, job: LocalJob, ack: Ack, requested: JobStatus) -> LocalJob | None:
        """Record the hub's answer; a rejection drops the job (with a log line and an event)."""
        job_id, store = job.job_id, self._store
        if ack.outcome is AckOutcome.REJECTED:
            log.warning("job %s: %s rejected by the hub: %s", job_id, requested, ack.reason)
            await self.durable(f"job {job_id} drop", lambda: store.drop(job_id))
            message = f"{requested} rejected: {ack.reason or 'no reason given'}"
            self.event("job_update_rejected", Severity.WARNING, job_id, message)
            return None
        version, status = (
            (ack.job.version, ack.job.status) if ack.job else (job.version + 1, requested)
        )
        await self.durable(
            f"job {job_id} hub state v{version}",
            lambda: store.set_hub_state(job_id, version, status),
        )
        return store.get(job_id)

    def event(self, kind: str, severity: Severity, job_id: UUID, message: str) -> None:
        emit_event(
            self._outbox,
            station_id=self._station,
            kind=kind,
            severity=severity,
            message=message,
            job_id=job_id,
        )
