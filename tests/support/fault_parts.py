"""Real parts the fault scenarios break: a GRBL simulator on a pty run by the test (so it
outlives the agent and can be unplugged), a small tmpfs as a station's data disk, a ballast file
that fills it."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from drivers.laser.gcode import HEADER
from drivers.laser.grbl.sim import GrblSimulator


class Unsupported(Exception):
    """This machine cannot run the scenario (the reason says what is missing)."""


class CountingGrbl(GrblSimulator):
    """The GRBL simulator, run by the test on its own pty, counting the programs it executes
    for real (not the ``$C`` check-mode preflight): the laser's G-code count."""

    def __init__(self, link: Path, render_path: Path, speedup: float) -> None:
        super().__init__(link=link, speedup=speedup, render_path=render_path)
        self.programs = 0

    def _line(self, text: str) -> None:
        if text == HEADER[0] and not self.check_mode:
            self.programs += 1
            self.new_piece()  # a fresh blank for each program, as the demo's sim laser does
        super()._line(text)


@contextlib.contextmanager
def external_laser(root: Path, render_path: Path, speedup: float) -> Iterator[CountingGrbl]:
    """A counting GRBL simulator whose port is ``root/laser-port``, stopped afterwards."""
    sim = CountingGrbl(root / "laser-port", render_path, speedup=speedup)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@contextlib.contextmanager
def tmpfs(path: Path, size: int) -> Iterator[Path]:
    """A small tmpfs at ``path`` (needs root); :class:`Unsupported` when mounting is refused."""
    path.mkdir(parents=True, exist_ok=True)
    mount = shutil.which("mount")
    if mount is None or os.geteuid() != 0:
        raise Unsupported("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise Unsupported(f"mount -t tmpfs refused: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill_disk(path: Path, leave: int, name: str = "ballast.bin") -> Path:
    """Write a ballast file until ``leave`` bytes remain free on ``path``'s filesystem (0: until
    the filesystem says no space is left, also if the agent wrote meanwhile)."""
    ballast = path / name
    stats = os.statvfs(path)
    free = stats.f_bavail * stats.f_frsize
    block = b"\0" * (1 << 20)
    remaining = max(0, free - leave)
    with ballast.open("wb", buffering=0) as out:
        try:
            while remaining > 0 or leave == 0:
                size = len(block) if leave == 0 else min(len(block), remaining)
                remaining -= out.write(block[:size])
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise
    return ballast
