"""What every cleaner backend must do (python-can's back2back suite), run against each one."""

from __future__ import annotations

import asyncio

import pytest
from support.cleaner_rig import Rig

from drivers.cleaner.base import OverTemperatureError
from drivers.cleaner.gemstones import ContraindicatedError, Stone
from drivers.cleaner.program import CleaningProgram, CleaningProgress

RELAYS = ("ultrasound", "heater", "degas")


def all_off(rig: Rig) -> bool:
    return not any(rig.board.relay(name) for name in RELAYS)


@pytest.mark.asyncio
async def test_reads_the_bath_temperature(rig: Rig) -> None:
    assert await rig.cleaner.read_temperature() == pytest.approx(22.0, abs=0.5)
    assert rig.cleaner.has_heater


@pytest.mark.asyncio
async def test_degas_then_time_at_temperature(rig: Rig) -> None:
    seen: list[CleaningProgress] = []
    program = CleaningProgram(degas_s=0.2, duration_s=0.4, target_temp_c=30, max_temp_c=45)
    report = await rig.cleaner.run_program(program, progress=seen.append)
    assert report.aborted is None
    assert report.target_reached
    assert report.start_temp_c < 23
    assert report.end_temp_c >= 29
    assert report.max_temp_c < 45
    assert report.ultrasound_s >= 0.6 - 0.1
    assert seen[0].phase == "degas"
    assert seen[-1].phase == "clean"
    assert {"degas", "heat", "clean"} <= {p.phase for p in seen}
    assert all_off(rig)


@pytest.mark.asyncio
async def test_thermostat_holds_the_target(rig: Rig) -> None:
    program = CleaningProgram(duration_s=1.0, target_temp_c=28, max_temp_c=40)
    report = await rig.cleaner.run_program(program)
    # The heater warms the test bath ~20 °C/s, so 1 s of heater left on would pass 45 °C; a poll
    # every 50 ms (plus a loaded CI machine's latency) overshoots by a degree or two.
    assert report.max_temp_c < 28 + 5
    assert report.end_temp_c == pytest.approx(28, abs=4)


@pytest.mark.asyncio
async def test_over_temperature_cuts_every_relay(rig: Rig) -> None:
    program = CleaningProgram(duration_s=5, max_temp_c=30)
    rig.board.fault = "over_temperature"
    with pytest.raises(OverTemperatureError) as caught:
        await rig.cleaner.run_program(program)
    assert all_off(rig)
    assert caught.value.report.aborted == "over-temperature"
    assert caught.value.report.max_temp_c > 30
    assert not caught.value.retryable


@pytest.mark.asyncio
async def test_stop_ends_the_run_with_everything_off(rig: Rig) -> None:
    run = asyncio.create_task(rig.cleaner.run_program(CleaningProgram(duration_s=30)))
    await asyncio.sleep(0.2)
    assert rig.board.relay("ultrasound")
    await rig.cleaner.stop()
    report = await asyncio.wait_for(run, 2)
    assert report.aborted == "stopped"
    assert report.duration_s < 2
    assert all_off(rig)


@pytest.mark.asyncio
async def test_contraindicated_stones_switch_nothing_on(rig: Rig) -> None:
    requests_before = rig.board.requests
    with pytest.raises(ContraindicatedError, match="emerald"):
        await rig.cleaner.run_program(
            CleaningProgram(duration_s=1), stones=[Stone(name="emerald", treatment="none")]
        )
    assert rig.board.requests == requests_before


@pytest.mark.asyncio
async def test_one_program_at_a_time(rig: Rig) -> None:
    first = asyncio.create_task(rig.cleaner.run_program(CleaningProgram(duration_s=30)))
    await asyncio.sleep(0.1)
    with pytest.raises(Exception, match="already running"):
        await rig.cleaner.run_program(CleaningProgram(duration_s=1))
    await rig.cleaner.stop()
    assert (await first).aborted == "stopped"
