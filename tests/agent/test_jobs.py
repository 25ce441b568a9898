"""The job runner against an in-memory hub (conftest.FakeHub replaces the MQTT link)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import pytest

from agent.config import DeviceConfig
from agent.context import AgentContext
from agent.jobs import INCONSISTENT, INTERRUPTED, JobRunner
from agent.jobstore import JobStore, Phase
from agent.steps import AutoSignoff, default_executors
from drivers.laser.sim import SimLaser
from protocol.models import Command, JobStatus, Severity, StationJobStatus, StepKind, StepSpec

S = StationJobStatus
R = S.RUNNING
# What a station sends for the hub's engraving plan (conftest.engraving_steps).
ENGRAVING_WALK = [S.ACKNOWLEDGED, R, R, R, R, R, S.DONE]
ENGRAVING_PROGRESS = [
    ("inspect_in_photo", "done"),
    ("engrave", "start"),
    ("engrave", "done"),
    ("engraving_photo", "done"),
]


async def until(probe: Callable[[], Any], seconds: float = 5.0) -> Any:
    """Poll ``probe`` until it is truthy (polling is the simplest honest probe in a test)."""
    async with asyncio.timeout(seconds):
        while not (result := probe()):  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    return result


@asynccontextmanager
async def running(ctx: AgentContext, hub: Any, **runner_options: Any) -> AsyncIterator[JobRunner]:
    """A runner (and the hub pump) on ``ctx``; leaving cancels both, like a crash would."""
    hub.outbox = ctx.outbox
    ctx.outbox.resend_all_now()  # what the link does on every connect
    runner = JobRunner(ctx, **runner_options)
    tasks = [asyncio.create_task(runner.run()), asyncio.create_task(hub.serve())]
    try:
        yield runner
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def laser(ctx: AgentContext) -> SimLaser:
    assert isinstance(ctx.devices.laser, SimLaser)
    return ctx.devices.laser


def phase(ctx: AgentContext, job_id: UUID) -> Phase | None:
    job = JobStore(ctx.db).get(job_id)
    return job.phase if job else None


@pytest.mark.asyncio
async def test_happy_path_with_evidence(make_context: Any, hub_factory: Any) -> None:
    ctx = await make_context()
    hub = hub_factory(ctx.outbox)
    async with running(ctx, hub) as runner:
        job = hub.new_job("Anna & Ben")
        runner.on_assignment(job)
        await until(lambda: hub.status(job.job_id) is JobStatus.DONE)
    assert hub.statuses_sent(job.job_id) == ENGRAVING_WALK
    assert hub.progress(job.job_id) == ENGRAVING_PROGRESS
    assert [u.expected_version for u in hub.updates] == [1, 2, 3, 4, 5, 6, 7]
    evidence = [e for u in hub.updates for e in u.evidence]
    gcode = next(e for e in evidence if e.kind == "gcode")
    photo = next(e for e in evidence if e.kind == "photo" and e.step == "engraving_photo")
    photo_steps = {e.step for e in evidence if e.kind == "photo"}
    assert photo_steps == {"inspect_in_photo", "engraving_photo"}
    assert gcode.step == "engrave"
    assert gcode.sha256
    proof = ctx.config.data_dir / "proofs" / f"{photo.sha256}.png"
    assert hashlib.sha256(proof.read_bytes()).hexdigest() == photo.sha256
    assert laser(ctx).engrave_count == 1
    assert phase(ctx, job.job_id) is Phase.FINISHED


@pytest.mark.asyncio
async def test_duplicate_assignment_is_ignored(make_context: Any, hub_factory: Any) -> None:
    ctx = await make_context()
    hub = hub_factory(ctx.outbox)
    async with running(ctx, hub) as runner:
        job = hub.new_job()
        runner.on_assignment(job)
        runner.on_assignment(job)
        await until(lambda: hub.status(job.job_id) is JobStatus.DONE)
        runner.on_assignment(job)  # re-sent after a birth: long done here
        await asyncio.sleep(0.05)
    assert hub.statuses_sent(job.job_id) == ENGRAVING_WALK


@pytest.mark.asyncio
@pytest.mark.parametrize("refused", [S.ACKNOWLEDGED, S.RUNNING])
async def test_rejection_drops_the_job(
    make_context: Any, hub_factory: Any, refused: StationJobStatus, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = await make_context()
    hub = hub_factory(ctx.outbox)
    hub.reject = {refused}
    async with running(ctx, hub) as runner:
        job = hub.new_job("Secret Name")
        runner.on_assignment(job)
        await until(lambda: phase(ctx, job.job_id) is Phase.DROPPED)
        await until(lambda: hub.events)
    assert hub.statuses_sent(job.job_id)[-1] is refused
    assert laser(ctx).engrave_count == 0
    assert hub.events[0].kind == "job_update_rejected"
    assert "Secret Name" not in caplog.text


@pytest.mark.asyncio
async def test_device_fault_reports_failed(make_context: Any, hub_factory: Any) -> None:
    ctx = await make_context(laser_options={"seconds_per_char": 0, "fault": "disconnect_mid_job"})
    hub = hub_factory(ctx.outbox)
    async with running(ctx, hub) as runner:
        job = hub.new_job("Anna & Ben")
        runner.on_assignment(job)
        await until(lambda: hub.status(job.job_id) is JobStatus.NEEDS_REVIEW)
        await until(lambda: hub.events)
    failed = hub.updates[-1]
    assert failed.status is S.FAILED
    assert "DeviceUnavailableError" in failed.detail
    assert hub.events[0].kind == "device_failed"
    assert hub.events[0].severity is Severity.MAJOR


@pytest.mark.asyncio
async def test_restart_after_start_fails_and_never_reengraves(
    make_context: Any, hub_factory: Any
) -> None:
    first = await make_context(laser_options={"seconds_per_char": 0.5})
    hub = hub_factory(first.outbox)
    async with running(first, hub) as runner:
        job = hub.new_job("A long engraving text")
        runner.on_assignment(job)
        await until(lambda: laser(first).engrave_count == 1)  # the laser is on the piece
    # leaving the block cancelled the runner mid-engraving: the agent "crashed"
    assert phase(first, job.job_id) is Phase.STARTED

    second = await make_context(laser_options={"seconds_per_char": 0.5})
    assert second.outbox.epoch == first.outbox.epoch + 1
    async with running(second, hub) as runner:
        await until(lambda: hub.status(job.job_id) is JobStatus.NEEDS_REVIEW)
        runner.on_assignment(hub.assignment(job.job_id))  # the hub re-sends open jobs on birth
        await until(lambda: hub.events)
        await asyncio.sleep(0.05)
    assert hub.statuses_sent(job.job_id) == [S.ACKNOWLEDGED, R, R, R, S.FAILED]
    assert hub.progress(job.job_id) == ENGRAVING_PROGRESS[:2]
    assert hub.updates[-1].detail == INTERRUPTED
    assert (hub.events[0].kind, hub.events[0].severity) == ("job_interrupted", Severity.MAJOR)
    assert laser(second).engrave_count == 0


@pytest.mark.asyncio
async def test_update_sent_before_a_restart_is_settled_by_its_ack(
    make_context: Any,
    hub_factory: Any,
) -> None:
    first = await make_context()
    hub = hub_factory(first.outbox)
    hub.online = False  # the ACKNOWLEDGED goes out, but no Ack comes back
    async with running(first, hub) as runner:
        job = hub.new_job()
        runner.on_assignment(job)
        await until(lambda: first.outbox.in_flight() == 1)
    second = await make_context()
    hub.online = True
    async with running(second, hub):
        await until(lambda: hub.status(job.job_id) is JobStatus.DONE)
    assert hub.statuses_sent(job.job_id) == ENGRAVING_WALK
    assert hub.updates[0].epoch == first.outbox.epoch  # the original message, re-sent


@pytest.mark.asyncio
async def test_reconcile_acknowledged_continues_with_running(
    make_context: Any, hub_factory: Any
) -> None:
    ctx = await make_context()
    hub = hub_factory(ctx.outbox)
    async with running(ctx, hub) as runner:
        job = hub.new_job(status=JobStatus.ACKNOWLEDGED, version=2)
        runner.on_assignment(job)
        await until(lambda: hub.status(job.job_id) is JobStatus.DONE)
    assert hub.statuses_sent(job.job_id) == ENGRAVING_WALK[1:]


@pytest.mark.asyncio
async def test_reconcile_running_never_started_here_fails(
    make_context: Any, hub_factory: Any
) -> None:
    ctx = await make_context()
    hub = hub_factory(ctx.outbox)
    async with running(ctx, hub) as runner:
        job = hub.new_job(status=JobStatus.RUNNING, version=3)
        runner.on_assignment(job)
        await until(lambda: hub.status(job.job_id) is JobStatus.FAILED)
    assert hub.updates[-1].detail == INCONSISTENT
    assert laser(ctx).engrave_count == 0


@pytest.mark.asyncio
async def test_one_job_at_a_time_and_cancel_before_start(
    make_context: Any, hub_factory: Any
) -> None:
    ctx = await make_context(laser_options={"seconds_per_char": 0.02})
    hub = hub_factory(ctx.outbox)
    async with running(ctx, hub) as runner:
        first, second, third = hub.new_job("x" * 10), hub.new_job("y"), hub.new_job("z")
        for job in (first, second, third):
            runner.on_assignment(job)
        await until(lambda: laser(ctx).engrave_count == 1)
        runner.on_command(Command(kind="cancel_job", job_id=second.job_id))
        await until(lambda: hub.status(third.job_id) is JobStatus.DONE)
    assert hub.status(first.job_id) is JobStatus.DONE
    assert hub.statuses_sent(second.job_id) == []
    assert phase(ctx, second.job_id) is Phase.DROPPED
    order = [u.job_id for u in hub.updates if u.status is S.ACKNOWLEDGED]
    assert order == [first.job_id, third.job_id]


@pytest.mark.asyncio
async def test_stop_lets_the_engraving_finish(make_context: Any, hub_factory: Any) -> None:
    ctx = await make_context(laser_options={"seconds_per_char": 0.02})
    hub = hub_factory(ctx.outbox)
    runner = JobRunner(ctx)
    tasks = [asyncio.create_task(runner.run()), asyncio.create_task(hub.serve())]
    job = hub.new_job("0123456789")
    runner.on_assignment(job)
    await until(lambda: laser(ctx).engrave_count == 1)
    await runner.stop()
    await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert phase(ctx, job.job_id) is Phase.FINISHED
    assert hub.statuses_sent(job.job_id)[-1] is S.DONE


@pytest.mark.asyncio
async def test_rejected_engraving_start_never_moves_the_laser(
    make_context: Any, hub_factory: Any
) -> None:
    ctx = await make_context()
    hub = hub_factory(ctx.outbox)
    hub.reject_step_start = True  # e.g. the hub gave the job to someone else meanwhile
    async with running(ctx, hub) as runner:
        job = hub.new_job()
        runner.on_assignment(job)
        await until(lambda: phase(ctx, job.job_id) is Phase.DROPPED)
    assert hub.progress(job.job_id) == ENGRAVING_PROGRESS[:2]
    assert laser(ctx).engrave_count == 0


@pytest.mark.asyncio
async def test_missing_device_blocks_before_the_start_gate(
    make_context: Any, hub_factory: Any
) -> None:
    ctx = await make_context(devices=[DeviceConfig(name="camera-1", family="camera")])
    hub = hub_factory(ctx.outbox)
    async with running(ctx, hub) as runner:
        job = hub.new_job("Anna")
        runner.on_assignment(job)
        await until(lambda: hub.status(job.job_id) is JobStatus.BLOCKED)
    assert hub.statuses_sent(job.job_id) == [S.ACKNOWLEDGED, S.BLOCKED]
    assert hub.updates[-1].detail == "no laser on this station (step engrave)"


PACKING = [
    StepSpec(name="inspect_in_photo", kind=StepKind.PHOTO, evidence=["photo"]),
    StepSpec(
        name="pack",
        kind=StepKind.MANUAL,
        evidence=["photo"],
        signoff_required=True,
        params={"box": "ring-box-velvet", "gift_message": "Happy birthday"},
    ),
]


@pytest.mark.asyncio
async def test_signoff_step_without_a_provider_is_blocked(
    make_context: Any, hub_factory: Any
) -> None:
    ctx = await make_context()
    hub = hub_factory(ctx.outbox)
    async with running(ctx, hub) as runner:
        job = hub.new_job(None, steps=PACKING)
        runner.on_assignment(job)
        await until(lambda: hub.status(job.job_id) is JobStatus.BLOCKED)
    assert "pack needs a technician sign-off" in hub.updates[-1].detail


@pytest.mark.asyncio
async def test_auto_signoff_signs_manual_steps(
    make_context: Any, hub_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = await make_context()
    hub = hub_factory(ctx.outbox)
    async with running(ctx, hub, signoff=AutoSignoff("st-01")) as runner:
        job = hub.new_job(None, steps=PACKING)
        runner.on_assignment(job)
        await until(lambda: hub.status(job.job_id) is JobStatus.DONE)
    pack = next(u for u in hub.updates if u.step == "pack")
    assert [(e.kind, e.by) for e in pack.evidence] == [("photo", None), ("signoff", "auto:st-01")]
    assert "Happy birthday" not in caplog.text


@pytest.mark.asyncio
async def test_step_without_an_executor_is_blocked(make_context: Any, hub_factory: Any) -> None:
    ctx = await make_context()
    hub = hub_factory(ctx.outbox)
    weigh = [StepSpec(name="inspect_in_weight", kind=StepKind.WEIGH, evidence=["weight"])]
    without_weigh = {k: v for k, v in default_executors().items() if k is not StepKind.WEIGH}
    async with running(ctx, hub, executors=without_weigh) as runner:
        job = hub.new_job(None, steps=weigh)
        runner.on_assignment(job)
        await until(lambda: hub.status(job.job_id) is JobStatus.BLOCKED)
    assert hub.updates[-1].detail.startswith("no executor for weigh steps")


@pytest.mark.asyncio
async def test_weigh_step_on_a_station_without_a_scale_is_blocked(
    make_context: Any, hub_factory: Any
) -> None:
    ctx = await make_context()
    hub = hub_factory(ctx.outbox)
    weigh = [StepSpec(name="inspect_in_weight", kind=StepKind.WEIGH, evidence=["weight"])]
    async with running(ctx, hub) as runner:
        job = hub.new_job(None, steps=weigh)
        runner.on_assignment(job)
        await until(lambda: hub.status(job.job_id) is JobStatus.BLOCKED)
    assert hub.updates[-1].detail.startswith("no scale on this station")


@pytest.mark.asyncio
async def test_unstarted_job_taken_back_and_reassigned_runs_again(
    make_context: Any, hub_factory: Any
) -> None:
    ctx = await make_context()
    hub = hub_factory(ctx.outbox)
    hub.reject = {S.ACKNOWLEDGED}
    async with running(ctx, hub) as runner:
        job = hub.new_job()
        runner.on_assignment(job)
        await until(lambda: phase(ctx, job.job_id) is Phase.DROPPED)
        hub.reject = set()
        hub.jobs[job.job_id] = hub.jobs[job.job_id].model_copy(update={"version": 4})
        runner.on_assignment(hub.assignment(job.job_id))  # the hub assigned it again, v4
        await until(lambda: hub.status(job.job_id) is JobStatus.DONE)
    assert laser(ctx).engrave_count == 1


@pytest.mark.asyncio
async def test_job_dropped_after_it_started_is_never_run_again(
    make_context: Any, hub_factory: Any
) -> None:
    ctx = await make_context()
    hub = hub_factory(ctx.outbox)
    store = JobStore(ctx.db)
    job = hub.new_job()
    store.insert(job)
    store.set_phase(job.job_id, Phase.STARTED)  # the laser may have touched the piece
    store.drop(job.job_id)  # e.g. the hub rejected the step's report
    assert phase(ctx, job.job_id) is Phase.VOID
    state = hub.jobs[job.job_id]
    hub.jobs[job.job_id] = state.model_copy(update={"version": state.version + 5})
    async with running(ctx, hub) as runner:
        runner.on_assignment(hub.assignment(job.job_id))  # a hub bug must not re-engrave
        await asyncio.sleep(0.1)
    assert laser(ctx).engrave_count == 0
    assert hub.updates == []
    assert phase(ctx, job.job_id) is Phase.VOID
