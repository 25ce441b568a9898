"""The Modbus driver against the simulated board over a real pty: faults end in clear errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from support.cleaner_rig import Rig, close_rig, open_rig

from drivers.cleaner.config import DEFAULT_MODEL, FIRMWARE_CONFIGS, load_cleaner_config
from drivers.cleaner.modbus import ModbusCleaner
from drivers.cleaner.program import CleaningProgram
from drivers.cleaner.sim import CleanerSimulator
from drivers.errors import (
    DeviceProtocolError,
    DeviceReportedError,
    DeviceTimeoutError,
    DeviceUnavailableError,
)
from drivers.registry import open_device


@pytest_asyncio.fixture
async def rig() -> AsyncIterator[Rig]:
    opened = await open_rig("modbus")
    yield opened
    await close_rig(opened)


@pytest.mark.asyncio
async def test_open_leaves_a_running_unit_switched_off() -> None:
    board = CleanerSimulator(load_cleaner_config().registers)
    board.coils[0] = board.coils[1] = True  # an agent crashed mid-program
    port = board.start()
    try:
        async with ModbusCleaner("c", port, {"timeout_s": 0.3}) as cleaner:
            assert cleaner.model == "generic-relay-pt100"
            assert not board.relay("ultrasound")
            assert not board.relay("heater")
    finally:
        board.stop()


@pytest.mark.asyncio
async def test_silence_is_a_retryable_timeout(rig: Rig) -> None:
    rig.board.fault = "no_answer"
    with pytest.raises(DeviceTimeoutError) as caught:
        await rig.cleaner.read_temperature()
    assert caught.value.retryable
    rig.board.fault = None
    assert await rig.cleaner.read_temperature() > 0  # and the next request works


@pytest.mark.asyncio
async def test_garbage_is_a_protocol_error(rig: Rig) -> None:
    rig.board.fault = "garbage"
    with pytest.raises(DeviceProtocolError, match="no valid RTU reply") as caught:
        await rig.cleaner.read_temperature()
    assert not caught.value.retryable


@pytest.mark.asyncio
async def test_a_stuck_relay_is_reported(rig: Rig) -> None:
    rig.board.fault = "relay_stuck"  # every contact stays open
    with pytest.raises(DeviceReportedError, match=r"ultrasound .* stuck off"):
        await rig.cleaner.run_program(CleaningProgram(duration_s=1))


@pytest.mark.asyncio
async def test_a_relay_stuck_on_fails_the_run_loudly(rig: Rig) -> None:
    run = asyncio.create_task(rig.cleaner.run_program(CleaningProgram(duration_s=0.3)))
    await asyncio.sleep(0.15)
    rig.board.fault = "relay_stuck"  # welded while on: switching off cannot work
    with pytest.raises(DeviceReportedError, match=r"ultrasound .* stuck on"):
        await run


@pytest.mark.asyncio
async def test_unplug_mid_program_is_unavailable(rig: Rig) -> None:
    run = asyncio.create_task(rig.cleaner.run_program(CleaningProgram(duration_s=5)))
    await asyncio.sleep(0.15)
    rig.board.unplug()
    with pytest.raises(DeviceUnavailableError) as caught:
        await asyncio.wait_for(run, 5)
    assert caught.value.retryable


@pytest.mark.asyncio
async def test_replug_through_the_same_link_is_survived(tmp_path: Path) -> None:
    board = CleanerSimulator(load_cleaner_config().registers, link=tmp_path / "ttyCleaner")
    board.start()
    cleaner = ModbusCleaner("c", str(board.link), {"timeout_s": 0.3, "retries": 0})
    try:
        await cleaner.open()
        board.unplug()
        with pytest.raises(DeviceUnavailableError):
            await cleaner.read_temperature()
        board.replug()
        await cleaner.close()
        await cleaner.open()  # the agent's reconnect: same name, new pty behind it
        assert await cleaner.read_temperature() == pytest.approx(22.0, abs=0.5)
    finally:
        await cleaner.close()
        board.stop()


@pytest.mark.asyncio
async def test_another_unit_id_stays_silent(tmp_path: Path) -> None:
    board = CleanerSimulator(load_cleaner_config().registers)  # answers as unit 1
    port = board.start()
    shipped = (FIRMWARE_CONFIGS / f"{DEFAULT_MODEL}.toml").read_text()
    config = tmp_path / "unit7.toml"
    config.write_text(shipped.replace("device_id = 1", "device_id = 7"))
    try:
        with pytest.raises(DeviceUnavailableError) as caught:
            await open_device(
                "cleaner", "modbus", "c", port, {"config_path": str(config), "timeout_s": 0.2}
            )
        assert isinstance(caught.value.__cause__, DeviceTimeoutError)
    finally:
        board.stop()


@pytest.mark.asyncio
async def test_a_missing_port_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(DeviceUnavailableError):
        await open_device("cleaner", "modbus", "c", str(tmp_path / "nothing"), {})
