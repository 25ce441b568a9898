"""The gemstone contraindication gate: may this item go into the ultrasonic bath?

The table is data (``contraindications.toml``, from the Rio Grande/GIA and Stuller charts). The
verdict is conservative: an unknown stone, an unknown treatment, an oiled/dyed/filled stone or
a doublet/triplet means hand-cleaning, never the bath. A refusal is a
:class:`ContraindicatedError` raised before any relay switches.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from drivers.errors import DeviceError

TABLE_PATH = Path(__file__).with_name("contraindications.toml")
Treatment = Literal["none", "unknown", "heated", "oiled", "dyed", "filled", "coated", "irradiated"]
# Heat and irradiation are stable; oil, dye, fillers and coatings come out in the bath.
_BATH_SAFE_TREATMENTS = frozenset({"none", "heated", "irradiated"})


class Stone(BaseModel):
    """A stone set in the item, as the order describes it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    treatment: Treatment = "unknown"
    composite: bool = False  # doublet or triplet: the glue layer does not survive the bath


class ContraindicatedError(DeviceError):
    """The item must be cleaned by hand; nothing was switched on."""

    retryable = False

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("ultrasonic cleaning refused: " + "; ".join(reasons))
        self.reasons = reasons


@cache
def _table() -> dict[str, str]:
    data = tomllib.loads(TABLE_PATH.read_text(encoding="utf-8"))
    return {name.lower(): verdict for name, verdict in data["stones"].items()}


def _why_not(stone: Stone) -> str | None:
    """The reason ``stone`` may not go in the bath, or ``None`` when it may."""
    name = " ".join(stone.name.lower().split())
    verdict = _table().get(name)
    if verdict is None:
        return f"{stone.name}: not in the table, clean by hand"
    if verdict != "safe_if_untreated":
        return f"{stone.name}: {verdict} in an ultrasonic bath"
    if stone.composite:
        return f"{stone.name}: doublet/triplet"
    if stone.treatment not in _BATH_SAFE_TREATMENTS:
        return f"{stone.name}: treatment {stone.treatment}"
    return None


def contraindications(stones: Iterable[Stone]) -> list[str]:
    """Every reason the item must not go in the bath (empty: it may)."""
    return [reason for stone in stones if (reason := _why_not(stone)) is not None]


def check_stones(stones: Iterable[Stone]) -> None:
    """Raise :class:`ContraindicatedError` unless every stone may go in the bath."""
    reasons = contraindications(stones)
    if reasons:
        raise ContraindicatedError(reasons)
