"""The station registry as the hub sees it (presence from birth/death messages)."""

from fastapi import APIRouter

from hub.api.deps import SessionDep
from hub.api.schemas import StationOut
from hub.stations import list_stations

router = APIRouter(prefix="/stations", tags=["stations"])


@router.get(
    "",
    response_model=list[StationOut],
    summary="List stations",
    description="Every station the hub has heard of, with its current connection "
    "(`epoch`, `bd_seq`) and the devices announced in its last birth.",
)
async def get_stations(session: SessionDep) -> list[StationOut]:
    return [StationOut.model_validate(station) for station in await list_stations(session)]
