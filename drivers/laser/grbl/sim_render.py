"""What the simulated beam burned: segments onto a :class:`~drivers.laser.burn.BurnCanvas`.

Kept apart so the simulator's protocol code never touches imaging; the canvas (OpenCV) is made
lazily, on the first burn, so a simulator that never fires costs nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from drivers.laser.burn import BurnCanvas
from drivers.laser.grbl.sim_machine import Block
from drivers.laser.templates import load_templates

log = logging.getLogger(__name__)

Segment = tuple[float, float, float, float, float]
# Below this fraction of full power the beam marks no metal (the frame pass traces at 1 %).
MARKS_ABOVE = 0.02


class Renderer:
    """Burns blocks that fired onto the current piece; saves it to ``path`` when asked."""

    def __init__(self, path: Path | None, *, template: str, metal: str) -> None:
        self.path = path
        self.template = template
        self.metal = metal
        self.segments: list[Segment] = []  # (x0, y0, x1, y1, power) of the current piece
        self._canvas: BurnCanvas | None = None
        self._dirty = False

    def new_piece(self) -> None:
        self.segments = []
        self._canvas = None
        self._dirty = False

    def burn(self, block: Block) -> None:
        if block.power <= MARKS_ABOVE or block.start[:2] == block.end[:2]:
            return
        x0, y0, _ = block.start
        x1, y1, _ = block.end
        self.segments.append((x0, y0, x1, y1, block.power))
        self._dirty = True
        if self.path is not None:
            self.canvas.burn_segment(x0, y0, x1, y1, power_fraction=block.power)

    @property
    def canvas(self) -> BurnCanvas:
        if self._canvas is None:
            self._canvas = BurnCanvas(load_templates()[self.template], metal=self.metal)
        return self._canvas

    def save_if_dirty(self) -> None:
        """Write the piece's image when something burned since the last save."""
        if self.path is None or not self._dirty:
            return
        self._dirty = False
        tmp = self.path.with_name(self.path.name + ".tmp")
        self.canvas.save(tmp)
        tmp.replace(self.path)  # the camera never sees half a file
        log.debug("grbl sim: burn image saved (%d segments)", len(self.segments))
