"""Scale test rigs: a backend opened against a simulated balance on a real pty, per backend.

Shared by ``tests/drivers/scale/``; the ``make_rig`` fixture lives in its ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from drivers.registry import backend_class, open_device
from drivers.scale.base import Scale, Unit, Weight
from drivers.scale.sim import Balance, ContinuousSimulator, MtSicsSimulator, SimScale

FIXTURES = Path(__file__).parent.parent / "drivers" / "fixtures" / "scale"
SERIAL = "B021002593"


def recorded(name: str) -> list[tuple[bytes, str]]:
    """``(line, expectation)`` pairs from a fixture file (``#`` lines are comments)."""
    pairs = []
    for text in (FIXTURES / name).read_text().splitlines():
        if text.strip() and not text.startswith("#"):
            line, _, expected = text.partition(" => ")
            pairs.append((line.encode("ascii"), expected))
    return pairs


def expected_weight(expectation: str) -> Weight:
    """``weight 12.3 g stable`` -> ``Weight``."""
    _, value, unit, stability = expectation.split()
    return Weight(Decimal(value), Unit(unit), stability == "stable")


@dataclass
class Rig:
    """A scale and the simulated balance behind it."""

    scale: Scale
    simulator: MtSicsSimulator | ContinuousSimulator
    identifies: bool  # does the backend ask the device who it is (so a swap is caught)?

    @property
    def balance(self) -> Balance:
        return self.simulator.balance


def fast_balance() -> Balance:
    return Balance(serial_number=SERIAL, model="XS204", settle_s=0.1)


async def mtsics_rig(link: Path, options: dict[str, Any]) -> Rig:
    simulator = MtSicsSimulator(fast_balance(), stable_timeout_s=0.3, link=link)
    simulator.start()
    scale = backend_class("scale", "mtsics")("scale-1", str(link), options)
    assert isinstance(scale, Scale)
    await scale.open()
    return Rig(scale, simulator, identifies=True)


async def continuous_rig(link: Path, options: dict[str, Any]) -> Rig:
    simulator = ContinuousSimulator(fast_balance(), interval_s=0.02, link=link)
    simulator.start()
    declared = {"serial_number": SERIAL, "model": "GX-224A", **options}
    scale = backend_class("scale", "continuous")("scale-1", str(link), declared)
    assert isinstance(scale, Scale)
    await scale.open()
    return Rig(scale, simulator, identifies=False)


async def sim_rig(link: Path, options: dict[str, Any]) -> Rig:
    sim_options = {"serial_number": SERIAL, "settle_s": 0.1, "stable_timeout_s": 0.3, **options}
    scale = await open_device("scale", "sim", "scale-1", None, {"link": str(link), **sim_options})
    assert isinstance(scale, SimScale)
    return Rig(scale, scale.simulator, identifies=True)


RIGS: dict[str, Callable[[Path, dict[str, Any]], Awaitable[Rig]]] = {
    "mtsics": mtsics_rig,
    "continuous": continuous_rig,
    "sim": sim_rig,
}
