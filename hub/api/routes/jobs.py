"""Jobs with their history and evidence, and the decisions people take on them.

Neither the engraving text nor step parameters (a gift message) are exposed here.
"""

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import JSONResponse
from sqlalchemy import select

from hub.api.auth import FloorReader, Principal, Reviewer
from hub.api.deps import LinkDep, SessionDep
from hub.api.order_schemas import DecisionIn, DecisionOut
from hub.api.schemas import EvidenceOut, JobDetail, JobSummary, TransitionOut
from hub.decisions import DecisionError, DecisionResult, decide
from hub.store.models import EvidenceRecord, Job, JobTransition, Order
from hub.transitions import plan_of
from protocol.models import JobStatus, utcnow

router = APIRouter(prefix="/jobs", tags=["jobs"])
MAX_LIST = 1000
APPROVER_ONLY = {"cancel", "requeue", "reengrave"}


@router.get(
    "",
    response_model=list[JobSummary],
    summary="List jobs",
    description="Newest first, optionally only one status.",
)
async def list_jobs(
    session: SessionDep,
    _: FloorReader,
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
    description="The job's state, steps and progress, every transition (oldest first) and its "
    "evidence.",
    responses={404: {"description": "No such job."}},
)
async def get_job(job_id: uuid.UUID, session: SessionDep, _: FloorReader) -> JobDetail:
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
        steps=[s.model_dump(mode="json", exclude={"params", "v"}) for s in plan_of(job)],
        progress=dict(job.progress),
        approved_by=job.approved_by,
        detail=job.detail,
        history=[TransitionOut.model_validate(t) for t in history],
        evidence=[EvidenceOut.model_validate(e) for e in evidence],
    )


def _authorise(principal: Principal, decision: str) -> None:
    if decision in APPROVER_ONLY and principal.role not in ("engineer", "admin"):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{decision} needs an engineer or admin, not a {principal.role}",
        )


@router.post(
    "/{job_id}/decisions",
    response_model=DecisionOut,
    summary="Decide on a job",
    description="`scrap`, `rework` (technician+) and `reengrave` (engineer+, with `approval`) "
    "close a job in review; rework and reengrave create a follow-up job. `cancel` and "
    "`requeue` (engineer+) apply to work that has not irreversibly started. A stale "
    "`expected_version` answers 409 with the current state; a repeated `request_id` answers "
    "as the first time.",
    responses={
        404: {"description": "No such job."},
        409: {"description": "Stale version or not allowed now; body has `state`."},
    },
)
async def post_decision(
    job_id: uuid.UUID, body: DecisionIn, principal: Reviewer, session: SessionDep, link: LinkDep
) -> DecisionOut | JSONResponse:
    _authorise(principal, body.decision)

    async def apply() -> DecisionResult:
        job = await session.get(Job, job_id, populate_existing=True)
        if job is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} not found")
        result = await decide(
            session,
            job=job,
            decision=body.decision,
            expected_version=body.expected_version,
            actor=principal.actor,
            reason=body.reason,
            now=utcnow(),
            request_id=body.request_id,
            approval=body.approval,
        )
        await session.commit()
        return result

    try:
        result = await link.serialised(apply)  # one writer per hub process
    except DecisionError as err:
        await session.rollback()
        content = {"detail": str(err), "state": err.state.model_dump(mode="json")}
        return JSONResponse(status_code=status.HTTP_409_CONFLICT, content=content)
    await link.publish_many(result.outgoing)
    if result.follow_up_job_id and link.connected:
        await link.assign_and_publish()
    return DecisionOut(
        job_id=job_id,
        status=result.state.status,
        version=result.state.version,
        follow_up_job_id=uuid.UUID(result.follow_up_job_id) if result.follow_up_job_id else None,
        replayed=result.replayed,
    )
