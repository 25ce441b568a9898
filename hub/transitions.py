"""Low-level job moves shared by the job engine and the scheduler.

Every move is an optimistic ``UPDATE ... WHERE id = :id AND version = :v``: with several hub
processes on one PostgreSQL the loser of a race updates nothing and learns it from the row
count, so no job is ever moved twice from the same version.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub import audit
from hub.metrics import JOB_TRANSITIONS
from hub.store.models import Job, JobTransition
from protocol.models import LEGACY_STEP_KINDS, JobState, JobStatus, StepKind, StepSpec

log = logging.getLogger(__name__)

OPEN_STATUSES = (JobStatus.ASSIGNED, JobStatus.ACKNOWLEDGED, JobStatus.RUNNING)
UNSTARTED_STATUSES = (JobStatus.ASSIGNED, JobStatus.ACKNOWLEDGED)
HUB_ACTOR = "hub"


def station_actor(station_id: str) -> str:
    """The ``actor`` of a transition a station asked for."""
    return f"station:{station_id}"


def job_state(job: Job) -> JobState:
    """The wire view of a job, sent back with every answer to a job update."""
    return JobState(
        job_id=job.id, status=JobStatus(job.status), version=job.version, station_id=job.station_id
    )


def plan_of(job: Job) -> list[StepSpec]:
    """The job's steps as protocol models (rows of the walking skeleton hold bare names)."""
    return [
        StepSpec.model_validate(step)
        if isinstance(step, dict)
        else StepSpec(name=step, kind=LEGACY_STEP_KINDS.get(step, StepKind.MANUAL))
        for step in job.steps
    ]


async def move_job(
    session: AsyncSession,
    *,
    job: Job,
    to_status: JobStatus,
    actor: str,
    reason: str,
    now: datetime,
    request_id: str | None = None,
    audit_data: dict[str, Any] | None = None,
    **values: Any,
) -> bool:
    """Move ``job`` to ``to_status`` (version + 1) if nobody moved it first; refresh ``job``.

    ``values`` are further columns to set in the same UPDATE. Returns False when the job's
    version changed underneath us; ``job`` then holds the current row. Every move is written
    to the job's history and to the audit chain (with ``audit_data``: evidence hashes, ...).
    """
    await audit.lock_head(session)  # lock order: audit head first, then the job row
    from_status, version = job.status, job.version
    statement = (
        update(Job)
        .where(Job.id == job.id, Job.version == version)
        .values(status=to_status.value, version=version + 1, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    result = cast(CursorResult[Any], await session.execute(statement))
    await session.refresh(job)
    if result.rowcount != 1:
        return False
    session.add(
        JobTransition(
            job_id=job.id,
            from_status=from_status,
            to_status=to_status.value,
            version=version + 1,
            actor=actor,
            reason=reason,
            at=now,
            request_id=request_id,
        )
    )
    data: dict[str, Any] = {
        "from": from_status,
        "to": to_status.value,
        "version": version + 1,
        "reason": reason,
        **(audit_data or {}),
    }
    await audit.append(
        session,
        actor=actor,
        action="transition",
        at=now,
        data=data,
        order_id=job.order_id,
        job_id=job.id,
        station_id=job.station_id,
    )
    JOB_TRANSITIONS.labels(to_status=to_status.value).inc()
    log.info("job %s: %s -> %s (v%d) by %s", job.id, from_status, to_status, version + 1, actor)
    return True
