"""Faults mid-engrave: each ends the job FAILED with its line, and nothing is ever re-sent."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from drivers.errors import (
    DeviceProtocolError,
    DeviceReportedError,
    DeviceTimeoutError,
    DeviceUnavailableError,
)
from drivers.laser.base import JobState
from drivers.laser.grbl.driver import GrblLaser
from drivers.laser.grbl.sim import Faults, GrblSimulator

TEXT = "Anna & Ben"


def run_lines(sim: GrblSimulator) -> list[str]:
    """Lines the controller received after the preflight (the last ``$C``)."""
    lines = sim.stats.lines
    last_check = max(i for i, line in enumerate(lines) if line == "$C")
    return lines[last_check + 1 :]


def assert_nothing_sent_twice(grbl: GrblLaser, sim: GrblSimulator) -> None:
    assert grbl.last_job is not None
    wanted = Counter(grbl.last_job.program.lines)
    received = Counter(run_lines(sim))
    assert all(received[line] <= wanted[line] for line in wanted)


@pytest.mark.asyncio
async def test_alarm_mid_engrave_fails_with_line_info_and_is_not_resumed(
    grbl: GrblLaser, grbl_sim: GrblSimulator
) -> None:
    grbl_sim.new_piece(Faults(alarm_after_line=20))
    with pytest.raises(DeviceReportedError, match=r"ALARM:1 \(Hard limit") as caught:
        await grbl.engrave(TEXT)
    job = grbl.last_job
    assert job is not None
    assert job.state is JobState.FAILED
    assert f"failed at line 20 of {job.total}, position unknown" in str(caught.value)
    assert_nothing_sent_twice(grbl, grbl_sim)
    await asyncio.sleep(0.1)  # lines already on the wire when the alarm hit arrive (error:9)
    in_transit = len(run_lines(grbl_sim)) - 20
    assert in_transit <= 127 // len("M4 S0\n")  # at most one RX buffer's worth
    sent, blocks = len(grbl_sim.stats.lines), grbl_sim.stats.blocks
    await asyncio.sleep(0.3)
    assert (len(grbl_sim.stats.lines), grbl_sim.stats.blocks) == (sent, blocks)  # quiet
    with pytest.raises(DeviceReportedError, match=r"Alarm, not Idle.*\$X"):
        await grbl.engrave(TEXT)  # never silently continues on an alarmed machine
    await grbl.unlock()
    await grbl.engrave(TEXT)  # a new job, from its first line
    assert grbl.last_job is not None
    assert grbl.last_job.state is JobState.DONE


@pytest.mark.asyncio
async def test_unplug_mid_job_is_unavailable_and_reconnect_never_resumes(
    grbl: GrblLaser, grbl_sim: GrblSimulator
) -> None:
    grbl_sim.new_piece(Faults(disconnect_after_line=30))
    failed_at = r"failed at line \d+ of \d+, position unknown"
    with pytest.raises(DeviceUnavailableError, match=failed_at):
        await grbl.engrave(TEXT)
    job = grbl.last_job
    assert job is not None
    assert job.state is JobState.FAILED
    assert 25 <= job.acknowledged <= 30  # replies in flight when the cable went are lost
    grbl_sim.replug()
    before = len(grbl_sim.stats.lines)
    await grbl.reconnect()
    assert grbl.model == "Grbl 1.1h"
    assert grbl_sim.stats.lines[before:] == ["$I", "$$"]  # identify only: no program line
    assert grbl.last_job is job
    assert job.state is JobState.FAILED


@pytest.mark.asyncio
async def test_a_garbled_reply_is_a_protocol_error_and_the_machine_is_stopped(
    grbl: GrblLaser, grbl_sim: GrblSimulator
) -> None:
    grbl_sim.speedup = 50.0
    grbl_sim.new_piece(Faults(garble_reply=12))
    with pytest.raises(DeviceProtocolError, match=r"failed at line 11 of"):
        await grbl.engrave(TEXT)
    await asyncio.sleep(0.1)
    assert grbl_sim.state in ("Idle", "Alarm")
    assert not grbl_sim.machine.planner  # feed hold + soft reset emptied the planner
    assert_nothing_sent_twice(grbl, grbl_sim)


@pytest.mark.asyncio
async def test_a_garbled_line_is_refused_and_the_job_stops_there(
    grbl: GrblLaser, grbl_sim: GrblSimulator
) -> None:
    grbl_sim.new_piece(Faults(garble_line=15))
    with pytest.raises(DeviceReportedError, match=r"line 15 refused: error:1 .*failed at line 14"):
        await grbl.engrave(TEXT)
    assert_nothing_sent_twice(grbl, grbl_sim)


@pytest.mark.asyncio
async def test_a_dropped_line_times_out_instead_of_hanging(
    grbl: GrblLaser, grbl_sim: GrblSimulator
) -> None:
    grbl_sim.new_piece(Faults(drop_line=8))
    with pytest.raises(DeviceTimeoutError, match=r"line may have been lost.*position unknown"):
        await grbl.engrave(TEXT)
    # Character counting cannot tell which line vanished: later oks shift onto earlier lines,
    # so the loss shows as the last reply never coming. The job fails; it never hangs.
    assert grbl.last_job is not None
    assert grbl.last_job.state is JobState.FAILED
    assert_nothing_sent_twice(grbl, grbl_sim)


@pytest.mark.asyncio
async def test_slow_replies_still_complete(grbl: GrblLaser, grbl_sim: GrblSimulator) -> None:
    grbl_sim.new_piece(Faults(reply_delay_s=0.003))
    report = await grbl.engrave("Jo")
    assert grbl.last_job is not None
    assert grbl.last_job.acknowledged == report.lines


@pytest.mark.asyncio
async def test_cancelling_mid_job_stops_the_machine(
    grbl: GrblLaser, grbl_sim: GrblSimulator
) -> None:
    grbl_sim.speedup = 5.0
    task = asyncio.create_task(grbl.engrave(TEXT))
    while not grbl_sim.machine.planner:  # noqa: ASYNC110 - waiting for the simulated beam
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.1)
    assert not grbl_sim.machine.planner
    assert grbl.last_job is not None
    assert grbl.last_job.state is JobState.FAILED
