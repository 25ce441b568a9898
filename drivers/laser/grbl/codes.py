"""GRBL 1.1 error and alarm tables, read from the CSVs in ``firmware_configs/grbl/``.

The research notes say to load GRBL's own ``doc/csv`` tables rather than hard-code them; ours are
copies of those rows (same columns), so a firmware update is a data change, not a code change.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType

CONFIG_DIR = Path(__file__).resolve().parents[3] / "firmware_configs" / "grbl"


@dataclass(frozen=True, slots=True)
class Code:
    """One row of a GRBL code table."""

    code: int
    message: str
    description: str

    def __str__(self) -> str:
        return f"{self.message}: {self.description}"


def _load(name: str) -> Mapping[int, Code]:
    with (CONFIG_DIR / name).open(newline="", encoding="utf-8") as handle:
        rows = csv.DictReader(handle)
        table = {int(r["code"]): Code(int(r["code"]), r["message"], r["description"]) for r in rows}
    return MappingProxyType(table)


@cache
def errors() -> Mapping[int, Code]:
    """``error:N`` meanings (1-17, 20-38 in GRBL 1.1h)."""
    return _load("error_codes.csv")


@cache
def alarms() -> Mapping[int, Code]:
    """``ALARM:N`` meanings (1-10)."""
    return _load("alarm_codes.csv")


def describe_error(code: int) -> str:
    """``error:22 (Undefined feed rate: ...)``; unknown codes are named, not refused."""
    known = errors().get(code)
    return f"error:{code} ({known})" if known else f"error:{code} (not in the GRBL 1.1 table)"


def describe_alarm(code: int) -> str:
    """``ALARM:1 (Hard limit: ...)``."""
    known = alarms().get(code)
    return f"ALARM:{code} ({known})" if known else f"ALARM:{code} (not in the GRBL 1.1 table)"
