"""Station alarms: list them, acknowledge them, clear them (docs/api.md, "Alarms")."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict

from hub import alarms
from hub.api.auth import Approver, FloorReader
from hub.api.deps import RuntimeDep, SessionDep
from hub.dispatch import Outgoing
from hub.runtime import HubRuntime
from hub.store.alarms_tables import AlarmRecord
from protocol.models import utcnow

log = logging.getLogger(__name__)
router = APIRouter(prefix="/alarms", tags=["alarms"])
AlarmAction = Literal["acknowledge", "clear"]


class AlarmOut(BaseModel):
    """One alarm as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    station_id: str
    device: str | None
    kind: str
    source: str
    severity: str
    state: str
    message: str
    since: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    cleared_at: datetime | None
    cleared_by: str | None
    count: int
    last_value: str | None


async def act_on_alarm(
    runtime: HubRuntime, alarm_id: uuid.UUID, action: AlarmAction, actor: str
) -> AlarmRecord:
    """Acknowledge or clear one alarm (audited), tell its station, release the station when
    its last blocking alarm is cleared. Shared by the API and the dashboards."""

    async def work() -> tuple[AlarmRecord, list[Outgoing], bool]:
        async with runtime.sessions.begin() as session:
            alarm = await session.get(AlarmRecord, alarm_id)
            if alarm is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"alarm {alarm_id} not found")
            now = utcnow()
            try:
                if action == "acknowledge":
                    out = await alarms.acknowledge(session, alarm, actor=actor, now=now)
                    released = False
                else:
                    out = await alarms.clear(session, alarm, actor=actor, now=now)
                    released = await alarms.release_station_if_unblocked(
                        session, alarm, actor=actor, now=now
                    )
            except alarms.AlarmStateError as err:
                raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
        return alarm, out, released

    alarm, out, released = await runtime.link.serialised(work)  # one writer per hub process
    if runtime.link.connected:
        await runtime.link.publish_many(out)  # unsent: the station screen catches up later
        if released:
            await runtime.link.assign_and_publish()
    log.info("%s: %s alarm %s", actor, action, alarm_id)
    return alarm


@router.get(
    "",
    response_model=list[AlarmOut],
    summary="List alarms",
    description="Newest first. `state` is `active`, `acknowledged`, `cleared` or `open` "
    "(active or acknowledged); `station` filters by station id.",
)
async def get_alarms(
    session: SessionDep,
    _: FloorReader,
    state: Annotated[Literal["active", "acknowledged", "cleared", "open"] | None, Query()] = None,
    station: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AlarmOut]:
    rows = await alarms.list_alarms(session, state=state, station_id=station, limit=limit)
    return [AlarmOut.model_validate(row) for row in rows]


@router.post(
    "/{alarm_id}/acknowledge",
    response_model=AlarmOut,
    summary="Acknowledge an alarm",
    description="An engineer has seen it (audited; the station is told). Acknowledging an "
    "acknowledged alarm changes nothing; a cleared one answers 409.",
    responses={404: {"description": "No such alarm."}, 409: {"description": "Cleared."}},
)
async def acknowledge_alarm(
    alarm_id: uuid.UUID, principal: Approver, runtime: RuntimeDep
) -> AlarmOut:
    alarm = await act_on_alarm(runtime, alarm_id, "acknowledge", principal.actor)
    return AlarmOut.model_validate(alarm)


@router.post(
    "/{alarm_id}/clear",
    response_model=AlarmOut,
    summary="Clear an alarm",
    description="The condition is gone (audited; the station is told). If it was the last "
    "alarm keeping work away from the station (kind `alarm`/`device_failed`, major or "
    "critical), the station takes work again. Clearing twice changes nothing.",
    responses={404: {"description": "No such alarm."}},
)
async def clear_alarm(alarm_id: uuid.UUID, principal: Approver, runtime: RuntimeDep) -> AlarmOut:
    alarm = await act_on_alarm(runtime, alarm_id, "clear", principal.actor)
    return AlarmOut.model_validate(alarm)
