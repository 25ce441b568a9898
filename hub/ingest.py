"""From MQTT to the database: decode, dead-letter what is unusable, deduplicate, apply.

:func:`handle_message` never raises for a bad payload: it becomes a ``dead_letters`` row, a
counter increment and one warning line with the topic and the reason (never the payload: it
may hold personal data such as engraving text).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub import alarms, dispatch
from hub.dispatch import Outgoing
from hub.jobs import apply_station_update, open_jobs_for_station
from hub.metrics import DUPLICATES, MESSAGES_RECEIVED, MESSAGES_REJECTED
from hub.proofs import receive_chunk
from hub.scheduler import DEFAULT_MAX_OPEN
from hub.stations import (
    apply_alarm_event,
    record_birth,
    record_death,
    refresh_online_gauge,
    touch_station,
)
from hub.store.models import DeadLetter, EventRecord, InboxEntry
from hub.telemetry import ingest as telemetry_ingest
from hub.telemetry import ledger as telemetry_ledger
from protocol import topics
from protocol.codec import Rejection, decode
from protocol.models import (
    Ack,
    AckOutcome,
    Birth,
    Death,
    Event,
    JobState,
    JobStatus,
    JobUpdate,
    ProofChunk,
    StationMessage,
    TelemetryBatch,
    utcnow,
)

log = logging.getLogger(__name__)
Sessions = async_sessionmaker[AsyncSession]
REASON_MAX = 1024  # Ack.reason is a ShortText
STILL_OPEN = (JobStatus.ASSIGNED, JobStatus.ACKNOWLEDGED, JobStatus.RUNNING)
# Rejection reasons as protocol.codec words them -> a bounded label set for the counter.
_REASON_PREFIXES = (
    ("payload of", "too_large"),
    ("payload names station", "station_mismatch"),
    ("not a station message", "wrong_direction"),
    ("bad or missing signature", "bad_signature"),
)


def reason_kind(rejection: Rejection) -> str:
    """A small, fixed set of labels for the rejection counter."""
    reason = rejection.reason
    for prefix, kind in _REASON_PREFIXES:
        if reason.startswith(prefix):
            return kind
    if not reason.startswith("invalid "):
        return "topic"  # protocol.topics.TopicError messages
    if ": payload: Invalid JSON" in reason:
        return "malformed_json"
    return "schema_version" if ": v: " in reason else "invalid_payload"


async def handle_message(
    sessions: Sessions,
    *,
    topic: str,
    payload: bytes,
    now: datetime | None = None,
    max_open: int = DEFAULT_MAX_OPEN,
) -> list[Outgoing]:
    """Process one MQTT message; return what to publish now that it is committed."""
    now = now or utcnow()
    decoded = _wrong_direction(topic, payload) or decode(topic, payload)
    if isinstance(decoded, Rejection):
        await dead_letter(sessions, rejection=decoded, now=now)
        return []
    message = decoded.message
    MESSAGES_RECEIVED.labels(kind=decoded.topic.kind).inc()
    if isinstance(message, Birth):
        return await _on_birth(sessions, birth=message, now=now, max_open=max_open)
    if isinstance(message, Death):
        await _on_death(sessions, death=message, now=now)
        return []
    if isinstance(message, StationMessage):
        return await _on_outbox(
            sessions, message=message, kind=decoded.topic.kind, now=now, max_open=max_open
        )
    return []  # unreachable: UP_MODELS holds only the types above


def _wrong_direction(topic: str, payload: bytes) -> Rejection | None:
    """Hub-to-station topics are never ours to apply, whatever their payload."""
    try:
        parsed = topics.parse(topic)
    except topics.TopicError:
        return None  # decode() words the topic error
    if parsed.direction == "up":
        return None
    reason = "not a station message (the hub applies only .../up/... topics)"
    return Rejection(topic, payload, reason, parsed.station_id)


async def dead_letter(sessions: Sessions, *, rejection: Rejection, now: datetime) -> None:
    """Keep a refused payload whole, count it and say why (topic and reason only)."""
    kind = reason_kind(rejection)
    MESSAGES_REJECTED.labels(reason_kind=kind).inc()
    log.warning("rejected message on %s (%s): %s", rejection.topic, kind, rejection.reason)
    try:
        async with sessions.begin() as session:
            session.add(
                DeadLetter(
                    topic=rejection.topic,
                    station_id=rejection.station_id,
                    payload=rejection.payload,
                    reason=rejection.reason,
                    received_at=now,
                )
            )
    except Exception:
        # The counter and the log line above still account for it; the hub keeps running.
        log.exception("could not store dead letter from %s", rejection.topic)


async def _on_birth(
    sessions: Sessions, *, birth: Birth, now: datetime, max_open: int
) -> list[Outgoing]:
    async with sessions.begin() as session:
        await record_birth(session, birth=birth, now=now)
        # A restarted agent reconciles from these: every open job, current status and version.
        open_jobs = await open_jobs_for_station(session, station_id=birth.station_id)
        out = await dispatch.assignment_messages(session, jobs=open_jobs, now=now)
        out += await dispatch.assign_now(session, now=now, max_open=max_open)
        await refresh_online_gauge(session)
    return out


async def _on_death(sessions: Sessions, *, death: Death, now: datetime) -> None:
    async with sessions.begin() as session:
        await record_death(session, death=death, now=now)
        await refresh_online_gauge(session)


async def _on_outbox(
    sessions: Sessions, *, message: StationMessage, kind: str, now: datetime, max_open: int
) -> list[Outgoing]:
    key = (message.station_id, message.epoch, message.seq)
    try:
        async with sessions.begin() as session:
            stored = await session.get(InboxEntry, key)
            if stored is not None:
                DUPLICATES.labels(kind=kind).inc()
                await _count_duplicate(session, message, now=now)
                return [_ack(message, stored, duplicate=True)]
            entry, out = await _apply(
                session, message=message, kind=kind, now=now, max_open=max_open
            )
            session.add(entry)
    except IntegrityError:
        # Another hub process committed the same (station, epoch, seq) first: answer as it did.
        async with sessions() as session:
            stored = await session.get(InboxEntry, key)
        if stored is None:
            raise
        DUPLICATES.labels(kind=kind).inc()
        async with sessions.begin() as session:
            await _count_duplicate(session, message, now=now)
        return [_ack(message, stored, duplicate=True)]
    return [_ack(message, entry, duplicate=False), *out]


async def _apply(
    session: AsyncSession, *, message: StationMessage, kind: str, now: datetime, max_open: int
) -> tuple[InboxEntry, list[Outgoing]]:
    """Apply one outbox message; return its inbox row (the stored answer) and follow-ups."""
    await touch_station(session, station_id=message.station_id, now=now)
    entry = InboxEntry(
        station_id=message.station_id,
        epoch=message.epoch,
        seq=message.seq,
        kind=kind,
        received_at=now,
        outcome=AckOutcome.ACCEPTED.value,
        reason=None,
        job_state=None,
    )
    out: list[Outgoing] = []
    if isinstance(message, JobUpdate):
        result = await apply_station_update(
            session, station_id=message.station_id, update=message, now=now
        )
        if not result.accepted:
            entry.outcome = AckOutcome.REJECTED.value
            entry.reason = (result.reason or "rejected")[:REASON_MAX]
        entry.job_state = result.state.model_dump(mode="json") if result.state else None
        if result.accepted and result.state and result.state.status not in STILL_OPEN:
            # the job left the station: it has capacity now
            out = await dispatch.assign_now(session, now=now, max_open=max_open)
    elif isinstance(message, Event):
        _store_event(session, message, now=now)
        if await apply_alarm_event(session, message, now=now):
            out = await dispatch.assign_now(session, now=now, max_open=max_open)
        out += await alarms.on_event(session, message, now)  # alarm rows + AlarmNotices
    elif isinstance(message, TelemetryBatch):
        outcome = await telemetry_ingest.store_batch(session, message, now)
        entry.reason = outcome.ack_reason()
        out = await alarms.on_telemetry(session, message.station_id, outcome.accepted, now)
    elif isinstance(message, ProofChunk):
        proof = await receive_chunk(session, message, now=now)
        if proof.rejected is not None:
            entry.outcome = AckOutcome.REJECTED.value
            entry.reason = proof.rejected[:REASON_MAX]
    return entry, out


def _ack(message: StationMessage, entry: InboxEntry, *, duplicate: bool) -> Outgoing:
    state = JobState.model_validate(entry.job_state) if entry.job_state else None
    ack = Ack(
        epoch=message.epoch,
        seq=message.seq,
        outcome=AckOutcome(entry.outcome),
        duplicate=duplicate,
        reason=entry.reason,
        job=state,
    )
    return Outgoing(topics.down(message.station_id, topics.Down.ACK), ack)


def _store_event(session: AsyncSession, event: Event, *, now: datetime) -> None:
    session.add(
        EventRecord(
            station_id=event.station_id,
            epoch=event.epoch,
            seq=event.seq,
            kind=event.kind,
            severity=event.severity.value,
            message=event.message,
            job_id=event.job_id,
            device=event.device,
            data=dict(event.data),
            at=event.sent_at,
        )
    )
    if event.severity not in ("info", "warning"):
        log.warning("station %s event %s (%s)", event.station_id, event.kind, event.severity)


async def _count_duplicate(
    session: AsyncSession, message: StationMessage, *, now: datetime
) -> None:
    """Re-delivered telemetry is answered from the inbox; the ledger counts it."""
    if isinstance(message, TelemetryBatch):
        await telemetry_ledger.count_duplicate(session, batch=message, now=now)
