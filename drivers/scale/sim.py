"""Simulated balances on a pseudo-terminal, speaking MT-SICS or A&D continuous output.

:class:`Balance` is the physics: a load you :meth:`~Balance.place` (grams on the pan), zero and
tare memories, a settling time after every change (readings are dynamic until then), noise,
capacity (overload above it, underload when the load is negative: the pan was lifted), and a
``never_settles`` fault. :class:`MtSicsSimulator` and :class:`ContinuousSimulator` put it on a
pty; both can corrupt their next replies with garbage bytes, and :meth:`unplug`/:meth:`replug`
come from :class:`~drivers.pty_sim.PtySimulator` (set ``balance.serial_number`` before a replug
to play a different balance).

The ``sim`` backend (:class:`SimScale`) starts an :class:`MtSicsSimulator` in-process and drives
it with the real :class:`~drivers.scale.mtsics.MtSicsScale`, so a demo exercises the protocol.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from drivers.pty_sim import PtySimulator
from drivers.scale.base import Unit, Weight
from drivers.scale.continuous import format_ad_line
from drivers.scale.mtsics import MtSicsScale, format_weight

GARBAGE = b"\x00\xfeS \x13\x88#@!\x7f"


@dataclass
class Balance:
    """A balance's state; thread-safe (tests place loads while the simulator thread reads)."""

    serial_number: str = "B123456789"
    model: str = "XS204"
    capacity_g: Decimal = Decimal("220")
    resolution_g: Decimal = Decimal("0.0001")
    settle_s: float = 0.2
    noise_g: float = 0.0  # standard deviation added to every reading, in grams
    never_settles: bool = False
    load_g: Decimal = Decimal(0)
    zero_g: Decimal = Decimal(0)
    tare_g: Decimal = Decimal(0)
    _changed_at: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def decimals(self) -> int:
        return max(-int(self.resolution_g.as_tuple().exponent), 0)

    def place(self, grams: Decimal | str | float) -> None:
        """Put ``grams`` on the pan (replacing what was there); settling starts again."""
        with self._lock:
            self.load_g = Decimal(str(grams))
            self._changed_at = time.monotonic()

    def settled(self) -> bool:
        return not self.never_settles and time.monotonic() - self._changed_at >= self.settle_s

    def limit(self) -> str:
        """``"+"`` overload, ``"-"`` underload, ``""`` in range."""
        if self.load_g - self.zero_g > self.capacity_g + 9 * self.resolution_g:
            return "+"
        return "-" if self.load_g < 0 else ""

    def reading(self) -> Weight:
        """The net weight now, rounded to the resolution; dynamic while settling."""
        with self._lock:
            stable = self.settled()
            net = self.load_g - self.zero_g - self.tare_g
            jitter = self.noise_g + (0.0 if stable else float(self.resolution_g) * 20)
            if jitter:
                net += Decimal(str(random.gauss(0.0, jitter)))
            return Weight(net.quantize(self.resolution_g), Unit.GRAM, stable)

    def zero(self) -> str:
        """Zero now; returns the MT-SICS status (``A`` done, ``+``/``-`` out of range)."""
        with self._lock:
            if abs(self.load_g) > self.capacity_g * Decimal("0.02"):
                return "+" if self.load_g > 0 else "-"
            self.zero_g, self.tare_g = self.load_g, Decimal(0)
            return "A"

    def tare(self) -> Weight | str:
        """Tare now; the tare weight, or ``"-"`` when the gross weight is negative."""
        with self._lock:
            gross = self.load_g - self.zero_g
            if gross < 0:
                return "-"
            self.tare_g = gross.quantize(self.resolution_g)
            return Weight(self.tare_g, Unit.GRAM, stable=True)


class _BalanceSimulator(PtySimulator):
    """Line splitting and reply corruption shared by both dialects."""

    def __init__(self, balance: Balance | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.balance = balance or Balance()
        self._buffer = b""
        self._corrupt = 0

    def corrupt_replies(self, count: int = 1) -> None:
        """Replace the next ``count`` lines sent with garbage bytes (a noisy cable)."""
        self._corrupt = count

    def send_line(self, text: str) -> None:
        if self._corrupt > 0:
            self._corrupt -= 1
            self.send(GARBAGE + b"\r\n")
            return
        self.send(text.encode("ascii") + b"\r\n")

    def on_bytes(self, data: bytes) -> None:
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            self.on_line(line.rstrip(b"\r"))

    def on_plug(self) -> None:
        self._buffer = b""

    def on_line(self, line: bytes) -> None:
        raise NotImplementedError


class MtSicsSimulator(_BalanceSimulator):
    """MT-SICS level 0/1. ``S``, ``Z`` and ``T`` wait for stability up to ``stable_timeout_s``
    (then answer ``I``, as the balance does); later commands queue behind them; ``@`` cancels
    everything and answers ``I4 A "<serial>"``."""

    def __init__(
        self, balance: Balance | None = None, *, stable_timeout_s: float = 1.0, **kwargs: Any
    ) -> None:
        super().__init__(balance, **kwargs)
        self.stable_timeout_s = stable_timeout_s
        self._pending: tuple[str, float] | None = None
        self._queue: deque[str] = deque()

    def on_plug(self) -> None:
        super().on_plug()
        self._pending, self._queue = None, deque()
        self.send_line(f'I4 A "{self.balance.serial_number}"')  # power-up announcement

    def on_line(self, line: bytes) -> None:
        try:
            command = line.decode("ascii").strip()
        except UnicodeDecodeError:
            self.send_line("ET")
            return
        if command == "@":
            self._pending, self._queue = None, deque()
            self.send_line(f'I4 A "{self.balance.serial_number}"')
        elif self._pending or self._queue:
            self._queue.append(command)
        else:
            self._execute(command)

    def tick(self) -> None:
        if self._pending is not None:
            command, since = self._pending
            if self.balance.settled():
                self._pending = None
                self._answer_when_stable(command)
            elif time.monotonic() - since > self.stable_timeout_s:
                self._pending = None
                self.send_line(f"{command} I")
        while self._pending is None and self._queue:
            self._execute(self._queue.popleft())

    def _execute(self, command: str) -> None:
        balance = self.balance
        if command == "I4":
            self.send_line(f'I4 A "{balance.serial_number}"')
        elif command == "I2":
            self.send_line(f'I2 A "{balance.model} {balance.capacity_g} g"')
        elif command == "SI":
            self._send_weight_or_limit()
        elif command in ("S", "Z", "T"):
            if command == "S" and balance.limit():
                self.send_line(f"S {balance.limit()}")
            elif balance.settled():
                self._answer_when_stable(command)
            else:
                self._pending = (command, time.monotonic())
        else:
            self.send_line("ES")

    def _answer_when_stable(self, command: str) -> None:
        if command == "S":
            self._send_weight_or_limit()
        elif command == "Z":
            self.send_line(f"Z {self.balance.zero()}")
        else:
            tare = self.balance.tare()
            if isinstance(tare, str):
                self.send_line(f"T {tare}")
            else:
                self.send_line(format_weight("T", tare, self.balance.decimals))

    def _send_weight_or_limit(self) -> None:
        if limit := self.balance.limit():
            self.send_line(f"S {limit}")
        else:
            self.send_line(format_weight("S", self.balance.reading(), self.balance.decimals))


class ContinuousSimulator(_BalanceSimulator):
    """A&D continuous output: one line every ``interval_s``; ``Z``/``T`` act once stable,
    other commands get ``EC,E01`` (undefined command)."""

    def __init__(
        self, balance: Balance | None = None, *, interval_s: float = 0.05, **kwargs: Any
    ) -> None:
        super().__init__(balance, **kwargs)
        self.interval_s = interval_s
        self._next_line_at = 0.0
        self._waiting: deque[str] = deque()

    def on_line(self, line: bytes) -> None:
        command = line.decode("ascii", errors="replace").strip()
        if command in ("Z", "T"):
            self._waiting.append(command)
        else:
            self.send_line("EC,E01")

    def tick(self) -> None:
        if self._waiting and self.balance.settled():
            if self._waiting.popleft() == "Z":
                self.balance.zero()
            else:
                self.balance.tare()
        now = time.monotonic()
        if now >= self._next_line_at:
            self._next_line_at = now + self.interval_s
            self.send_line(self._current_line())

    def _current_line(self) -> str:
        limit = self.balance.limit()
        if limit:
            return f"OL,{limit}9999999 g"
        return format_ad_line(self.balance.reading(), self.balance.decimals)


def balance_from_options(options: Mapping[str, Any]) -> Balance:
    """A :class:`Balance` from backend options (``capacity_g``, ``resolution_g``, ...)."""
    balance = Balance(
        serial_number=str(options.get("serial_number", "SIM0000001")),
        model=str(options.get("model", "SIM-MTSICS")),
        capacity_g=Decimal(str(options.get("capacity_g", "220"))),
        resolution_g=Decimal(str(options.get("resolution_g", "0.0001"))),
        settle_s=float(options.get("settle_s", 0.2)),
        noise_g=float(options.get("noise_g", 0.0)),
    )
    balance.place(options.get("load_g", 0))
    return balance


class SimScale(MtSicsScale):
    """The real MT-SICS driver against an in-process :class:`MtSicsSimulator`.

    Options: those of :func:`balance_from_options`, ``stable_timeout_s``, ``link`` (a symlink
    path for the pty), plus the MT-SICS options. :attr:`simulator` is there to place loads.
    """

    backend: ClassVar[str] = "sim"

    def __init__(self, name: str, url: str | None, options: Mapping[str, Any]) -> None:
        super().__init__(name, url, options)
        link = self.options.get("link")
        self.simulator = MtSicsSimulator(
            balance_from_options(self.options),
            stable_timeout_s=float(self.options.get("stable_timeout_s", 1.0)),
            link=None if link is None else Path(link),
        )
        self._simulator_started = False

    async def _connect(self) -> None:
        if not self._simulator_started:
            self.url = self.simulator.start()
            self._simulator_started = True
        await super()._connect()

    async def close(self) -> None:
        await super().close()
        self.simulator.stop()
        self._simulator_started = False
