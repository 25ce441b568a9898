"""What serial balances share: a port opened by URL with the balance's line settings.

Options: ``baudrate`` (default 9600, the MT-SICS and A&D factory setting), ``bytesize`` (7 or
8), ``parity`` (``"N"``, ``"E"``, ``"O"``), ``stopbits``, ``reply_within_s`` (how long a
command may wait for its answer, default 2.0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.errors import DeviceUnavailableError
from drivers.scale.base import Scale
from drivers.serial_link import SerialLine, SerialSettings


def serial_settings(options: Mapping[str, Any]) -> SerialSettings:
    """Line settings from backend options (unknown parity letters fail when the port opens)."""
    return SerialSettings(
        baudrate=int(options.get("baudrate", 9600)),
        bytesize=int(options.get("bytesize", 8)),
        parity=str(options.get("parity", "N")),
        stopbits=float(options.get("stopbits", 1)),
        # Balances do not reset on DTR, but nothing is gained by toggling it either.
        reset_on_open=False,
    )


class SerialScale(Scale):
    """A balance on a serial port; backends add the protocol."""

    def __init__(self, name: str, url: str | None, options: Mapping[str, Any]) -> None:
        super().__init__(name, url, options)
        self.settings = serial_settings(self.options)
        self.reply_within_s = float(self.options.get("reply_within_s", 2.0))
        self._line: SerialLine | None = None

    @property
    def line(self) -> SerialLine:
        if self._line is None or self._line.closed:
            raise DeviceUnavailableError(f"scale {self.name!r}: port {self.url} is not open")
        return self._line

    async def _connect(self) -> None:
        if self.url is None:
            raise DeviceUnavailableError(f"scale {self.name!r}: no port URL configured")
        if self._line is None or self._line.closed:
            self._line = await SerialLine.open(self.url, self.settings)

    async def _disconnect(self) -> None:
        if self._line is not None:
            await self._line.close()
            self._line = None

    async def _send(self, command: str) -> None:
        """One command line, CR LF terminated (MT-SICS, A&D and Ohaus all accept CR LF)."""
        await self.line.write(command.encode("ascii") + b"\r\n")
