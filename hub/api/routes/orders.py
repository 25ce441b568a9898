"""Order intake: an order line becomes a queued job, assigned at once if a station is online."""

import logging

from fastapi import APIRouter, HTTPException, Response, status

from hub.api.deps import LinkDep, SessionDep
from hub.api.schemas import OrderCreate, OrderCreated
from hub.jobs import OrderConflictError, create_order
from protocol.models import JobStatus

log = logging.getLogger(__name__)
router = APIRouter(prefix="/orders", tags=["orders"])


@router.post(
    "",
    response_model=OrderCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create an order",
    description="Idempotent by `external_id`: a repeat with the same content answers 200 with "
    "the existing job, a repeat with different content 409. The job is assigned to the "
    "least-loaded online station right away when the hub is connected, otherwise by the "
    "sweeper within `sweep_interval_s`.",
    responses={
        200: {"model": OrderCreated, "description": "The order existed with the same content."},
        409: {"description": "The external id exists with different content."},
    },
)
async def post_order(
    body: OrderCreate, session: SessionDep, link: LinkDep, response: Response
) -> OrderCreated:
    try:
        order, job, created = await create_order(
            session,
            external_id=body.external_id,
            sku=body.piece.sku,
            serial=body.piece.serial,
            engraving_text=body.engraving.text,
        )
    except OrderConflictError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
    await session.commit()
    if created:
        log.info("order %s received: job %s", order.external_id, job.id)  # never the text
        if link.connected:
            await link.assign_and_publish()
            await session.refresh(job)
    else:
        response.status_code = status.HTTP_200_OK
    return OrderCreated(order_id=order.id, job_id=job.id, status=JobStatus(job.status))
