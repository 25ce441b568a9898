"""A simulated bath on a relay board: a Modbus RTU slave on a pty, with a thermal model.

:class:`CleanerSimulator` is the board's firmware (coils, one temperature register, RTU framing
from :mod:`drivers.cleaner.rtu`) plus the water: ultrasound warms the bath by about 12 °C/h,
the heater by about 2 °C/min, and the bath cools towards ambient (Newton, one-hour time
constant). ``time_scale`` speeds the water up so tests see minutes in a second.

Faults (``fault`` option, or assign :attr:`CleanerSimulator.fault` at any time):
``over_temperature`` (thermostat failure: the bath runs away), ``relay_stuck`` (every contact
freezes where it is; the coil status reports the contact, as on boards with feedback),
``no_answer`` (requests are ignored; :meth:`unplug` is the pulled cable) and ``garbage`` (every
reply arrives with noise in front and a broken CRC).

:class:`SimCleaner` (backend ``"sim"``) starts a simulator in-process and drives it with the
real :class:`~drivers.cleaner.modbus.ModbusCleaner`: the same bytes as on a real bus.
"""

from __future__ import annotations

import random
import struct
import threading
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from drivers.cleaner import rtu
from drivers.cleaner.config import RegisterMap
from drivers.cleaner.modbus import ModbusCleaner
from drivers.pty_sim import PtySimulator

FAULTS = frozenset({"over_temperature", "relay_stuck", "no_answer", "garbage"})
COIL_COUNT = 8  # an 8-channel board; the map uses the first few
ULTRASOUND_C_PER_S = 12.0 / 3600
HEATER_C_PER_S = 2.0 / 60
RUNAWAY_C_PER_S = 0.5
COOLING_PER_S = 1.0 / 3600
# RTU ends a frame with 3.5 characters of silence (4 ms at 9600 baud); a pty delivers at once,
# so a generous gap stands for it without splitting a request the driver wrote in one go.
FRAME_SILENCE_S = 0.02


class BathModel:
    """Water temperature from relay states; advanced in simulated seconds."""

    def __init__(self, ambient_c: float, start_c: float) -> None:
        self.ambient_c = ambient_c
        self.temp_c = start_c

    def advance(self, seconds: float, *, ultrasound: bool, heater: bool, runaway: bool) -> None:
        gain = ULTRASOUND_C_PER_S * ultrasound + HEATER_C_PER_S * heater
        gain += RUNAWAY_C_PER_S * runaway
        loss = COOLING_PER_S * (self.temp_c - self.ambient_c)
        self.temp_c += (gain - loss) * seconds


class CleanerSimulator(PtySimulator):
    """The relay board + temperature transmitter, speaking Modbus RTU on a pty."""

    def __init__(
        self,
        registers: RegisterMap,
        *,
        ambient_c: float = 22.0,
        start_temp_c: float | None = None,
        time_scale: float = 1.0,
        fault: str | None = None,
        seed: int = 0,
        **pty_options: Any,
    ) -> None:
        super().__init__(**pty_options)
        self.registers = registers
        self.bath = BathModel(ambient_c, ambient_c if start_temp_c is None else start_temp_c)
        self.time_scale = time_scale
        self.coils = [False] * COIL_COUNT
        self.fault = fault
        self.requests = 0
        self.dropped_bytes = 0
        self._rng = random.Random(seed)
        self._buffer = b""
        self._last_rx = self._last_tick = time.monotonic()
        self._lock = threading.Lock()

    @property
    def fault(self) -> str | None:
        return self._fault

    @fault.setter
    def fault(self, fault: str | None) -> None:
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {sorted(FAULTS)}")
        self._fault = fault

    @property
    def temperature_c(self) -> float:
        return self.bath.temp_c

    def relay(self, name: str) -> bool:
        """Whether the named relay's contact is closed."""
        return self.coils[self.registers.coils.by_name()[name]]

    # ---- PtySimulator hooks ---------------------------------------------------------------

    def on_plug(self) -> None:
        self._buffer = b""

    def tick(self) -> None:
        now = time.monotonic()
        if self._buffer and now - self._last_rx > FRAME_SILENCE_S:
            self._handle(silence=True)
        seconds, self._last_tick = (now - self._last_tick) * self.time_scale, now
        with self._lock:
            self.bath.advance(
                seconds,
                ultrasound=self.relay("ultrasound"),
                heater="heater" in self.registers.coils.by_name() and self.relay("heater"),
                runaway=self.fault == "over_temperature",
            )

    def on_bytes(self, data: bytes) -> None:
        self._buffer += data
        self._last_rx = time.monotonic()
        self._handle(silence=False)

    def _handle(self, *, silence: bool) -> None:
        frames, self._buffer, dropped = rtu.split_requests(self._buffer, silence=silence)
        self.dropped_bytes += dropped
        for unit, pdu in frames:
            self.requests += 1
            if unit != self.registers.device_id or self.fault == "no_answer":
                continue  # another unit's request, or a dead one: RTU slaves stay silent
            with self._lock:
                reply = rtu.encode_frame(unit, self._answer(pdu))
            self.send(self._garble(reply) if self.fault == "garbage" else reply)

    # ---- the board's firmware -------------------------------------------------------------

    def _answer(self, pdu: bytes) -> bytes:
        function = pdu[0]
        if len(pdu) < 5:
            return rtu.exception_pdu(function, rtu.ILLEGAL_DATA_VALUE)
        address, value = struct.unpack(">HH", pdu[1:5])
        if function == rtu.READ_COILS:
            return self._read_coils(address, value)
        if function == rtu.WRITE_SINGLE_COIL:
            return self._write_coil(pdu, address, value)
        if function in (rtu.READ_INPUT_REGISTERS, rtu.READ_HOLDING_REGISTERS):
            return self._read_registers(function, address, value)
        return rtu.exception_pdu(function, rtu.ILLEGAL_FUNCTION)

    def _read_coils(self, address: int, count: int) -> bytes:
        if count < 1 or address + count > COIL_COUNT:
            return rtu.exception_pdu(rtu.READ_COILS, rtu.ILLEGAL_DATA_ADDRESS)
        bits = sum(1 << i for i in range(count) if self.coils[address + i])
        size = (count + 7) // 8
        return bytes([rtu.READ_COILS, size]) + bits.to_bytes(size, "little")

    def _write_coil(self, pdu: bytes, address: int, value: int) -> bytes:
        if address >= COIL_COUNT:
            return rtu.exception_pdu(rtu.WRITE_SINGLE_COIL, rtu.ILLEGAL_DATA_ADDRESS)
        if value not in (0x0000, 0xFF00):
            return rtu.exception_pdu(rtu.WRITE_SINGLE_COIL, rtu.ILLEGAL_DATA_VALUE)
        if self.fault != "relay_stuck":
            self.coils[address] = value == 0xFF00
        return pdu[:5]  # a write is acknowledged by echoing it, stuck contact or not

    def _read_registers(self, function: int, address: int, count: int) -> bytes:
        sensor = self.registers.temperature
        kind = "input" if function == rtu.READ_INPUT_REGISTERS else "holding"
        if count != 1 or address != sensor.address or kind != sensor.kind:
            return rtu.exception_pdu(function, rtu.ILLEGAL_DATA_ADDRESS)
        return bytes([function, 2]) + struct.pack(">H", sensor.to_raw(self.bath.temp_c))

    def _garble(self, reply: bytes) -> bytes:
        noise = bytes(self._rng.randrange(256) for _ in range(self._rng.randrange(1, 6)))
        return noise + reply[:-2] + bytes(b ^ 0xFF for b in reply[-2:])


class SimCleaner(ModbusCleaner):
    """Backend ``"sim"``: the Modbus driver against an in-process :class:`CleanerSimulator`.

    Options as :class:`ModbusCleaner`, plus the simulator's: ``ambient_c``, ``start_temp_c``,
    ``time_scale``, ``fault``, ``seed``. The URL is ignored (the simulator makes its own pty).
    """

    backend: ClassVar[str] = "sim"

    def __init__(self, name: str, url: str | None, options: Mapping[str, Any]) -> None:
        super().__init__(name, url, options)
        self.simulator = CleanerSimulator(
            self.config.registers,
            ambient_c=float(self.options.get("ambient_c", 22.0)),
            start_temp_c=_optional_float(self.options.get("start_temp_c")),
            time_scale=float(self.options.get("time_scale", 1.0)),
            fault=self.options.get("fault"),
            seed=int(self.options.get("seed", 0)),
        )

    async def open(self) -> None:
        self.url = self.simulator.start()
        try:
            await super().open()
        except BaseException:
            self.simulator.stop()
            raise

    async def close(self) -> None:
        await super().close()
        self.simulator.stop()


def _optional_float(value: object) -> float | None:
    return None if value is None else float(str(value))
