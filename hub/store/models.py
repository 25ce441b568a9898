"""ORM tables of the hub store. ``migrations/versions`` must produce exactly this schema
(tests/hub/test_migrations.py compares them)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    Uuid,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on both backends: SQLite forgets the zone, so we put it back."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # A naive timestamp (a station that forgot its zone) is taken as UTC rather than
        # crashing the message into an endless re-send loop.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base; JSON columns hold plain dicts and lists."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Station(Base):
    __tablename__ = "stations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    bd_seq: Mapped[int] = mapped_column(Integer, default=0)
    agent_version: Mapped[str] = mapped_column(String(1024), default="")
    devices: Mapped[list[Any]] = mapped_column(JSON, default=list)
    last_birth_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    offline_since: Mapped[datetime | None]
    # An active alarm (from an `alarm`/`device_failed` event) keeps work away until cleared.
    alarm: Mapped[str | None] = mapped_column(Text)


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    due_at: Mapped[datetime]
    rush: Mapped[bool] = mapped_column(Boolean, default=False)
    integrator: Mapped[str] = mapped_column(String(64), default="")
    # SHA-256 of the canonical request: a repeat with the same id and hash is the same order.
    content_sha256: Mapped[str] = mapped_column(String(64))
    # The whole request. Personal data (engraving text, gift message): never logged, only sent
    # to the one station doing the job.
    request: Mapped[dict[str, Any]] = mapped_column(JSON)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status", "status"),
        Index("ix_jobs_station_id", "station_id"),
        Index("ix_jobs_order_id", "order_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"))
    line_index: Mapped[int] = mapped_column(Integer, default=0)
    line_id: Mapped[str] = mapped_column(String(64), default="1")
    status: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    station_id: Mapped[str | None] = mapped_column(String(64))
    # protocol.models.StepSpec dicts, in order
    steps: Mapped[list[Any]] = mapped_column(JSON)
    # step name -> {"state": "started"|"done", "at": ..., "missing": [...]}
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    due_at: Mapped[datetime]
    rush: Mapped[bool] = mapped_column(Boolean, default=False)
    estimate_s: Mapped[float] = mapped_column(Float, default=0.0)
    # "order", or "rework:<job id>" / "reengrave:<job id>" for a job a review decision made
    origin: Mapped[str] = mapped_column(String(80), default="order")
    approved_by: Mapped[str | None] = mapped_column(String(64))
    assigned_at: Mapped[datetime | None]
    last_sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # True once a station was allowed to start irreversible work: never reassigned after that.
    started: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[str] = mapped_column(Text, default="")


class JobTransition(Base):
    """Append-only job history (the API's view); every row is also in the audit chain."""

    __tablename__ = "job_transitions"
    __table_args__ = (
        Index("ix_job_transitions_job_id", "job_id"),
        Index("ux_job_transitions_request", "job_id", "request_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id"))
    from_status: Mapped[str] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(80))  # "hub", "station:<id>", "<role>:<name>"
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime]
    # The API caller's idempotency key: the same key on the same job is the same transition.
    request_id: Mapped[str | None] = mapped_column(String(80))


class AuditEntry(Base):
    """The append-only, hash-chained audit log: ``hash = sha256(prev_hash + canonical entry)``.

    ``seq`` has no gaps: each append takes the head row's lock (hub.audit), so several hubs on
    one PostgreSQL write one chain.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_order_id", "order_id"),
        Index("ix_audit_log_job_id", "job_id"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    station_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row: the chain's last ``seq`` and ``hash`` (also catches a truncated tail)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class EvidenceRecord(Base):
    __tablename__ = "evidence"
    __table_args__ = (Index("ix_evidence_job_id", "job_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id"))
    step: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str | None] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(16))
    code: Mapped[str | None] = mapped_column(String(128))
    by: Mapped[str | None] = mapped_column(String(64))
    station_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]


class InboxEntry(Base):
    """One row per station message applied: the dedupe key and the answer it got."""

    __tablename__ = "inbox"

    station_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    job_state: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class DeadLetter(Base):
    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(Text)
    station_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime]


class EventRecord(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_station_id", "station_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    station_id: Mapped[str] = mapped_column(String(64))
    epoch: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text, default="")
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    device: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime]


class TelemetryPointRecord(Base):
    """The embedded sink's raw points (hub.telemetry): one row per accepted point.

    ``(station_id, epoch, seq, idx)`` names a point for ever (the batch's outbox id and the
    point's index in it), so a point can never be stored twice. Rows from before migration
    0003 have no such key (NULL). Export sinks walk the table by ``id``.
    """

    __tablename__ = "telemetry_points"
    __table_args__ = (
        Index("ix_telemetry_points_station_ts", "station_id", "ts"),
        Index("ix_telemetry_points_ts", "ts"),
        Index("ux_telemetry_points_key", "station_id", "epoch", "seq", "idx", unique=True),
    )

    # BIGINT on PostgreSQL: 2^31 ids last only weeks at a busy floor's point rate.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    epoch: Mapped[int | None] = mapped_column(Integer)
    seq: Mapped[int | None] = mapped_column(Integer)
    idx: Mapped[int | None] = mapped_column(Integer)
    station_id: Mapped[str] = mapped_column(String(64))
    device: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime]
    value_num: Mapped[float | None] = mapped_column(Float)
    value_text: Mapped[str | None] = mapped_column(Text)
    historical: Mapped[bool] = mapped_column(Boolean, default=False)


# Tables of later features live in their own modules; importing them here registers them on
# Base.metadata for Alembic and the schema check (they import Base from this module).
from hub.store import (  # noqa: E402, F401
    alarms_tables,
    enrollment_tables,
    proofs_tables,
    telemetry_tables,
)
