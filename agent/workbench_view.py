"""What the station screen shows: :class:`StationView` and its parts (pydantic, JSON-ready).

Built by :class:`agent.workbench.Workbench`; the screen renders it and never reaches past it.
The engraving text is in the view (the fire confirmation names it): the screen shows it, no
log line ever does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from agent.operator import StepState
from protocol.models import DiffItem, Evidence, StepKind

MustDo = Literal["acknowledge", "ready", "frame_and_confirm", "signoff", "none"]

INSTRUCTIONS: dict[StepKind, str] = {
    StepKind.PHOTO: "Place the piece under the camera, then Ready",
    StepKind.WEIGH: "Place the piece on the scale, then Ready",
    StepKind.ENGRAVE: "Place the ring in the jig, then Ready",
    StepKind.CLEAN: "Put the piece in the cleaner's basket and close the lid, then Ready",
    StepKind.SCAN: "Hold the certificate's code under the camera, then Ready",
    StepKind.MANUAL: "Do the work by hand, then Ready; sign off when it is right",
}
FIRE_INSTRUCTIONS = "Check the preview; Frame (low power) to see where it goes; then Fire"
SIGNOFF_INSTRUCTIONS = "Check the work and the evidence, then Sign off"
HUB_UNREACHABLE = "Hub unreachable: work continues; the laser start needs the hub's confirmation"


class View(BaseModel):
    model_config = ConfigDict(frozen=True)


class TechnicianView(View):
    badge: str
    name: str
    roles: list[str]


class DeviceView(View):
    name: str
    family: str
    state: Literal["ready", "unavailable"]
    detail: str = ""  # the last error of an unavailable device


class AlarmView(View):
    alarm_id: UUID
    device: str | None
    kind: str
    severity: str
    state: str
    message: str
    since: datetime


class QueueItem(View):
    job_id: UUID
    order_ref: str
    sku: str
    serial: str
    rush: bool
    due_at: datetime | None
    hub_status: str
    in_hand: bool  # the job the station works on (or waits to be acknowledged)


class ProgressView(View):
    fraction: float = Field(ge=0, le=1)
    remaining_s: float | None
    detail: str  # "412 of 1030 lines", "ultrasound: 95 s left, 41.5 °C"
    temperature_c: float | None = None


class VerificationView(View):
    step: str
    proof_sha256: str
    verdict: Literal["PASS", "FAIL", "REVIEW"]
    read_text: str
    diff: list[DiffItem]
    reasons: list[str]


class StepView(View):
    name: str
    kind: StepKind
    state: StepState
    instructions: str
    signoff_required: bool
    irreversible: bool
    evidence: list[Evidence]
    detail: str = ""
    progress: ProgressView | None = None


class JobView(View):
    job_id: UUID
    order_ref: str
    sku: str
    serial: str
    engraving_text: str | None
    template: str | None
    font: str | None
    rush: bool
    due_at: datetime | None
    active: bool  # False: the last job, kept on screen for its outcome and verdict
    outcome: str  # "", "done", "failed: ...", "blocked: ..."
    must_do: MustDo
    must_do_step: str | None
    steps: list[StepView]
    verifications: list[VerificationView]


class StationView(View):
    station_id: str
    hub_online: bool  # messages reach the hub now (connected and the hub not offline)
    operator: Literal["auto", "screen"]
    technician: TechnicianView | None
    devices: list[DeviceView]
    alarms: list[AlarmView]
    queue: list[QueueItem]
    job: JobView | None
    messages: list[str]  # banners: missing devices, the hub unreachable, a frame pass running
    framing: bool = False
    at: datetime
