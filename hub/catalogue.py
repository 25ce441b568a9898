"""The data the hub checks orders against: SKUs, engraving templates, packaging, fonts and the
cleaning contraindications. Kept as TOML under ``hub/data`` so operations can edit it."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from protocol.models import CleaningMethod

MachineMethod = Literal["ultrasonic", "steam"]
MACHINE_METHODS: tuple[MachineMethod, ...] = ("ultrasonic", "steam")


@dataclass(frozen=True, slots=True)
class Template:
    """Where and how much text fits on one kind of piece."""

    id: str
    area_mm: tuple[float, float]
    max_chars: int
    fonts: tuple[str, ...]
    positions: tuple[str, ...]
    engrave_per_char_s: float

    @property
    def field_mm(self) -> float:
        """The laser field the area needs (its longer side)."""
        return max(self.area_mm)


@dataclass(frozen=True, slots=True)
class Catalogue:
    """SKUs, templates, packaging and the standard step durations."""

    skus: dict[str, tuple[str, ...]]  # SKU -> the templates it offers
    templates: dict[str, Template]
    boxes: frozenset[str]
    inserts: frozenset[str]
    step_seconds: dict[str, float]

    def seconds(self, key: str) -> float:
        return self.step_seconds.get(key, 60.0)


def _load_toml(name: str) -> dict[str, Any]:
    text = resources.files("hub.data").joinpath(name).read_text(encoding="utf-8")
    return tomllib.loads(text)


@functools.cache
def catalogue() -> Catalogue:
    """The packaged catalogue (read once per process)."""
    raw = _load_toml("catalogue.toml")
    templates = {
        tid: Template(
            id=tid,
            area_mm=(float(t["area_mm"][0]), float(t["area_mm"][1])),
            max_chars=int(t["max_chars"]),
            fonts=tuple(t["fonts"]),
            positions=tuple(t["positions"]),
            engrave_per_char_s=float(t["engrave_per_char_s"]),
        )
        for tid, t in raw["templates"].items()
    }
    return Catalogue(
        skus={sku: tuple(s["templates"]) for sku, s in raw["skus"].items()},
        templates=templates,
        boxes=frozenset(raw["packaging"]["boxes"]),
        inserts=frozenset(raw["packaging"]["inserts"]),
        step_seconds={k: float(v) for k, v in raw["step_seconds"].items()},
    )


@functools.cache
def _contraindications() -> dict[str, dict[str, dict[str, str]]]:
    return _load_toml("cleaning_contraindications.toml")


def cleaning_refusal(
    method: CleaningMethod, stones: list[tuple[str, str | None]]
) -> tuple[int, str] | None:
    """Why ``method`` must not touch these ``(stone, treatment)`` pairs, or None when it may.

    Returns the index of the first offending stone and the reason. Hand cleaning is always
    allowed; a stone or treatment the table does not know means no ultrasonic and no steam.
    """
    if method == "hand":
        return None
    table = _contraindications()
    for index, (stone, treatment) in enumerate(stones):
        stone_key = stone.strip().lower()
        treatment_key = (treatment or "unknown").strip().lower()
        stone_verdict = table["stones"].get(stone_key, {}).get(method)
        treatment_verdict = table["treatments"].get(treatment_key, {}).get(method)
        if stone_verdict is None:
            return index, f"{method} cleaning is refused for {stone!r}: stone not in the table"
        if stone_verdict != "ok":
            return index, f"{method} cleaning is contraindicated for {stone}"
        if treatment_verdict is None:
            what = "unknown treatment" if treatment_key == "unknown" else f"treatment {treatment!r}"
            return index, f"{method} cleaning is refused for {stone} with {what}"
        if treatment_verdict != "ok":
            return index, f"{method} cleaning is contraindicated for {treatment}-treated {stone}"
    return None
