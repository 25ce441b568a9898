"""A device that is missing at start, or unplugged later, never stops the agent: it is reopened
with backoff through its stable port name and the hub hears each change (events).

Real parts: the MT-SICS driver against the MT-SICS simulator on a real pty behind a symlink,
the way a udev /dev/serial/by-id name points at a USB adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from agent.config import DeviceConfig
from agent.context import AgentContext
from agent.devices import DeviceState, DeviceSupervisor
from drivers.errors import DeviceUnavailableError
from drivers.scale.base import Scale
from drivers.scale.sim import MtSicsSimulator


def scale_config(link: Path) -> DeviceConfig:
    return DeviceConfig(name="scale-1", family="scale", backend="mtsics", url=str(link), options={})


def events(ctx: AgentContext) -> list[dict[str, Any]]:
    rows = ctx.db.execute("SELECT payload FROM outbox WHERE kind = 'event' ORDER BY seq")
    return [json.loads(row[0]) for row in rows]


async def until(check: Any, seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not check():  # noqa: ASYNC110 - polling driver state is the point here
            await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_missing_then_plugged_in_then_pulled_then_back(
    make_context: Any, tmp_path: Path
) -> None:
    link = tmp_path / "ttyScale"
    ctx: AgentContext = await make_context(devices=[scale_config(link)])
    entry = ctx.devices.managed[0]
    assert entry.state is DeviceState.UNAVAILABLE  # nothing at the port: the agent still runs
    assert ctx.devices.get(Scale) is None

    supervisor = DeviceSupervisor(ctx)
    task = asyncio.create_task(supervisor.run())
    simulator = MtSicsSimulator(link=link)
    try:
        simulator.start()  # plugged in
        await until(lambda: ctx.devices.get(Scale) is not None)
        scale = ctx.devices.get(Scale)
        assert scale is not None
        assert (await scale.read_stable(within=5)).stable

        simulator.unplug()
        with pytest.raises(DeviceUnavailableError) as pulled:
            await scale.read_stable(within=2)
        ctx.devices.mark_unavailable(scale, pulled.value)  # what a job runner does
        assert ctx.devices.get(Scale) is None

        simulator.replug()
        await until(lambda: ctx.devices.get(Scale) is not None)
        await until(lambda: [e["kind"] for e in events(ctx)].count("device_ready") == 2)
    finally:
        await supervisor.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        simulator.stop()

    kinds = [(e["kind"], e["device"]) for e in events(ctx)]
    assert kinds == [
        ("device_unavailable", "scale-1"),
        ("device_ready", "scale-1"),
        ("device_unavailable", "scale-1"),
        ("device_ready", "scale-1"),
    ]


@pytest.mark.asyncio
async def test_a_device_that_drifted_from_its_model_config_is_reported(
    make_context: Any,
) -> None:
    options = {"config": "mettler-xs204", "model": "XS204 220 g"}  # calibration overdue
    ctx: AgentContext = await make_context(
        devices=[DeviceConfig(name="scale-1", family="scale", backend="sim", options=options)]
    )
    supervisor = DeviceSupervisor(ctx)
    task = asyncio.create_task(supervisor.run())
    try:
        await until(lambda: any(e["kind"] == "config_drift" for e in events(ctx)))
    finally:
        await supervisor.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    drift = next(e for e in events(ctx) if e["kind"] == "config_drift")
    assert drift["device"] == "scale-1"
    assert drift["message"] == "calibration was due 2026-09-30"
