"""Which station can do which job: capability (devices and what they announce) and health.

A capability field a station did not announce (``None`` in its birth) is not filtered on, so
agents older than the capability fields keep working; an announced value is a promise the hub
routes by.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from protocol.models import DeviceInfo, StepKind, StepSpec

KIND_FAMILY: dict[StepKind, str] = {
    StepKind.PHOTO: "camera",
    StepKind.WEIGH: "scale",
    StepKind.ENGRAVE: "laser",
    StepKind.CLEAN: "cleaner",
    StepKind.SCAN: "scanner",
}


@dataclass(frozen=True, slots=True)
class StationView:
    """What routing needs to know of one station."""

    id: str
    online: bool
    alarm: str | None
    devices: tuple[DeviceInfo, ...]

    @classmethod
    def of(cls, station: Any) -> StationView:
        devices = []
        for raw in station.devices or []:
            try:
                devices.append(DeviceInfo.model_validate(raw))
            except ValueError:
                continue  # a device the hub cannot read is a device it cannot route to
        return cls(station.id, bool(station.online), station.alarm, tuple(devices))


def _family(devices: tuple[DeviceInfo, ...], family: str) -> list[DeviceInfo]:
    return [d for d in devices if d.family == family]


def step_gap(step: StepSpec, devices: tuple[DeviceInfo, ...], today: date) -> str | None:
    """What the station lacks for ``step``, or None when it can do it."""
    family = KIND_FAMILY.get(step.kind)
    if family is None:  # manual: hands, plus a camera for photo evidence
        return None if "photo" not in step.evidence or _family(devices, "camera") else "camera"
    candidates = _family(devices, family)
    if not candidates:
        return family
    if not any(_fits(device, step, today) for device in candidates):
        return _UNFIT.get(step.kind, family)
    if "photo" in step.evidence and not _family(devices, "camera"):
        return "camera"
    return None


_UNFIT = {
    StepKind.ENGRAVE: "laser with the field and font of this template",
    StepKind.CLEAN: "cleaner with this cleaning program",
    StepKind.WEIGH: "scale with a calibration that is not overdue",
}


def _fits(device: DeviceInfo, step: StepSpec, today: date) -> bool:
    """Whether one device of the right family can do ``step`` (capabilities it announced)."""
    if step.kind is StepKind.ENGRAVE:
        return _laser_fits(device, step)
    if step.kind is StepKind.CLEAN:
        return device.cleaning is None or step.params.get("method") in device.cleaning
    if step.kind is StepKind.WEIGH:
        return device.calibration_due is None or device.calibration_due >= today
    return True


def _laser_fits(laser: DeviceInfo, step: StepSpec) -> bool:
    field = step.params.get("field_mm")
    font = step.params.get("font")
    if laser.field_mm is not None and isinstance(field, int | float) and laser.field_mm < field:
        return False
    return laser.fonts is None or font is None or font in laser.fonts


def job_gap(steps: list[StepSpec], station: StationView, today: date) -> str | None:
    """Why ``station`` cannot take a job with ``steps`` (health first), or None."""
    if not station.online:
        return "offline"
    if station.alarm:
        return "active alarm"
    for step in steps:
        gap = step_gap(step, station.devices, today)
        if gap is not None:
            return f"no {gap} for step {step.name}"
    return None
