"""A GRBL simulator on a real pty and a :class:`GrblLaser` connected to it."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from drivers.laser.grbl.driver import GrblLaser
from drivers.laser.grbl.sim import GrblSimulator

FAST = {"reply_timeout_s": 2.0, "stall_timeout_s": 1.0, "poll_hz": 5}


@pytest.fixture
def grbl_sim(tmp_path: Path) -> Iterator[GrblSimulator]:
    sim = GrblSimulator(
        link=tmp_path / "ttyGRBL", speedup=math.inf, render_path=tmp_path / "burn.png"
    )
    sim.start()
    yield sim
    sim.stop()


@pytest_asyncio.fixture
async def grbl(grbl_sim: GrblSimulator) -> AsyncIterator[GrblLaser]:
    laser = GrblLaser("laser-1", grbl_sim.port, FAST)
    await laser.open()
    yield laser
    await laser.close()
