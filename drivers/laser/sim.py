"""A stand-in laser for the skeleton: no wire protocol, just timing, a hash and faults.

The protocol-faithful GRBL simulator over a pseudo-terminal comes with the drivers issue; this
one lets the agent run the whole job loop without hardware today.

Options: ``seconds_per_char`` (default 0.05), ``fault`` (``"disconnect_mid_job"``: raise
:class:`DeviceUnavailableError` halfway through).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from typing import Any, ClassVar

from drivers.errors import DeviceUnavailableError
from drivers.laser.base import Laser

FAULTS = ("disconnect_mid_job",)


def toolpath(text: str) -> str:
    """A trivial deterministic "G-code": one move per character (real fonts come later)."""
    lines = ["G21", "G90", "M4 S0"]
    for index, char in enumerate(text):
        lines.append(f"G1 X{index * 2:.3f} Y0 S{ord(char)} ; glyph {index}")
    lines += ["M5", "G0 X0 Y0"]
    return "\n".join(lines) + "\n"


class SimLaser(Laser):
    """Simulated laser; ``engrave_count`` counts engravings that touched the (virtual) piece."""

    backend: ClassVar[str] = "sim"

    def __init__(self, name: str, url: str | None, options: Mapping[str, Any]) -> None:
        super().__init__(name, url, options)
        self.seconds_per_char = float(self.options.get("seconds_per_char", 0.05))
        self.fault: str | None = self.options.get("fault")
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; known: {', '.join(FAULTS)}")
        self.engrave_count = 0

    @property
    def model(self) -> str:
        return "sim-laser"

    async def _engrave(self, text: str) -> str:
        self.engrave_count += 1
        gcode = toolpath(text)
        half = len(text) // 2
        for index in range(len(text)):
            if self.fault == "disconnect_mid_job" and index == half:
                raise DeviceUnavailableError(f"laser {self.name!r} disconnected mid-job")
            await asyncio.sleep(self.seconds_per_char)
        return hashlib.sha256(gcode.encode()).hexdigest()
