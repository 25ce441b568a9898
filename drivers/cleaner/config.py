"""Cleaner configurations as data: ``firmware_configs/cleaner/<model>.toml``.

A file names the Modbus RTU register map of one relay + temperature IO combination (which coil
drives which relay, where the temperature is and in which units) and the programs that model
runs. The schema refuses maps that would be dangerous rather than merely wrong: two relays on
one coil, a temperature scale of zero, a unit id outside 1..247.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from drivers.cleaner.program import CleaningProgram

FIRMWARE_CONFIGS = Path(__file__).resolve().parents[2] / "firmware_configs" / "cleaner"
DEFAULT_MODEL = "generic-relay-pt100"

_Address = Field(ge=0, le=0xFFFF)


class RelayCoils(BaseModel):
    """Coil addresses (0-based, as on the wire). Only ``ultrasound`` is mandatory."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ultrasound: int = _Address
    heater: int | None = Field(default=None, ge=0, le=0xFFFF)
    degas: int | None = Field(default=None, ge=0, le=0xFFFF)

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        used = [a for a in (self.ultrasound, self.heater, self.degas) if a is not None]
        if len(used) != len(set(used)):
            raise ValueError(f"two relays share a coil address: {used}")
        return self

    def by_name(self) -> dict[str, int]:
        """``{relay name: coil address}`` for the relays this unit has."""
        named = {"ultrasound": self.ultrasound, "heater": self.heater, "degas": self.degas}
        return {name: address for name, address in named.items() if address is not None}


class TemperatureInput(BaseModel):
    """Where the bath temperature is: a 16-bit register, ``scale`` °C per count."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: int = _Address
    kind: Literal["input", "holding"] = "input"
    scale: float = Field(default=0.1, gt=0.0, le=10.0)
    signed: bool = True

    def to_celsius(self, raw: int) -> float:
        """A register value (0..65535) in °C."""
        if self.signed and raw >= 0x8000:
            raw -= 0x10000
        return round(raw * self.scale, 3)

    def to_raw(self, celsius: float) -> int:
        """°C as the register would carry it (the simulator's side)."""
        raw = round(celsius / self.scale)
        return raw & 0xFFFF if self.signed else max(0, min(raw, 0xFFFF))


class RegisterMap(BaseModel):
    """How one model talks Modbus RTU."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device_id: int = Field(default=1, ge=1, le=247)  # 0 is broadcast, 248..255 reserved
    baudrate: int = Field(default=9600, ge=1200, le=115200)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    coils: RelayCoils
    temperature: TemperatureInput


class CleanerConfig(BaseModel):
    """One ``firmware_configs/cleaner/<model>.toml`` file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1)
    version: int = Field(ge=1)
    description: str = ""
    registers: RegisterMap
    programs: dict[str, CleaningProgram] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _program_names(self) -> Self:
        # The table key is the program's name; a different ``name`` inside is a typo.
        for key, program in self.programs.items():
            if program.name not in ("custom", key):
                raise ValueError(f"program {key!r} calls itself {program.name!r}")
        return self

    def program(self, name: str) -> CleaningProgram:
        """The named program; ``KeyError`` lists the known names."""
        try:
            found = self.programs[name]
        except KeyError:
            raise KeyError(f"no program {name!r}; known: {sorted(self.programs)}") from None
        return found.model_copy(update={"name": name})


def load_cleaner_config(model: str = DEFAULT_MODEL, *, path: Path | None = None) -> CleanerConfig:
    """Read and validate a model's file; ``ValueError`` names the file and the bad field."""
    path = path or FIRMWARE_CONFIGS / f"{model}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return CleanerConfig.model_validate(data)
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as err:
        raise ValueError(f"cleaner config {path}: {err}") from err
