"""Telemetry samples of every family's sim backend: declared metrics only, typed, meaningful.

One suite, run against each family's real driver on its simulator (pty): the laser's GRBL
driver, the cleaner's Modbus driver, the scale's MT-SICS driver, the camera sim.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio

from drivers.base import Device
from drivers.cleaner.program import CleaningProgram
from drivers.cleaner.sim import SimCleaner
from drivers.laser.sim import SimLaser
from drivers.registry import backend_class
from drivers.scale.sim import SimScale
from drivers.telemetry import BadSampleError, MetricSpec, check_sample

FAMILIES: dict[str, dict[str, Any]] = {
    "laser": {"seconds_per_char": 0.05},
    "cleaner": {"time_scale": 600.0, "poll_s": 0.05},
    "scale": {"settle_s": 0.05, "load_g": "12.3456"},
    "camera": {},
}
# What a freshly opened device of each family reports for sure (others may come later).
ALWAYS = {
    "laser": {"job_state", "state", "x_mm", "y_mm", "z_mm", "alarm_code"},
    "cleaner": {"temperature_c", "state", "remaining_s", "ultrasound", "heater"},
    "scale": {"weight", "stable", "unit"},
    "camera": {"frames", "exposure_ms"},
}


@pytest_asyncio.fixture(params=sorted(FAMILIES))
async def device(request: pytest.FixtureRequest) -> AsyncIterator[Device]:
    family: str = request.param
    cls = backend_class(family, "sim")
    opened = cls(f"{family}-1", None, FAMILIES[family])
    await opened.open()
    if family == "camera":
        await opened.capture()  # type: ignore[attr-defined]
    yield opened
    await opened.close()


@pytest.mark.asyncio
async def test_sample_holds_declared_typed_metrics(device: Device) -> None:
    specs: tuple[MetricSpec, ...] = device.METRICS  # type: ignore[attr-defined]
    values = await device.sample()  # type: ignore[attr-defined]
    check_sample(specs, values)
    assert ALWAYS[device.family] <= set(values)
    assert len({spec.name for spec in specs}) == len(specs)


def test_check_sample_names_the_bad_metrics() -> None:
    specs = (MetricSpec("t", "°C", "gauge", "x"), MetricSpec("on", "", "flag", "y"))
    with pytest.raises(BadSampleError) as caught:
        check_sample(specs, {"t": True, "on": 1, "ghost": 3.0})
    message = str(caught.value)
    assert "t: True is no gauge" in message
    assert "on: 1 is no flag" in message
    assert "ghost: not declared" in message
    check_sample(specs, {"t": 21, "on": False})  # an int is a fine gauge


@pytest.mark.asyncio
async def test_laser_position_moves_while_engraving() -> None:
    laser = SimLaser("laser-1", None, {"seconds_per_char": 0.15})
    await laser.open()
    try:
        idle = await laser.sample()
        assert (idle["state"], idle["job_state"]) == ("Idle", "none")
        job = asyncio.create_task(laser.engrave("ANNA"))
        positions = set()
        states = set()
        while not job.done():
            values = await laser.sample()
            states.add(values["state"])
            positions.add((values.get("x_mm"), values.get("y_mm")))
            await asyncio.sleep(0.05)
        await job
        assert "Run" in states
        assert len(positions) >= 3, positions  # the head moved between samples
        done = await laser.sample()
        assert done["job_state"] == "done"
        assert done["job_lines_done"] == laser.last_job.total  # type: ignore[union-attr]
    finally:
        await laser.close()


@pytest.mark.asyncio
async def test_cleaner_temperature_rises_while_cleaning() -> None:
    cleaner = SimCleaner("cleaner-1", None, {"time_scale": 3000.0, "poll_s": 0.02})
    await cleaner.open()
    try:
        before = await cleaner.sample()
        assert (before["state"], before["ultrasound"]) == ("idle", False)
        run = asyncio.create_task(cleaner.run_program(CleaningProgram(duration_s=1.0)))
        seen = []
        while not run.done():
            seen.append(await cleaner.sample())
            await asyncio.sleep(0.05)
        await run
        cleaning = [s for s in seen if s["state"] == "clean"]
        assert cleaning, seen
        assert all(s["ultrasound"] for s in cleaning)
        assert cleaning[-1]["temperature_c"] > before["temperature_c"]  # type: ignore[operator]
        assert float(cleaning[0]["remaining_s"]) > float(cleaning[-1]["remaining_s"])
        assert (await cleaner.sample())["state"] == "idle"
    finally:
        await cleaner.close()


@pytest.mark.asyncio
async def test_scale_reports_the_load_and_never_queues_behind_a_job() -> None:
    scale = SimScale("scale-1", None, {"settle_s": 0.05, "load_g": "12.3456"})
    await scale.open()
    try:
        await asyncio.sleep(0.1)  # settle
        values = await scale.sample()
        assert values == {"weight": 12.3456, "stable": True, "unit": "g"}
        scale.simulator.balance.place(Decimal("3.5"))
        async with scale._line_lock:  # a job's exchange holds the line: the cache answers
            cached = await asyncio.wait_for(scale.sample(), 0.5)
        assert cached["weight"] == 12.3456
        await asyncio.sleep(0.1)  # settle
        assert (await scale.sample())["weight"] == 3.5
    finally:
        await scale.close()
