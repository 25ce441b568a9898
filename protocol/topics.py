"""The topic scheme: one namespace per station, so one ACL pattern confines it.

```
bf/v1/hub/state                     hub  -> all   retained HubState (its Will: offline)
bf/v1/st/{station}/up/birth         st   -> hub   Birth
bf/v1/st/{station}/up/death         st   -> hub   Death (the station's MQTT Will)
bf/v1/st/{station}/up/job           st   -> hub   JobUpdate
bf/v1/st/{station}/up/event         st   -> hub   Event
bf/v1/st/{station}/up/telemetry     st   -> hub   TelemetryBatch
bf/v1/st/{station}/up/proof         st   -> hub   ProofChunk
bf/v1/st/{station}/down/job         hub  -> st    JobAssignment
bf/v1/st/{station}/down/ack         hub  -> st    Ack
bf/v1/st/{station}/down/cmd         hub  -> st    Command
bf/v1/st/{station}/down/alarm       hub  -> st    AlarmNotice
bf/v1/st/{station}/down/verification hub -> st    VerificationNotice
```

A station may write only under ``bf/v1/st/<its id>/up/`` and read only under
``bf/v1/st/<its id>/down/`` (mosquitto: ``pattern write bf/v1/st/%u/up/#``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

ROOT = "bf/v1"
HUB_STATE = f"{ROOT}/hub/state"
STATION_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_STATION_ID_RE = re.compile(STATION_ID_PATTERN)


class Up(StrEnum):
    """What a station publishes, by the last topic level."""

    BIRTH = "birth"
    DEATH = "death"
    JOB = "job"
    EVENT = "event"
    TELEMETRY = "telemetry"
    PROOF = "proof"


class Down(StrEnum):
    """What the hub publishes to one station, by the last topic level."""

    JOB = "job"
    ACK = "ack"
    CMD = "cmd"
    ALARM = "alarm"
    VERIFICATION = "verification"


def is_valid_station_id(station_id: str) -> bool:
    """True when ``station_id`` is safe as a topic level and an MQTT username."""
    return bool(_STATION_ID_RE.match(station_id))


def up(station_id: str, kind: Up) -> str:
    """The topic a station publishes ``kind`` on."""
    _require_station_id(station_id)
    return f"{ROOT}/st/{station_id}/up/{kind.value}"


def down(station_id: str, kind: Down) -> str:
    """The topic the hub publishes ``kind`` to a station on."""
    _require_station_id(station_id)
    return f"{ROOT}/st/{station_id}/down/{kind.value}"


def up_filter(station_id: str = "+") -> str:
    """Subscription filter for everything stations publish (default: all stations)."""
    return f"{ROOT}/st/{station_id}/up/#"


def down_filter(station_id: str) -> str:
    """Subscription filter for everything the hub sends to one station."""
    _require_station_id(station_id)
    return f"{ROOT}/st/{station_id}/down/#"


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    """A station topic split into its parts."""

    station_id: str
    direction: str  # "up" or "down"
    kind: str


class TopicError(ValueError):
    """A topic outside the scheme."""


def parse(topic: str) -> ParsedTopic:
    """Split a station topic; raise :class:`TopicError` naming what is wrong."""
    parts = topic.split("/")
    if len(parts) != 6 or "/".join(parts[:3]) != f"{ROOT}/st":
        raise TopicError(f"topic {topic!r} is not bf/v1/st/<station>/<up|down>/<kind>")
    _, _, _, station_id, direction, kind = parts
    if not is_valid_station_id(station_id):
        raise TopicError(f"station id {station_id!r} in topic {topic!r} is not valid")
    if direction == "up" and kind not in Up.__members__.values():
        raise TopicError(f"unknown station message kind {kind!r} in topic {topic!r}")
    if direction == "down" and kind not in Down.__members__.values():
        raise TopicError(f"unknown hub message kind {kind!r} in topic {topic!r}")
    if direction not in ("up", "down"):
        raise TopicError(f"direction {direction!r} in topic {topic!r} is not up or down")
    return ParsedTopic(station_id=station_id, direction=direction, kind=kind)


def _require_station_id(station_id: str) -> None:
    if not is_valid_station_id(station_id):
        raise TopicError(f"station id {station_id!r} does not match {STATION_ID_PATTERN}")
