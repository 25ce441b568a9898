"""The serial transport over a real pseudo-terminal: lines, timeouts, unplug and replug."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers import serial_link
from drivers.errors import DeviceTimeoutError, DeviceUnavailableError
from drivers.pty_sim import PtySimulator
from drivers.serial_link import SerialLine


class Echo(PtySimulator):
    """Answers every line with ``echo:<line>``; a line 'quiet' gets no answer."""

    def __init__(self, link: Path | None = None) -> None:
        super().__init__(link=link)
        self._buffer = b""

    def on_bytes(self, data: bytes) -> None:
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            if line != b"quiet":
                self.send(b"echo:" + line + b"\r\n")

    def on_plug(self) -> None:
        self._buffer = b""


@pytest.mark.asyncio
async def test_lines_travel_both_ways_over_a_pty() -> None:
    sim = Echo()
    sim.start()
    try:
        line = await SerialLine.open(sim.port)
        for n in range(50):
            await line.write(f"G1 X{n}\n".encode())
            assert await line.readline(2) == f"echo:G1 X{n}".encode()
        await line.close()
    finally:
        sim.stop()


@pytest.mark.asyncio
async def test_silence_is_a_retryable_timeout() -> None:
    sim = Echo()
    sim.start()
    try:
        line = await SerialLine.open(sim.port)
        await line.write(b"quiet\n")
        with pytest.raises(DeviceTimeoutError) as caught:
            await line.readline(0.2)
        assert caught.value.retryable
        await line.close()
    finally:
        sim.stop()


@pytest.mark.asyncio
async def test_unplug_is_unavailable_and_replug_works_through_the_same_link(
    tmp_path: Path,
) -> None:
    sim = Echo(link=tmp_path / "ttyLaser")
    sim.start()
    try:
        line = await SerialLine.open(sim.port)
        await line.write(b"one\n")
        assert await line.readline(2) == b"echo:one"
        sim.unplug()
        with pytest.raises(DeviceUnavailableError):
            await line.readline(2)
        await line.close()
        sim.replug()
        again = await SerialLine.open(str(tmp_path / "ttyLaser"))
        await again.write(b"two\n")
        assert await again.readline(2) == b"echo:two"
        await again.close()
    finally:
        sim.stop()


@pytest.mark.asyncio
async def test_a_missing_port_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(DeviceUnavailableError, match="cannot open"):
        await SerialLine.open(str(tmp_path / "nothing-here"))


# No USB serial adapter is plugged into a CI machine, so the OS port list is the one thing
# replaced here (by ports shaped like pyserial's ListPortInfo); the resolver itself is real.
class FakeUsbPort:
    def __init__(self, device: str, vid: int, pid: int, serial_number: str) -> None:
        self.device, self.vid, self.pid, self.serial_number = device, vid, pid, serial_number


TWO_CH340 = [
    FakeUsbPort("/dev/ttyUSB0", 0x1A86, 0x7523, "A1"),
    FakeUsbPort("/dev/ttyUSB1", 0x1A86, 0x7523, "B2"),
    FakeUsbPort("/dev/ttyACM0", 0x0403, 0x6001, "FT1"),
]


@pytest.mark.parametrize(
    ("url", "device"),
    [
        ("usb://0403:6001", "/dev/ttyACM0"),
        ("usb://1a86:7523/B2", "/dev/ttyUSB1"),
        ("/dev/ttyS0", "/dev/ttyS0"),
        ("socket://127.0.0.1:5000", "socket://127.0.0.1:5000"),
    ],
)
def test_usb_identity_resolves_to_the_port_it_has_now(
    monkeypatch: pytest.MonkeyPatch, url: str, device: str
) -> None:
    monkeypatch.setattr(serial_link.list_ports, "comports", lambda: TWO_CH340)
    assert serial_link.resolve_port(url) == device


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("usb://1a86:7523", "add the serial number"),
        ("usb://1a86:7523/ZZ", "no USB serial device 1a86:7523/ZZ plugged in"),
        ("usb://dead:beef", "plugged in"),
        ("usb://ttyUSB0", "expected usb://VID:PID"),
    ],
)
def test_usb_identity_that_is_missing_or_ambiguous_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, url: str, message: str
) -> None:
    monkeypatch.setattr(serial_link.list_ports, "comports", lambda: TWO_CH340)
    with pytest.raises(DeviceUnavailableError, match=message):
        serial_link.resolve_port(url)
