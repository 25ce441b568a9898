"""Scale configurations as data: ``firmware_configs/scale/<model>.toml``.

A file says what a balance model is (capacity, readability, the unit jobs record, the serial
line), how long a stable reading may take, and when its calibration is due. :meth:`drift`
compares it with what the balance says about itself (MT-SICS ``I2``: type and capacity), so a
station can report a scale that is not the model it was configured as, or out of calibration.
"""

from __future__ import annotations

import tomllib
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from drivers.scale.base import ScaleIdentity, Unit

FIRMWARE_CONFIGS = Path(__file__).resolve().parents[2] / "firmware_configs" / "scale"


class SerialLineConfig(BaseModel):
    """The balance's RS-232 settings (they must match its menu)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    baudrate: int = Field(default=9600, ge=300, le=115200)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1


class ScaleConfig(BaseModel):
    """One ``firmware_configs/scale/<model>.toml`` file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1)
    version: int = Field(ge=1)
    description: str = ""
    backend: Literal["mtsics", "continuous"]
    type_designation: str = Field(min_length=1)  # what the balance reports (MT-SICS I2)
    capacity_g: Decimal = Field(gt=0)
    resolution_g: Decimal = Field(gt=0)  # readability d
    unit: Unit = Unit.GRAM
    stable_timeout_s: float = Field(gt=0, le=120)
    calibration_due: date
    serial: SerialLineConfig = SerialLineConfig()

    @model_validator(mode="after")
    def _resolution_below_capacity(self) -> Self:
        if self.resolution_g >= self.capacity_g:
            raise ValueError(
                f"resolution_g {self.resolution_g} must be below capacity_g {self.capacity_g}"
            )
        return self

    def backend_options(self) -> dict[str, Any]:
        """Driver options for :func:`drivers.registry.open_device`."""
        return {"unit": self.unit.value, **self.serial.model_dump()}

    def drift(self, identity: ScaleIdentity, today: date) -> list[str]:
        """What differs between this file and the balance (empty when nothing does)."""
        problems = []
        reported_type, _, rest = identity.model.partition(" ")
        if reported_type and reported_type != self.type_designation:
            problems.append(f"type {reported_type!r}, configured {self.type_designation!r}")
        capacity = _leading_decimal(rest)
        if capacity is not None and capacity != self.capacity_g:
            problems.append(f"capacity {capacity} g, configured {self.capacity_g} g")
        if today > self.calibration_due:
            problems.append(f"calibration was due {self.calibration_due.isoformat()}")
        return problems


def _leading_decimal(text: str) -> Decimal | None:
    words = text.split()
    if not words:
        return None
    try:
        return Decimal(words[0])
    except InvalidOperation:
        return None


def _field_errors(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '(file)'}: {error['msg']}"
        for error in err.errors()
    )


def load_scale_config(model: str, *, path: Path | None = None) -> ScaleConfig:
    """Read and validate a model's file; ``ValueError`` names the file and the bad field."""
    path = path or FIRMWARE_CONFIGS / f"{model}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return ScaleConfig.model_validate(data)
    except ValidationError as err:
        raise ValueError(f"scale config {path}: {_field_errors(err)}") from err
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"scale config {path}: {err}") from err
