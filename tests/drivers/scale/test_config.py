"""firmware_configs/scale/*.toml: every file loads, a bad one names its field, drift shows."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from drivers.scale.base import ScaleIdentity, Unit
from drivers.scale.config import FIRMWARE_CONFIGS, load_scale_config

GOOD = (FIRMWARE_CONFIGS / "mettler-xs204.toml").read_text()


@pytest.mark.parametrize("path", sorted(FIRMWARE_CONFIGS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_config_loads(path: Path) -> None:
    config = load_scale_config(path.stem)
    assert config.model == path.stem
    assert config.resolution_g < config.capacity_g


def test_decimals_stay_exact() -> None:
    config = load_scale_config("mettler-xs204")
    assert config.resolution_g == Decimal("0.0001")
    assert config.unit is Unit.CARAT


@pytest.mark.parametrize(
    ("good", "bad", "field"),
    [
        ('resolution_g = "0.0001"', 'resolution_g = "-1"', "resolution_g"),
        ('unit = "ct"', 'unit = "lb"', "unit"),
        ("calibration_due = 2026-09-30", 'calibration_due = "soon"', "calibration_due"),
        ("bytesize = 8", "bytesize = 9", "serial.bytesize"),
        ('capacity_g = "220"', 'capacity_g = "0.00001"', "capacity_g"),
        ("stable_timeout_s = 10", "stable_timeout_s = 10\nstable_timout = 3", "stable_timout"),
    ],
)
def test_a_bad_config_names_the_field(tmp_path: Path, good: str, bad: str, field: str) -> None:
    path = tmp_path / "broken.toml"
    assert good in GOOD
    path.write_text(GOOD.replace(good, bad))
    with pytest.raises(ValueError, match=r"broken\.toml") as caught:
        load_scale_config("broken", path=path)
    assert field in str(caught.value)


def test_drift_against_what_the_balance_reports() -> None:
    config = load_scale_config("mettler-xs204")
    same = ScaleIdentity("B021002593", "XS204 220.0000 g")
    assert config.drift(same, today=date(2026, 1, 1)) == []
    other = ScaleIdentity("B021002593", "XS205 320.0000 g")
    problems = config.drift(other, today=date(2027, 1, 1))
    assert len(problems) == 3
    assert "calibration was due 2026-09-30" in problems
