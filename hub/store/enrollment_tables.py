"""ORM table of station enrollments (migration 0006). Registered on
:class:`hub.store.models.Base` by the import at the end of :mod:`hub.store.models`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.models import Base

__all__ = ["Base", "StationEnrollment"]


class StationEnrollment(Base):
    """One key generation of one station: enrolled, and revoked when ``revoked_at`` is set.

    The newest row of a station is its current generation; a revoked newest row means the
    station has no valid key until it is enrolled again (with the next generation).
    """

    __tablename__ = "station_enrollments"

    station_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, primary_key=True)
    enrolled_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    by: Mapped[str] = mapped_column(String(80))
