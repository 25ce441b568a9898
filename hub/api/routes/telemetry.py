"""Telemetry: the ledger (where every point went) and series for charts."""

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from hub.api.auth import FloorReader
from hub.api.deps import SessionDep, SettingsDep
from hub.telemetry.ledger import ledger_view
from hub.telemetry.series import Series, SeriesQuery, read_series
from protocol.models import utcnow

router = APIRouter(tags=["telemetry"])
DEFAULT_RANGE = timedelta(hours=1)


class StationLedgerOut(BaseModel):
    """One station's telemetry accounting (docs/telemetry.md, "Hub side")."""

    station_id: str
    batches: int
    points_received: int
    points_stored: int
    points_rejected: dict[str, int]
    points_unaccounted: int
    duplicate_batches: int
    duplicate_points: int
    points_expired: int
    unparseable_batches: int
    gaps_pending: int
    gaps_open: int
    gaps_closed: int
    last_seen_at: datetime | None


@router.get(
    "/telemetry/ledger",
    response_model=list[StationLedgerOut],
    summary="Telemetry ledger per station",
    description="Every point a station sent is stored or rejected with a reason "
    "(`points_unaccounted` is 0); re-delivered batches are counted as duplicates and stored "
    "once; `unparseable_batches` are telemetry payloads kept as dead letters; gaps are seqs "
    "missing from the station's outbox stream (pending, open with a resync sent, closed).",
)
async def get_ledger(session: SessionDep, _: FloorReader) -> list[StationLedgerOut]:
    return [
        StationLedgerOut(**vars(entry), points_unaccounted=entry.points_unaccounted)
        for entry in await ledger_view(session)
    ]


@router.get(
    "/stations/{station_id}/telemetry",
    response_model=list[Series],
    summary="A station's telemetry series",
    description="One series per device and metric in [since, until) (default: the last hour). "
    "Raw points while the range is short and still within raw retention and `step` is under "
    "60 s; otherwise the 1-minute rollups merged to `step` seconds (a multiple of 60, chosen "
    "for about 500 buckets when not given).",
)
async def get_station_telemetry(
    station_id: str,
    *,
    session: SessionDep,
    settings: SettingsDep,
    _: FloorReader,
    device: Annotated[str | None, Query(max_length=64)] = None,
    metric: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    step: Annotated[int | None, Query(ge=1, le=86_400)] = None,
) -> list[Series]:
    now = utcnow()
    until = until or now
    query = SeriesQuery(
        station_id=station_id,
        device=device,
        metric=metric,
        since=since or until - DEFAULT_RANGE,
        until=until,
        step_s=step,
    )
    raw_from = now - timedelta(hours=settings.telemetry_raw_retention_h)
    return await read_series(session, query, raw_from=raw_from)
