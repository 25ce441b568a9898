"""Payloads the hub refused, newest first, for operators chasing a misbehaving station."""

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from hub.api.auth import FloorReader
from hub.api.deps import SessionDep
from hub.api.schemas import DeadLetterOut
from hub.pii import REDACTED
from hub.store.models import DeadLetter

router = APIRouter(prefix="/dead-letters", tags=["dead letters"])
PREVIEW_BYTES = 200


@router.get(
    "",
    response_model=list[DeadLetterOut],
    summary="Recent rejections",
    description="Each refused payload with the reason. The whole payload stays in the "
    f"database; the preview shows its first {PREVIEW_BYTES} bytes (to those who may see "
    "personal data: a payload may carry it, see docs/security.md).",
)
async def list_dead_letters(
    session: SessionDep, principal: FloorReader, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> list[DeadLetterOut]:
    rows = await session.scalars(select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit))
    return [
        DeadLetterOut(
            id=row.id,
            topic=row.topic,
            station_id=row.station_id,
            reason=row.reason,
            received_at=row.received_at,
            payload_preview=row.payload[:PREVIEW_BYTES].decode(errors="replace")
            if principal.sees_personal_data(row.station_id)
            else REDACTED,
        )
        for row in rows
    ]
