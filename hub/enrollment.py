"""Station enrollment on the hub: which key generation of each station is valid, audited.

A station never enrolled verifies with generation 1 (the demo and the test floor derive their
keys directly from the master secret). ``enroll`` records the current generation; ``revoke``
marks it revoked, so that key stops verifying at once and the next enrollment issues the next
generation (a new key). Both append to the audit chain in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub import audit
from hub.store.enrollment_tables import StationEnrollment

FIRST_GENERATION = 1


class EnrollmentError(Exception):
    """The enrollment change is not possible; the message says why."""


@dataclass(frozen=True, slots=True)
class KeyState:
    """The key generation a station's messages must carry, and whether it is revoked."""

    station_id: str
    generation: int
    revoked: bool
    enrolled: bool


async def _newest(session: AsyncSession, station_id: str) -> StationEnrollment | None:
    query = (
        select(StationEnrollment)
        .where(StationEnrollment.station_id == station_id)
        .order_by(StationEnrollment.generation.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def key_state(session: AsyncSession, station_id: str) -> KeyState:
    """The current generation of ``station_id`` (1 for a station never enrolled)."""
    row = await _newest(session, station_id)
    if row is None:
        return KeyState(station_id, FIRST_GENERATION, revoked=False, enrolled=False)
    return KeyState(station_id, row.generation, revoked=row.revoked_at is not None, enrolled=True)


async def enroll(session: AsyncSession, *, station_id: str, by: str, now: datetime) -> int:
    """Record a new enrollment of ``station_id``; return its key generation."""
    row = await _newest(session, station_id)
    if row is not None and row.revoked_at is None:
        raise EnrollmentError(
            f"station {station_id} is already enrolled (key generation {row.generation}); "
            "revoke it first to issue new credentials"
        )
    generation = FIRST_GENERATION if row is None else row.generation + 1
    session.add(
        StationEnrollment(
            station_id=station_id, generation=generation, enrolled_at=now, revoked_at=None, by=by
        )
    )
    await audit.append(
        session,
        actor=by,
        action="station_enrolled",
        at=now,
        station_id=station_id,
        data={"generation": generation},
    )
    return generation


async def revoke(session: AsyncSession, *, station_id: str, by: str, now: datetime) -> int:
    """Revoke the current key of ``station_id``; return the generation that stopped verifying.

    A station that was never enrolled (it used generation 1) gets a revoked generation-1 row,
    so a demo-style key stops working too.
    """
    row = await _newest(session, station_id)
    if row is not None and row.revoked_at is not None:
        raise EnrollmentError(
            f"station {station_id} is already revoked (generation {row.generation})"
        )
    if row is None:
        row = StationEnrollment(
            station_id=station_id, generation=FIRST_GENERATION, enrolled_at=now, by=by
        )
        session.add(row)
    row.revoked_at = now
    await audit.append(
        session,
        actor=by,
        action="station_revoked",
        at=now,
        station_id=station_id,
        data={"generation": row.generation},
    )
    return row.generation


async def list_enrollments(session: AsyncSession) -> list[StationEnrollment]:
    """Every enrollment row, by station and generation."""
    query = select(StationEnrollment).order_by(
        StationEnrollment.station_id, StationEnrollment.generation
    )
    return list((await session.execute(query)).scalars())
