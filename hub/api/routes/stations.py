"""The station registry as the hub sees it (presence from birth/death messages, alarms)."""

from fastapi import APIRouter, HTTPException, status

from hub.api.auth import Approver, FloorReader
from hub.api.deps import LinkDep, SessionDep
from hub.api.schemas import StationOut
from hub.stations import list_stations, set_alarm
from hub.store.models import Station
from protocol.models import utcnow

router = APIRouter(prefix="/stations", tags=["stations"])


@router.get(
    "",
    response_model=list[StationOut],
    summary="List stations",
    description="Every station the hub has heard of, with its current connection "
    "(`epoch`, `bd_seq`), the devices and capabilities announced in its last birth, and its "
    "active alarm (no new work while set).",
)
async def get_stations(session: SessionDep, _: FloorReader) -> list[StationOut]:
    return [StationOut.model_validate(station) for station in await list_stations(session)]


@router.post(
    "/{station_id}/clear-alarm",
    response_model=StationOut,
    summary="Clear a station's alarm",
    description="An engineer looked at the station; it may take work again (audited).",
    responses={404: {"description": "No such station."}},
)
async def clear_alarm(
    station_id: str, principal: Approver, session: SessionDep, link: LinkDep
) -> StationOut:

    async def clear() -> Station:
        station = await session.get(Station, station_id)
        if station is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"station {station_id} not found")
        await set_alarm(session, station=station, alarm=None, actor=principal.actor, now=utcnow())
        await session.commit()
        return station

    station = await link.serialised(clear)  # one writer per hub process
    if link.connected:
        await link.assign_and_publish()
    return StationOut.model_validate(station)
