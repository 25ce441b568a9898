"""Camera capture profiles as data: ``firmware_configs/camera/<model>.toml``."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

FIRMWARE_CONFIGS = Path(__file__).resolve().parents[2] / "firmware_configs" / "camera"
DEFAULT_MODEL = "generic-uvc-1080p"


class CameraProfile(BaseModel):
    """How to capture a proof photo. ``None`` leaves a property to the camera."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(default="custom", min_length=1)
    version: int = Field(default=1, ge=1)
    description: str = ""
    fourcc: str | None = Field(default=None, min_length=4, max_length=4)
    width: int | None = Field(default=None, ge=16, le=8192)
    height: int | None = Field(default=None, ge=16, le=8192)
    auto_exposure: float | None = None
    exposure: float | None = None
    autofocus: bool | None = None
    focus: float | None = Field(default=None, ge=0)
    auto_white_balance: bool | None = None
    white_balance_k: float | None = Field(default=None, ge=1000, le=12000)
    flush_frames: int = Field(default=5, ge=0, le=60)
    focus_min: float | None = Field(default=None, ge=0)
    focus_roi: float = Field(default=1.0, gt=0, le=1.0)
    focus_retries: int = Field(default=2, ge=0, le=10)


def load_camera_profile(
    model: str = DEFAULT_MODEL,
    *,
    path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> CameraProfile:
    """A model's profile with ``overrides`` applied; ``ValueError`` names the bad field."""
    path = path or FIRMWARE_CONFIGS / f"{model}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return CameraProfile.model_validate({**data, **(overrides or {})})
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as err:
        raise ValueError(f"camera profile {path}: {err}") from err
