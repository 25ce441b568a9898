"""What an integrator sends to ``POST /orders``: order lines with their VAS options.

Shape checks live here (pydantic answers 422 naming the field); what needs the catalogue
(templates, fonts, contraindications) is :mod:`hub.intake`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from hub.audit import canonical
from protocol.models import CleaningMethod, Name

Metal = Literal[
    "gold", "white_gold", "rose_gold", "silver", "platinum", "palladium", "titanium", "steel"
]
Text200 = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Stone(Strict):
    type: Name = Field(description="e.g. diamond, emerald, opal (lower case)", examples=["diamond"])
    treatment: Name | None = Field(
        default=None,
        description="none, heat, oiling, fracture_filling, ... Missing means unknown: no "
        "ultrasonic or steam cleaning.",
        examples=["none"],
    )
    count: Annotated[int, Field(ge=1, le=500)] = 1
    carat: Annotated[float, Field(gt=0, le=1000)] | None = None


class DeclaredValue(Strict):
    amount: Annotated[float, Field(ge=0, le=100_000_000)]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "EUR"


class Piece(Strict):
    sku: Name
    serial: Name
    metal: Metal
    stones: list[Stone] = Field(default_factory=list, max_length=50)
    declared_value: DeclaredValue


class EngravingRequest(Strict):
    text: Text200 = Field(description="Personal data: never logged.")
    font: Name = Field(default="futural", description="A Hershey font the template allows.")
    template: Name = Field(description="An item template of the SKU (GET /catalogue).")
    position: Name | None = Field(default=None, description="Default: the template's first.")


class CleaningRequest(Strict):
    method: CleaningMethod


class CertificateRequest(Strict):
    kind: Literal["coa", "lab_report"]
    number: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ./-]{2,63}$")]


class PackagingRequest(Strict):
    box: Name
    insert: Name | None = None
    gift_message: Annotated[str, StringConstraints(max_length=500)] | None = Field(
        default=None, description="Personal data: never logged."
    )


class OrderLine(Strict):
    line_id: Name = "1"
    piece: Piece
    engraving: EngravingRequest | None = None
    cleaning: CleaningRequest | None = None
    certificate: CertificateRequest | None = None
    packaging: PackagingRequest | None = None


class OrderRequest(Strict):
    """One order: its lines become one job each."""

    external_id: Name = Field(description="The shop's order id; repeats are idempotent.")
    lines: list[OrderLine] = Field(min_length=1, max_length=50)
    due_at: datetime | None = Field(
        default=None, description="When it must be done; default: the hub's promise."
    )
    rush: bool = False

    def content_sha256(self) -> str:
        """The request's identity for idempotency (same id + same hash = the same order)."""
        return hashlib.sha256(canonical(self.model_dump(mode="json"))).hexdigest()
