"""Who works the station with the job runner: the :class:`Operator` and what it is doing now.

The runner asks its operator at four points of a job: :meth:`Operator.acknowledge` before it
acknowledges the job to the hub, :meth:`Operator.ready` before each step (the piece is in
place), :meth:`Operator.confirm_fire` between the hub's acceptance of an engraving's start
gate and the first move of the laser, and :meth:`Operator.signoff` after a step that needs a
person's signature. :class:`AutoOperator` answers everything at once (demo and test floors);
:class:`ScreenOperator` waits for a signed-in technician's action through
:class:`agent.workbench.Workbench`, which resolves the one request it has open.

:class:`Activity` is the runner's account of the job in hand (step states, evidence, timings):
the screen renders it; the runner writes it. Block and scrap reach the runner as
:class:`OperatorAbort` raised from the request it waits on.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol
from uuid import UUID

from protocol.models import Evidence, JobAssignment, StationJobStatus, StepKind, StepSpec

Action = Literal["acknowledge", "ready", "confirm_fire", "signoff"]
StepState = Literal["pending", "waiting_for_technician", "running", "done", "failed"]


class OperatorAbort(Exception):
    """The technician stopped the job: the runner reports ``status`` with ``detail``."""

    def __init__(self, status: StationJobStatus, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Operator(Protocol):
    """Who lets a job go on at each point that needs a person (see the module docstring)."""

    @property
    def can_sign(self) -> bool:
        """False: steps that need a sign-off are blocked before the job starts."""

    async def acknowledge(self, job: JobAssignment) -> None: ...

    async def ready(self, job: JobAssignment, step: StepSpec) -> None: ...

    async def confirm_fire(self, job: JobAssignment, step: StepSpec) -> None: ...

    async def signoff(self, job: JobAssignment, step: StepSpec) -> Evidence:
        """The step's ``kind="signoff"`` evidence; ``by`` names who signed."""


class AutoOperator:
    """Everything at once, nobody at the bench: acknowledge, ready and fire without waiting;
    sign off as ``auto:<station>`` only when ``signs`` (``auto_signoff = true``: demo and test
    floors; the dossier shows that no person signed)."""

    def __init__(self, station_id: str, *, signs: bool) -> None:
        self.by = f"auto:{station_id}"[:64]
        self._signs = signs

    @property
    def can_sign(self) -> bool:
        return self._signs

    async def acknowledge(self, job: JobAssignment) -> None:
        return None

    async def ready(self, job: JobAssignment, step: StepSpec) -> None:
        return None

    async def confirm_fire(self, job: JobAssignment, step: StepSpec) -> None:
        return None

    async def signoff(self, job: JobAssignment, step: StepSpec) -> Evidence:
        if not self._signs:  # the runner's preflight blocks such jobs; never sign silently
            raise OperatorAbort(StationJobStatus.FAILED, f"step {step.name}: nobody to sign")
        return Evidence(step=step.name, kind="signoff", by=self.by)


@dataclass(slots=True)
class Request:
    """What the runner waits for now; resolved with the badge of the technician who acted."""

    job_id: UUID
    step: str | None
    action: Action
    future: asyncio.Future[str]


class ScreenOperator:
    """Waits for a technician: one open :class:`Request` at a time (the runner does one job at
    a time); :meth:`resolve` and :meth:`abort` are called by the workbench."""

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self.request: Request | None = None
        self.on_change = on_change

    @property
    def can_sign(self) -> bool:
        return True

    async def acknowledge(self, job: JobAssignment) -> None:
        await self._wait(job.job_id, None, "acknowledge")

    async def ready(self, job: JobAssignment, step: StepSpec) -> None:
        await self._wait(job.job_id, step.name, "ready")

    async def confirm_fire(self, job: JobAssignment, step: StepSpec) -> None:
        await self._wait(job.job_id, step.name, "confirm_fire")

    async def signoff(self, job: JobAssignment, step: StepSpec) -> Evidence:
        badge = await self._wait(job.job_id, step.name, "signoff")
        return Evidence(step=step.name, kind="signoff", by=badge[:64])

    def resolve(self, job_id: UUID, step: str | None, action: Action, badge: str) -> str | None:
        """Answer the open request; why not (a sentence for the technician), or None."""
        request = self.request
        if request is None or request.future.done():
            return "the station is not waiting for anything from you now"
        if request.job_id != job_id:
            return f"job {job_id} is not the job in hand (that is {request.job_id})"
        if (request.action, request.step) != (action, step):
            wanted = request.action.replace("_", " ")
            where = f" for step {request.step}" if request.step else ""
            return f"the station waits for {wanted}{where}, not {action.replace('_', ' ')}"
        request.future.set_result(badge)
        return None

    def abort(self, job_id: UUID, abort: OperatorAbort) -> bool:
        """Stop the job the runner waits on; False when it is not waiting on ``job_id``."""
        request = self.request
        if request is None or request.future.done() or request.job_id != job_id:
            return False
        request.future.set_exception(abort)
        return True

    async def _wait(self, job_id: UUID, step: str | None, action: Action) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.request = Request(job_id, step, action, future)
        self._changed()
        try:
            return await future
        finally:
            self.request = None
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


def operator_for(config: object) -> Operator:
    """The operator the station config asks for: ``operator = "screen"`` ->
    :class:`ScreenOperator`, otherwise :class:`AutoOperator` (signing only with
    ``auto_signoff = true``)."""
    station = str(getattr(config, "station_id", "station"))
    if getattr(config, "operator", "auto") == "screen":
        return ScreenOperator()
    return AutoOperator(station, signs=bool(getattr(config, "auto_signoff", False)))


# ---- what the runner is doing ---------------------------------------------------------------


@dataclass(slots=True)
class StepActivity:
    """One step of the job in hand."""

    state: StepState = "pending"
    started_at: float | None = None  # time.monotonic() when the device work began
    evidence: list[Evidence] = field(default_factory=list)
    detail: str = ""


@dataclass(slots=True)
class Activity:
    """The job in hand (or None) and its steps, written by the runner, read by the screen."""

    job: JobAssignment | None = None  # the job in hand, or the last one (``active`` False)
    active: bool = False
    steps: dict[str, StepActivity] = field(default_factory=dict)
    outcome: str = ""  # the last job's end: "done", "failed: ..." (kept until the next job)
    on_change: Callable[[], None] | None = None

    def begin(self, job: JobAssignment) -> None:
        self.job, self.active, self.outcome = job, True, ""
        self.steps = {step.name: StepActivity() for step in job.steps}
        self._changed()

    def step(self, name: str, state: StepState, detail: str = "") -> None:
        entry = self.steps.setdefault(name, StepActivity())
        entry.state, entry.detail = state, detail
        if state == "running":
            entry.started_at = time.monotonic()
        self._changed()

    def evidence(self, name: str, evidence: list[Evidence]) -> None:
        self.steps.setdefault(name, StepActivity()).evidence = list(evidence)
        self._changed()

    def end(self, outcome: str) -> None:
        for entry in self.steps.values():
            if entry.state in ("running", "waiting_for_technician"):
                entry.state = "failed"
        self.active, self.outcome = False, outcome
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


def queue_key(job: JobAssignment) -> tuple[int, float]:
    """The order a station works its jobs in: rush first, then the earliest due date (jobs
    without one last); ties keep their order of arrival (the caller's tie-breaker)."""
    due = job.due_at.timestamp() if job.due_at is not None else math.inf
    return (0 if job.rush else 1, due)


def needs_fire_confirmation(step: StepSpec) -> bool:
    """Steps where a beam fires: the technician confirms after the hub's start gate."""
    return step.kind is StepKind.ENGRAVE
