"""The GRBL simulator's system side: ``$`` commands, soft reset, status reports, overrides."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from drivers.laser.grbl.protocol import StatusReport, format_status

if TYPE_CHECKING:
    from drivers.laser.grbl.sim import SimStats
    from drivers.laser.grbl.sim_machine import Machine
    from drivers.laser.grbl.sim_render import Renderer

BANNER = b"\r\nGrbl 1.1h ['$' for help]\r\n"
VERSION = "[VER:1.1h.20190830:]"
OPTIONS = "[OPT:V,15,128]"
GCODE_STATE = "[GC:G0 G54 G17 G21 G90 G94 M5 M9 T0 F0 S0]"
UNLOCK_HINT = b"[MSG:'$H'|'$X' to unlock]\r\n"
WCO_EVERY = (10, 30)  # idle, busy: GRBL's REPORT_WCO_REFRESH_*_COUNT
OV_EVERY = (10, 20)
_FEED_OVERRIDES = {0x90: None, 0x91: 10, 0x92: -10, 0x93: 1, 0x94: -1}
_SPINDLE_OVERRIDES = {0x99: None, 0x9A: 10, 0x9B: -10, 0x9C: 1, 0x9D: -1}
_RAPID_OVERRIDES = {0x95: 100, 0x96: 50, 0x97: 25}


class SystemCommands:
    """Mixed into :class:`~drivers.laser.grbl.sim.GrblSimulator` (it owns these attributes)."""

    settings: dict[int, float]
    machine: Machine
    renderer: Renderer
    stats: SimStats
    state: str
    check_mode: bool
    eeprom_write_s: float
    _rx: bytearray
    _held: str | None
    _eeprom_until: float
    _reports: int
    _overrides: list[int]

    if TYPE_CHECKING:  # provided by GrblSimulator; declared here for the type checker only

        def _reply(self, data: bytes) -> None: ...
        def _alarm(self, code: int) -> None: ...

    def _power_up(self) -> None:
        self.machine.reset()
        self.machine.position = (0.0, 0.0, 0.0)
        self._rx.clear()
        self._held = None
        self.check_mode = False
        homing = self.settings.get(22, 0.0) == 1.0
        self.state = "Alarm" if homing else "Idle"
        self._reply(BANNER + (UNLOCK_HINT if homing else b""))

    def _soft_reset(self) -> None:
        moving = bool(self.machine.planner) and self.state in ("Run", "Hold")
        if moving:
            self._alarm(3)  # reset while in motion: position lost
        was_alarm = self.state == "Alarm"
        self.machine.reset()
        self._rx.clear()
        self._held = None
        self.check_mode = False
        self.renderer.save_if_dirty()
        self.state = "Alarm" if was_alarm else "Idle"
        self._reply(BANNER + (UNLOCK_HINT if was_alarm else b""))

    def _system(self, command: str) -> int:  # noqa: PLR0911 - one return per command
        """Run ``$<command>``; the status code of its reply (0 = ok)."""
        if command == "C":
            return self._toggle_check()
        if command == "X":
            if self.state == "Alarm":
                self._reply(b"[MSG:Caution: Unlocked]\r\n")
                self.state = "Idle"
            return 0
        if self.state in ("Run", "Hold"):
            return 8
        if command == "H":
            return 5 if self.settings.get(22, 0.0) != 1.0 else self._home()
        if "=" in command:
            return self._store(command)
        listing = self._listing(command)
        if listing is None:
            return 3
        self._reply("".join(f"{line}\r\n" for line in listing).encode())
        return 0

    def _listing(self, command: str) -> list[str] | None:
        if command == "$":
            return [f"${n}={_number(v)}" for n, v in sorted(self.settings.items())]
        if command == "I":
            return [VERSION, OPTIONS]
        if command == "G":
            return [GCODE_STATE]
        if command == "#":
            return ["[G54:0.000,0.000,0.000]", "[G92:0.000,0.000,0.000]", "[TLO:0.000]"]
        if command == "N":
            return ["$N0=", "$N1="]
        return None

    def _toggle_check(self) -> int:
        if self.check_mode:
            # Leaving check mode resets the controller (the ok comes first, then the banner).
            self._reply(b"[MSG:Disabled]\r\nok\r\n")
            self._soft_reset()
            return -1
        if self.state != "Idle":
            return 8
        self.check_mode = True
        self.state = "Check"
        self._reply(b"[MSG:Enabled]\r\n")
        return 0

    def _store(self, command: str) -> int:
        number, _, value = command.partition("=")
        if not number.isdigit() or int(number) not in self.settings:
            return 3
        try:
            parsed = float(value)
        except ValueError:
            return 2
        if parsed < 0:
            return 4
        self.settings[int(number)] = parsed
        # Writing EEPROM stops GRBL's serial interrupt: what arrives meanwhile is lost.
        self._eeprom_until = time.monotonic() + self.eeprom_write_s
        return 0

    def _home(self) -> int:
        self.machine.position = (0.0, 0.0, 0.0)
        self.state = "Idle"
        return 0

    def _override(self, byte: int) -> None:
        feed, rapid, spindle = self._overrides
        if byte in _FEED_OVERRIDES:
            step = _FEED_OVERRIDES[byte]
            feed = 100 if step is None else min(max(feed + step, 10), 200)
        elif byte in _SPINDLE_OVERRIDES:
            step = _SPINDLE_OVERRIDES[byte]
            spindle = 100 if step is None else min(max(spindle + step, 10), 200)
        elif byte in _RAPID_OVERRIDES:
            rapid = _RAPID_OVERRIDES[byte]
        self._overrides = [feed, rapid, spindle]

    def _status(self) -> str:
        """A status report as GRBL 1.1 builds it, WCO and Ov only every few reports."""
        busy = self.state not in ("Idle", "Alarm", "Check")
        self._reports += 1
        mask = int(self.settings.get(10, 1.0))
        position = self.machine.current_position()
        head = self.machine.planner[0] if self.machine.planner else None
        modal = self.machine.modal
        with_ov = self._reports % OV_EVERY[busy] == 1
        report = StatusReport(
            state="Hold" if self.state == "Hold" else self.state,
            substate=0 if self.state == "Hold" else None,
            mpos=position if mask & 1 else None,
            wpos=None if mask & 1 else position,
            buffer=(self.machine.capacity - len(self.machine.planner), 127 - len(self._rx))
            if mask & 2
            else None,
            feed=head.feed if head else 0.0,
            speed=modal.s if head and head.power > 0 else 0.0,
            wco=(0.0, 0.0, 0.0) if self._reports % WCO_EVERY[busy] == 1 else None,
            overrides=tuple(self._overrides) if with_ov else None,  # type: ignore[arg-type]
            accessories=_accessories(modal.spindle) if with_ov else None,
        )
        return format_status(report)


def _accessories(spindle: float) -> str | None:
    return {3.0: "S", 4.0: "C"}.get(spindle)


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.3f}"
