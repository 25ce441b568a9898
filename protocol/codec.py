"""Decoding with reasons: every payload becomes a model or a :class:`Rejection`, never a crash."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from protocol import topics
from protocol.models import (
    Ack,
    AlarmNotice,
    Birth,
    Command,
    Death,
    Event,
    HubState,
    JobAssignment,
    JobUpdate,
    Message,
    ProofChunk,
    TelemetryBatch,
    VerificationNotice,
)

MAX_PAYLOAD_BYTES = 256 * 1024
MAX_FIELD_NAME = 80  # characters of a field name quoted in a rejection reason
M = TypeVar("M", bound=Message)

UP_MODELS: dict[str, type[Message]] = {
    topics.Up.BIRTH: Birth,
    topics.Up.DEATH: Death,
    topics.Up.JOB: JobUpdate,
    topics.Up.EVENT: Event,
    topics.Up.TELEMETRY: TelemetryBatch,
    topics.Up.PROOF: ProofChunk,
}
DOWN_MODELS: dict[str, type[Message]] = {
    topics.Down.JOB: JobAssignment,
    topics.Down.ACK: Ack,
    topics.Down.CMD: Command,
    topics.Down.ALARM: AlarmNotice,
    topics.Down.VERIFICATION: VerificationNotice,
}


@dataclass(frozen=True, slots=True)
class Decoded:
    """A valid message with where it came from."""

    topic: topics.ParsedTopic
    message: Message


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a payload was refused; kept whole in a dead-letter record."""

    topic: str
    payload: bytes
    reason: str
    station_id: str | None = None


def encode(message: BaseModel) -> bytes:
    """The wire form of a model: compact JSON."""
    return message.model_dump_json().encode()


def decode(topic: str, payload: bytes) -> Decoded | Rejection:
    """Decode a station topic's payload into its model, or say why not."""
    try:
        parsed = topics.parse(topic)
    except topics.TopicError as err:
        return Rejection(topic, payload, str(err))
    table = UP_MODELS if parsed.direction == "up" else DOWN_MODELS
    model = table[parsed.kind]
    result = decode_as(model, payload, topic=topic, station_id=parsed.station_id)
    if isinstance(result, Rejection):
        return result
    owner = getattr(result, "station_id", parsed.station_id)
    if owner != parsed.station_id:
        reason = f"payload names station {owner!r} but was published under {parsed.station_id!r}"
        return Rejection(topic, payload, reason, parsed.station_id)
    return Decoded(parsed, result)


def decode_hub_state(payload: bytes) -> HubState | Rejection:
    """Decode the retained hub state (its topic is outside the station namespace)."""
    return decode_as(HubState, payload, topic=topics.HUB_STATE)


def decode_as(
    model: type[M], payload: bytes, *, topic: str, station_id: str | None = None
) -> M | Rejection:
    """Validate ``payload`` as ``model``; a :class:`Rejection` names the first problem."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        reason = f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}"
        return Rejection(topic, payload, reason, station_id)
    try:
        return model.model_validate_json(payload)
    except ValidationError as err:
        return Rejection(topic, payload, _describe(model, err), station_id)


def _describe(model: type[Message], err: ValidationError) -> str:
    first = err.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "payload"
    # A field name is the sender's text: escaped and cut, so it cannot forge log lines.
    where = ascii(where)[1:-1][:MAX_FIELD_NAME]
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"invalid {model.__name__}: {where}: {first['msg']}{more}"
