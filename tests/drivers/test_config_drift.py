"""Devices read back against their model config in firmware_configs/: drift is reported, and a
GRBL controller's settings are written back on request (send-response only)."""

from __future__ import annotations

import pytest

from drivers.errors import DeviceReportedError
from drivers.registry import open_device


@pytest.mark.asyncio
async def test_grbl_drift_is_reported_and_fixed_on_request() -> None:
    laser = await open_device("laser", "sim", "laser-1", None, {})
    try:
        assert await laser.config_drift() == []
        await laser.write_setting(32, 0)  # type: ignore[attr-defined]  # laser mode off
        drift = await laser.config_drift()
        assert drift == ["$32: profile 1, controller 0"]
        assert await laser.apply_config() == drift
        assert await laser.config_drift() == []
    finally:
        await laser.close()


@pytest.mark.asyncio
async def test_scale_drift_against_its_model_file() -> None:
    options = {"config": "mettler-xs204", "model": "XS204 220 g"}
    same = await open_device("scale", "sim", "scale-1", None, options)
    other = await open_device("scale", "sim", "scale-2", None, {**options, "model": "XS205 220 g"})
    try:
        # The shipped file's calibration date (2026-09-30) has passed: that is drift too.
        assert await same.config_drift() == ["calibration was due 2026-09-30"]
        assert "type 'XS205', configured 'XS204'" in await other.config_drift()
        with pytest.raises(DeviceReportedError, match="no writable configuration"):
            await same.apply_config()
    finally:
        await same.close()
        await other.close()
