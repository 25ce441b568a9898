"""Which serial ports exist, and what answers on each (``benchfleet devices scan``).

Listing is passive: USB VID:PID, serial number and description from the OS. Probing is not —
it opens a port with each candidate backend in turn and lets that backend's own handshake
decide (GRBL banner / ``$I``, MT-SICS ``I4``, a Modbus read of the cleaner's IO module), so
``probe`` is opt-in and must never be pointed at a port a running agent is using.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

from serial.tools import list_ports

from drivers.errors import DeviceError
from drivers.registry import backend_class

# Real backends worth trying on an unknown port, in an order that disturbs least: a scale
# query and a Modbus read are harmless, GRBL's handshake may soft-reset an idle controller.
PROBE_ORDER: tuple[tuple[str, str], ...] = (
    ("scale", "mtsics"),
    ("cleaner", "modbus"),
    ("laser", "grbl"),
)


@dataclass(frozen=True, slots=True)
class PortInfo:
    """A serial port as the OS describes it."""

    device: str
    usb_id: str  # "VID:PID" in hex, or "" for ports that are not USB
    serial_number: str
    description: str


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What answered on a port (``family`` is "" when nothing did)."""

    port: str
    family: str = ""
    backend: str = ""
    model: str = ""
    detail: str = ""

    @property
    def summary(self) -> str:
        """One line for people: what answered, or why nothing did."""
        if not self.family:
            return f"nothing ({self.detail})"
        return f"{self.family}/{self.backend} {self.model}".strip()


def list_serial_ports() -> list[PortInfo]:
    """Every serial port the OS knows, USB ones with their identity."""
    ports = []
    for port in sorted(list_ports.comports(), key=lambda p: p.device):
        usb_id = f"{port.vid:04x}:{port.pid:04x}" if port.vid is not None else ""
        ports.append(
            PortInfo(
                device=port.device,
                usb_id=usb_id,
                serial_number=port.serial_number or "",
                description=port.description or "",
            )
        )
    return ports


async def probe(
    url: str,
    *,
    candidates: Iterable[tuple[str, str]] = PROBE_ORDER,
    within: float = 3.0,
) -> ProbeResult:
    """Try each candidate backend's handshake on ``url``; the first that succeeds names it."""
    failures = []
    for family, backend in candidates:
        device = backend_class(family, backend)(f"probe-{family}", url, {})
        try:
            await asyncio.wait_for(device.open(), within)
        except (DeviceError, OSError, TimeoutError) as err:
            failures.append(f"{family}/{backend}: {type(err).__name__}")
            continue
        finally:
            with contextlib.suppress(DeviceError, OSError):
                await device.close()
        return ProbeResult(url, family, backend, device.model)
    return ProbeResult(url, detail="; ".join(failures) or "no candidates")
