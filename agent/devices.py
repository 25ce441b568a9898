"""The station's devices, opened from config through the drivers registry."""

from __future__ import annotations

import logging

from agent.config import DeviceConfig
from drivers.base import Device
from drivers.camera.base import Camera
from drivers.laser.base import Laser
from drivers.registry import open_device
from protocol.models import DeviceInfo

log = logging.getLogger(__name__)


class DeviceManager:
    """Owns the open devices; gives the job runner typed handles to them."""

    def __init__(self, devices: list[Device]) -> None:
        self.devices = devices

    @classmethod
    async def open(cls, configs: list[DeviceConfig]) -> DeviceManager:
        """Open every configured device (a device that fails to open stops the agent)."""
        devices: list[Device] = []
        for config in configs:
            device = await open_device(
                config.family, config.backend, config.name, config.url, config.options
            )
            log.info("device %s: %s/%s open", config.name, config.family, config.backend)
            devices.append(device)
        return cls(devices)

    @property
    def laser(self) -> Laser | None:
        """The station's laser (the first one configured)."""
        return next((d for d in self.devices if isinstance(d, Laser)), None)

    @property
    def camera(self) -> Camera | None:
        """The station's camera (the first one configured)."""
        return next((d for d in self.devices if isinstance(d, Camera)), None)

    def infos(self) -> list[DeviceInfo]:
        """The devices as the birth message announces them."""
        return [
            DeviceInfo(name=d.name, family=d.family, model=d.model, backend=d.backend)
            for d in self.devices
        ]

    async def close(self) -> None:
        """Close every device, the last opened first."""
        for device in reversed(self.devices):
            await device.close()
