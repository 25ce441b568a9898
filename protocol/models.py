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

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from protocol.topics import STATION_ID_PATTERN

SCHEMA_VERSION: Literal[1] = 1

StationId = Annotated[str, StringConstraints(pattern=STATION_ID_PATTERN)]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
ShortText = Annotated[str, StringConstraints(max_length=1024)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64)]
# Counters land in BIGINT columns (SQLite INTEGER, PostgreSQL bigint): JSON ints are unbounded,
# so a counter past 2**63 - 1 is refused here with a reason instead of failing in the store.
SQL_INT_MAX = 2**63 - 1
Epoch = Annotated[int, Field(ge=1, le=SQL_INT_MAX)]
Seq = Annotated[int, Field(ge=1, le=SQL_INT_MAX)]
BdSeq = Annotated[int, Field(ge=0, le=SQL_INT_MAX)]
Version = Annotated[int, Field(ge=1, le=SQL_INT_MAX)]


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


CleaningMethod = Literal["ultrasonic", "steam", "hand"]
DeviceFamily = Literal["laser", "scale", "cleaner", "camera", "scanner"]


class DeviceInfo(Message):
    """One device a station drives, as announced in its birth.

    The capability fields are optional (schema v1 stays compatible): ``None`` means "not
    announced" and the hub does not filter on it; a value is a promise the hub routes by.
    """

    name: Name
    family: DeviceFamily
    model: ShortText = ""
    backend: ShortText = ""
    # laser: the largest square the lens can mark, and the fonts its G-code renderer has
    field_mm: Annotated[float, Field(gt=0, le=2000)] | None = None
    fonts: list[Name] | None = Field(default=None, max_length=64)
    # cleaner: the programs it can run
    cleaning: list[CleaningMethod] | None = Field(default=None, max_length=3)
    # scale: the date its calibration expires (no weighing for the hub after that day)
    calibration_due: date | None = None


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
    """What to engrave, where and in which font (the hub checked all of it at intake)."""

    text: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    font: Name | None = None
    template: Name | None = None
    position: Name | None = None


class StepKind(StrEnum):
    """What a step does; the agent runs each kind with one executor."""

    PHOTO = "photo"  # camera
    WEIGH = "weigh"  # scale
    ENGRAVE = "engrave"  # laser
    CLEAN = "clean"  # cleaner
    SCAN = "scan"  # barcode scanner
    MANUAL = "manual"  # a technician's hands, proven by evidence and a sign-off


EvidenceKind = Literal["photo", "weight", "gcode", "scan", "signoff"]
StepParam = float | int | bool | str
# Step names older hubs sent as bare strings, and the kind they meant.
LEGACY_STEP_KINDS = {"engrave": StepKind.ENGRAVE, "photograph": StepKind.PHOTO}


class StepSpec(Message):
    """One step of a job: what to do, the evidence it must produce, who signs it off.

    ``irreversible`` steps (engraving, machine cleaning) have their own start gate: the hub
    records the start before the device moves, and nothing ever retries them automatically.
    ``params`` may hold personal data (a gift message): never log them.
    """

    name: Name
    kind: StepKind
    evidence: list[EvidenceKind] = Field(default_factory=list, max_length=8)
    signoff_required: bool = False
    irreversible: bool = False
    params: dict[Name, StepParam] = Field(default_factory=dict, max_length=32)


class JobAssignment(Message):
    """Hub -> station: do this job. Idempotent by (job_id, version).

    Re-sent on every birth for each open job of the station, with the job's current
    ``status`` and ``version``, so a restarted agent can reconcile.
    """

    job_id: UUID
    version: Version
    status: JobStatus = JobStatus.ASSIGNED
    order_ref: Name
    piece: Piece
    engraving: Engraving | None = None
    steps: list[StepSpec] = Field(min_length=1, max_length=32)
    issued_at: datetime = Field(default_factory=utcnow)
    # The order's deadline and rush flag: the station works its queue rush first, then by
    # due_at, then by arrival (defaults keep v1 messages without them valid).
    due_at: datetime | None = None
    rush: bool = False

    @field_validator("steps", mode="before")
    @classmethod
    def _legacy_step_names(cls, value: Any) -> Any:
        """Bare step names (hubs before the job engine) become steps of the kind they meant."""
        if not isinstance(value, list):
            return value
        return [
            {"name": item, "kind": LEGACY_STEP_KINDS.get(item, StepKind.MANUAL)}
            if isinstance(item, str)
            else item
            for item in value
        ]


class Evidence(Message):
    """Proof of a step: a photo or file by hash, a measured value, a scanned code, or a
    sign-off (``by`` names who signed; ``auto:<station>`` when no person did)."""

    step: Name
    kind: EvidenceKind
    sha256: Sha256Hex | None = None
    value: float | None = None
    unit: Annotated[str, StringConstraints(max_length=16)] | None = None
    code: Annotated[str, StringConstraints(max_length=128)] | None = None
    by: Name | None = None


class JobUpdate(StationMessage):
    """Station -> hub: move a job. Rejected (with the current state) on a version mismatch.

    ``status=running`` on a running job with ``step`` set reports step progress:
    ``step_phase="start"`` is the start gate of an irreversible step, ``"done"`` carries the
    step's evidence.
    """

    job_id: UUID
    expected_version: Version
    status: StationJobStatus
    step: Name | None = None
    step_phase: Literal["start", "done"] | None = None
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
    """Hub -> station control messages.

    ``apply_device_config`` asks the station to write ``device``'s model config (from its
    ``firmware_configs/``) to the device; the result comes back as an event. ``resync`` is the
    hub's answer to a gap in a station's sequence numbers (Sparkplug's rebirth request): the
    station re-sends everything still in its outbox and publishes a new birth.
    """

    msg_id: UUID = Field(default_factory=uuid4)
    kind: Literal["rebirth", "cancel_job", "apply_device_config", "resync"]
    job_id: UUID | None = None
    device: Name | None = None


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


# ---- proofs ---------------------------------------------------------------------------------

PROOF_CHUNK_BYTES = 128 * 1024  # raw bytes per chunk (base64 on the wire stays under 256 KiB)
PROOF_MAX_BYTES = 32 * 1024 * 1024  # larger images are refused at the first chunk


class ProofChunk(StationMessage):
    """One chunk of a proof photo. The hub assembles chunks by ``proof_sha256`` (the whole
    image's hash) and keeps the image only when that hash verifies; chunks travel through the
    outbox, so an interrupted upload resumes after a reconnect or restart."""

    proof_sha256: Sha256Hex
    index: Annotated[int, Field(ge=0, le=PROOF_MAX_BYTES // PROOF_CHUNK_BYTES)]
    count: Annotated[int, Field(ge=1, le=PROOF_MAX_BYTES // PROOF_CHUNK_BYTES + 1)]
    total_bytes: Annotated[int, Field(ge=1, le=PROOF_MAX_BYTES)]
    content_type: Literal["image/png", "image/jpeg"] = "image/png"
    job_id: UUID | None = None
    step: Name | None = None
    data: Annotated[str, StringConstraints(max_length=(PROOF_CHUNK_BYTES * 4) // 3 + 4)]  # base64


# ---- alarms ---------------------------------------------------------------------------------

AlarmState = Literal["active", "acknowledged", "cleared"]


class AlarmNotice(Message):
    """Hub -> station: an alarm of this station changed (raised, acknowledged, cleared).

    Idempotent by (alarm_id, state); the station screen shows the active ones.
    """

    alarm_id: UUID
    station_id: StationId
    device: Name | None = None
    kind: Name
    severity: Severity
    state: AlarmState
    message: ShortText = ""
    since: datetime
    updated_at: datetime = Field(default_factory=utcnow)
    acknowledged_by: Name | None = None


# ---- verification ---------------------------------------------------------------------------

DiffOp = Literal["equal", "substitute", "delete", "insert", "transpose"]


class DiffItem(Message):
    """One aligned position of the expected text against what was read (``position`` indexes
    the expected text; a transpose covers two characters of each)."""

    op: DiffOp
    position: Annotated[int, Field(ge=0)]
    expected: Annotated[str, StringConstraints(max_length=8)] = ""
    read: Annotated[str, StringConstraints(max_length=8)] = ""


class VerificationNotice(Message):
    """Hub -> station: the verdict on a job step's proof photo, with the per-character diff,
    for the technician's screen. ``read_text`` and ``diff`` are personal data (the engraving):
    the station shows them and never logs them. Idempotent by (job_id, step, proof_sha256).
    """

    job_id: UUID
    step: Name
    proof_sha256: Sha256Hex
    verdict: Literal["PASS", "FAIL", "REVIEW"]
    read_text: Annotated[str, StringConstraints(max_length=400)] = ""
    diff: list[DiffItem] = Field(default_factory=list, max_length=400)
    reasons: list[ShortText] = Field(default_factory=list, max_length=16)
    at: datetime = Field(default_factory=utcnow)
