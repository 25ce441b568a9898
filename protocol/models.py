"""Versioned message models: every payload on the wire is one of these, as JSON.

Rules (docs/protocol.md explains why):
- every model carries ``v`` (the schema version); unknown fields are refused;
- station messages that travel through the agent's outbox carry ``epoch`` (bumped on every
  agent start) and ``seq`` (1, 2, 3 ... within the epoch); consumers deduplicate on
  ``(station_id, epoch, seq)``;
- presence messages (birth, death) carry ``bd_seq`` instead, so a stale Will can be told apart
  from the death of the current connection.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from protocol.topics import STATION_ID_PATTERN

SCHEMA_VERSION: Literal[1] = 1

StationId = Annotated[str, StringConstraints(pattern=STATION_ID_PATTERN)]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
ShortText = Annotated[str, StringConstraints(max_length=1024)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Epoch = Annotated[int, Field(ge=1)]
Seq = Annotated[int, Field(ge=1)]
BdSeq = Annotated[int, Field(ge=0)]


def utcnow() -> datetime:
    """Timezone-aware now, the only kind of timestamp on the wire."""
    return datetime.now(UTC)


class Message(BaseModel):
    """Base of every payload: versioned, strict about unknown fields, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = SCHEMA_VERSION


class StationMessage(Message):
    """A message from a station's outbox: idempotent by (station_id, epoch, seq)."""

    station_id: StationId
    epoch: Epoch
    seq: Seq
    sent_at: datetime = Field(default_factory=utcnow)


# ---- presence -------------------------------------------------------------------------------


class DeviceInfo(Message):
    """One device a station drives, as announced in its birth."""

    name: Name
    family: Literal["laser", "scale", "cleaner", "camera"]
    model: ShortText = ""
    backend: ShortText = ""


class Birth(Message):
    """Published on every connect (and again when the hub comes back online)."""

    station_id: StationId
    bd_seq: BdSeq
    epoch: Epoch
    agent_version: ShortText
    devices: list[DeviceInfo] = Field(default_factory=list, max_length=64)
    sent_at: datetime = Field(default_factory=utcnow)


class Death(Message):
    """The station's MQTT Will; ``bd_seq`` names the connection that died."""

    station_id: StationId
    bd_seq: BdSeq
    epoch: Epoch


class HubState(Message):
    """The hub's retained online state; its Will is the same with ``online=False``."""

    hub_id: Name
    online: bool
    since: datetime


# ---- jobs -----------------------------------------------------------------------------------


class JobStatus(StrEnum):
    """One state machine for technicians and devices (DESIGN §5)."""

    QUEUED = "queued"
    ASSIGNED = "assigned"
    ACKNOWLEDGED = "acknowledged"
    RUNNING = "running"
    VERIFYING = "verifying"
    DONE = "done"
    FAILED = "failed"
    NEEDS_REVIEW = "needs_review"
    BLOCKED = "blocked"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


class StationJobStatus(StrEnum):
    """The transitions a station may ask for in a :class:`JobUpdate`."""

    ACKNOWLEDGED = "acknowledged"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    BLOCKED = "blocked"


class Piece(Message):
    """The physical item the job works on."""

    sku: Name
    serial: Name


class Engraving(Message):
    """What to engrave; fonts and templates arrive with the drivers and job-engine issues."""

    text: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class JobAssignment(Message):
    """Hub -> station: do this job. Idempotent by (job_id, version).

    Re-sent on every birth for each open job of the station, with the job's current
    ``status`` and ``version``, so a restarted agent can reconcile.
    """

    job_id: UUID
    version: Annotated[int, Field(ge=1)]
    status: JobStatus = JobStatus.ASSIGNED
    order_ref: Name
    piece: Piece
    engraving: Engraving | None = None
    steps: list[Name] = Field(min_length=1, max_length=32)
    issued_at: datetime = Field(default_factory=utcnow)


class Evidence(Message):
    """Proof of a step: a photo or file by hash, or a measured value."""

    step: Name
    kind: Literal["photo", "weight", "gcode", "scan"]
    sha256: Sha256Hex | None = None
    value: float | None = None
    unit: Annotated[str, StringConstraints(max_length=16)] | None = None


class JobUpdate(StationMessage):
    """Station -> hub: move a job. Rejected (with the current state) on a version mismatch."""

    job_id: UUID
    expected_version: Annotated[int, Field(ge=1)]
    status: StationJobStatus
    step: Name | None = None
    detail: ShortText = ""
    evidence: list[Evidence] = Field(default_factory=list, max_length=64)


class JobState(Message):
    """The hub's view of a job, sent back with every answer to a job update."""

    job_id: UUID
    status: JobStatus
    version: int
    station_id: StationId | None = None


class AckOutcome(StrEnum):
    """How the hub handled one station message."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Ack(Message):
    """Hub -> station: the end-to-end answer to (epoch, seq). The outbox entry may go now.

    A re-sent message gets the first answer again, with ``duplicate=True``.
    """

    epoch: Epoch
    seq: Seq
    outcome: AckOutcome
    duplicate: bool = False
    reason: ShortText | None = None
    job: JobState | None = None


class Command(Message):
    """Hub -> station control messages."""

    msg_id: UUID = Field(default_factory=uuid4)
    kind: Literal["rebirth", "cancel_job"]
    job_id: UUID | None = None


# ---- events and telemetry -------------------------------------------------------------------


class Severity(StrEnum):
    """Event severity, ThingsBoard's scale without INDETERMINATE."""

    INFO = "info"
    WARNING = "warning"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


Scalar = float | int | bool | str


class Event(StationMessage):
    """Something that happened on a station: device alarm, job interrupted, ..."""

    kind: Name
    severity: Severity = Severity.INFO
    message: ShortText = ""
    job_id: UUID | None = None
    device: Name | None = None
    data: dict[Name, Scalar] = Field(default_factory=dict, max_length=64)


class TelemetryPoint(Message):
    """One sample of one metric of one device."""

    device: Name
    metric: Name
    ts: datetime
    value: Scalar


class TelemetryBatch(StationMessage):
    """A batch of samples; ``historical`` marks backfill after an outage."""

    points: list[TelemetryPoint] = Field(min_length=1, max_length=10_000)
    historical: bool = False
