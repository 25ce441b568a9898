"""The workbench (what the station screen acts through) with a real job runner, real SQLite and
the sim laser and camera; conftest.FakeHub stands in for the hub's answers (no broker)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
import pytest_asyncio
from support.polling import until

from agent.context import AgentContext
from agent.jobs import JobRunner
from agent.operator import ScreenOperator
from agent.technicians import AuthError, TechnicianBook, add_technician
from agent.workbench import ActionRefused, NotFound, Workbench
from agent.workbench_view import HUB_UNREACHABLE, StationView
from drivers.laser.sim import SimLaser
from protocol import codec, encode, topics
from protocol.models import (
    DiffItem,
    JobAssignment,
    JobStatus,
    StationJobStatus,
    StepKind,
    StepSpec,
    VerificationNotice,
)

BADGE, PIN = "B1001", "4711"


def plan() -> list[StepSpec]:
    """The engraving plan plus a packing step a person signs off."""
    return [
        StepSpec(name="inspect_in_photo", kind=StepKind.PHOTO, evidence=["photo"]),
        StepSpec(name="engrave", kind=StepKind.ENGRAVE, evidence=["gcode"], irreversible=True),
        StepSpec(name="pack", kind=StepKind.MANUAL, evidence=["signoff"], signoff_required=True),
    ]


@dataclass
class Screen:
    """One station of these tests: its agent context, the hub, the workbench."""

    ctx: AgentContext
    hub: Any
    wb: Workbench

    async def assign(self, steps: list[StepSpec], text: str = "Anna & Ben") -> JobAssignment:
        """A new job from the hub, in hand on the screen: waiting for its acknowledgement."""
        job = self.hub.new_job(text, steps=steps)
        self.wb._runner.on_assignment(job)
        await until(lambda: must_do(self.wb, "acknowledge"))
        return job


@pytest_asyncio.fixture
async def screen(make_context: Any, hub_factory: Any, tmp_path: Path) -> AsyncIterator[Screen]:
    """A screen-operated runner, its workbench and the hub pump (all stopped after the test)."""
    ctx = await make_context()
    hub = hub_factory(ctx.outbox)
    people = tmp_path / "technicians.toml"
    add_technician(people, BADGE, "Ana Test", PIN, ["technician"])
    runner = JobRunner(ctx, operator=ScreenOperator())
    workbench = Workbench(ctx, runner, technicians=TechnicianBook(people))
    ctx.link.connected = True
    tasks = [asyncio.create_task(runner.run()), asyncio.create_task(hub.serve())]
    try:
        yield Screen(ctx, hub, workbench)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def ready(wb: Workbench, job_id: UUID, *steps: str) -> None:
    """The technician readies each step, once the screen asks for it."""
    for step in steps:
        await until(lambda step=step: must_do(wb, "ready", step))
        await wb.ready(job_id, step)


async def to_fire_confirmation(wb: Workbench, job_id: UUID) -> StationView:
    """Acknowledge, ready the photo and the engraving: the screen asks to frame and fire."""
    await wb.acknowledge(job_id)
    await ready(wb, job_id, "inspect_in_photo", "engrave")
    return await until(lambda: must_do(wb, "frame_and_confirm", "engrave"))


def must_do(workbench: Workbench, action: str, step: str | None = None) -> StationView | None:
    view = workbench.view()
    job = view.job
    ok = job is not None and job.must_do == action and (step is None or job.must_do_step == step)
    return view if ok else None


def gcode_lines(ctx: AgentContext) -> list[str]:
    """Every G-code line the simulated controller received ($ commands aside)."""
    laser = ctx.devices.laser
    assert isinstance(laser, SimLaser)
    return [line for line in laser.simulator.stats.lines if line and not line.startswith("$")]


def audit_kinds(hub: Any) -> list[str]:
    return [event.kind for event in hub.events]


@pytest.mark.asyncio
async def test_a_whole_job_through_the_workbench(screen: Screen) -> None:
    hub, wb = screen.hub, screen.wb
    person = wb.sign_in(BADGE, PIN)
    assert person.name == "Ana Test"
    job = await screen.assign(plan())
    assert [item.job_id for item in wb.view().queue] == [job.job_id]
    view = await to_fire_confirmation(wb, job.job_id)
    assert view.job is not None
    assert view.job.engraving_text == "Anna & Ben"
    assert wb.preview_png(job.job_id).startswith(b"\x89PNG")
    await wb.frame(job.job_id, "engrave")
    await wb.confirm_fire(job.job_id, "engrave")
    await ready(wb, job.job_id, "pack")
    await until(lambda: must_do(wb, "signoff", "pack"))
    await wb.sign_off(job.job_id, "pack")
    await until(lambda: hub.status(job.job_id) is JobStatus.DONE)
    await until(lambda: not wb.view().job.active)  # type: ignore[union-attr]
    view = wb.view()
    assert view.job is not None
    assert view.job.outcome == "done"
    assert [step.state for step in view.job.steps] == ["done", "done", "done"]
    signoffs = [e for u in hub.updates for e in u.evidence if e.kind == "signoff"]
    assert [(e.step, e.by) for e in signoffs] == [("pack", BADGE)]
    photo = view.job.steps[0].evidence[0]
    assert photo.sha256 is not None
    assert wb.proof_png(photo.sha256).startswith(b"\x89PNG")
    kinds = audit_kinds(hub)
    for kind in ("technician_signed_in", "job_acknowledged", "step_ready", "frame_pass",
                 "fire_confirmed", "step_signed_off"):  # fmt: skip
        assert kind in kinds
    assert all(e.data.get("badge") == BADGE for e in hub.events if e.kind != "sign_in_refused")


@pytest.mark.asyncio
async def test_the_laser_never_moves_before_the_fire_confirmation(screen: Screen) -> None:
    ctx, hub, wb = screen.ctx, screen.hub, screen.wb
    wb.sign_in(BADGE, PIN)
    job = await screen.assign(plan()[:2])
    await wb.acknowledge(job.job_id)
    await ready(wb, job.job_id, "inspect_in_photo")
    await until(lambda: must_do(wb, "ready", "engrave"))
    with pytest.raises(ActionRefused, match="waits for ready"):
        await wb.confirm_fire(job.job_id, "engrave")  # nothing to confirm yet
    await ready(wb, job.job_id, "engrave")
    await until(lambda: must_do(wb, "frame_and_confirm", "engrave"))
    assert ("engrave", "start") in hub.progress(job.job_id)  # the hub accepted the gate
    await asyncio.sleep(0.2)  # the runner would have fired by now without the gate
    assert gcode_lines(ctx) == []
    await wb.frame(job.job_id, "engrave")
    framed = gcode_lines(ctx)
    laser = ctx.devices.laser
    assert isinstance(laser, SimLaser)
    assert (laser.frame_count, laser.engrave_count) == (1, 0)
    burning = [line for line in framed if line.startswith("G1")]
    # The bounding box's four sides (checked with $C, then run), never the letters.
    assert len(burning) == 8
    assert len(set(burning)) == 4
    assert must_do(wb, "frame_and_confirm", "engrave")  # still waiting for the person
    await wb.confirm_fire(job.job_id, "engrave")
    await until(lambda: hub.status(job.job_id) is JobStatus.DONE)
    assert laser.engrave_count == 1
    assert len(gcode_lines(ctx)) > len(framed) + 20  # the text itself, after the confirmation


def test_wrong_pin_and_lockout(tmp_path: Path) -> None:
    people = tmp_path / "technicians.toml"
    add_technician(people, BADGE, "Ana Test", PIN, ["technician"])
    now = [1000.0]
    book = TechnicianBook(people, clock=lambda: now[0])
    with pytest.raises(AuthError, match="not recognised"):
        book.sign_in("B9999", PIN)
    for _ in range(4):
        with pytest.raises(AuthError, match="not recognised"):
            book.sign_in(BADGE, "0000")
    with pytest.raises(AuthError, match="locked for 60 s"):
        book.sign_in(BADGE, "0000")
    with pytest.raises(AuthError, match="try again in 60 s"):
        book.sign_in(BADGE, PIN)  # even the right PIN waits out the lockout
    now[0] += 61
    assert book.sign_in(BADGE, PIN).badge == BADGE
    assert "4711" not in people.read_text()  # only the salted hash is stored


@pytest.mark.asyncio
async def test_actions_refused_when_not_allowed(screen: Screen) -> None:
    hub, wb = screen.hub, screen.wb
    job = await screen.assign(plan()[:2])
    with pytest.raises(ActionRefused, match="sign in first"):
        await wb.acknowledge(job.job_id)
    wb.sign_in(BADGE, PIN)
    with pytest.raises(ActionRefused, match="not the job in hand"):
        await wb.acknowledge(uuid4())
    with pytest.raises(ActionRefused, match="waits for acknowledge"):
        await wb.sign_off(job.job_id, "engrave")
    with pytest.raises(ActionRefused, match="nothing to frame"):
        await wb.frame(job.job_id, "engrave")
    with pytest.raises(ActionRefused, match="say why"):
        await wb.block(job.job_id, "   ")
    with pytest.raises(ActionRefused, match="no device"):
        await wb.request_maintenance("printer", "jammed")
    with pytest.raises(NotFound):
        wb.proof_png("../../etc/passwd")
    await wb.acknowledge(job.job_id)
    await until(lambda: must_do(wb, "ready", "inspect_in_photo"))
    with pytest.raises(ActionRefused, match="scrap it instead"):
        await wb.block(job.job_id, "wrong ring")
    assert hub.statuses_sent(job.job_id) == [
        StationJobStatus.ACKNOWLEDGED,
        StationJobStatus.RUNNING,
    ]
    wb.sign_out()
    with pytest.raises(ActionRefused, match="sign in first"):
        await wb.ready(job.job_id, "inspect_in_photo")


@pytest.mark.asyncio
async def test_auto_station_refuses_technician_actions(make_context: Any, tmp_path: Path) -> None:
    ctx = await make_context()
    add_technician(tmp_path / "t.toml", BADGE, "Ana Test", PIN, ["technician"])
    wb = Workbench(ctx, JobRunner(ctx), technicians=TechnicianBook(tmp_path / "t.toml"))
    wb.sign_in(BADGE, PIN)
    with pytest.raises(ActionRefused, match="operator = auto"):
        await wb.acknowledge(uuid4())
    assert wb.view().operator == "auto"


@pytest.mark.asyncio
async def test_block_and_scrap(screen: Screen) -> None:
    ctx, hub, wb = screen.ctx, screen.hub, screen.wb
    wb.sign_in(BADGE, PIN)
    first = await screen.assign(plan()[:2])
    await wb.block(first.job_id, "stone loose")
    await until(lambda: hub.status(first.job_id) is JobStatus.BLOCKED)
    second = await screen.assign(plan()[:2])
    await to_fire_confirmation(wb, second.job_id)
    await wb.scrap(second.job_id, "ring bent in the jig")
    await until(lambda: hub.status(second.job_id) is JobStatus.NEEDS_REVIEW)
    await wb.report_problem(None, "lamp flickers")
    await until(lambda: any(e.kind == "problem_reported" for e in hub.events))
    blocked = [u for u in hub.updates if u.status is StationJobStatus.BLOCKED]
    assert blocked[0].detail == f"blocked by {BADGE}: stone loose"
    failed = [u for u in hub.updates if u.status is StationJobStatus.FAILED]
    assert failed[0].detail == "scrapped: ring bent in the jig"
    problem = next(e for e in hub.events if e.kind == "problem_reported")
    assert problem.severity == "minor"
    assert problem.message == "lamp flickers"
    assert gcode_lines(ctx) == []  # scrapped before the confirmation: nothing fired


@pytest.mark.asyncio
async def test_hub_unreachable_sign_in_and_queue_still_work(screen: Screen) -> None:
    ctx, hub, wb = screen.ctx, screen.hub, screen.wb
    ctx.link.connected = False
    hub.online = False
    rush = hub.new_job("B", steps=plan()[:2])
    rush = rush.model_copy(update={"rush": True})
    normal = hub.new_job("A", steps=plan()[:2])
    wb._runner.on_assignment(normal)
    wb._runner.on_assignment(rush)
    view = wb.view()
    assert not view.hub_online
    assert HUB_UNREACHABLE in view.messages
    assert wb.sign_in(BADGE, PIN).badge == BADGE
    queue = wb.view().queue
    assert {item.job_id for item in queue} == {normal.job_id, rush.job_id}
    assert queue[0].job_id == rush.job_id
    assert queue[0].rush
    await until(lambda: must_do(wb, "acknowledge"))
    await wb.acknowledge(wb.view().job.job_id)  # type: ignore[union-attr]
    await asyncio.sleep(0.1)
    assert hub.statuses_sent(rush.job_id) == []  # waits in the outbox for the hub


@pytest.mark.asyncio
async def test_verification_notice_reaches_the_view(screen: Screen) -> None:
    ctx, wb = screen.ctx, screen.wb
    job = await screen.assign(plan()[:1], text="Anna")
    notice = VerificationNotice(
        job_id=job.job_id,
        step="inspect_in_photo",
        proof_sha256="a" * 64,
        verdict="FAIL",
        read_text="Amna",
        diff=[
            DiffItem(op="equal", position=0, expected="A", read="A"),
            DiffItem(op="substitute", position=1, expected="n", read="m"),
        ],
        reasons=["character 2 differs"],
    )
    # The wire form the hub publishes, decoded as the link decodes it.
    topic = topics.down("st-01", topics.Down.VERIFICATION)
    decoded = codec.decode(topic, encode(notice))
    assert isinstance(decoded, codec.Decoded)
    assert isinstance(decoded.message, VerificationNotice)
    wb.on_verification(decoded.message)
    seen = wb.view().job
    assert seen is not None
    assert seen.verifications[0].verdict == "FAIL"
    assert seen.verifications[0].diff[1].read == "m"
    again = Workbench(ctx, JobRunner(ctx, operator=ScreenOperator()))  # as after a restart
    assert again.verdicts.for_job(job.job_id)[0].read_text == "Amna"
