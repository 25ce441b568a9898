"""Order intake in the store: an order request becomes one queued job per line.

Idempotent by ``external_id``: the same id with the same content returns the existing order,
with other content raises :class:`OrderConflictError`. Pure DB logic; the caller commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub import audit
from hub.order_request import OrderRequest
from hub.plan import build_steps, estimate_seconds
from hub.store.models import Job, JobTransition, Order
from hub.transitions import HUB_ACTOR
from protocol.models import JobStatus, StepSpec


class OrderConflictError(Exception):
    """The external id exists with different content (HTTP 409)."""


async def create_order(
    session: AsyncSession,
    *,
    request: OrderRequest,
    due_at: datetime,
    now: datetime,
    integrator: str = "",
    weigh: bool = False,
) -> tuple[Order, list[Job], bool]:
    """Store the order and its queued jobs; returns ``(order, jobs, created)``."""
    digest = request.content_sha256()
    found = await _existing(session, external_id=request.external_id)
    if found is None:
        try:
            # A savepoint, so a concurrent insert of the same external id is a lookup, not a crash.
            async with session.begin_nested():
                order, jobs = await _insert(
                    session,
                    request,
                    digest,
                    due_at=due_at,
                    now=now,
                    integrator=integrator,
                    weigh=weigh,
                )
                return order, jobs, True
        except IntegrityError:
            found = await _existing(session, external_id=request.external_id)
            if found is None:
                raise
    order = found
    if order.content_sha256 != digest:
        raise OrderConflictError(
            f"order {request.external_id!r} already exists with different content"
        )
    return order, list(await jobs_of_order(session, order_id=order.id)), False


async def _existing(session: AsyncSession, *, external_id: str) -> Order | None:
    return (
        await session.scalars(select(Order).where(Order.external_id == external_id))
    ).one_or_none()


async def jobs_of_order(session: AsyncSession, *, order_id: uuid.UUID) -> Sequence[Job]:
    """The order's jobs, by line and then creation (follow-up jobs after the original)."""
    result = await session.scalars(
        select(Job).where(Job.order_id == order_id).order_by(Job.line_index, Job.created_at, Job.id)
    )
    return result.all()


async def _insert(
    session: AsyncSession,
    request: OrderRequest,
    digest: str,
    *,
    due_at: datetime,
    now: datetime,
    integrator: str,
    weigh: bool,
) -> tuple[Order, list[Job]]:
    order = Order(
        id=uuid.uuid4(),
        external_id=request.external_id,
        created_at=now,
        due_at=due_at,
        rush=request.rush,
        integrator=integrator,
        content_sha256=digest,
        request=request.model_dump(mode="json"),
    )
    await audit.lock_head(session)
    session.add(order)
    await session.flush()
    await audit.append(
        session,
        actor=f"integrator:{integrator}" if integrator else HUB_ACTOR,
        action="order_received",
        at=now,
        data={
            "external_id": request.external_id,
            "content_sha256": digest,
            "lines": len(request.lines),
        },
        order_id=order.id,
    )
    jobs = []
    for index, line in enumerate(request.lines):
        steps = build_steps(line, weigh=weigh)
        text_length = len(line.engraving.text) if line.engraving else 0
        job = await add_job(
            session,
            order=order,
            line_index=index,
            line_id=line.line_id,
            steps=steps,
            estimate_s=estimate_seconds(steps, text_length),
            now=now,
            actor=HUB_ACTOR,
            reason=f"order line {line.line_id} received",
        )
        jobs.append(job)
    return order, jobs


async def add_job(
    session: AsyncSession,
    *,
    order: Order,
    line_index: int,
    line_id: str,
    steps: list[StepSpec],
    estimate_s: float,
    now: datetime,
    actor: str,
    reason: str,
    origin: str = "order",
    approved_by: str | None = None,
) -> Job:
    """A new queued job of ``order`` (also used for follow-ups a review decision makes)."""
    job = Job(
        id=uuid.uuid4(),
        order_id=order.id,
        line_index=line_index,
        line_id=line_id,
        status=JobStatus.QUEUED.value,
        version=1,
        steps=[step.model_dump(mode="json") for step in steps],
        progress={},
        due_at=order.due_at,
        rush=order.rush,
        estimate_s=estimate_s,
        origin=origin,
        approved_by=approved_by,
        created_at=now,
        updated_at=now,
        started=False,
        detail="",
    )
    session.add(job)
    await session.flush()
    session.add(
        JobTransition(
            job_id=job.id,
            from_status="new",
            to_status=JobStatus.QUEUED.value,
            version=1,
            actor=actor,
            reason=reason,
            at=now,
        )
    )
    plan = [
        {
            "name": s.name,
            "kind": s.kind.value,
            "evidence": list(s.evidence),
            "signoff_required": s.signoff_required,
            "irreversible": s.irreversible,
        }
        for s in steps
    ]
    await audit.append(
        session,
        actor=actor,
        action="job_created",
        at=now,
        data={
            "to": "queued",
            "version": 1,
            "reason": reason,
            "origin": origin,
            "approved_by": approved_by,
            "steps": plan,
        },
        order_id=order.id,
        job_id=job.id,
    )
    await session.flush()
    return job
