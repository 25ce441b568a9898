"""Serial ports opened by URL, as asyncio streams.

`pyserial-asyncio-fast` (Home Assistant's maintained fork of pyserial-asyncio) puts the port's
file descriptor on the event loop with ``add_reader``: one loop, no thread per port. Ports are
opened with :func:`serial.serial_for_url`, so ``/dev/serial/by-id/...``, a pty path,
``socket://host:port`` and ``loop://`` all work the same way (python-can's ``SerialBus`` idea);
``usb://VID:PID[/SERIAL]`` finds a USB adapter by its identity (:func:`resolve_port`).

Every failure leaves this module as a :mod:`drivers.errors` exception: a port that cannot be
opened or that vanishes is :class:`DeviceUnavailableError` (retryable: unplug/replug), a reply
that does not come is :class:`DeviceTimeoutError`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import serial
from serial.tools import list_ports
from serial_asyncio_fast import connection_for_serial

from drivers.errors import DeviceTimeoutError, DeviceUnavailableError

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 4096
USB_SCHEME = "usb://"


def resolve_port(url: str) -> str:
    """``usb://VID:PID[/SERIAL]`` -> the device path of that USB serial adapter right now;
    any other URL unchanged.

    Identifying a device by its USB identity, not by ``/dev/ttyUSB0``, survives replugging into
    another socket (the kernel may hand out a new number) and never opens the wrong device.
    Several matches without a serial number are refused: the config must say which one.
    """
    if not url.startswith(USB_SCHEME):
        return url
    ident, _, serial_number = url.removeprefix(USB_SCHEME).partition("/")
    vid_text, _, pid_text = ident.partition(":")
    try:
        vid, pid = int(vid_text, 16), int(pid_text, 16)
    except ValueError:
        raise DeviceUnavailableError(f"{url}: expected usb://VID:PID[/SERIAL] in hex") from None
    matches: list[str] = [
        str(port.device)
        for port in list_ports.comports()
        if (port.vid, port.pid) == (vid, pid)
        and (not serial_number or port.serial_number == serial_number)
    ]
    if not matches:
        raise DeviceUnavailableError(
            f"no USB serial device {url.removeprefix(USB_SCHEME)} plugged in"
        )
    if len(matches) > 1:
        raise DeviceUnavailableError(
            f"{len(matches)} USB serial devices match {url} ({', '.join(sorted(matches))}): "
            "add the serial number, usb://VID:PID/SERIAL"
        )
    return matches[0]


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """How to open a port; ``reset_on_open=False`` keeps DTR/RTS low while opening, because
    raising DTR resets Arduino-based GRBL boards and loses their position (gnea/grbl#160)."""

    baudrate: int = 115200
    bytesize: int = serial.EIGHTBITS
    parity: str = serial.PARITY_NONE
    stopbits: float = serial.STOPBITS_ONE
    reset_on_open: bool = False


class SerialLine:
    """An open port: write bytes, read CR/LF-terminated lines with a timeout."""

    def __init__(
        self, url: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.url = url
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, url: str, settings: SerialSettings | None = None) -> SerialLine:
        """Open ``url``; :class:`DeviceUnavailableError` when the port is not there."""
        settings = settings or SerialSettings()
        try:
            port = serial.serial_for_url(
                resolve_port(url),
                baudrate=settings.baudrate,
                bytesize=settings.bytesize,
                parity=settings.parity,
                stopbits=settings.stopbits,
                timeout=0,
                do_not_open=True,
            )
            if not settings.reset_on_open:
                port.dtr = False
                port.rts = False
            port.open()
        except (serial.SerialException, OSError, ValueError) as err:
            raise DeviceUnavailableError(f"cannot open serial port {url}: {err}") from err
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_LINE_BYTES, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        transport, _ = await connection_for_serial(loop, lambda: protocol, port)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        log.debug("opened serial port %s at %d baud", url, settings.baudrate)
        return cls(url, reader, writer)

    async def write(self, data: bytes) -> None:
        """Write ``data`` and wait until the OS has taken it."""
        if self._writer.is_closing():
            raise DeviceUnavailableError(f"serial port {self.url} is closed")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (OSError, serial.SerialException, ConnectionError) as err:
            raise DeviceUnavailableError(f"serial port {self.url} failed: {err}") from err

    async def readline(self, within: float) -> bytes:
        """The next line without its CR/LF; raises when none arrives ``within`` seconds."""
        try:
            raw = await asyncio.wait_for(self._reader.readuntil(b"\n"), within)
        except TimeoutError as err:
            raise DeviceTimeoutError(f"no reply on {self.url} within {within:.2f} s") from err
        except asyncio.IncompleteReadError as err:
            raise DeviceUnavailableError(f"serial port {self.url} closed (unplugged?)") from err
        except asyncio.LimitOverrunError as err:
            raise DeviceUnavailableError(
                f"line longer than {MAX_LINE_BYTES} bytes on {self.url}: not our device?"
            ) from err
        except (OSError, serial.SerialException) as err:
            raise DeviceUnavailableError(f"serial port {self.url} failed: {err}") from err
        return raw.rstrip(b"\r\n")

    async def read_available(self, within: float) -> bytes:
        """Whatever bytes arrive ``within`` seconds (empty when none); for handshakes."""
        try:
            return await asyncio.wait_for(self._reader.read(MAX_LINE_BYTES), within)
        except TimeoutError:
            return b""
        except (OSError, serial.SerialException) as err:
            raise DeviceUnavailableError(f"serial port {self.url} failed: {err}") from err

    @property
    def closed(self) -> bool:
        return self._writer.is_closing()

    async def close(self) -> None:
        """Close the port; safe to call twice."""
        if not self._writer.is_closing():
            self._writer.close()
