"""Shared fixtures: an agent context on a temporary data directory with simulated devices, and
an in-memory hub.

The in-memory hub (:class:`FakeHub`) drains the station's outbox directly (no broker) and
answers every message with an Ack, applying the hub's version rules to job updates: the job
runner tests replace the MQTT link with it. The link itself is tested against a real mosquitto
in test_link.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
import pytest_asyncio

from agent.config import DeviceConfig, StationConfig
from agent.context import AgentContext
from agent.db import open_db
from agent.devices import DeviceManager
from agent.outbox import Outbox
from protocol import codec
from protocol.models import (
    Ack,
    AckOutcome,
    Engraving,
    Event,
    JobAssignment,
    JobState,
    JobStatus,
    JobUpdate,
    Piece,
    StationJobStatus,
    StepKind,
    StepSpec,
)

ContextFactory = Callable[..., Coroutine[Any, Any, AgentContext]]


def station_config(tmp_path: Path, **overrides: Any) -> StationConfig:
    laser_options = overrides.pop("laser_options", {"seconds_per_char": 0.001})
    fields: dict[str, Any] = {
        "station_id": "st-01",
        "mqtt_url": "mqtt://127.0.0.1:1883",
        "data_dir": tmp_path / "station",
        "devices": [
            DeviceConfig(name="laser-1", family="laser", options=laser_options),
            DeviceConfig(name="camera-1", family="camera"),
        ],
        **overrides,
    }
    return StationConfig(**fields)


@pytest_asyncio.fixture
async def make_context(tmp_path: Path) -> AsyncIterator[ContextFactory]:
    """Open an agent context (a new one on the same data dir is an agent restart)."""
    opened: list[AgentContext] = []

    async def factory(**overrides: Any) -> AgentContext:
        config = station_config(tmp_path, **overrides)
        db = open_db(config.data_dir)
        outbox = Outbox(db, config.station_id, resend_after_s=config.resend_after_s)
        devices = await DeviceManager.open(config.devices)
        ctx = AgentContext(config=config, db=db, outbox=outbox, devices=devices)
        opened.append(ctx)
        return ctx

    yield factory
    for ctx in opened:
        await ctx.devices.close()
        ctx.db.close()


S, H = StationJobStatus, JobStatus
ALLOWED = {
    (H.ASSIGNED, S.ACKNOWLEDGED),
    (H.ACKNOWLEDGED, S.RUNNING),
    (H.RUNNING, S.RUNNING),
    (H.RUNNING, S.DONE),
    (H.ASSIGNED, S.FAILED),
    (H.ASSIGNED, S.BLOCKED),
    (H.ACKNOWLEDGED, S.FAILED),
    (H.ACKNOWLEDGED, S.BLOCKED),
    (H.RUNNING, S.FAILED),
}


def engraving_steps() -> list[StepSpec]:
    """The steps the hub plans for an engraving-only order line."""
    return [
        StepSpec(name="inspect_in_photo", kind=StepKind.PHOTO, evidence=["photo"]),
        StepSpec(name="engrave", kind=StepKind.ENGRAVE, evidence=["gcode"], irreversible=True),
        StepSpec(name="engraving_photo", kind=StepKind.PHOTO, evidence=["photo"]),
    ]


class FakeHub:
    """Job states, what the station sent, and switches to reject or go silent.

    Mirrors hub/jobs.py: step progress on a running job, the start of an irreversible step sets
    ``started``, DONE passes verifying (two versions), FAILED after a start is needs_review.
    """

    def __init__(self, outbox: Outbox, station_id: str = "st-01") -> None:
        self.outbox = outbox
        self.station_id = station_id
        self.jobs: dict[UUID, JobState] = {}
        self.updates: list[JobUpdate] = []
        self.events: list[Event] = []
        self.reject: set[StationJobStatus] = set()
        self.reject_step_start = False
        self.started: set[UUID] = set()
        self.plans: dict[UUID, list[StepSpec]] = {}
        self.online = True

    def new_job(
        self,
        text: str | None = "Anna & Ben",
        status: JobStatus = H.ASSIGNED,
        version: int = 1,
        steps: list[StepSpec] | None = None,
    ) -> JobAssignment:
        job_id = uuid4()
        self.jobs[job_id] = JobState(
            job_id=job_id, status=status, version=version, station_id=self.station_id
        )
        plan = steps if steps is not None else engraving_steps()
        if text is None:
            plan = [step for step in plan if step.kind is not StepKind.ENGRAVE]
        self.plans[job_id] = plan
        return self.assignment(job_id, text)

    def assignment(self, job_id: UUID, text: str | None = "Anna & Ben") -> JobAssignment:
        state = self.jobs[job_id]
        return JobAssignment(
            job_id=job_id,
            version=state.version,
            status=state.status,
            order_ref="o-1",
            piece=Piece(sku="RING-1", serial="SN-1"),
            engraving=Engraving(text=text) if text else None,
            steps=self.plans.get(job_id) or engraving_steps(),
        )

    def progress(self, job_id: UUID) -> list[tuple[str | None, str | None]]:
        """(step, phase) of every accepted-or-not step update the station sent."""
        return [
            (u.step, u.step_phase)
            for u in self.updates
            if u.job_id == job_id and u.status is S.RUNNING and u.step
        ]

    def status(self, job_id: UUID) -> JobStatus:
        return self.jobs[job_id].status

    def statuses_sent(self, job_id: UUID) -> list[StationJobStatus]:
        return [u.status for u in self.updates if u.job_id == job_id]

    def pump(self) -> None:
        """Take every due outbox entry as if it had travelled over MQTT, and answer it."""
        for entry in self.outbox.due(time.time(), window=100):
            self.outbox.mark_sent(entry.id, time.time())
            if not self.online:
                continue
            decoded = codec.decode(entry.topic, entry.payload)
            assert not isinstance(decoded, codec.Rejection), decoded.reason
            self.outbox.ack(self.answer(decoded.message))

    def answer(self, message: object) -> Ack:
        if isinstance(message, Event):
            self.events.append(message)
        if not isinstance(message, JobUpdate):
            assert hasattr(message, "epoch")
            return Ack(epoch=message.epoch, seq=message.seq, outcome=AckOutcome.ACCEPTED)  # type: ignore[attr-defined]
        self.updates.append(message)
        state = self.jobs[message.job_id]
        ok = (
            message.expected_version == state.version
            and (state.status, message.status) in ALLOWED
            and message.status not in self.reject
            and not (self.reject_step_start and message.step_phase == "start")
        )
        if ok:
            state = self._move(message, state)
            self.jobs[message.job_id] = state
        outcome = AckOutcome.ACCEPTED if ok else AckOutcome.REJECTED
        reason = None if ok else f"version {state.version}, status {state.status}"
        return Ack(epoch=message.epoch, seq=message.seq, outcome=outcome, reason=reason, job=state)

    def _move(self, message: JobUpdate, state: JobState) -> JobState:
        if message.step_phase == "start":
            self.started.add(message.job_id)
        new, bump = H(message.status.value), 1
        if message.status is S.FAILED and state.status is H.RUNNING:
            new = H.NEEDS_REVIEW if message.job_id in self.started else H.FAILED
        elif message.status is S.DONE:
            bump = 2  # running -> verifying -> done
        return state.model_copy(update={"status": new, "version": state.version + bump})

    async def serve(self) -> None:
        while True:
            self.pump()
            await asyncio.sleep(0.005)


@pytest.fixture
def hub_factory() -> type[FakeHub]:
    """The in-memory hub class (test modules cannot import conftest in importlib mode)."""
    return FakeHub
