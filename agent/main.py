"""The agent's composition root: one asyncio loop, components in a TaskGroup, clean stop.

SIGTERM/SIGINT stop the components in order: the job runner first (a device step in progress
finishes), then telemetry, the device supervisor, and last the link (it publishes the station's
Death and disconnects).
"""

from __future__ import annotations

import asyncio
import logging
import signal

from agent import devices as device_supervisor
from agent import jobs, link, metrics, screen, telemetry
from agent.alarms import StationAlarms
from agent.config import StationConfig
from agent.context import AgentContext, Component
from agent.db import open_db
from agent.devices import DeviceManager
from agent.outbox import DiskBudget, Outbox
from agent.workbench import Workbench
from protocol import redaction
from protocol.models import AlarmNotice, Command, JobAssignment, VerificationNotice

log = logging.getLogger(__name__)


def run_agent(config: StationConfig) -> None:
    """Run one station agent until SIGTERM or SIGINT."""
    asyncio.run(serve(config))


async def serve(config: StationConfig, stop: asyncio.Event | None = None) -> None:
    """Run the agent until ``stop`` is set (by default: until SIGTERM/SIGINT)."""
    stop = stop or _stop_on_signals()
    db = open_db(config.data_dir)
    try:
        budget = DiskBudget(config.outbox_max_bytes, config.min_free_bytes, config.data_dir)
        outbox = Outbox(db, config.station_id, resend_after_s=config.resend_after_s, budget=budget)
        devices = await DeviceManager.open(config.devices)
        try:
            ctx = AgentContext(config=config, db=db, outbox=outbox, devices=devices)
            await _run_components(ctx, stop)
        finally:
            await devices.close()
    finally:
        db.close()


class _DownDispatch:
    """What the hub sends, to the component it is for: jobs to the runner, device config
    requests to the device supervisor."""

    def __init__(
        self,
        runner: jobs.JobRunner,
        devices: device_supervisor.DeviceSupervisor,
        bench: Workbench,
    ):
        self._runner, self._devices, self._bench = runner, devices, bench

    def on_alarm(self, notice: AlarmNotice) -> None:
        if self._bench.alarms.on_alarm(notice):
            self._bench.notify()

    def on_verification(self, notice: VerificationNotice) -> None:
        self._bench.on_verification(notice)

    def on_assignment(self, assignment: JobAssignment) -> None:
        remember_personal_values(assignment)
        self._runner.on_assignment(assignment)

    def on_command(self, command: Command) -> None:
        if command.kind == "apply_device_config" and command.device:
            self._devices.apply_config(command.device)
        else:
            self._runner.on_command(command)


async def _run_components(ctx: AgentContext, stop: asyncio.Event) -> None:
    runner = jobs.create(ctx)
    # What the station screen renders and acts through (the runner's operator and activity).
    bench = Workbench(ctx, runner, alarms=StationAlarms(ctx.db))
    supervisor = device_supervisor.create(ctx)
    sampler = telemetry.create(ctx)
    components: dict[str, Component] = {
        "jobs": runner,
        "telemetry": sampler,
        "metrics": metrics.create(ctx, sampler),
        "devices": supervisor,
        "link": link.create(ctx, _DownDispatch(runner, supervisor, bench)),
    }
    if (station_screen := screen.create(ctx, bench)) is not None:  # stops last: shows to the end
        components["screen"] = station_screen
    log.info(
        "agent %s: epoch %d, broker %s, outbox depth %s",
        ctx.config.station_id,
        ctx.outbox.epoch,
        ctx.config.broker,
        ctx.outbox.depth(),
    )
    async with asyncio.TaskGroup() as tg:
        for name, component in components.items():
            tg.create_task(component.run(), name=f"agent[{ctx.config.station_id}].{name}")
        await stop.wait()
        log.info("agent %s: stopping", ctx.config.station_id)
        for component in components.values():  # jobs, telemetry, devices, link: in order
            await component.stop()


def remember_personal_values(assignment: JobAssignment) -> None:
    """The engraving text and gift message of ``assignment`` are redacted from every log line
    from now on (protocol.redaction; the CLI installs the filter)."""
    text = assignment.engraving.text if assignment.engraving else None
    gifts = [s.params.get("gift_message") for s in assignment.steps]
    redaction.KNOWN.add(text, *(g for g in gifts if isinstance(g, str)))


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
