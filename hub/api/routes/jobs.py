"""Jobs with their history and evidence (the engraving text is not exposed here)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select

from hub.api.deps import SessionDep
from hub.api.schemas import EvidenceOut, JobDetail, JobSummary, TransitionOut
from hub.store.models import EvidenceRecord, Job, JobTransition, Order
from protocol.models import JobStatus

router = APIRouter(prefix="/jobs", tags=["jobs"])
MAX_LIST = 1000


@router.get(
    "",
    response_model=list[JobSummary],
    summary="List jobs",
    description="Newest first, optionally only one status.",
)
async def list_jobs(
    session: SessionDep,
    job_status: Annotated[JobStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100,
) -> list[JobSummary]:
    query = select(Job).order_by(Job.created_at.desc(), Job.id).limit(limit)
    if job_status is not None:
        query = query.where(Job.status == job_status.value)
    return [JobSummary.model_validate(job) for job in await session.scalars(query)]


@router.get(
    "/{job_id}",
    response_model=JobDetail,
    summary="One job",
    description="The job's state, every transition (oldest first) and its evidence.",
    responses={404: {"description": "No such job."}},
)
async def get_job(job_id: uuid.UUID, session: SessionDep) -> JobDetail:
    row = (
        await session.execute(
            select(Job, Order.external_id)
            .join(Order, Order.id == Job.order_id)
            .where(Job.id == job_id)
        )
    ).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} not found")
    job, external_id = row
    history = await session.scalars(
        select(JobTransition).where(JobTransition.job_id == job_id).order_by(JobTransition.id)
    )
    evidence = await session.scalars(
        select(EvidenceRecord).where(EvidenceRecord.job_id == job_id).order_by(EvidenceRecord.id)
    )
    return JobDetail(
        **JobSummary.model_validate(job).model_dump(),
        external_id=external_id,
        steps=list(job.steps),
        detail=job.detail,
        history=[TransitionOut.model_validate(t) for t in history],
        evidence=[EvidenceOut.model_validate(e) for e in evidence],
    )
