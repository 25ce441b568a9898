"""The codec turns every payload into a model or a reason: never an exception, never a guess."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import MAX_PAYLOAD_BYTES, Decoded, Rejection, decode, encode, topics
from protocol.codec import DOWN_MODELS, UP_MODELS, decode_hub_state
from protocol.models import (
    Ack,
    AckOutcome,
    Birth,
    Death,
    Engraving,
    Event,
    HubState,
    JobAssignment,
    JobState,
    JobStatus,
    JobUpdate,
    Piece,
    StationJobStatus,
    TelemetryBatch,
    TelemetryPoint,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
JOB = uuid.UUID("00000000-0000-4000-8000-000000000001")

UP_SAMPLES = {
    topics.Up.BIRTH: Birth(station_id="st-01", bd_seq=3, epoch=2, agent_version="0.1.0"),
    topics.Up.DEATH: Death(station_id="st-01", bd_seq=3, epoch=2),
    topics.Up.JOB: JobUpdate(
        station_id="st-01", epoch=2, seq=7, job_id=JOB, expected_version=2, status="running"
    ),
    topics.Up.EVENT: Event(station_id="st-01", epoch=2, seq=8, kind="device_error"),
    topics.Up.TELEMETRY: TelemetryBatch(
        station_id="st-01",
        epoch=2,
        seq=9,
        points=[TelemetryPoint(device="station", metric="cpu", ts=NOW, value=12.5)],
    ),
}
DOWN_SAMPLES = {
    topics.Down.JOB: JobAssignment(
        job_id=JOB,
        version=1,
        order_ref="o-1",
        piece=Piece(sku="RING", serial="SN1"),
        engraving=Engraving(text="Anna & Ben"),
        steps=["engrave"],
    ),
    topics.Down.ACK: Ack(
        epoch=2,
        seq=7,
        outcome=AckOutcome.REJECTED,
        reason="version mismatch",
        job=JobState(job_id=JOB, status=JobStatus.ASSIGNED, version=3),
    ),
}


@pytest.mark.parametrize("kind", list(UP_SAMPLES))
def test_every_station_message_round_trips(kind: topics.Up) -> None:
    message = UP_SAMPLES[kind]
    result = decode(topics.up("st-01", kind), encode(message))
    assert isinstance(result, Decoded)
    assert result.message == message
    assert result.topic.station_id == "st-01"


@pytest.mark.parametrize("kind", list(DOWN_SAMPLES))
def test_every_hub_message_round_trips(kind: topics.Down) -> None:
    message = DOWN_SAMPLES[kind]
    result = decode(topics.down("st-01", kind), encode(message))
    assert isinstance(result, Decoded)
    assert result.message == message


def test_models_cover_every_topic_kind() -> None:
    assert set(UP_MODELS) == set(topics.Up)
    assert set(DOWN_MODELS) == set(topics.Down)


@pytest.mark.parametrize(
    ("topic", "payload", "reason_part"),
    [
        ("bf/v1/st/st-01/up/job", b"{not json", "Invalid JSON"),
        ("bf/v1/st/st-01/up/job", b'{"v": 2}', "v: Input should be 1"),
        ("bf/v1/st/st-01/up/job", b"[]", "invalid JobUpdate"),
        ("bf/v1/st/st-01/up/gossip", b"{}", "unknown station message kind"),
        ("bf/v1/st/ST 01/up/job", b"{}", "station id"),
        ("elsewhere/st-01", b"{}", "is not bf/v1/st"),
        ("bf/v1/st/st-01/sideways/job", b"{}", "not up or down"),
    ],
)
def test_malformed_payloads_are_rejected_with_a_reason(
    topic: str, payload: bytes, reason_part: str
) -> None:
    result = decode(topic, payload)
    assert isinstance(result, Rejection)
    assert reason_part in result.reason
    assert result.payload == payload  # kept whole for the dead-letter record


def test_unknown_fields_are_refused() -> None:
    body = json.loads(encode(UP_SAMPLES[topics.Up.JOB]))
    body["priority"] = "urgent"
    result = decode(topics.up("st-01", topics.Up.JOB), json.dumps(body).encode())
    assert isinstance(result, Rejection)
    assert "priority" in result.reason


def test_a_station_cannot_speak_for_another() -> None:
    result = decode(topics.up("st-02", topics.Up.JOB), encode(UP_SAMPLES[topics.Up.JOB]))
    assert isinstance(result, Rejection)
    assert "st-01" in result.reason
    assert result.station_id == "st-02"


def test_oversized_payload_is_rejected_before_parsing() -> None:
    result = decode(topics.up("st-01", topics.Up.EVENT), b" " * (MAX_PAYLOAD_BYTES + 1))
    assert isinstance(result, Rejection)
    assert "exceeds" in result.reason


def test_update_status_is_limited_to_what_a_station_may_ask() -> None:
    assert {s.value for s in StationJobStatus} <= {s.value for s in JobStatus}
    body = json.loads(encode(UP_SAMPLES[topics.Up.JOB]))
    body["status"] = "needs_review"  # only the hub decides that
    assert isinstance(
        decode(topics.up("st-01", topics.Up.JOB), json.dumps(body).encode()), Rejection
    )


def test_hub_state_decodes() -> None:
    state = HubState(hub_id="hub", online=True, since=NOW)
    assert decode_hub_state(encode(state)) == state
    assert isinstance(decode_hub_state(b"offline"), Rejection)


@given(topic=st.text(max_size=80), payload=st.binary(max_size=512))
def test_decode_never_raises(topic: str, payload: bytes) -> None:
    assert isinstance(decode(topic, payload), Decoded | Rejection)


@given(payload=st.binary(max_size=512))
def test_decode_never_raises_on_a_valid_topic(payload: bytes) -> None:
    for kind in topics.Up:
        assert isinstance(decode(topics.up("st-01", kind), payload), Decoded | Rejection)


@given(
    body=st.dictionaries(
        st.sampled_from(["v", "station_id", "epoch", "seq", "job_id", "status", "x"]),
        st.one_of(st.none(), st.integers(), st.text(max_size=20), st.booleans()),
    )
)
def test_json_objects_with_wrong_types_are_rejected_not_raised(body: dict[str, object]) -> None:
    result = decode(topics.up("st-01", topics.Up.JOB), json.dumps(body).encode())
    assert isinstance(result, Rejection)


@pytest.mark.parametrize("field", ["epoch", "seq"])
def test_counters_past_the_sql_integer_range_are_refused(field: str) -> None:
    """JSON ints are unbounded; the hub's stores hold 64-bit ones (found by the hub's fuzz test,
    which once stored an event with seq 2**64 and crashed in SQLite)."""
    body = json.loads(encode(UP_SAMPLES[topics.Up.EVENT]))
    body[field] = 2**63
    result = decode(topics.up("st-01", topics.Up.EVENT), json.dumps(body).encode())
    assert isinstance(result, Rejection)
    assert field in result.reason
    body[field] = 2**63 - 1
    assert isinstance(
        decode(topics.up("st-01", topics.Up.EVENT), json.dumps(body).encode()), Decoded
    )
