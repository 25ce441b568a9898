"""Order intake, order lookup and the chain-of-custody dossier."""

import logging
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import HTMLResponse

from hub.api.auth import OrderReader, OrderWriter, Principal
from hub.api.deps import LinkDep, SessionDep, SettingsDep
from hub.api.order_schemas import JobRef, OrderCreated, OrderOut
from hub.dossier import build_dossier, find_order
from hub.dossier_html import render_dossier
from hub.intake import check_order
from hub.order_request import OrderRequest
from hub.orders import OrderConflictError, create_order, jobs_of_order
from hub.pii import redact_dossier, remember
from hub.plan import build_steps, estimate_seconds
from hub.promise import quote
from hub.store.models import Job, Order
from protocol.models import JobStatus, utcnow

log = logging.getLogger(__name__)
UNPROCESSABLE = 422  # starlette renamed the constant; the number is the contract
router = APIRouter(prefix="/orders", tags=["orders"])
FALLBACK_LEAD = timedelta(days=2)


def _created(order: Order, jobs: list[Job]) -> OrderCreated:
    return OrderCreated(
        order_id=order.id,
        external_id=order.external_id,
        due_at=order.due_at,
        rush=order.rush,
        jobs=[
            JobRef(line_id=j.line_id, job_id=j.id, status=JobStatus(j.status), version=j.version)
            for j in jobs
        ],
    )


@router.post(
    "",
    response_model=OrderCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create an order",
    description="Each line becomes one job. Idempotent by `external_id`: the same content "
    "again answers 200 with the existing jobs, other content 409. Impossible requests answer "
    "422 naming the field (`loc`) and why (`msg`, `type`). Without `due_at` the order is due "
    "at the hub's promise (GET /promise).",
    responses={
        200: {"model": OrderCreated, "description": "The order existed with the same content."},
        409: {"description": "The external id exists with different content."},
        422: {"description": "Refused: the body's shape, or what the floor cannot do."},
    },
)
async def post_order(
    body: OrderRequest,
    *,
    principal: OrderWriter,
    session: SessionDep,
    link: LinkDep,
    settings: SettingsDep,
    response: Response,
) -> OrderCreated:
    now = utcnow()
    if problems := check_order(body, now=now):
        raise HTTPException(UNPROCESSABLE, [p.as_detail() for p in problems])

    async def store() -> tuple[Order, list[Job], bool]:
        due_at = body.due_at or await _promised(session, body, settings, now)
        stored = await create_order(
            session,
            request=body,
            due_at=due_at,
            now=now,
            integrator=principal.name,
            weigh=settings.inspection_weighs,
        )
        await session.commit()
        remember(stored[0].request)  # its texts are redacted from logs from now on
        return stored

    try:
        # One writer per hub process (the link's lock): SQLite has one anyway, and requests
        # never time out waiting for its file lock behind the message ingest.
        order, jobs, created = await link.serialised(store)
    except OrderConflictError as err:
        await session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
    if not created:
        response.status_code = status.HTTP_200_OK
        return _created(order, jobs)
    log.info("order %s received: %d job(s)", order.external_id, len(jobs))  # never the texts
    if link.connected:
        await link.assign_and_publish()
        for job in jobs:
            await session.refresh(job)
    return _created(order, jobs)


async def _promised(
    session: SessionDep, body: OrderRequest, settings: SettingsDep, now: Any
) -> Any:
    """The latest promise over the order's lines (a fallback lead time if none can be made)."""
    latest = None
    for line in body.lines:
        steps = build_steps(line, weigh=settings.inspection_weighs)
        text = len(line.engraving.text) if line.engraving else 0
        offer = await quote(
            session,
            steps=steps,
            own_s=estimate_seconds(steps, text),
            rush=body.rush,
            now=now,
            settings=settings,
        )
        candidate = offer.promised_by or now + FALLBACK_LEAD
        latest = candidate if latest is None else max(latest, candidate)
    return latest


def _readable(order: Order | None, principal: Principal) -> Order | None:
    """``order`` if ``principal`` may read it: an integrator only its own (others' are 404,
    not 403: their existence is none of its business)."""
    if order is not None and principal.role == "integrator" and order.integrator != principal.name:
        return None
    return order


@router.get(
    "/{order_ref}",
    response_model=OrderOut,
    summary="One order",
    description="By order id or external id: its lines' jobs with their status. An "
    "integrator reads its own orders only (others' answer 404).",
    responses={404: {"description": "No such order."}},
)
async def get_order(order_ref: str, session: SessionDep, principal: OrderReader) -> OrderOut:
    order = _readable(await find_order(session, order_ref), principal)
    if order is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"order {order_ref} not found")
    jobs = list(await jobs_of_order(session, order_id=order.id))
    return OrderOut(
        **_created(order, jobs).model_dump(),
        created_at=order.created_at,
        integrator=order.integrator,
    )


@router.get(
    "/{order_ref}/dossier",
    summary="Chain-of-custody dossier",
    description="Every job, step, transition (who, when, station), evidence hash, sign-off and "
    "verification result of the order, with its audit-chain entries and whether each still "
    "matches its hash. JSON by default; HTML with `?format=html` or `Accept: text/html`. "
    "Engraving texts show as `[redacted]` to callers who may not see them (docs/security.md); "
    "gift messages are never in it.",
    responses={
        200: {"content": {"application/json": {}, "text/html": {}}},
        404: {"description": "No such order."},
    },
)
async def get_dossier(
    order_ref: str,
    request: Request,
    session: SessionDep,
    principal: OrderReader,
    format: Annotated[str | None, Query(pattern="^(json|html)$")] = None,
) -> Any:
    order = _readable(await find_order(session, order_ref), principal)
    if order is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"order {order_ref} not found")
    dossier = await build_dossier(session, order=order)
    if principal.role != "integrator":  # an integrator reads its own texts (_readable)
        redact_dossier(dossier, principal.sees_personal_data)
    wants_html = format == "html" or (
        format is None and "text/html" in request.headers.get("accept", "")
    )
    if wants_html:
        return HTMLResponse(render_dossier(dossier))
    return dossier
