"""What every device has, whatever its family: a name, an open/close life cycle."""

from __future__ import annotations

from abc import ABC
from collections.abc import Mapping
from types import TracebackType
from typing import Any, ClassVar, Self

from drivers.errors import DeviceReportedError


class Device(ABC):
    """Base of every family's base class; backends are opened by :func:`drivers.registry`."""

    family: ClassVar[str]
    backend: ClassVar[str]

    def __init__(self, name: str, url: str | None, options: Mapping[str, Any]) -> None:
        self.name = name
        self.url = url
        self.options = dict(options)

    @property
    def model(self) -> str:
        """The device model as the device reports it (backends override)."""
        return ""

    async def config_drift(self) -> list[str]:
        """How the device differs from its model config (``firmware_configs/``), one line per
        difference; ``[]`` when it matches or the backend has nothing to compare."""
        return []

    async def apply_config(self) -> list[str]:
        """Write the model config to the device; one line per change. Backends whose device
        has writable settings override this; the default refuses."""
        raise DeviceReportedError(f"{self.family} {self.name!r}: no writable configuration")

    async def open(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Connect to the device; the default has nothing to connect."""

    async def close(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Release the device; the default has nothing to release."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
