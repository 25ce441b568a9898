"""The job runner: one job at a time, gated by the hub, never re-running irreversible work.

Each job walks ``assigned -> acknowledged -> running -> done``; every move is a
:class:`JobUpdate` through the outbox whose Ack (from the hub) decides whether to go on. Before
the job's start gate (RUNNING) the runner checks it has an executor, the devices and (where
needed) a sign-off for every step, and reports BLOCKED naming what is missing otherwise. Then
it runs the steps in order (:mod:`agent.steps`); an irreversible step first asks the hub to
record its start and commits ``phase='started'`` before a device touches the piece; each step
ends with an update carrying its evidence. Logs name jobs by id, never by their texts.

The :class:`~agent.operator.Operator` lets the job go on where a person must: acknowledge,
ready before each step, the fire confirmation after an engraving's start gate, sign-offs. Jobs
are worked rush first, then by due date, then by arrival; :attr:`JobRunner.activity` tells the
station screen where the job in hand is.

Every write of a job's evidence (its updates, their answers, its phase, its proof photos) goes
through :class:`~agent.persist.Persister`: on a full data disk it waits in memory and is written
again until space returns, and the job (so the next one too) waits with it; see
:mod:`agent.job_updates`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Literal, TypeVar
from uuid import UUID

from agent.context import AgentContext
from agent.job_updates import JobUpdates
from agent.jobstore import TERMINAL, JobStore, LocalJob, Phase
from agent.operator import (
    Activity,
    AutoOperator,
    Operator,
    OperatorAbort,
    needs_fire_confirmation,
    operator_for,
    queue_key,
)
from agent.outbox import MessageId
from agent.persist import Persister
from agent.proofs import ProofUploader
from agent.steps import ExecutorTable, StepContext, StepError, default_executors
from drivers.errors import DeviceError
from protocol.models import (
    Command,
    Evidence,
    JobAssignment,
    JobStatus,
    Severity,
    StationJobStatus,
    StepSpec,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

INTERRUPTED = "agent restarted during engraving; laser position unknown"
INCONSISTENT = "hub says running but this station lost the job's progress; a human must look"


class JobRunner:
    """Runs the station's jobs; the link hands it assignments and commands.

    ``executors`` maps step kinds to what runs them (default: :func:`default_executors`);
    ``operator`` lets jobs go on where a person must (default: from the station config's
    ``operator`` and ``auto_signoff``, see :func:`agent.operator.operator_for`); ``signoff``
    is its older name.
    """

    def __init__(
        self,
        ctx: AgentContext,
        *,
        executors: ExecutorTable | None = None,
        operator: Operator | None = None,
        signoff: Operator | None = None,
    ) -> None:
        self._ctx = ctx
        self._executors = executors if executors is not None else default_executors()
        self.operator: Operator = operator or signoff or operator_for(ctx.config)
        self.activity = Activity()
        self._station = ctx.config.station_id
        self._store = JobStore(ctx.db)
        # (rush first, due date, arrival number, job): the order jobs are worked in
        self._queue: asyncio.PriorityQueue[tuple[tuple[int, float], int, UUID]] = (
            asyncio.PriorityQueue()
        )
        self._arrivals = 0
        self._queued: set[UUID] = set()
        self._active: UUID | None = None
        self._devices_idle = asyncio.Event()
        self._devices_idle.set()
        self._task: asyncio.Task[None] | None = None
        # Every write of a job's evidence: held in memory and retried while the disk is full.
        persist = Persister(ctx.outbox, station_id=self._station, idle=self._devices_idle)
        self._updates = JobUpdates(
            ctx.outbox, self._store, station_id=self._station, persist=persist
        )
        self._proofs = ProofUploader(
            ctx.outbox, ctx.db, station_id=self._station, proofs_dir=self._proofs_dir()
        )

    # ---- life cycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Recover what a previous run left, then work the queue in order of arrival."""
        self._task = asyncio.current_task()
        self._proofs.resume()  # proof uploads a restart interrupted
        await self._updates.durable("the recovery of interrupted jobs", self.recover)
        while True:
            *_, job_id = await self._queue.get()
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
                failed, finished = StationJobStatus.FAILED, Phase.FINISHED
                self._updates.enqueue(job, failed, detail=INTERRUPTED, phase=finished)
                self._updates.event("job_interrupted", Severity.MAJOR, job.job_id, INTERRUPTED)
            elif job.phase is Phase.QUEUED:
                self._enqueue_job(job.job_id, job.assignment)

    # ---- from the link ------------------------------------------------------------------------

    def on_assignment(self, assignment: JobAssignment) -> None:
        """Store a new (or newer) assignment and queue it; duplicates are ignored."""
        job_id, version = assignment.job_id, assignment.version
        job = self._store.get(job_id)
        if job is None:
            # A full disk raises here: the link drops the message and the hub sends it again.
            self._store.insert(assignment)
            log.info("job %s: assigned (v%d, hub %s)", job_id, version, assignment.status)
            self._enqueue_job(job_id, assignment)
            return
        stale = version < job.version or (version == job.version and job.phase != Phase.WAITING)
        taken_back = assignment.status is JobStatus.ASSIGNED and version >= job.version
        if job.phase is Phase.DROPPED and taken_back:
            # Unstarted work the hub took back (e.g. while the broker was away) and gave us
            # again: a new assignment (the hub re-sends it until acknowledged, so also when it
            # arrived while the old walk was still waiting). A job that started here is VOID
            # instead, never run again.
            self._store.reassigned(assignment)
            log.info("job %s: assigned again (v%d)", job_id, version)
            self._enqueue_job(job_id, assignment)
            return
        if job.phase in TERMINAL or stale:
            log.debug("job %s: assignment v%d already handled", job_id, version)
            return
        self._store.set_hub_state(job_id, version, assignment.status)
        if job.phase is Phase.WAITING:
            self._store.set_phase(job_id, Phase.QUEUED)
            self._enqueue_job(job_id, assignment)

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
        if job is None:
            return
        self.activity.begin(job.assignment)
        try:
            await self._advance(job)
        finally:
            final = self._store.get(job_id)
            self.activity.end(final.hub_status.value if final else "dropped")

    async def _settle_pending(self, job: LocalJob, pending: MessageId) -> LocalJob | None:
        """An update sent before a restart: wait for its answer, or for the hub's assignment."""
        if self._ctx.outbox.can_await(pending):
            ack = await self._ctx.outbox.wait_for_ack(pending)
            return await self._updates.apply(job, ack, job.hub_status)
        log.info("job %s: answer to the last update lost; waiting for the hub", job.job_id)
        await self._durable_phase(job.job_id, Phase.WAITING)
        return None

    async def _advance(self, job: LocalJob) -> None:
        if job.hub_status is JobStatus.ASSIGNED:
            try:
                await self._person(self.operator.acknowledge(job.assignment))
            except OperatorAbort as abort:
                await self._updates.finish(job, abort.status, abort.detail)
                return
            next_job = await self._update(job, StationJobStatus.ACKNOWLEDGED)
            if next_job is None:
                return
            job = next_job
        if job.hub_status is JobStatus.ACKNOWLEDGED:
            if blocker := self._preflight(job.assignment):
                await self._updates.finish(job, StationJobStatus.BLOCKED, blocker)
                return
            running = await self._update(job, StationJobStatus.RUNNING)
            if running is not None:
                await self._work(running)
        elif job.hub_status is JobStatus.RUNNING:
            log.error("job %s: running at the hub but not in progress here", job.job_id)
            await self._updates.finish(job, StationJobStatus.FAILED, INCONSISTENT)
            self._updates.event("job_inconsistent", Severity.MAJOR, job.job_id, INCONSISTENT)
        else:
            log.info("job %s: hub status %s, nothing to do here", job.job_id, job.hub_status)
            job_id = job.job_id
            await self._updates.durable(f"job {job_id} drop", lambda: self._store.drop(job_id))

    def _preflight(self, assignment: JobAssignment) -> str | None:
        """What keeps this station from doing every step, or None (checked before the gate)."""
        for step in assignment.steps:
            executor = self._executors.get(step.kind)
            if executor is None:
                return f"no executor for {step.kind} steps on this station (step {step.name})"
            if missing := executor.missing(step, self._ctx.devices):
                return f"no {missing} on this station (step {step.name})"
            if step.signoff_required and not self.operator.can_sign:
                return f"step {step.name} needs a technician sign-off; this station has none"
            if refusal := executor.refusal(step, self._context(assignment)):
                return refusal
        return None

    def _context(self, assignment: JobAssignment) -> StepContext:
        return StepContext(
            job_id=assignment.job_id,
            assignment=assignment,
            devices=self._ctx.devices,
            proofs_dir=self._proofs_dir(),
            upload=self._proofs,
            persist=self._updates.durable,
        )

    def _proofs_dir(self) -> Path:
        return self._ctx.config.data_dir / "proofs"

    async def _work(self, job: LocalJob) -> None:
        """The steps, in order; the hub recorded the job's start."""
        self._devices_idle.clear()
        try:
            current: LocalJob | None = job
            for step in job.assignment.steps:
                assert current is not None
                current = await self._run_step(current, step)
                if current is None:
                    return  # the hub refused a step update: the job was dropped here
            job = current or job
        except OperatorAbort as abort:
            log.info("job %s: stopped by the technician (%s)", job.job_id, abort.status)
            await self._updates.finish(
                self._store.get(job.job_id) or job, abort.status, abort.detail
            )
            return
        except (DeviceError, StepError) as err:
            detail = f"{type(err).__name__}: {err}"
            log.exception("job %s: step failed: %s", job.job_id, detail)
            kind = "device_failed" if isinstance(err, DeviceError) else "step_failed"
            self._updates.event(kind, Severity.MAJOR, job.job_id, detail)
            await self._updates.finish(
                self._store.get(job.job_id) or job, StationJobStatus.FAILED, detail
            )
            return
        finally:
            self._devices_idle.set()
        await self._updates.finish(job, StationJobStatus.DONE)

    async def _run_step(self, job: LocalJob, step: StepSpec) -> LocalJob | None:
        """One step: ready, its start gate if irreversible (then the fire confirmation), the
        executor, the sign-off, the report."""
        assignment, activity = job.assignment, self.activity
        activity.step(step.name, "waiting_for_technician")
        await self._person(self.operator.ready(assignment, step))
        if step.irreversible:
            activity.step(step.name, "pending", "waiting for the hub to record the start")
            gated = await self._update(job, StationJobStatus.RUNNING, step=step, phase="start")
            if gated is None:
                return None
            job = gated
            await self._durable_phase(job.job_id, Phase.STARTED)  # write-ahead: before a device
        if needs_fire_confirmation(step):
            activity.step(step.name, "waiting_for_technician")
            await self._person(self.operator.confirm_fire(assignment, step))
        activity.step(step.name, "running")
        try:
            evidence = await self._executors[step.kind].execute(step, self._context(assignment))
        except BaseException as err:
            activity.step(step.name, "failed", type(err).__name__)
            raise
        activity.evidence(step.name, evidence)
        if step.signoff_required:
            activity.step(step.name, "waiting_for_technician")
            evidence.append(await self._person(self.operator.signoff(assignment, step)))
            activity.evidence(step.name, evidence)
        done = await self._update(
            job, StationJobStatus.RUNNING, step=step, phase="done", evidence=evidence
        )
        activity.step(step.name, "done" if done is not None else "failed")
        return done

    async def _person(self, waiting: Awaitable[T]) -> T:
        """Wait for the operator. A person may take hours and no device moves meanwhile, so
        the agent may stop then; an :class:`AutoOperator` answers at once (a stop still waits
        for the job's end, as without a screen)."""
        if isinstance(self.operator, AutoOperator):
            return await waiting
        idle = self._devices_idle.is_set()
        self._devices_idle.set()
        try:
            return await waiting
        finally:
            if not idle:
                self._devices_idle.clear()

    # ---- updates and their answers ------------------------------------------------------------

    async def _update(
        self,
        job: LocalJob,
        status: StationJobStatus,
        *,
        step: StepSpec | None = None,
        phase: Literal["start", "done"] | None = None,
        evidence: Sequence[Evidence] = (),
    ) -> LocalJob | None:
        """Send one transition and wait for the hub; the job as it is now, or None if dropped."""
        progress = (step.name, phase) if step is not None and phase is not None else None
        now, _ack = await self._updates.send(job, status, evidence=evidence, progress=progress)
        return now

    async def _durable_phase(self, job_id: UUID, phase: Phase) -> None:
        what = f"job {job_id} phase {phase}"
        await self._updates.durable(what, lambda: self._store.set_phase(job_id, phase))

    # ---- helpers ------------------------------------------------------------------------------

    def _enqueue_job(self, job_id: UUID, assignment: JobAssignment) -> None:
        if job_id not in self._queued:
            self._queued.add(job_id)
            self._arrivals += 1
            self._queue.put_nowait((queue_key(assignment), self._arrivals, job_id))


def create(ctx: AgentContext) -> JobRunner:
    """Component factory."""
    return JobRunner(ctx)
