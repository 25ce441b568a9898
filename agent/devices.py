"""The station's devices: opened from config, supervised, handed out as typed handles.

A device that cannot be opened, or that disappears (USB cable pulled), does not stop the agent:
it is marked unavailable, the hub hears about it (an Event), and :class:`DeviceSupervisor`
reopens it with jittered exponential backoff. Reopening runs the driver's handshake again, so a
different device on the same port is refused by the driver, not trusted. Jobs ask for a device
with :meth:`DeviceManager.get` and get one only while it is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, TypeVar

from agent.config import DeviceConfig
from agent.context import AgentContext
from agent.events import emit_event
from drivers.base import Device
from drivers.camera.base import Camera
from drivers.cleaner.base import UltrasonicCleaner
from drivers.errors import DeviceError, DeviceUnavailableError
from drivers.laser.base import Laser
from drivers.laser.fonts import ENGRAVING_FONTS
from drivers.registry import backend_class
from drivers.scale.base import Scale
from protocol.aio import wait_event
from protocol.models import DeviceInfo, Severity

log = logging.getLogger(__name__)
D = TypeVar("D", bound=Device)

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 30.0
SUPERVISE_EVERY_S = 0.25


class DeviceState(StrEnum):
    """Whether a device can be used right now."""

    READY = "ready"
    UNAVAILABLE = "unavailable"


@dataclass
class ManagedDevice:
    """One configured device with its state and reconnect schedule."""

    config: DeviceConfig
    device: Device
    state: DeviceState = DeviceState.UNAVAILABLE
    last_error: str = ""
    attempts: int = 0
    next_try_at: float = field(default_factory=time.monotonic)

    def schedule_retry(self) -> None:
        delay = random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**self.attempts))
        self.attempts += 1
        self.next_try_at = time.monotonic() + delay


class DeviceManager:
    """Owns the devices; see the module docstring."""

    def __init__(self, managed: list[ManagedDevice]) -> None:
        self.managed = managed
        self.on_change: Callable[[ManagedDevice], None] | None = None

    @classmethod
    async def open(cls, configs: list[DeviceConfig]) -> DeviceManager:
        """Create every configured device and try to open each once."""
        manager = cls([ManagedDevice(c, _construct(c)) for c in configs])
        for entry in manager.managed:
            await manager.try_open(entry)
        return manager

    @property
    def devices(self) -> list[Device]:
        return [entry.device for entry in self.managed]

    def get(self, family: type[D]) -> D | None:
        """The first ready device of ``family`` (e.g. ``Laser``), or None."""
        for entry in self.managed:
            if entry.state is DeviceState.READY and isinstance(entry.device, family):
                return entry.device
        return None

    @property
    def laser(self) -> Laser | None:
        return self.get(Laser)

    @property
    def camera(self) -> Camera | None:
        return self.get(Camera)

    def entry_of(self, device: Device) -> ManagedDevice:
        return next(entry for entry in self.managed if entry.device is device)

    def mark_unavailable(self, device: Device, error: DeviceError) -> None:
        """A job found ``device`` gone: take it out of service until it reopens."""
        entry = self.entry_of(device)
        if entry.state is DeviceState.READY:
            entry.attempts, entry.next_try_at = 0, time.monotonic()
            self._set_state(entry, DeviceState.UNAVAILABLE, str(error))
            log.warning("device %s: unavailable: %s", entry.config.name, error)

    @contextlib.contextmanager
    def using(self, device: Device) -> Iterator[Device]:
        """Use ``device``; if it turns out to be gone, take it out of service (the supervisor
        reopens it) and let the error go on to the job runner."""
        try:
            yield device
        except DeviceUnavailableError as err:
            self.mark_unavailable(device, err)
            raise

    async def try_open(self, entry: ManagedDevice) -> bool:
        """(Re)open one device; on failure schedule the next try. True when it is ready."""
        try:
            await entry.device.close()
            await entry.device.open()
        except (DeviceError, OSError) as err:
            self._set_state(entry, DeviceState.UNAVAILABLE, str(err))
            entry.schedule_retry()
            log.warning(
                "device %s: cannot open (try %d): %s", entry.config.name, entry.attempts, err
            )
            return False
        entry.attempts = 0
        self._set_state(entry, DeviceState.READY, "")
        log.info(
            "device %s: %s/%s ready", entry.config.name, entry.config.family, entry.config.backend
        )
        return True

    def _set_state(self, entry: ManagedDevice, state: DeviceState, error: str) -> None:
        changed = entry.state is not state
        entry.state, entry.last_error = state, error
        if changed and self.on_change is not None:
            self.on_change(entry)

    def infos(self) -> list[DeviceInfo]:
        """The devices as the birth message announces them, with what the hub routes by."""
        return [
            DeviceInfo(
                name=d.name,
                family=d.family,
                model=d.model,
                backend=d.backend,
                **_capabilities(d),
            )
            for d in self.devices
        ]

    async def close(self) -> None:
        """Close every device, the last opened first."""
        for device in reversed(self.devices):
            try:
                await device.close()
            except (DeviceError, OSError) as err:
                log.warning("device %s: close failed: %s", device.name, err)


def _capabilities(device: Device) -> dict[str, Any]:
    """What a device promises the hub's router; unknown stays unannounced (None)."""
    options = device.options
    if isinstance(device, Laser):
        field = options.get("field_mm")
        return {"fonts": list(ENGRAVING_FONTS), "field_mm": float(field) if field else None}
    if isinstance(device, UltrasonicCleaner):
        return {"cleaning": ["ultrasonic"]}
    if isinstance(device, Scale) and options.get("calibration_due"):
        return {"calibration_due": date.fromisoformat(str(options["calibration_due"]))}
    return {}


def _construct(config: DeviceConfig) -> Device:
    cls = backend_class(config.family, config.backend)
    return cls(config.name, config.url, config.options)


class DeviceSupervisor:
    """Component: reopens unavailable devices with backoff and tells the hub what changed."""

    def __init__(self, ctx: AgentContext) -> None:
        self._ctx = ctx
        self._stopping = asyncio.Event()
        self._checks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        manager = self._ctx.devices
        manager.on_change = self._report
        for entry in manager.managed:  # what happened before we were listening
            if entry.state is DeviceState.UNAVAILABLE:
                self._report(entry)
            else:
                self._spawn(self._check_drift(entry))
        while not self._stopping.is_set():
            now = time.monotonic()
            for entry in manager.managed:
                if entry.state is DeviceState.UNAVAILABLE and entry.next_try_at <= now:
                    await manager.try_open(entry)
            await wait_event(self._stopping, SUPERVISE_EVERY_S)

    async def stop(self) -> None:
        self._stopping.set()
        for task in list(self._checks):
            task.cancel()

    def apply_config(self, device_name: str) -> None:
        """The hub asked for ``device_name``'s model config to be written (runs in the
        background; the outcome is an event)."""
        self._spawn(self._apply(device_name))

    def _report(self, entry: ManagedDevice) -> None:
        ready = entry.state is DeviceState.READY
        if ready:
            self._spawn(self._check_drift(entry))
            self._emit("device_ready", Severity.INFO, entry.config.name, ["reconnected"])
        else:
            name, error = entry.config.name, entry.last_error
            self._emit("device_unavailable", Severity.MAJOR, name, [error])

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._checks.add(task)  # keep a reference: the loop only holds weak ones
        task.add_done_callback(self._checks.discard)

    def _emit(self, kind: str, severity: Severity, device: str, lines: list[str]) -> None:
        emit_event(
            self._ctx.outbox,
            station_id=self._ctx.config.station_id,
            kind=kind,
            severity=severity,
            message="; ".join(lines),
            device=device,
        )

    async def _check_drift(self, entry: ManagedDevice) -> None:
        """Read the device back against its model config; report any difference."""
        try:
            drift = await entry.device.config_drift()
        except DeviceError as err:
            self._emit("config_check_failed", Severity.WARNING, entry.config.name, [str(err)])
            return
        if drift:
            log.warning("device %s: config drift: %s", entry.config.name, "; ".join(drift))
            self._emit("config_drift", Severity.WARNING, entry.config.name, drift)

    async def _apply(self, device_name: str) -> None:
        entry = next((e for e in self._ctx.devices.managed if e.config.name == device_name), None)
        if entry is None or entry.state is not DeviceState.READY:
            why = "no such device" if entry is None else f"device is {entry.state}"
            self._emit("config_apply_failed", Severity.MINOR, device_name, [why])
            return
        try:
            changed = await entry.device.apply_config()
        except DeviceError as err:
            self._emit("config_apply_failed", Severity.MINOR, device_name, [str(err)])
            return
        self._emit("config_applied", Severity.INFO, device_name, changed or ["nothing to change"])


def create(ctx: AgentContext) -> DeviceSupervisor:
    """Component factory."""
    return DeviceSupervisor(ctx)
