"""Response bodies of the order, promise and decision endpoints."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from protocol.models import JobStatus


class JobRef(BaseModel):
    line_id: str
    job_id: uuid.UUID
    status: JobStatus
    version: int


class OrderCreated(BaseModel):
    order_id: uuid.UUID
    external_id: str
    due_at: datetime = Field(description="The due date given, or the hub's promise.")
    rush: bool
    jobs: list[JobRef]


class OrderOut(OrderCreated):
    created_at: datetime
    integrator: str


class PromiseOut(BaseModel):
    feasible: bool
    promised_by: datetime | None
    reason: str | None = None
    basis: dict[str, object]


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["cancel", "requeue", "scrap", "rework", "reengrave"]
    expected_version: int = Field(ge=1, description="The job version you decided on.")
    reason: str = Field(min_length=1, max_length=1000)
    approval: str | None = Field(
        default=None, max_length=64, description="Approval reference; required for reengrave."
    )
    request_id: str | None = Field(
        default=None,
        max_length=80,
        description="Idempotency key: a repeat with the same key answers as the first time.",
    )


class DecisionOut(BaseModel):
    job_id: uuid.UUID
    status: JobStatus
    version: int
    follow_up_job_id: uuid.UUID | None
    replayed: bool
