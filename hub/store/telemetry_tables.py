"""ORM tables of telemetry (migration 0003). Registered on :class:`hub.store.models.Base` by the
import at the end of :mod:`hub.store.models`.

The raw points themselves are :class:`hub.store.models.TelemetryPointRecord`; these tables
account for them (ledger, totals, gaps) and summarise them (rollups).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.models import Base

# Ids of telemetry_points: BIGINT on PostgreSQL, INTEGER (the rowid) on SQLite.
PointId = BigInteger().with_variant(Integer, "sqlite")


class TelemetryLedgerEntry(Base):
    """One row per telemetry batch the hub applied: what came, what was kept, what was not."""

    __tablename__ = "telemetry_ledger"
    __table_args__ = (Index("ix_telemetry_ledger_received_at", "received_at"),)

    station_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    received_at: Mapped[datetime]
    points_received: Mapped[int] = mapped_column(Integer)
    points_stored: Mapped[int] = mapped_column(Integer)
    # reason -> number of points refused for it
    rejected: Mapped[dict[str, Any]] = mapped_column(JSON)
    historical: Mapped[bool] = mapped_column(Boolean)


class TelemetryStationTotals(Base):
    """Running totals per station. Ledger rows and raw points expire; these never forget."""

    __tablename__ = "telemetry_station_totals"

    station_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    batches: Mapped[int] = mapped_column(Integer, default=0)
    points_received: Mapped[int] = mapped_column(BigInteger, default=0)
    points_stored: Mapped[int] = mapped_column(BigInteger, default=0)
    points_rejected: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    duplicate_batches: Mapped[int] = mapped_column(Integer, default=0)
    duplicate_points: Mapped[int] = mapped_column(BigInteger, default=0)
    # Removed by retention after the rollup (and every enabled sink) had them: not lost.
    points_expired: Mapped[int] = mapped_column(BigInteger, default=0)
    last_seen_at: Mapped[datetime | None]


class TelemetrySeqMark(Base):
    """Per station connection: every seq up to ``watermark`` is in the inbox."""

    __tablename__ = "telemetry_seq_marks"

    station_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    watermark: Mapped[int] = mapped_column(Integer, default=0)
    # When the watermark last moved: a gap only counts as stuck once progress stops.
    progress_at: Mapped[datetime]
    last_resync_at: Mapped[datetime | None]


class TelemetryGap(Base):
    """Missing outbox seqs of a station: ``pending`` -> ``open`` (resync sent) -> ``closed``."""

    __tablename__ = "telemetry_gaps"
    __table_args__ = (Index("ix_telemetry_gaps_station_state", "station_id", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    station_id: Mapped[str] = mapped_column(String(64))
    epoch: Mapped[int] = mapped_column(Integer)
    first_seq: Mapped[int] = mapped_column(Integer)
    last_seq: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    detected_at: Mapped[datetime]
    opened_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    resyncs: Mapped[int] = mapped_column(Integer, default=0)


class TelemetryRollup(Base):
    """One minute of one metric: the downsampled series that outlives the raw points."""

    __tablename__ = "telemetry_rollups_1m"
    __table_args__ = (Index("ix_telemetry_rollups_1m_bucket", "bucket"),)

    station_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device: Mapped[str] = mapped_column(String(64), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(Integer)  # every point, text ones too
    num_count: Mapped[int] = mapped_column(Integer)  # numeric points: min/max/sum cover these
    value_min: Mapped[float | None] = mapped_column(Float)
    value_max: Mapped[float | None] = mapped_column(Float)
    value_sum: Mapped[float | None] = mapped_column(Float)
    last_ts: Mapped[datetime]
    last_num: Mapped[float | None] = mapped_column(Float)
    last_text: Mapped[str | None] = mapped_column(Text)


class TelemetrySinkCursor(Base):
    """How far a consumer of ``telemetry_points`` got (``id <= last_id`` is done).

    ``rollup`` is the hub's own consumer; export sinks (InfluxDB) add theirs. Retention deletes
    only points at or below the lowest cursor of the enabled consumers.
    """

    __tablename__ = "telemetry_sink_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_id: Mapped[int] = mapped_column(PointId, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime]
