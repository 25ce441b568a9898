"""A cleaner driven over Modbus RTU (RS-485) with pymodbus.

Why Modbus RTU: bench ultrasonic baths have no remote protocol (research/device-anchors.md §5),
so a station switches them with relays and reads a temperature probe. The cheap, common parts
for that speak Modbus RTU: 4-channel RS-485 relay boards (coils) and PT100 transmitters (an
input register in 0.1 °C). Both share one bus and one USB-RS485 adapter. Why pymodbus: it is
maintained, typed, has an asyncio serial client (no thread per port) and a server side, and its
RTU framer resynchronises on line noise by itself.

Which coil is which relay and where the temperature lives is data, not code:
``firmware_configs/cleaner/<model>.toml`` (schema: :mod:`drivers.cleaner.config`).

Options: ``model`` (default ``generic-relay-pt100``) or ``config_path``; ``timeout_s`` (reply
timeout, default 0.5); ``retries`` (default 1); ``poll_s`` (see the base class).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from pymodbus.client import AsyncModbusSerialClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from drivers.cleaner.base import UltrasonicCleaner
from drivers.cleaner.config import DEFAULT_MODEL, CleanerConfig, load_cleaner_config
from drivers.cleaner.program import CleaningProgram
from drivers.errors import (
    DeviceProtocolError,
    DeviceReportedError,
    DeviceTimeoutError,
    DeviceUnavailableError,
)
from drivers.serial_link import resolve_port

log = logging.getLogger(__name__)

MODBUS_EXCEPTIONS = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "slave device failure",
    6: "slave device busy",
}


class ModbusCleaner(UltrasonicCleaner):
    """Relays on coils, the bath temperature in a register, all on one RTU unit id."""

    backend: ClassVar[str] = "modbus"

    def __init__(self, name: str, url: str | None, options: Mapping[str, Any]) -> None:
        super().__init__(name, url, options)
        self.config: CleanerConfig = self._load_config()
        self.timeout_s = float(self.options.get("timeout_s", 0.5))
        self.retries = int(self.options.get("retries", 1))
        self._client: AsyncModbusSerialClient | None = None
        self._bytes_in = 0  # bytes heard during the current request: silence vs garbage
        self._io_lock = asyncio.Lock()  # a write and its read-back are one transaction

    @property
    def model(self) -> str:
        return self.config.model

    def program(self, name: str) -> CleaningProgram:
        return self.config.program(name)

    def _load_config(self) -> CleanerConfig:
        path = self.options.get("config_path")
        model = str(self.options.get("model", DEFAULT_MODEL))
        return load_cleaner_config(model, path=Path(path) if path else None)

    async def open(self) -> None:
        """Connect, check the unit answers (temperature and relays), switch every relay off."""
        if not self.url:
            raise DeviceUnavailableError(f"cleaner {self.name!r}: no serial port given")
        registers = self.config.registers
        self._client = AsyncModbusSerialClient(
            resolve_port(self.url),
            framer=FramerType.RTU,
            baudrate=registers.baudrate,
            parity=registers.parity,
            stopbits=registers.stopbits,
            timeout=self.timeout_s,
            retries=self.retries,
            # No reconnect behind our back: a pty or ttyUSB number is recycled, so a silent
            # reconnect could reach another device. The agent reopens (backoff, handshake).
            reconnect_delay=0,
            name=f"cleaner:{self.name}",
            trace_packet=self._trace_packet,
        )
        if not await self._client.connect():
            self._client.close()
            self._client = None
            raise DeviceUnavailableError(f"cleaner {self.name!r}: cannot open {self.url}")
        await self._read_temperature_c()  # the handshake: a unit that answers sanely
        await self._all_off()  # a unit left running by a crashed agent stops here
        log.info("cleaner %s: %s on %s", self.name, self.model, self.url)

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # ---- hooks ----------------------------------------------------------------------------

    def _relay_names(self) -> tuple[str, ...]:
        return tuple(self.config.registers.coils.by_name())

    async def _set_relay(self, relay: str, on: bool) -> None:
        address = self.config.registers.coils.by_name()[relay]
        async with self._io_lock:
            unit = self._device_id
            await self._call(
                f"write coil {address}",
                lambda: self._modbus.write_coil(address, on, device_id=unit),
            )
            reply = await self._call(
                f"read coil {address}",
                lambda: self._modbus.read_coils(address, count=1, device_id=unit),
            )
        if not reply.bits or bool(reply.bits[0]) is not on:
            raise DeviceReportedError(
                f"cleaner {self.name!r}: relay {relay} (coil {address}) stuck "
                f"{'off' if on else 'on'} after switching it {'on' if on else 'off'}"
            )

    async def _read_temperature_c(self) -> float:
        sensor = self.config.registers.temperature

        def read() -> Awaitable[ModbusPDU]:
            client = self._modbus
            read = (
                client.read_input_registers
                if sensor.kind == "input"
                else client.read_holding_registers
            )
            return read(sensor.address, count=1, device_id=self._device_id)

        async with self._io_lock:
            reply = await self._call(f"read register {sensor.address}", read)
        if len(reply.registers) != 1:
            raise DeviceProtocolError(f"cleaner {self.name!r}: temperature reply {reply}")
        return sensor.to_celsius(reply.registers[0])

    # ---- Modbus plumbing ------------------------------------------------------------------

    @property
    def _modbus(self) -> AsyncModbusSerialClient:
        if self._client is None:
            raise DeviceUnavailableError(f"cleaner {self.name!r} is not open")
        return self._client

    @property
    def _device_id(self) -> int:
        return self.config.registers.device_id

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self._bytes_in += len(data)
        return data

    async def _call(self, what: str, request: Callable[[], Awaitable[ModbusPDU]]) -> ModbusPDU:
        """Make one request and await its reply; pymodbus's exceptions become ours.

        ``request`` is a callable because pymodbus raises some errors (not connected) when the
        request is made, before there is anything to await.
        """
        self._bytes_in = 0
        where = f"cleaner {self.name!r} on {self.url}: {what}"
        try:
            reply = await request()
        except ConnectionException as err:
            raise DeviceUnavailableError(f"{where}: port gone (unplugged?)") from err
        except ModbusIOException as err:
            if not self._modbus.connected:
                raise DeviceUnavailableError(f"{where}: port gone (unplugged?)") from err
            if self._bytes_in:
                # Bytes came back, but never a frame with a good CRC: noise or not our unit.
                raise DeviceProtocolError(
                    f"{where}: {self._bytes_in} bytes but no valid RTU reply"
                ) from err
            raise DeviceTimeoutError(f"{where}: no reply within {self.timeout_s} s") from err
        except ModbusException as err:
            raise DeviceProtocolError(f"{where}: {err}") from err
        if reply.isError():
            code = reply.exception_code
            reason = MODBUS_EXCEPTIONS.get(code, f"exception {code}")
            raise DeviceReportedError(f"{where}: unit answered {reason}")
        return reply
