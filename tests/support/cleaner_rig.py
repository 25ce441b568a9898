"""Cleaner test rigs: the Modbus driver against the simulated relay board on a real pty."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drivers.cleaner.base import UltrasonicCleaner
from drivers.cleaner.config import load_cleaner_config
from drivers.cleaner.modbus import ModbusCleaner
from drivers.cleaner.sim import CleanerSimulator, SimCleaner

# Fast polls, short timeouts, and water that heats 600x faster than real water.
FAST = {"poll_s": 0.05, "timeout_s": 0.3, "retries": 0}
SIM_OPTIONS = {"time_scale": 600.0, "ambient_c": 22.0}


@dataclass
class Rig:
    cleaner: UltrasonicCleaner
    board: CleanerSimulator


async def open_rig(backend: str, **options: Any) -> Rig:
    """An open cleaner of ``backend`` and the simulated board it drives."""
    if backend == "sim":
        sim_cleaner = SimCleaner("cleaner-1", None, {**FAST, **SIM_OPTIONS, **options})
        await sim_cleaner.open()
        return Rig(sim_cleaner, sim_cleaner.simulator)
    assert backend == "modbus"
    sim_keys = {"time_scale", "ambient_c", "start_temp_c", "fault", "seed"}
    sim_options = {**SIM_OPTIONS, **{k: v for k, v in options.items() if k in sim_keys}}
    board = CleanerSimulator(load_cleaner_config().registers, **sim_options)
    port = board.start()
    driver_options = {k: v for k, v in options.items() if k not in sim_keys}
    cleaner = ModbusCleaner("cleaner-1", port, {**FAST, **driver_options})
    try:
        await cleaner.open()
    except BaseException:
        board.stop()
        raise
    return Rig(cleaner, board)


async def close_rig(rig: Rig) -> None:
    await rig.cleaner.close()
    rig.board.stop()
