"""GrblLaser against the GRBL simulator over a real pty: identity, settings, streaming, safety."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import numpy as np
import pytest

from drivers.errors import DeviceError, DeviceProtocolError, DeviceReportedError
from drivers.laser.base import JobState
from drivers.laser.burn import BurnCanvas, toolpath_mask
from drivers.laser.gcode import GcodeProgram, program_text
from drivers.laser.grbl.driver import GrblLaser
from drivers.laser.grbl.profile import load_profile
from drivers.laser.grbl.sim import GrblSimulator
from drivers.pty_sim import PtySimulator
from drivers.serial_link import SerialLine

from .conftest import FAST


def program(*lines: str) -> GcodeProgram:
    digest = hashlib.sha256(program_text(lines).encode()).hexdigest()
    return GcodeProgram(tuple(lines), digest, 0.0)


@pytest.mark.asyncio
async def test_identify_reads_banner_version_and_buffer_sizes(grbl: GrblLaser) -> None:
    assert grbl.model == "Grbl 1.1h"
    assert grbl.build == "1.1h.20190830"
    assert (grbl.rx_size, grbl.planner_blocks) == (128, 15)
    assert grbl.settings[32] == 1.0
    assert (await grbl.status()).state == "Idle"


class Stranger(PtySimulator):
    """A device that is not GRBL: answers everything with Marlin-ish chatter (or nothing)."""

    def __init__(self, reply: bytes) -> None:
        super().__init__()
        self.reply = reply

    def on_bytes(self, data: bytes) -> None:
        self.send(self.reply)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "reply", [b"start\r\necho:Marlin 2.1\r\n", b"", b"\xff\xfe\x00garbage\r\n"]
)
async def test_what_is_not_grbl_is_refused(reply: bytes) -> None:
    stranger = Stranger(reply)
    stranger.start()
    try:
        laser = GrblLaser("laser-1", stranger.port, {**FAST, "reply_timeout_s": 0.3})
        with pytest.raises(DeviceProtocolError):
            await laser.open()
        assert laser.link is None
    finally:
        stranger.stop()


@pytest.mark.asyncio
async def test_engraving_streams_the_program_and_burns_the_text(
    grbl: GrblLaser, grbl_sim: GrblSimulator, tmp_path: Path
) -> None:
    grbl_sim.speedup = 200.0  # finite: the planner fills up and the RX buffer with it
    report = await grbl.engrave("Anna & Ben")
    job = grbl.last_job
    assert job is not None
    assert job.state is JobState.DONE
    assert job.acknowledged == job.total == report.lines
    assert report.gcode_sha256 == job.program.sha256
    stats = grbl_sim.stats
    assert stats.rx_overflows == stats.lost_bytes == 0
    assert 64 < stats.max_rx_used <= 127  # counting kept the buffer full, never over
    canvas = BurnCanvas.load(tmp_path / "burn.png")
    expected = toolpath_mask(grbl.layout("Anna & Ben", template=None, font=None), canvas)
    burned = canvas.burn_mask()
    overlap = np.logical_and(burned, expected).sum() / expected.sum()
    assert overlap > 0.9
    assert np.logical_and(burned, ~expected).sum() < 0.1 * expected.sum()


@pytest.mark.asyncio
async def test_status_is_polled_at_most_5_hz(grbl: GrblLaser, grbl_sim: GrblSimulator) -> None:
    grbl_sim.speedup = 20.0
    report = await grbl.engrave("Anna & Ben")
    polls = grbl_sim.stats.status_requests
    assert 1 <= polls <= 5 * report.duration_s + 3
    assert grbl.status_cache.last is not None


@pytest.mark.asyncio
async def test_streaming_everything_at_once_overflows_and_the_sim_says_so(
    grbl_sim: GrblSimulator,
) -> None:
    grbl_sim.speedup = 1.0
    line = await SerialLine.open(grbl_sim.port)
    await line.write(b"G21 G90\n" + b"G1 X10 Y10 F100\n" * 20)
    await asyncio.sleep(0.3)
    await line.close()
    assert grbl_sim.stats.rx_overflows > 0
    assert grbl_sim.stats.lost_bytes > 0


@pytest.mark.asyncio
async def test_settings_go_by_send_response_eeprom_writes_lose_streamed_bytes(
    grbl: GrblLaser, grbl_sim: GrblSimulator
) -> None:
    await grbl.write_setting(110, 2500)
    await grbl.engrave("Ok")  # send-response: nothing was in flight during the EEPROM write
    assert grbl_sim.stats.lost_bytes == 0
    assert grbl_sim.settings[110] == 2500
    await grbl.close()
    raw = await SerialLine.open(grbl_sim.port)
    await raw.write(b"$110=3000\n")
    await asyncio.sleep(0.005)
    await raw.write(b"G0 X1\n")  # streamed behind the setting, as counting would
    await asyncio.sleep(0.1)
    await raw.close()
    assert grbl_sim.stats.lost_bytes > 0


@pytest.mark.asyncio
async def test_laser_mode_off_is_refused_and_the_profile_fixes_it(
    grbl: GrblLaser, grbl_sim: GrblSimulator
) -> None:
    await grbl.write_setting(32, 0)
    with pytest.raises(DeviceReportedError, match=r"\$32=0"):
        await grbl.engrave("Anna")
    assert grbl_sim.renderer.segments == []
    changed = await grbl.apply_profile(load_profile())
    assert changed == {32: (1.0, 0.0)}
    await grbl.engrave("Anna")
    assert grbl_sim.renderer.segments


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        (("G21 G90", "M3 S500", "G1 X1 F600", "M5 S0"), "M3"),
        (("G21 G90", "M4 S0", "G1 X1 F600 S500"), "M5 S0"),
        (("G21 G90", "M4 S0", "G1 X1 F600 S500 (ok?)", "M5 S0"), "realtime"),
        (("$32=0", "M5 S0"), "realtime"),
        (("G1 X" + "1" * 90, "M5 S0"), "line buffer"),
    ],
)
async def test_unsafe_programs_never_reach_the_controller(
    grbl: GrblLaser, grbl_sim: GrblSimulator, lines: tuple[str, ...], reason: str
) -> None:
    sent = len(grbl_sim.stats.lines)
    with pytest.raises(DeviceError, match=reason):
        await grbl.engrave_program(program(*lines))
    assert len(grbl_sim.stats.lines) == sent
    assert grbl.last_job is not None
    assert grbl.last_job.state is JobState.FAILED


@pytest.mark.asyncio
async def test_check_mode_preflight_catches_a_bad_line_before_firing(
    grbl: GrblLaser, grbl_sim: GrblSimulator
) -> None:
    bad = program("G21 G90", "M4 S0", "G1 X1 Y1 F600 S500", "G5 X2", "G1 X3", "M5 S0")
    with pytest.raises(DeviceReportedError, match=r"preflight.*line 4.*error:20") as caught:
        await grbl.engrave_program(bad)
    assert "failed before firing (0 of 6 lines run)" in str(caught.value)
    assert grbl_sim.renderer.segments == []
    assert not grbl_sim.check_mode  # left check mode (and GRBL reset itself)
    assert (await grbl.status()).state == "Idle"
    await grbl.engrave("Anna")  # the driver is fine afterwards
