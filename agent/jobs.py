"""The job runner: one job at a time, gated by the hub, never re-running irreversible work.

Each job walks ``assigned -> acknowledged -> running -> done``; every step is a
:class:`JobUpdate` through the outbox whose Ack (from the hub) decides whether to go on. The
RUNNING Ack is the start gate: only after it, and after ``phase='started'`` is committed, does
a device touch the piece. Logs name jobs by id, never by their engraving text.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Sequence
from uuid import UUID

from agent.context import AgentContext
from agent.jobstore import TERMINAL, JobStore, LocalJob, Phase
from agent.outbox import MessageId
from drivers.errors import DeviceError
from protocol import topics
from protocol.models import (
    Ack,
    AckOutcome,
    Command,
    Event,
    Evidence,
    JobAssignment,
    JobStatus,
    JobUpdate,
    Severity,
    StationJobStatus,
)

log = logging.getLogger(__name__)

INTERRUPTED = "agent restarted during engraving; laser position unknown"
INCONSISTENT = "hub says running but this station never started it; a human must look"


class JobRunner:
    """Runs the station's jobs; the link hands it assignments and commands."""

    def __init__(self, ctx: AgentContext) -> None:
        self._ctx = ctx
        self._station = ctx.config.station_id
        self._store = JobStore(ctx.db)
        self._queue: asyncio.Queue[UUID] = asyncio.Queue()
        self._queued: set[UUID] = set()
        self._active: UUID | None = None
        self._devices_idle = asyncio.Event()
        self._devices_idle.set()
        self._task: asyncio.Task[None] | None = None

    # ---- life cycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Recover what a previous run left, then work the queue in order of arrival."""
        self._task = asyncio.current_task()
        self.recover()
        while True:
            job_id = await self._queue.get()
            self._active = job_id
            try:
                await self._process(job_id)
            finally:
                self._active = None
                self._queued.discard(job_id)

    async def stop(self) -> None:
        """Let a device step in progress finish (never abandon a piece mid-engraving), stop."""
        await self._devices_idle.wait()
        if self._task is not None:
            self._task.cancel()

    def recover(self) -> None:
        """Fail jobs a crash interrupted after the start gate; queue the rest again."""
        for job in self._store.unfinished():
            if job.phase is Phase.STARTED:
                log.error("job %s: interrupted after it started; reporting FAILED", job.job_id)
                self._enqueue_final(job, StationJobStatus.FAILED, INTERRUPTED)
                self._event("job_interrupted", Severity.MAJOR, job.job_id, INTERRUPTED)
            elif job.phase is Phase.QUEUED:
                self._enqueue_job(job.job_id)

    # ---- from the link ------------------------------------------------------------------------

    def on_assignment(self, assignment: JobAssignment) -> None:
        """Store a new (or newer) assignment and queue it; duplicates are ignored."""
        job_id, version = assignment.job_id, assignment.version
        job = self._store.get(job_id)
        if job is None:
            log.info("job %s: assigned (v%d, hub %s)", job_id, version, assignment.status)
            self._store.insert(assignment)
            self._enqueue_job(job_id)
            return
        stale = version < job.version or (version == job.version and job.phase != Phase.WAITING)
        if job.phase in TERMINAL or stale:
            log.debug("job %s: assignment v%d already handled", job_id, version)
            return
        self._store.set_hub_state(job_id, version, assignment.status)
        if job.phase is Phase.WAITING:
            self._store.set_phase(job_id, Phase.QUEUED)
            self._enqueue_job(job_id)

    def on_command(self, command: Command) -> None:
        """``cancel_job`` drops a job that has not been started; anything else is logged."""
        if command.kind != "cancel_job" or command.job_id is None:
            log.warning("command %s (%s) not handled here", command.msg_id, command.kind)
            return
        job = self._store.get(command.job_id)
        if job is None or job.phase is not Phase.QUEUED or command.job_id == self._active:
            log.warning("job %s: cannot cancel here (not queued on this station)", command.job_id)
            return
        self._store.drop(command.job_id)
        log.info("job %s: cancelled by the hub before it started", command.job_id)

    # ---- the walk -----------------------------------------------------------------------------

    async def _process(self, job_id: UUID) -> None:
        job = self._store.get(job_id)
        if job is None or job.phase is not Phase.QUEUED:
            return  # cancelled while queued, or finished
        if job.pending is not None:
            job = await self._settle_pending(job, job.pending)
        if job is not None:
            await self._advance(job)

    async def _settle_pending(self, job: LocalJob, pending: MessageId) -> LocalJob | None:
        """An update sent before a restart: wait for its answer, or for the hub's assignment."""
        if self._ctx.outbox.can_await(pending):
            ack = await self._ctx.outbox.wait_for_ack(pending)
            return self._apply(job, ack, job.hub_status)
        log.info("job %s: answer to the last update lost; waiting for the hub", job.job_id)
        self._store.set_phase(job.job_id, Phase.WAITING)
        return None

    async def _advance(self, job: LocalJob) -> None:
        if job.hub_status is JobStatus.ASSIGNED:
            next_job = await self._update(job, StationJobStatus.ACKNOWLEDGED)
            if next_job is None:
                return
            job = next_job
        if job.hub_status is JobStatus.ACKNOWLEDGED:
            if missing := self._missing_devices(job.assignment):
                await self._finish(job, StationJobStatus.BLOCKED, f"no {missing} on this station")
                return
            running = await self._update(job, StationJobStatus.RUNNING)
            if running is not None:
                await self._work(running)
        elif job.hub_status is JobStatus.RUNNING:
            log.error("job %s: running at the hub but never started here", job.job_id)
            await self._finish(job, StationJobStatus.FAILED, INCONSISTENT)
            self._event("job_inconsistent", Severity.MAJOR, job.job_id, INCONSISTENT)
        else:
            log.info("job %s: hub status %s, nothing to do here", job.job_id, job.hub_status)
            self._store.drop(job.job_id)

    def _missing_devices(self, assignment: JobAssignment) -> str | None:
        devices = self._ctx.devices
        if assignment.engraving is not None and devices.laser is None:
            return "laser"
        return "camera" if devices.camera is None else None

    async def _work(self, job: LocalJob) -> None:
        """The irreversible part: the hub has recorded the start; do it exactly once."""
        self._store.set_phase(job.job_id, Phase.STARTED)  # write-ahead, before any device
        self._devices_idle.clear()
        try:
            evidence = await self._run_devices(job)
        except DeviceError as err:
            detail = f"{type(err).__name__}: {err}"
            log.exception("job %s: device failed: %s", job.job_id, detail)
            self._event("device_failed", Severity.MAJOR, job.job_id, detail)
            await self._finish(job, StationJobStatus.FAILED, detail)
            return
        finally:
            self._devices_idle.set()
        await self._finish(job, StationJobStatus.DONE, evidence=evidence)

    async def _run_devices(self, job: LocalJob) -> list[Evidence]:
        laser, camera = self._ctx.devices.laser, self._ctx.devices.camera
        assert camera is not None  # checked before the start gate
        evidence = []
        if job.assignment.engraving is not None:
            assert laser is not None
            report = await laser.engrave(job.assignment.engraving.text)
            evidence.append(Evidence(step="engrave", kind="gcode", sha256=report.gcode_sha256))
        image = await camera.capture()
        evidence.append(Evidence(step="photograph", kind="photo", sha256=self._keep_proof(image)))
        return evidence

    def _keep_proof(self, image: bytes) -> str:
        """Store the photo content-addressed under data_dir/proofs; return its SHA-256."""
        digest = hashlib.sha256(image).hexdigest()
        proofs = self._ctx.config.data_dir / "proofs"
        proofs.mkdir(parents=True, exist_ok=True)
        partial = proofs / f"{digest}.png.part"
        with partial.open("wb") as file:
            file.write(image)
            file.flush()
            os.fsync(file.fileno())
        partial.replace(proofs / f"{digest}.png")
        return digest

    # ---- updates and their answers ------------------------------------------------------------

    async def _update(self, job: LocalJob, status: StationJobStatus) -> LocalJob | None:
        """Send one transition and wait for the hub; the job as it is now, or None if dropped."""
        message_id = self._enqueue_update(job, status, "", [], None)
        ack = await self._ctx.outbox.wait_for_ack(message_id)
        return self._apply(job, ack, JobStatus(status.value))

    async def _finish(
        self,
        job: LocalJob,
        status: StationJobStatus,
        detail: str = "",
        evidence: Sequence[Evidence] = (),
    ) -> None:
        """Send the last update of a job; it and ``phase='finished'`` commit together."""
        message_id = self._enqueue_final(job, status, detail, evidence)
        ack = await self._ctx.outbox.wait_for_ack(message_id)
        if self._apply(job, ack, JobStatus(status.value)) is not None:
            log.info("job %s: %s (hub v%d)", job.job_id, status, ack.job.version if ack.job else 0)

    def _enqueue_final(
        self,
        job: LocalJob,
        status: StationJobStatus,
        detail: str,
        evidence: Sequence[Evidence] = (),
    ) -> MessageId:
        return self._enqueue_update(job, status, detail, evidence, Phase.FINISHED)

    def _enqueue_update(
        self,
        job: LocalJob,
        status: StationJobStatus,
        detail: str,
        evidence: Sequence[Evidence],
        phase: Phase | None,
    ) -> MessageId:
        def build(epoch: int, seq: int) -> JobUpdate:
            return JobUpdate(
                station_id=self._station,
                epoch=epoch,
                seq=seq,
                job_id=job.job_id,
                expected_version=job.version,
                status=status,
                detail=detail,
                evidence=list(evidence),
            )

        hook = self._store.pending_hook(job.job_id, phase)
        return self._ctx.outbox.enqueue(topics.Up.JOB, build, also=hook)

    def _apply(self, job: LocalJob, ack: Ack, requested: JobStatus) -> LocalJob | None:
        """Record the hub's answer; a rejection drops the job (with a log line and an event)."""
        if ack.outcome is AckOutcome.REJECTED:
            log.warning("job %s: %s rejected by the hub: %s", job.job_id, requested, ack.reason)
            self._store.drop(job.job_id)
            message = f"{requested} rejected: {ack.reason or 'no reason given'}"
            self._event("job_update_rejected", Severity.WARNING, job.job_id, message)
            return None
        if ack.job is not None:
            self._store.set_hub_state(job.job_id, ack.job.version, ack.job.status)
        else:
            self._store.set_hub_state(job.job_id, job.version + 1, requested)
        return self._store.get(job.job_id)

    # ---- helpers ------------------------------------------------------------------------------

    def _enqueue_job(self, job_id: UUID) -> None:
        if job_id not in self._queued:
            self._queued.add(job_id)
            self._queue.put_nowait(job_id)

    def _event(self, kind: str, severity: Severity, job_id: UUID, message: str) -> None:
        def build(epoch: int, seq: int) -> Event:
            return Event(
                station_id=self._station,
                epoch=epoch,
                seq=seq,
                kind=kind,
                severity=severity,
                message=message[:1024],
                job_id=job_id,
            )

        self._ctx.outbox.enqueue(topics.Up.EVENT, build)


def create(ctx: AgentContext) -> JobRunner:
    """Component factory."""
    return JobRunner(ctx)
