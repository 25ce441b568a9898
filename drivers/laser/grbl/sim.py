"""A GRBL 1.1h controller on a pseudo-terminal, for tests, the demo and the benchmark.

What a host can observe is kept faithful: the banner on every reset, ``ok``/``error:N`` per line,
push messages, ``$`` commands, ``$C`` check mode (leaving it resets), status reports with
``WCO``/``Ov`` only every few reports, a 128-byte RX ring (127 usable), a 15-block planner that
holds back the ``ok`` of a motion line while it is full, feed-based motion time, and the laser
firing only where GRBL would fire it. Two things are deliberately *louder* than real firmware:
bytes lost to an RX overflow or to an EEPROM write are counted in :attr:`GrblSimulator.stats`,
logged, and announced with a ``[MSG:...]``, where a real controller would lose them silently.

What the beam burned goes onto a :class:`~drivers.laser.burn.BurnCanvas`, saved to
``render_path`` whenever the machine stops after burning, so a simulated camera can photograph
the piece.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from drivers.laser.grbl.profile import load_profile
from drivers.laser.grbl.sim_machine import Block, GcodeError, Machine
from drivers.laser.grbl.sim_render import Renderer
from drivers.laser.grbl.sim_system import SystemCommands
from drivers.pty_sim import PtySimulator

log = logging.getLogger(__name__)

RX_SIZE = 128
PLANNER_BLOCKS = 15


@dataclass
class Faults:
    """Fault injection; line numbers count G-code lines since :meth:`GrblSimulator.new_piece`."""

    drop_line: int | None = None  # the controller never sees this line: no reply at all
    garble_line: int | None = None  # the line arrives corrupted (GRBL answers error:N)
    garble_reply: int | None = None  # this line's ``ok`` arrives as noise
    alarm_after_line: int | None = None
    alarm_code: int = 1  # hard limit
    disconnect_after_line: int | None = None
    replug_after_s: float | None = None  # None: stays unplugged until replug()
    reply_delay_s: float = 0.0  # slow replies (also models USB-serial latency)


@dataclass
class SimStats:
    """What tests and the benchmark read; only the simulator thread writes."""

    rx_overflows: int = 0
    lost_bytes: int = 0
    max_rx_used: int = 0
    starved_s: float = 0.0  # machine time the planner sat empty between blocks
    blocks: int = 0
    lines: list[str] = field(default_factory=list)  # every G-code/$ line received, in order
    alarms: int = 0
    status_requests: int = 0


class GrblSimulator(SystemCommands, PtySimulator):
    """GRBL 1.1h; ``speedup`` divides motion time (``math.inf``: instant), ``baud`` models the
    wire (0: infinitely fast), ``render_path`` receives the burn image."""

    tick_s = 0.001

    def __init__(
        self,
        *,
        link: Path | None = None,
        speedup: float = 1.0,
        baud: int = 0,
        render_path: Path | None = None,
        template: str = "ring_band",
        metal: str = "gold",
        settings: dict[int, float] | None = None,
        eeprom_write_s: float = 0.05,
    ) -> None:
        super().__init__(link=link)
        self.speedup = speedup
        self.baud = baud
        self.eeprom_write_s = eeprom_write_s
        self.settings = dict(settings or load_profile().numeric())
        self.machine = Machine(self.settings, blocks=PLANNER_BLOCKS)
        self.renderer = Renderer(render_path, template=template, metal=metal)
        self.faults = Faults()
        self.stats = SimStats()
        self.state = "Idle"
        self.check_mode = False
        self._lock = threading.RLock()
        self._rx = bytearray()
        self._held: str | None = None  # a line waiting for planner room (its ok waits too)
        self._wire: deque[tuple[float, int]] = deque()
        self._outbox: deque[tuple[float, bytes]] = deque()
        self._wire_free = self._eeprom_until = self._empty_since = 0.0
        self._last_tick = time.monotonic()
        self._job_lines = self._reports = 0
        self._overrides = [100, 100, 100]

    # ---- host-facing controls (any thread) ---------------------------------------------

    def new_piece(self, faults: Faults | None = None) -> None:
        """A fresh blank under the beam; line counting for ``faults`` restarts."""
        with self._lock:
            self.faults = faults or Faults()
            self._job_lines = 0
            self.renderer.new_piece()

    def reset_stats(self) -> None:
        with self._lock:
            self.stats = SimStats()
            self._empty_since = 0.0

    # ---- PtySimulator hooks (simulator thread) -----------------------------------------

    def on_plug(self) -> None:
        with self._lock:
            self._power_up()

    def on_bytes(self, data: bytes) -> None:
        with self._lock:
            now = time.monotonic()
            for byte in data:
                if self.baud:  # 10 bits per byte on an 8N1 wire
                    self._wire_free = max(now, self._wire_free) + 10 / self.baud
                    self._wire.append((self._wire_free, byte))
                else:
                    self._arrive(byte, now)
            self._process()

    def tick(self) -> None:
        with self._lock:
            now = time.monotonic()
            while self._wire and self._wire[0][0] <= now:
                self._arrive(self._wire.popleft()[1], now)
            self._run_motion(now - self._last_tick)
            self._last_tick = now
            self._process()
            self._flush_outbox(now)

    # ---- bytes in -------------------------------------------------------------------------

    def _arrive(self, byte: int, now: float) -> None:
        if now < self._eeprom_until:
            self._lose(1, "EEPROM write in progress")  # the RX interrupt is off
        elif byte == ord("?"):
            self.stats.status_requests += 1
            self._reply(self._status().encode() + b"\r\n")
        elif byte == ord("!"):
            self.state = "Hold" if self.machine.planner else self.state
        elif byte == ord("~"):
            self.state = "Run" if self.state == "Hold" else self.state
        elif byte == 0x18:
            self._soft_reset()
        elif byte >= 0x80:
            self._override(byte)
        elif len(self._rx) >= RX_SIZE - 1:
            self._lose(1, "RX buffer overflow")
            self.stats.rx_overflows += 1
        else:
            self._rx.append(byte)
            self.stats.max_rx_used = max(self.stats.max_rx_used, len(self._rx))

    def _lose(self, count: int, why: str) -> None:
        self.stats.lost_bytes += count
        log.error("grbl sim: %d byte(s) lost: %s", count, why)
        self._reply(f"[MSG:SIM lost bytes: {why}]\r\n".encode())

    def _process(self) -> None:
        while self._held is None or self._try_execute(self._held):
            self._held = None
            if b"\n" not in self._rx:
                return
            raw, _, rest = bytes(self._rx).partition(b"\n")
            self._rx[:] = rest
            self._line(raw.decode("ascii", "replace").strip("\r"))

    def _line(self, text: str) -> None:
        if not text.startswith("$") and not self.check_mode:  # preflight lines do not count
            self._job_lines += 1
            if self._job_lines == self.faults.drop_line:
                return
            if self._job_lines == self.faults.garble_line:
                text = "#" + text[1:]
        self.stats.lines.append(text)
        if text.startswith("$") and text != "$":
            code = self._system(text[1:])
            if code >= 0:  # -1: the command already answered (leaving check mode)
                self._respond(code)
        elif text.startswith("$"):
            self._reply(
                b"[HLP:$$ $# $G $I $N $x=val $Nx=line $J=line $SLP $C $X $H ~ ! ? ctrl-x]\r\n"
            )
            self._respond(0)
        else:
            self._held = text
            if self._try_execute(text):
                self._held = None

    # ---- G-code --------------------------------------------------------------------------

    def _try_execute(self, text: str) -> bool:
        """Run one G-code line; False while it waits for planner room (no ``ok`` yet)."""
        if self.state == "Alarm":
            self._respond(9)
            return True
        try:
            words = self.machine.parse(text)
            if self.check_mode:
                self._respond(0)
                return True
            if not self._has_room(words):
                return False
            block = self.machine.plan(words)
        except GcodeError as err:
            self._respond(err.code)
            return True
        if block is not None:
            self._enqueue(block)
        self._respond(0)
        self._after_line()
        return True

    def _has_room(self, words: list[tuple[str, float]]) -> bool:
        if any(letter == "G" and value == 4.0 for letter, value in words):
            return not self.machine.planner  # G4 waits for the planner to empty: a sync point
        return self.machine.room

    def _enqueue(self, block: Block) -> None:
        machine, stats = self.machine, self.stats
        if not machine.planner and stats.blocks and self.speedup != math.inf:
            stats.starved_s += (time.monotonic() - self._empty_since) * self.speedup
        machine.planner.append(block)
        stats.blocks += 1
        self.state = "Hold" if self.state == "Hold" else "Run"
        if self.speedup == math.inf:
            self._run_motion(0.0)

    def _run_motion(self, real_s: float) -> None:
        if self.state != "Run":
            return
        for block in self.machine.advance(real_s * self.speedup):
            self.renderer.burn(block)
        if not self.machine.planner:
            self._empty_since = time.monotonic()
            self.state = "Idle"
            self.renderer.save_if_dirty()

    def _after_line(self) -> None:
        faults, count = self.faults, self._job_lines
        if count == faults.alarm_after_line:
            faults.alarm_after_line = None
            self._alarm(faults.alarm_code)
        if count == faults.disconnect_after_line:
            faults.disconnect_after_line = None
            self._unplug_soon(faults.replug_after_s)

    def _alarm(self, code: int) -> None:
        self.machine.reset()
        self._rx.clear()
        self._held = None
        self.state = "Alarm"
        self.stats.alarms += 1
        self.renderer.save_if_dirty()
        self._reply(f"ALARM:{code}\r\n".encode())

    def _unplug_soon(self, replug_after_s: float | None) -> None:
        """The cable is pulled right after this line's reply: the board loses power too."""
        self._flush_outbox()
        self.unplug()
        self.machine.reset()
        self._rx.clear()
        self._held = None
        self.renderer.save_if_dirty()
        if replug_after_s is not None:
            threading.Timer(replug_after_s, self.replug).start()

    # ---- replies -------------------------------------------------------------------------

    def _respond(self, code: int) -> None:
        if code == 0 and self._job_lines == self.faults.garble_reply:
            self.faults.garble_reply = None
            self._reply(b"o\xfe\x07k\r\n")
            return
        self._reply(b"ok\r\n" if code == 0 else f"error:{code}\r\n".encode())

    def _flush_outbox(self, until: float = math.inf) -> None:
        while self._outbox and self._outbox[0][0] <= until:
            self.send(self._outbox.popleft()[1])

    def _reply(self, data: bytes) -> None:
        # Nothing goes out while EEPROM is written: GRBL answers a $N=v only once it is stored.
        due = max(time.monotonic() + self.faults.reply_delay_s, self._eeprom_until)
        if due <= time.monotonic() and not self._outbox:
            self.send(data)
        else:
            self._outbox.append((due, data))
