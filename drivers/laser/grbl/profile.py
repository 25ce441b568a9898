"""GRBL ``$`` settings profiles (``firmware_configs/grbl/*.toml``), validated with pydantic.

A profile is what a laser must carry for benchfleet to drive it safely: above all ``$32=1``
(laser mode, so ``G0`` never fires and ``S`` changes do not stop motion). Settings are keyed by
number (TOML bare keys: ``32 = 1``); names come from :data:`SETTING_NAMES` for drift reports.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field, field_validator

from drivers.laser.grbl.codes import CONFIG_DIR

DEFAULT_PROFILE = CONFIG_DIR / "diode-laser-10w.toml"

SETTING_NAMES = MappingProxyType(
    {
        0: "step pulse, us", 1: "step idle delay, ms", 2: "step port invert mask",
        3: "direction port invert mask", 4: "step enable invert", 5: "limit pins invert",
        6: "probe pin invert", 10: "status report mask", 11: "junction deviation, mm",
        12: "arc tolerance, mm", 13: "report inches", 20: "soft limits", 21: "hard limits",
        22: "homing cycle", 23: "homing dir invert mask", 24: "homing feed, mm/min",
        25: "homing seek, mm/min", 26: "homing debounce, ms", 27: "homing pull-off, mm",
        30: "max spindle/laser S", 31: "min spindle/laser S", 32: "laser mode",
        100: "X steps/mm", 101: "Y steps/mm", 102: "Z steps/mm",
        110: "X max rate, mm/min", 111: "Y max rate, mm/min", 112: "Z max rate, mm/min",
        120: "X accel, mm/s^2", 121: "Y accel, mm/s^2", 122: "Z accel, mm/s^2",
        130: "X max travel, mm", 131: "Y max travel, mm", 132: "Z max travel, mm",
    }
)  # fmt: skip


class GrblProfile(BaseModel):
    """One controller model's settings; refuses anything not laser-safe."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1)
    version: int = Field(ge=1)
    firmware: str = "Grbl 1.1h"
    settings: dict[int, float]

    @field_validator("settings")
    @classmethod
    def _laser_safe(cls, settings: dict[int, float]) -> dict[int, float]:
        unknown = sorted(set(settings) - set(SETTING_NAMES))
        if unknown:
            raise ValueError(f"unknown GRBL settings {unknown}")
        if settings.get(32) != 1:
            raise ValueError("$32 (laser mode) must be 1: without it G0 moves can fire")
        if settings.get(30, 0) <= settings.get(31, 0):
            raise ValueError("$30 (max S) must be above $31 (min S)")
        if any(value < 0 for value in settings.values()):
            raise ValueError("GRBL settings are never negative")
        return settings

    def numeric(self) -> dict[int, float]:
        """The settings as a plain ``{number: value}`` table."""
        return dict(self.settings)

    def drift(self, actual: dict[int, float]) -> dict[int, tuple[float, float | None]]:
        """``{number: (wanted, actual)}`` for every setting the controller does not match."""
        return {
            number: (wanted, actual.get(number))
            for number, wanted in sorted(self.settings.items())
            if actual.get(number) is None or abs(actual[number] - wanted) > 1e-6
        }


def load_profile(path: Path | None = None) -> GrblProfile:
    """The profile at ``path`` (default: the reference diode laser)."""
    data = tomllib.loads((path or DEFAULT_PROFILE).read_text(encoding="utf-8"))
    return GrblProfile.model_validate(data)
