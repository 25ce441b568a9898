"""The verification pipeline's public data: what was ordered, and what we concluded."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class Verdict(StrEnum):
    """PASS: every character confirmed. FAIL: a definite difference. REVIEW: not sure."""

    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    FAIL = "FAIL"
    REVIEW = "REVIEW"


@dataclass(frozen=True, slots=True)
class Expected:
    """The ordered engraving: ``text`` exactly (case-sensitive), in ``font`` on ``template``."""

    text: str = field(repr=False)  # personal data: kept out of reprs and logs
    font: str | None = None  # Hershey font name (drivers.laser.fonts) or a .ttf/.otf path
    template: str | None = None  # item template id (firmware_configs/templates/items.toml)


DiffOp = Literal["equal", "substitute", "delete", "insert", "transpose"]


class CharDiff(BaseModel):
    """One aligned position between the expected text and what was read.

    ``position`` indexes the expected text (for an insert: the expected character the extra
    one precedes). A transpose covers ``expected``/``read`` of two characters each.
    """

    model_config = ConfigDict(frozen=True)

    op: DiffOp
    position: int
    expected: str
    read: str


class VerificationResult(BaseModel):
    """The verdict on one photo, with the evidence for it (JSON-serialisable)."""

    model_config = ConfigDict(frozen=True)

    verdict: Verdict
    read_text: str
    expected_text: str
    confidence: float
    diff: list[CharDiff]
    reasons: list[str]
    checks: dict[str, Any]
    engine: str
    elapsed_ms: float
