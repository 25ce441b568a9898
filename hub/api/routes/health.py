"""Liveness and readiness for load balancers and systemd watchdogs."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from hub.api.deps import LinkDep, SessionDep
from hub.api.schemas import HealthOut

router = APIRouter(prefix="/health", tags=["health"])


@router.get(
    "",
    response_model=HealthOut,
    summary="Hub health",
    description="`database` is checked with a query; 503 when it is unreachable. "
    "`mqtt_connected` is informational: the API keeps working while the broker is away.",
    responses={503: {"model": HealthOut, "description": "The database is unreachable."}},
)
async def health(session: SessionDep, link: LinkDep) -> HealthOut | JSONResponse:
    try:
        await session.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError):
        body = HealthOut(status="error", mqtt_connected=link.connected, database="unreachable")
        return JSONResponse(status_code=503, content=body.model_dump())
    return HealthOut(status="ok", mqtt_connected=link.connected, database="ok")
