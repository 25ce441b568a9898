"""The station registry as the hub sees it (presence from birth/death messages, alarms)."""

import logging
from typing import Annotated

import aiomqtt
from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select

from hub.api.auth import Approver, FloorReader
from hub.api.deps import LinkDep, SessionDep
from hub.api.schemas import StationEventOut, StationOut
from hub.stations import list_stations, set_alarm
from hub.store.models import EventRecord, Station
from protocol import topics
from protocol.models import Command, utcnow

log = logging.getLogger(__name__)

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


@router.get(
    "/{station_id}/events",
    response_model=list[StationEventOut],
    summary="A station's recent events",
    description="Newest first: device unavailable/ready, config drift and its fixes, job "
    "trouble. Events never carry engraving texts.",
)
async def get_station_events(
    station_id: str,
    session: SessionDep,
    _: FloorReader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[StationEventOut]:
    rows = await session.scalars(
        select(EventRecord)
        .where(EventRecord.station_id == station_id)
        .order_by(EventRecord.id.desc())
        .limit(limit)
    )
    return [StationEventOut.model_validate(row) for row in rows]


@router.post(
    "/{station_id}/devices/{device}/apply-config",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Write a device's model config",
    description="Asks the station to write the device's configuration from its "
    "`firmware_configs/` (GRBL `$` settings, by send-response). The outcome arrives as a "
    "`config_applied` or `config_apply_failed` event (`GET /stations/{id}/events`).",
    responses={404: {"description": "No such station."}, 503: {"description": "No broker."}},
)
async def apply_device_config(
    station_id: str, device: str, principal: Approver, session: SessionDep, link: LinkDep
) -> dict[str, str]:
    if await session.get(Station, station_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"station {station_id} not found")
    command = Command(kind="apply_device_config", device=device)
    try:
        await link.publish(topics.down(station_id, topics.Down.CMD), command)
    except aiomqtt.MqttError as err:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(err)) from err
    log.info("%s asked %s to apply the config of %s", principal.actor, station_id, device)
    return {"command_id": str(command.msg_id), "station_id": station_id, "device": device}
