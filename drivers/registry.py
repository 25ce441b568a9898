"""Backends by (family, backend), imported lazily so a station loads only what it drives."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from drivers.base import Device
from drivers.errors import DeviceUnavailableError

BACKENDS: dict[tuple[str, str], str] = {
    ("laser", "sim"): "drivers.laser.sim:SimLaser",
    ("camera", "sim"): "drivers.camera.sim:SimCamera",
}


def backend_class(family: str, backend: str) -> type[Device]:
    """The class registered for ``(family, backend)``; ``KeyError`` names what exists."""
    try:
        target = BACKENDS[(family, backend)]
    except KeyError:
        known = ", ".join(f"{f}/{b}" for f, b in sorted(BACKENDS))
        raise KeyError(f"no {family!r} backend {backend!r}; known: {known}") from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Device)):
        raise TypeError(f"{target} is not a Device subclass")
    return cls


async def open_device(
    family: str, backend: str, name: str, url: str | None, options: Mapping[str, Any]
) -> Device:
    """Create and open one device; a failure to open is a :class:`DeviceUnavailableError`."""
    device = backend_class(family, backend)(name, url, options)
    try:
        await device.open()
    except DeviceUnavailableError:
        raise
    except Exception as err:
        raise DeviceUnavailableError(f"cannot open {family} {name!r}: {err}") from err
    return device
