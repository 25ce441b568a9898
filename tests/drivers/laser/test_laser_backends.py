"""One suite every registered laser backend passes (python-can's back2back idea).

``sim`` runs as configured in a station file; ``grbl`` runs against a GRBL simulator's pty, as
it would against a controller's ``/dev/serial/by-id`` link.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from drivers.errors import DeviceError
from drivers.laser.base import JobState, Laser
from drivers.laser.grbl.sim import GrblSimulator
from drivers.registry import backends, open_device

LASER_BACKENDS = sorted(backend for family, backend in backends() if family == "laser")


@pytest_asyncio.fixture(params=LASER_BACKENDS)
async def laser(request: pytest.FixtureRequest) -> AsyncIterator[Laser]:
    backend: str = request.param
    sim = GrblSimulator(speedup=math.inf) if backend == "grbl" else None
    url = sim.start() if sim else None
    options = {"seconds_per_char": 0} if backend == "sim" else {}
    device = await open_device("laser", backend, "laser-1", url, options)
    assert isinstance(device, Laser)
    yield device
    await device.close()
    if sim:
        sim.stop()


def test_every_laser_backend_is_covered() -> None:
    assert {"grbl", "sim"} <= set(LASER_BACKENDS)


@pytest.mark.asyncio
async def test_engrave_reports_the_program_hash(laser: Laser) -> None:
    report = await laser.engrave("Anna & Ben")
    assert re.fullmatch(r"[0-9a-f]{64}", report.gcode_sha256)
    assert laser.last_job is not None
    assert laser.last_job.state is JobState.DONE
    assert report.lines == laser.last_job.total > 0
    assert laser.model


@pytest.mark.asyncio
async def test_the_same_text_gives_the_same_hash(laser: Laser) -> None:
    first = await laser.engrave("Forever yours")
    second = await laser.engrave("Forever yours")
    other = await laser.engrave("Forever yourz")
    assert first.gcode_sha256 == second.gcode_sha256 != other.gcode_sha256


@pytest.mark.asyncio
async def test_text_that_cannot_be_engraved_whole_is_refused(
    laser: Laser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    with pytest.raises(DeviceError) as caught:
        await laser.engrave("Zoë Private")
    assert "Zoë" not in str(caught.value)
    assert "Private" not in caplog.text


@pytest.mark.asyncio
async def test_templates_and_fonts_are_chosen_per_engraving(laser: Laser) -> None:
    ring = await laser.engrave("Jo", template="ring_band", font="futural")
    disc = await laser.engrave("Jo", template="pendant_disc", font="timesr")
    assert ring.gcode_sha256 != disc.gcode_sha256


@pytest.mark.asyncio
async def test_an_unknown_template_is_a_device_error(laser: Laser) -> None:
    with pytest.raises(DeviceError, match="not engravable"):
        await laser.engrave("Jo", template="no-such-item")
