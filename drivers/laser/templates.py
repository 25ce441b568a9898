"""Item templates: where on a piece text may be engraved, how much of it, in which fonts.

Templates are data (``firmware_configs/templates/items.toml``), validated by pydantic so a bad
file fails at load with the template and field named, never halfway through a job.

Geometry: the item outline is ``item_width_mm`` x ``item_height_mm`` (a disc uses the width as
its diameter; a ring band is the inner band unrolled flat). The engraving area is centred on the
item. Toolpaths use the area's frame: origin at its lower-left corner, +X along the text, +Y up.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from drivers.laser.fonts import ENGRAVING_FONTS

DEFAULT_TEMPLATES_PATH = (
    Path(__file__).resolve().parents[2] / "firmware_configs" / "templates" / "items.toml"
)


class TemplateError(ValueError):
    """A templates file is missing, is not TOML, or holds an invalid template."""


class ItemTemplate(BaseModel):
    """One kind of item and the engraving it accepts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    description: str = ""
    surface: Literal["flat", "ring_band"] = "flat"
    outline: Literal["rect", "disc"] = "rect"
    item_width_mm: float = Field(gt=0)
    item_height_mm: float = Field(gt=0)
    area_width_mm: float = Field(gt=0)
    area_height_mm: float = Field(gt=0)
    margin_mm: float = Field(default=0.2, ge=0)
    max_chars: int = Field(ge=1)
    min_char_height_mm: float = Field(default=0.5, gt=0)
    fonts: tuple[str, ...] = Field(default=("futural",), min_length=1)

    @property
    def default_font(self) -> str:
        """The first allowed font."""
        return self.fonts[0]

    @property
    def area_offset_mm(self) -> tuple[float, float]:
        """Where the area's origin sits on the item (item frame: lower-left corner, Y up)."""
        return (
            (self.item_width_mm - self.area_width_mm) / 2,
            (self.item_height_mm - self.area_height_mm) / 2,
        )

    @model_validator(mode="after")
    def _check_geometry(self) -> Self:
        if self.outline == "disc" and self.item_width_mm != self.item_height_mm:
            raise ValueError("item_height_mm: a disc's height must equal its width (diameter)")
        if self.area_width_mm > self.item_width_mm or self.area_height_mm > self.item_height_mm:
            raise ValueError("area_width_mm/area_height_mm: the area is larger than the item")
        if self.outline == "disc" and math.hypot(self.area_width_mm, self.area_height_mm) > (
            self.item_width_mm
        ):
            raise ValueError("area_width_mm/area_height_mm: the area's corners leave the disc")
        if 2 * self.margin_mm >= min(self.area_width_mm, self.area_height_mm):
            raise ValueError("margin_mm: the margins leave no room to engrave")
        unknown = [font for font in self.fonts if font not in ENGRAVING_FONTS]
        if unknown:
            raise ValueError(f"fonts: unknown {unknown}; known: {', '.join(ENGRAVING_FONTS)}")
        return self


def parse_templates(
    data: Mapping[str, object], *, source: str = "templates"
) -> dict[str, ItemTemplate]:
    """Templates from parsed TOML: ``[template.<name>]`` tables, keyed by name."""
    tables = data.get("template")
    if not isinstance(tables, Mapping) or not tables:
        raise TemplateError(f"{source}: no [template.<name>] tables")
    templates: dict[str, ItemTemplate] = {}
    for name, table in tables.items():
        if not isinstance(table, Mapping):
            raise TemplateError(f"{source}: template {name!r} is not a table")
        try:
            templates[name] = ItemTemplate.model_validate({"name": name, **table})
        except ValidationError as err:
            raise TemplateError(f"{source}: template {name!r}: {_describe(err)}") from None
    return templates


def load_templates(path: Path | None = None) -> dict[str, ItemTemplate]:
    """Every template in ``path`` (default: the repository's ``items.toml``)."""
    path = path or DEFAULT_TEMPLATES_PATH
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise TemplateError(f"cannot read templates {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise TemplateError(f"{path}: not valid TOML: {err}") from None
    return parse_templates(data, source=str(path))


def _describe(err: ValidationError) -> str:
    """Pydantic's errors as ``field: message`` (model-level errors already name their field)."""
    parts = []
    for detail in err.errors():
        where = ".".join(str(part) for part in detail["loc"])
        message = detail["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
