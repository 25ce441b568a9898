"""Backends by (family, backend), imported lazily so a station loads only what it drives.

Each family package declares its own table, ``drivers/<family>/__init__.py: BACKENDS``
(backend name -> ``"module:Class"``), so adding a backend touches only its family. Third-party
backends register through the ``benchfleet.drivers`` entry-point group with names of the form
``<family>.<backend>`` (python-can's ``can.interface`` idea).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from drivers.base import Device
from drivers.errors import DeviceUnavailableError

FAMILIES = ("laser", "scale", "cleaner", "camera")
ENTRY_POINT_GROUP = "benchfleet.drivers"


def backends() -> dict[tuple[str, str], str]:
    """Every known ``(family, backend) -> "module:Class"``, ours and installed plugins'."""
    table: dict[tuple[str, str], str] = {}
    for family in FAMILIES:
        try:
            module = importlib.import_module(f"drivers.{family}")
        except ModuleNotFoundError:
            continue  # a family not written yet
        for backend, target in getattr(module, "BACKENDS", {}).items():
            table[(family, backend)] = target
    for point in entry_points(group=ENTRY_POINT_GROUP):
        family, _, backend = point.name.partition(".")
        table[(family, backend)] = point.value
    return table


def backend_class(family: str, backend: str) -> type[Device]:
    """The class registered for ``(family, backend)``; ``KeyError`` names what exists."""
    table = backends()
    try:
        target = table[(family, backend)]
    except KeyError:
        known = ", ".join(f"{f}/{b}" for f, b in sorted(table))
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
