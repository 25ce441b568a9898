"""ORM tables of alarms (migration 0005). Registered on :class:`hub.store.models.Base` by the
import at the end of :mod:`hub.store.models`."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.models import Base

__all__ = ["AlarmRecord", "Base"]


class AlarmRecord(Base):
    """One alarm of one station: active -> acknowledged -> cleared (or active -> cleared).

    ``open_key`` is ``station|device|kind`` while the alarm is not cleared and NULL after: its
    unique index allows one open alarm per key on SQLite and PostgreSQL alike (NULLs never
    collide), so a re-occurring alarm bumps ``count`` and a cleared one that comes back is a
    new row.
    """

    __tablename__ = "alarms"
    __table_args__ = (
        Index("ix_alarms_station_state", "station_id", "state"),
        Index("ix_alarms_state", "state"),
        Index("ux_alarms_open_key", "open_key", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    station_id: Mapped[str] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    # "event" (a station event raised it) or "rule:<rule id>" (a telemetry threshold did)
    source: Mapped[str] = mapped_column(String(80))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text, default="")
    open_key: Mapped[str | None] = mapped_column(String(200))
    since: Mapped[datetime]
    updated_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(80))
    cleared_at: Mapped[datetime | None]
    cleared_by: Mapped[str | None] = mapped_column(String(80))
    count: Mapped[int] = mapped_column(Integer, default=1)
    last_value: Mapped[str | None] = mapped_column(String(200))
