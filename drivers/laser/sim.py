"""The ``sim`` laser: the real GRBL driver talking to a GRBL simulator it starts on a pty.

Nothing is faked above the wire: identify, ``$C`` preflight, character counting and fault
handling all run the production code. The simulator's motion is sped up so that a job takes
about ``seconds_per_char`` per character of text.

Options (besides :class:`~drivers.laser.grbl.driver.GrblLaser`'s): ``seconds_per_char``
(default 0.05), ``fault`` (``"disconnect_mid_job"``: the cable is pulled halfway through every
job and plugged back 50 ms later; ``"alarm_mid_job"``: hard-limit alarm halfway), ``render_path``
(where the burned piece is saved as PNG), ``metal`` (``gold``, ``silver``, ...). The ``url`` is
ignored: the simulator's pty is used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from drivers.laser.base import EngraveReport, LaserJob, Program
from drivers.laser.grbl.driver import GrblLaser
from drivers.laser.grbl.sim import Faults, GrblSimulator
from drivers.laser.grbl.sim_machine import GcodeError, Machine

FAULTS = ("disconnect_mid_job", "alarm_mid_job")
REPLUG_AFTER_S = 0.05


class SimLaser(GrblLaser):
    """GRBL driver + in-process simulator; ``engrave_count`` counts jobs that reached the laser."""

    backend: ClassVar[str] = "sim"

    def __init__(self, name: str, url: str | None, options: Mapping[str, Any]) -> None:
        super().__init__(name, None, options)
        self.seconds_per_char = float(self.options.get("seconds_per_char", 0.05))
        self.fault: str | None = self.options.get("fault")
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; known: {', '.join(FAULTS)}")
        render_path = self.options.get("render_path")
        self.simulator = GrblSimulator(
            speedup=math.inf,
            render_path=Path(render_path) if render_path else None,
            template=str(self.options.get("template", "ring_band")),
            metal=str(self.options.get("metal", "gold")),
        )
        self.simulator.tick_s = 0.005  # no wire model here: a coarser tick spares the CPU
        self.engrave_count = 0
        self.frame_count = 0
        self._chars = 0
        self._framing = False

    @property
    def model(self) -> str:
        return f"sim-{super().model}".rstrip()

    async def open(self) -> None:
        if not self.simulator.plugged:
            self.url = self.simulator.start()
        await super().open()

    async def close(self) -> None:
        await super().close()
        self.simulator.stop()

    async def engrave(
        self, text: str, *, template: str | None = None, font: str | None = None
    ) -> EngraveReport:
        self._chars = len(text)
        if self.link is not None:
            return await super().engrave(text, template=template, font=font)
        # Used without open(): a self-contained run that leaves no simulator thread behind.
        try:
            return await super().engrave(text, template=template, font=font)
        finally:
            await self.close()

    async def frame(
        self,
        text: str,
        *,
        template: str | None = None,
        font: str | None = None,
        power: float = 0.01,
    ) -> EngraveReport:
        """The frame pass on the simulator (counted apart from engravings; burns nothing)."""
        self.frame_count += 1
        self._framing, self._chars = True, len(text)
        try:
            return await super().frame(text, template=template, font=font, power=power)
        finally:
            self._framing = False

    async def _run(self, job: LaserJob) -> None:
        if self._framing:  # a bounding box at travel speed: no faults, no burn on the piece
            self.simulator.speedup = math.inf
            await super()._run(job)
            return
        self.engrave_count += 1
        target_s = self.seconds_per_char * self._chars
        motion_s = motion_seconds(job.program, self.simulator.settings)
        self.simulator.speedup = motion_s / target_s if target_s > 0 else math.inf
        self.simulator.new_piece(self._faults(len(job.program.lines)))
        await super()._run(job)

    def _faults(self, lines: int) -> Faults:
        half = max(lines // 2, 1)
        if self.fault == "disconnect_mid_job":
            return Faults(disconnect_after_line=half, replug_after_s=REPLUG_AFTER_S)
        if self.fault == "alarm_mid_job":
            return Faults(alarm_after_line=half)
        return Faults()


def motion_seconds(program: Program, settings: dict[int, float]) -> float:
    """How long the simulator's machine takes for ``program`` at speedup 1."""
    machine, total = Machine(dict(settings)), 0.0
    for line in program.lines:
        try:
            block = machine.plan(machine.parse(line))
        except GcodeError:
            continue
        total += block.seconds if block else 0.0
    return total
