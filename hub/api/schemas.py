"""Request and response bodies of the REST API."""

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from protocol.models import JobStatus


class HealthOut(BaseModel):
    status: str = Field(examples=["ok"])
    mqtt_connected: bool
    database: str = Field(examples=["ok"])


class StationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    online: bool
    epoch: int
    bd_seq: int
    agent_version: str
    devices: list[dict[str, Any]]
    last_seen_at: datetime | None
    alarm: str | None


class TransitionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_status: str
    to_status: str
    version: int
    actor: str
    reason: str
    at: datetime


class EvidenceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    step: str
    kind: str
    sha256: str | None
    value: float | None
    unit: str | None
    code: str | None
    by: str | None
    station_id: str
    at: datetime


class JobSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    order_id: uuid.UUID
    status: JobStatus
    version: int
    station_id: str | None
    started: bool
    line_id: str
    due_at: datetime
    rush: bool
    origin: str
    created_at: datetime
    updated_at: datetime


class JobDetail(JobSummary):
    external_id: str
    steps: list[dict[str, Any]] = Field(description="Each step without its params (personal data).")
    progress: dict[str, Any]
    approved_by: str | None
    detail: str
    history: list[TransitionOut]
    evidence: list[EvidenceOut]


class DeadLetterOut(BaseModel):
    id: int
    topic: str
    station_id: str | None
    reason: str
    received_at: datetime
    payload_preview: str = Field(description="First 200 bytes, undecodable bytes replaced.")


class StationEventOut(BaseModel):
    """One event a station reported (device changes, config drift, job trouble)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    severity: str
    message: str
    device: str | None
    job_id: uuid.UUID | None
    at: datetime
