"""The laser family's public face; backends implement one hook, :meth:`Laser._engrave`.

The text to engrave is personal data: nothing here logs it, only its length and the hash of the
toolpath that came out of it.
"""

from __future__ import annotations

import logging
import time
from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from drivers.base import Device
from drivers.errors import DeviceError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EngraveReport:
    """What an engraving produced: the toolpath's hash (the job's evidence) and its duration."""

    gcode_sha256: str
    duration_s: float


class Laser(Device):
    """A laser engraver. Call :meth:`engrave`; backends override :meth:`_engrave`."""

    family: ClassVar[str] = "laser"

    async def engrave(self, text: str) -> EngraveReport:
        """Engrave ``text``; every failure is a :class:`DeviceError` (or a subclass)."""
        started = time.monotonic()
        log.info("laser %s: engraving %d characters", self.name, len(text))
        try:
            gcode_sha256 = await self._engrave(text)
        except DeviceError as err:
            log.warning("laser %s: engraving failed: %s", self.name, type(err).__name__)
            raise
        except Exception as err:
            # A backend bug must still reach the job runner as a device failure, not a crash.
            raise DeviceError(f"laser {self.name!r}: unexpected {type(err).__name__}") from err
        report = EngraveReport(gcode_sha256, time.monotonic() - started)
        log.info("laser %s: engraved in %.2f s", self.name, report.duration_s)
        return report

    @abstractmethod
    async def _engrave(self, text: str) -> str:
        """Engrave ``text`` and return the SHA-256 (hex) of the G-code that was streamed."""
